"""One BILLmanager call: the parsed options and the way to the two ports.

`cli.py` builds it; every command handler takes it and returns the reply XML (bytes, built by
`protocol.py`) or None for `<doc><ok/></doc>`. Heavy imports stay inside the methods so that
`features` never pays for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dci6_processing.errors import ErrorType, ModuleError
from dci6_processing.paths import MgrPaths

if TYPE_CHECKING:
    from dci6_processing.billing.port import BillingPort
    from dci6_processing.dci.client import DciClient
    from dci6_processing.settings import ModuleSettings


@dataclass
class Invocation:
    command: str
    paths: MgrPaths
    item: int | None = None
    module: int | None = None
    runningoperation: int | None = None
    param: str | None = None
    value: str | None = None
    subcommand: str | None = None
    itemtype: str | None = None
    lang: str | None = None
    userid: int | None = None
    workers: int | None = None  # `sync --workers N`: concurrent requests per panel
    stdin: bytes = b""
    _billing: BillingPort | None = field(default=None, repr=False)

    def require_item(self) -> int:
        if self.item is None:
            raise ModuleError(ErrorType.missing_option, object="item", value=self.command)
        return self.item

    def require_module(self) -> int:
        if self.module is None:
            raise ModuleError(ErrorType.missing_option, object="module", value=self.command)
        return self.module

    def billing(self) -> BillingPort:
        if self._billing is None:
            from dci6_processing.billing.vendor import VendorBilling

            self._billing = VendorBilling(self.paths)
        return self._billing

    def dci(self, settings: ModuleSettings, *, concurrency: int = 1) -> DciClient:
        from dci6_processing.dci.client import DciClient

        return DciClient.from_settings(settings, self.paths, concurrency=concurrency)
