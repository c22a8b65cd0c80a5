"""BILLmanager's own names and numbers, as pmdci6 meets them: item types and item statuses.

One module so that SQL, the sync and the lifecycle say `ServiceStatus.deleted`, never `4`.
Sources: the item status codes are those of ISPsystem's `item.status` (1 ordered, 2 active,
3 stopped, 4 deleted, 5 processing) as the public vendor-library copy github.com/ea0hw33/billmgr
and BILLmanager's own forms use them; the item type names are the descriptor's (`dedic`) and
BILLmanager's IP addon type (`ip`).
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class ServiceStatus(IntEnum):
    """BILLmanager item status codes."""

    ordered = 1
    active = 2
    stopped = 3
    deleted = 4
    processing = 5


class ItemType(StrEnum):
    """`itemtype.intname` values pmdci6 reads or declares."""

    DEDIC = "dedic"  # the dedicated-server services this module sells (the descriptor's type)
    IP = "ip"  # the IP addon item that holds a service's address rows


# NOTE(13c): a service the sync keeps in step; every other status is BILLmanager's to handle
LIVE_STATUSES: tuple[ServiceStatus, ...] = (ServiceStatus.active, ServiceStatus.stopped)
