"""What the lifecycle needs from BILLmanager (`port`), and the one adapter over the vendor
library (`vendor`)."""
