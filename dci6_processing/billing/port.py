"""The billing port: everything the lifecycle asks of BILLmanager, in the project's own terms.

Only `dci6_processing.billing.vendor` implements it (over ISPsystem's vendor library and
mgrctl); the sandbox gives that adapter a stand-in vendor library, so every test runs the
production code path.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol, Unpack

from dci6_processing.bookkeeping import BookkeepingChanges, ServiceBookkeeping
from dci6_processing.errors import ModuleError
from dci6_processing.settings import ModuleSettings, Service

PostEvent = Literal["open", "suspend", "resume", "close", "setparam", "reboot", "start", "stop"]


@dataclass(frozen=True)
class BillingIp:
    """An IP address row of a service in BILLmanager (`itemips`)."""

    id: int
    address: str  # empty for a slot BILLmanager created but nobody filled yet


@dataclass(frozen=True)
class SyncEntry:
    """What reconciling one live service needs, read in bulk for a whole module (`sync`)."""

    item: int
    status: int  # billmanager.ServiceStatus: only active and stopped services are listed
    pricelist: int
    account_id: int
    client_email: str  # the account's first user's e-mail, as Service.client_email
    addresses: frozenset[str]  # the service's filled IP rows
    # the recorded server and the drift a sync last reported (no manual service is listed)
    bookkeeping: ServiceBookkeeping = field(default_factory=ServiceBookkeeping)


class BillingPort(Protocol):
    def service(self, item: int) -> Service:
        """The service with its params, addons, tariff options and the client's e-mail.
        Raises ModuleError(service_not_found) when BILLmanager has no such item."""

    def check_service_exists(self, item: int) -> None:
        """One read (iteminfo): ModuleError(service_not_found) when BILLmanager has no such
        item. Made before pmdci6 keeps any state for the item (its lock file)."""

    def module_settings(self, module: int) -> ModuleSettings:
        """The processing module's connection settings and parameters, validated."""

    def save_param(self, item: int, name: str, value: str, *, crypted: bool = False) -> None:
        """service.saveparam of a param BILLmanager shows on the service (hostname, username,
        ostempl); pmdci6's own record goes through save_bookkeeping."""

    def save_bookkeeping(self, item: int, **changes: Unpack[BookkeepingChanges]) -> None:
        """Save fields of the service's bookkeeping record (one service.saveparam each, in the
        order given; secrets crypted). The one writer of `bookkeeping.Param`."""

    def services_holding_server(self, server_id: int) -> list[int]:
        """Live (not deleted) services whose `dci_server_id` param names this server: the
        billing side of "no server ever has two services"."""

    def service_ips(self, item: int) -> list[BillingIp]:
        """The IP rows BILLmanager holds for the service."""

    def add_ip(self, item: int, address: str, *, gateway: str = "", netmask: str = "") -> int:
        """Record an address on the service (filling an empty slot first) and commit it."""

    def remove_ip(self, ip_id: int) -> None:
        """Remove an IP row from the service."""

    def post(self, item: int, event: PostEvent, **fields: str) -> None:
        """Report success: service.post<event> elid=item sok=ok (postopen may carry ip=...)."""

    def set_status_message(self, item: int, text: str) -> None:
        """A short status note an admin sees on the service (drift, failed step)."""

    def record_operation_error(self, runningoperation: int, error: ModuleError) -> None:
        """runningoperation.edit errorxml=...: BILLmanager shows and retries it."""

    def create_manual_task(
        self, item: int, runningoperation: int | None, command: str, comment: str
    ) -> None:
        """Hand the operation to the module's department (setmanual + task.edit)."""

    def rollback_tariff_change(self, item: int, userid: int | None) -> None:
        """service.changepricelist.rollback: undo a tariff change we cannot apply in place."""

    def services_for_sync(self, module: int, item: int | None = None) -> list[SyncEntry]:
        """The module's active and stopped services (or only `item`, if it is one), each with
        its client's e-mail, recorded server, IP rows and drift note, in a few bulk reads
        whatever the number of services."""

    def iter_services_for_sync(self, module: int) -> Iterator[SyncEntry]:
        """The same as `services_for_sync(module)`, streamed in id order: a few bulk reads
        per chunk of services, only one chunk of rows in memory (cron sync of a big host)."""

    def calls_made(self) -> Mapping[str, int]:
        """BILLmanager calls made so far: "read" (one database query each) and "write" (one
        mgrctl process each, hundreds of milliseconds on a real host)."""

    def modules(self) -> list[int]:
        """Every processing module of this type (for `sync` without --module)."""

    def sync_catalogue(self, module: int, param: str, values: list[tuple[str, str]]) -> None:
        """Publish a select list (value, label) for a module's itemtype param."""
