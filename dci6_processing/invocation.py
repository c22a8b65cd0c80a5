"""One BILLmanager call: the parsed options and the way to the two ports.

`cli.py` builds it; every command handler takes it and returns the reply XML (bytes, built by
`protocol.py`) or None for `<doc><ok/></doc>`. Heavy imports stay inside the methods so that
`features` never pays for them. `dci_client()` is the one place a DCImanager client is built
from module settings (commands, catalogue forms, doctor).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dci6_processing.errors import ErrorType, ModuleError
from dci6_processing.paths import MgrPaths

if TYPE_CHECKING:
    from dci6_processing.billing.port import BillingPort
    from dci6_processing.dci.client import DciClient
    from dci6_processing.dci.routes import RouteTable
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
        """The module's client, sharing the token cache with every process of this host;
        `concurrency`: how many threads may share it (at most that many requests in flight)."""
        return dci_client(settings, paths=self.paths, concurrency=concurrency)


def dci_client(
    settings: ModuleSettings,
    *,
    paths: MgrPaths | None = None,
    verify: bool | str | None = None,
    timeout: float | None = None,
    retries_503: int | None = None,
    routes: RouteTable | None = None,
    concurrency: int = 1,
) -> DciClient:
    """A DCImanager client for these module settings: the only place one is built.

    `paths` adds the token cache shared across processes (without it every process logs in
    afresh: check_connection must test the typed password, not a cached token); `verify`,
    `timeout` and `retries_503` override the settings' TLS choice and the defaults (doctor).
    The route table is the root's routes.toml applied for this panel unless `routes` is given.
    """
    from dci6_processing.dci.client import DciClient
    from dci6_processing.dci.overrides import panel_table
    from dci6_processing.dci.session import DEFAULT_503_TRIES, MIB, Limits
    from dci6_processing.paths import mgr_paths

    limits = Limits(connect_timeout=float(settings.connect_timeout),
                    read_timeout=float(settings.read_timeout),
                    deadline=float(settings.request_deadline),
                    max_answer_bytes=settings.max_answer_mb * MIB)
    return DciClient(
        settings.url,
        settings.username,
        settings.password.get_secret_value(),
        verify=settings.tls_verify if verify is None else verify,
        timeout=timeout,  # None: the settings' read timeout
        limits=limits,
        retries_503=DEFAULT_503_TRIES if retries_503 is None else retries_503,
        token_cache_dir=paths.ensure_state_dir() / "tokens" if paths is not None else None,
        routes=routes if routes is not None else panel_table(paths or mgr_paths(), settings.url),
        concurrency=concurrency,
    )
