"""pmdci6: a BILLmanager 6 processing module for dedicated servers in DCImanager 6."""

__version__ = "0.1.0"
