"""`sync_item` and the cron `sync`: keep every server in step with its service in BILLmanager.

The guide's rule: an Active service's server is powered on (switch ports up) — unless its
client powered it off with `stop` (lifecycle.client_power): that one stays off, counted as
`client_stopped`; a Stopped service's server is powered off (ports down, as suspend left them).
What cannot be fixed without guessing — the server gone, owned by someone else, holding other
addresses than BILLmanager records — is reported in the log and as the service's status
message, and nothing of that service is touched (Tenantos). A server in maintenance mode or
busy with an operation is left alone until a later run. A transient panel error never changes
anything: it counts as failed and the next run tries again (VirtFusion).

The cron `sync` stays cheap for thousands of services: the panel's servers are listed once
per module (the pages after the first `workers` at a time), BILLmanager's services are read in
bulk and streamed past that listing, every decision is taken from it, and only corrections
cost a request each. A server missing from the listing is confirmed with one read before it
is called gone (a listing by offset can skip a row the panel deleted meanwhile; a server seen
twice is the same server, the later look wins). Of each listed server only a `ServerLook`
is kept: what `assess` reads, not the whole model.

The services that need attention are settled by a pool of `workers` threads per panel
(`--workers N`, else the module's `sync_workers`, default 8), the first ones while
BILLmanager's rows are still being read: each takes the service's lock and re-reads its
BILLmanager side before acting, as one worker would (and reads the server again when another
process let the service's lock go since the listing began); at most N requests are
in flight to the panel, whoever sends them, and a 503 holds the whole pool back
(`dci/pool.py`). Modules (panels) are synced side by side, each with its own bound.
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from enum import StrEnum

import structlog

from dci6_processing.billing.port import BillingPort, SyncEntry
from dci6_processing.billmanager import LIVE_STATUSES, ServiceStatus
from dci6_processing.bookkeeping import Param
from dci6_processing.dci.client import DciClient
from dci6_processing.dci.errors import (
    DciBusy,
    DciError,
    DciNotFound,
    DciUnreachable,
    PanelInternalError,
    PowerActionRejected,
)
from dci6_processing.dci.models import PortStatus, PowerStatus, Server, SwitchConnection
from dci6_processing.dci.pool import map_bounded
from dci6_processing.errors import ErrorType, LockBusy, ModuleError
from dci6_processing.invocation import Invocation
from dci6_processing.lifecycle.common import (
    ServiceContext,
    existing_service_lock,
    file_lock,
    load_service,
    service_lock,
)
from dci6_processing.lifecycle.ips import TEMPORARY_STATUS
from dci6_processing.paths import MgrPaths
from dci6_processing.settings import (
    SYNC_WORKERS_MAX,
    SYNC_WORKERS_MIN,
    ModuleSettings,
    Service,
)

log = structlog.get_logger(__name__)

DRIFT_PREFIX = "DCImanager drift: "
# NOTE(13c): the drift last reported is kept on the service (bookkeeping `drift`): a run
# re-reports only news and clears only what a sync wrote, without reading the status back
MAX_STATUS_MESSAGE = 480
MAX_LISTED_ADDRESSES = 6
MODULES_AT_ONCE = 4  # panels synced side by side, each with its own pool of workers


class Correction(StrEnum):
    """One move that brings a server back in step with its service."""

    PORTS_UP = "ports_up"
    POWER_ON = "power_on"
    POWER_OFF = "power_off"
    PORTS_DOWN = "ports_down"


class Outcome(StrEnum):
    IN_STEP = "in_step"
    CORRECTED = "corrected"
    DRIFTED = "drifted"
    FAILED = "failed"
    SKIPPED = "skipped"  # another process holds the service now; the next run looks again
    CLIENT_STOPPED = "client_stopped"  # Active, left powered off: its client stopped it


@dataclass(frozen=True)
class Assessment:
    """What a service's server needs, decided from one look at it."""

    drift: tuple[str, ...] = ()
    corrections: tuple[Correction, ...] = ()
    waiting: str = ""  # why corrections wait (an operation runs on the server)
    client_stopped: bool = False  # Active and off, left off: the client's own `stop`

    @property
    def note(self) -> str:
        """The drift as the service's status message (and its `dci_drift` param)."""
        text = DRIFT_PREFIX + "; ".join(self.drift)
        return text if len(text) <= MAX_STATUS_MESSAGE else text[: MAX_STATUS_MESSAGE - 1] + "…"


class SyncFailed(ModuleError):
    """At least one service could not be reconciled: cron's exit status says so, the summary
    line (the error's value) says how many."""

    def __init__(self, summary: str) -> None:
        super().__init__(ErrorType.sync_failed, object="sync", value=summary)


@dataclass(frozen=True, slots=True)
class ServerLook:
    """What the sync keeps of one server: exactly what `assess` reads. A listing of 100,000
    servers is held whole while BILLmanager's rows stream past it, so not the whole model."""

    id: int
    owner_email: str | None
    addresses: tuple[str, ...]  # permanent addresses, lower-cased, sorted
    power: str  # power_status, lower-cased
    ports_up: bool  # every data port is up (also when it has none)
    ports_down: bool  # every data port is down (also when it has none)
    maintenance: bool
    running_operation: str  # "" or the id of the operation running on it
    # the switch connections, kept only for a panel whose routes switch each port itself
    # (routes.toml override, dci/overrides.py): the call needs every port's ids
    ports: tuple[SwitchConnection, ...] = ()

    @classmethod
    def of(cls, server: Server, *, keep_ports: bool = True) -> ServerLook:
        operation = server.operation
        running = str(operation.id) if operation is not None and operation.is_running else ""
        port_states = [(port.admin_status or "").lower() for port in server.data_ports]
        return cls(
            id=server.id,
            # a panel has far fewer owners than servers: one string per owner, not per server
            owner_email=sys.intern(server.owner_email) if server.owner_email else None,
            addresses=tuple(sorted(_permanent_addresses(server))),
            power=sys.intern((server.power_status or "").lower()),
            ports_up=all(status == PortStatus.UP for status in port_states),
            ports_down=all(status == PortStatus.DOWN for status in port_states),
            maintenance=server.maintenance_mode,
            running_operation=running,
            ports=tuple(server.switch_connection) if keep_ports else (),
        )

    def owned_by(self, email: str) -> bool:
        """As `common.owned_by` without a panel user: the owner's e-mail, case-insensitive."""
        return bool(self.owner_email) and (self.owner_email or "").lower() == email.lower()


def _look(server: Server | ServerLook | None) -> ServerLook | None:
    return ServerLook.of(server) if isinstance(server, Server) else server


# --- decisions ------------------------------------------------------------------------------


def recorded_server_id(entry: SyncEntry) -> int | None:
    return entry.bookkeeping.server_id


def _shown(addresses: Iterable[str]) -> str:
    ordered = sorted(addresses)
    if not ordered:
        return "none"
    shown = ", ".join(ordered[:MAX_LISTED_ADDRESSES])
    more = len(ordered) - MAX_LISTED_ADDRESSES
    return shown + (f" and {more} more" if more > 0 else "")


def _permanent_addresses(server: Server) -> set[str]:
    return {ip.address.lower() for ip in server.ip if (ip.status or "") != TEMPORARY_STATUS}


def drift_of(entry: SyncEntry, server: Server | ServerLook | None) -> tuple[str, ...]:
    """What differs between the service and its server that a sync must not fix by itself."""
    server = _look(server)
    raw = entry.bookkeeping.server_id_text
    if not raw:
        return (f"no DCImanager server is recorded on the service ({Param.SERVER_ID})",)
    if recorded_server_id(entry) is None:
        return (f"{Param.SERVER_ID} {raw[:40]!r} is not a DCImanager server id",)
    if server is None:
        return (f"server {raw} is gone from DCImanager",)
    drift: list[str] = []
    if not server.owned_by(entry.client_email):
        drift.append(f"server {server.id} belongs to {server.owner_email or 'no one'} "
                     f"in DCImanager, not to {entry.client_email}")
    on_panel = set(server.addresses)
    in_billing = {address.lower() for address in entry.addresses}
    if on_panel != in_billing:
        drift.append(f"IP addresses of server {server.id} differ: DCImanager has "
                     f"{_shown(on_panel)}, BILLmanager has {_shown(in_billing)}")
    return tuple(drift)


def assess(entry: SyncEntry, server: Server | ServerLook | None) -> Assessment:
    """The rule of the guide for one service, taken from one look at its server."""
    if entry.status not in LIVE_STATUSES:
        return Assessment()
    server = _look(server)
    drift = drift_of(entry, server)
    if drift or server is None:
        return Assessment(drift=drift)
    if server.maintenance:
        # an engineer works on it: power and ports are theirs until maintenance ends
        return Assessment(waiting="the server is in maintenance mode")
    if server.running_operation:
        # an install or diagnostics drives power itself; a later run looks again
        return Assessment(waiting=f"operation {server.running_operation} is running")
    corrections: list[Correction] = []
    left_off = False
    if entry.status == ServiceStatus.active:
        if not server.ports_up:
            corrections.append(Correction.PORTS_UP)
        if server.power == PowerStatus.OFF:
            # the guide's rule, except for a server whose client powered it off
            left_off = entry.bookkeeping.client_stopped
            if not left_off:
                corrections.append(Correction.POWER_ON)
    else:
        if server.power == PowerStatus.ON:
            corrections.append(Correction.POWER_OFF)
        if not server.ports_down:
            corrections.append(Correction.PORTS_DOWN)
    return Assessment(corrections=tuple(corrections), client_stopped=left_off)


def needs_attention(entry: SyncEntry, assessment: Assessment) -> bool:
    """Whether settling this service makes any call: a correction, a new or a stale note."""
    if assessment.corrections:
        return True
    if assessment.drift:
        return entry.bookkeeping.drift != assessment.note
    return bool(entry.bookkeeping.drift)


# --- acting on one service ------------------------------------------------------------------


def _correct(ctx: ServiceContext, server: ServerLook, correction: Correction) -> bool:
    """One correction `assess` decided from the look at the server: one request."""
    if correction in (Correction.PORTS_UP, Correction.PORTS_DOWN):
        ctx.dci.set_switch_ports(server.id, correction is Correction.PORTS_UP, server.ports)
        return True
    try:
        ctx.dci.power(server.id, "on" if correction is Correction.POWER_ON else "off")
    except PowerActionRejected:
        # the panel's power rules refuse it only when the server is already there
        log.info("sync.power_already", server_id=server.id, correction=str(correction))
        return False
    return True


def settle(ctx: ServiceContext, entry: SyncEntry, server: Server | ServerLook | None,
           assessment: Assessment) -> Outcome:
    """Report drift or make the corrections; clear our drift note once the drift is gone."""
    if assessment.drift:
        log.warning("sync.drift", server_id=entry.bookkeeping.server_id_text,
                    drift=list(assessment.drift))
        note = assessment.note
        if entry.bookkeeping.drift != note:
            ctx.billing.set_status_message(entry.item, note)
            ctx.billing.save_bookkeeping(entry.item, drift=note)
        return Outcome.DRIFTED
    if assessment.waiting:
        log.info("sync.waiting", server_id=entry.bookkeeping.server_id_text,
                 reason=assessment.waiting)
    made = False
    look = _look(server)
    if look is not None:
        for correction in assessment.corrections:
            if _correct(ctx, look, correction):
                made = True
                log.info("sync.corrected", server_id=look.id, correction=str(correction),
                         status=entry.status)
    if entry.bookkeeping.drift:
        ctx.billing.set_status_message(entry.item, "")
        ctx.billing.save_bookkeeping(entry.item, drift="")
        log.info("sync.drift_cleared", server_id=entry.bookkeeping.server_id_text)
    return Outcome.CORRECTED if made else _untouched(assessment)


def _untouched(assessment: Assessment) -> Outcome:
    return Outcome.CLIENT_STOPPED if assessment.client_stopped else Outcome.IN_STEP


def _server_or_none(dci: DciClient, server_id: int | None) -> Server | None:
    if server_id is None:
        return None
    try:
        return dci.server(server_id)
    except DciNotFound:
        return None


# --- sync_item ------------------------------------------------------------------------------


def sync_item(inv: Invocation) -> bytes | None:
    """Reconcile one service; drift is reported (status message), not an error."""
    item = inv.require_item()
    with existing_service_lock(inv):
        ctx = load_service(inv)
        entries = ctx.billing.services_for_sync(ctx.service.module, item=item)
        if not entries:
            log.info("sync_item.not_live", status=ctx.service.status)
            return None
        entry = entries[0]
        server = _server_or_none(ctx.dci, recorded_server_id(entry))
        outcome = settle(ctx, entry, server, assess(entry, server))
        log.info("sync_item.done", outcome=str(outcome))
    return None


# --- the cron sync --------------------------------------------------------------------------


@dataclass
class Tally:
    """The run's figures: the summary line cron mails and the log keeps."""

    modules: int = 0
    outcomes: dict[Outcome, int] = field(default_factory=lambda: dict.fromkeys(Outcome, 0))
    requests: int = 0
    billing_reads: int = 0
    billing_writes: int = 0

    def count(self, outcome: Outcome, n: int = 1) -> None:
        self.outcomes[outcome] += n

    def add(self, other: Tally) -> None:
        self.modules += other.modules
        self.requests += other.requests
        for outcome, n in other.outcomes.items():
            self.outcomes[outcome] += n

    @property
    def checked(self) -> int:
        return sum(self.outcomes.values())

    @property
    def failed(self) -> int:
        return self.outcomes[Outcome.FAILED]

    def summary(self, seconds: float) -> str:
        o = self.outcomes
        return (f"pmdci6 sync: modules={self.modules} checked={self.checked} "
                f"corrected={o[Outcome.CORRECTED]} drifted={o[Outcome.DRIFTED]} "
                f"failed={o[Outcome.FAILED]} skipped={o[Outcome.SKIPPED]} "
                f"client_stopped={o[Outcome.CLIENT_STOPPED]} "
                f"requests={self.requests} billing_reads={self.billing_reads} "
                f"billing_writes={self.billing_writes} seconds={seconds:.2f}")


def _sync_lock(paths: MgrPaths) -> AbstractContextManager[int]:
    return file_lock(paths.ensure_state_dir() / "locks" / "sync.lock", wait_seconds=0,
                     what="sync")


def _workers_option(inv: Invocation) -> int | None:
    """`--workers N` when given, checked against the module setting's range."""
    if inv.workers is not None and not SYNC_WORKERS_MIN <= inv.workers <= SYNC_WORKERS_MAX:
        raise ModuleError(ErrorType.invalid_param, object="workers", value=str(inv.workers),
                          detail=f"from {SYNC_WORKERS_MIN} to {SYNC_WORKERS_MAX}")
    return inv.workers


def sync_modules(inv: Invocation) -> bytes:
    """Reconcile every service of `--module` (or of every module of this type)."""
    started = time.monotonic()
    workers = _workers_option(inv)
    with ExitStack() as stack:
        try:
            stack.enter_context(_sync_lock(inv.paths))
        except LockBusy:
            raise ModuleError(ErrorType.sync_running, object="sync",
                              detail="another sync holds the lock") from None
        billing = inv.billing()
        modules = [inv.module] if inv.module is not None else billing.modules()
        tally = Tally()

        def sync_one(module: int) -> Tally:
            structlog.contextvars.bind_contextvars(module=module)
            own = Tally(modules=1)
            ModuleSync(inv, billing, module, own, workers).run()
            return own

        for done in map_bounded(sync_one, modules, min(len(modules), MODULES_AT_ONCE)):
            tally.add(done)
        calls = billing.calls_made()
        tally.billing_reads, tally.billing_writes = calls.get("read", 0), calls.get("write", 0)
    seconds = time.monotonic() - started
    summary = tally.summary(seconds)
    log.info("sync.summary", modules=tally.modules, checked=tally.checked,
             corrected=tally.outcomes[Outcome.CORRECTED],
             drifted=tally.outcomes[Outcome.DRIFTED], failed=tally.failed,
             skipped=tally.outcomes[Outcome.SKIPPED],
             client_stopped=tally.outcomes[Outcome.CLIENT_STOPPED], requests=tally.requests,
             billing_reads=tally.billing_reads, billing_writes=tally.billing_writes,
             seconds=round(seconds, 3))
    if tally.failed:
        raise SyncFailed(summary)
    return summary.encode() + b"\n"


Attention = list[tuple[SyncEntry, ServerLook | None]]


class ModuleSync:
    """One module's share of the cron sync: one listing, then only the corrections."""

    def __init__(self, inv: Invocation, billing: BillingPort, module: int, tally: Tally,
                 workers: int | None = None) -> None:
        self.inv = inv
        self.billing = billing
        self.module = module
        self.tally = tally
        self.requested_workers = workers  # --workers; None: the module's sync_workers
        self.workers = 1
        self.looked_at = time.time()  # when the listing began: its looks are this old

    def run(self) -> None:
        entries = self.billing.iter_services_for_sync(self.module)
        first: SyncEntry | None = None
        try:
            first = next(entries, None)
            if first is None:
                log.info("sync.module_empty")
                return
            settings = self.billing.module_settings(self.module)
            self.workers = self.requested_workers or settings.sync_workers
            dci = self.inv.dci(settings, concurrency=self.workers)
        except ModuleError as exc:
            # without its settings no service of the module can be looked at
            log.error("sync.module_unreadable", error=str(exc.type), object=exc.object,
                      value=exc.value, detail=exc.detail)
            self.tally.count(Outcome.FAILED, _count(first, entries))
            return
        log.info("sync.module_started", workers=self.workers)
        try:
            self._reconcile(settings, dci, itertools.chain([first], entries))
        finally:
            self.tally.requests += sum(dci.request_counts.values())
            log.info("sync.module_requests", requests=dict(dci.request_counts))

    def _reconcile(self, settings: ModuleSettings, dci: DciClient,
                   entries: Iterator[SyncEntry]) -> None:
        listed, complete = self._walk_listing(dci)
        settled = map_bounded(lambda pair: self._settle_locked(settings, dci, *pair),
                              self._needing_attention(dci, listed, complete, entries),
                              self.workers)
        for outcome in settled:
            self.tally.count(outcome)

    def _needing_attention(self, dci: DciClient, listed: dict[int, ServerLook], complete: bool,
                           entries: Iterator[SyncEntry]) -> Iterator[tuple[SyncEntry,
                                                                          ServerLook | None]]:
        """The services to act on, as BILLmanager's rows stream past the listing: the pool
        settles the first ones while the rest are still read; then those whose server the
        listing did not show, once it is confirmed."""
        attention: Attention = []
        unlisted: dict[int, list[SyncEntry]] = {}
        try:
            for entry in entries:
                server_id = recorded_server_id(entry)
                if server_id is None:
                    self._sort(entry, None, attention)
                elif server_id in listed:
                    self._sort(entry, listed[server_id], attention)
                elif complete:
                    unlisted.setdefault(server_id, []).append(entry)
                else:
                    self.tally.count(Outcome.FAILED)  # an unlisted server is unknown, not gone
                if attention:
                    yield from attention
                    attention.clear()
        except ModuleError as exc:
            # the rest of the module's services cannot be read: what was read is settled
            log.error("sync.services_unreadable", error=str(exc.type), object=exc.object,
                      value=exc.value, detail=exc.detail)
            self.tally.count(Outcome.FAILED)
        listed.clear()
        self._confirm_unlisted(dci, unlisted, attention)
        yield from attention

    def _walk_listing(self, dci: DciClient) -> tuple[dict[int, ServerLook], bool]:
        """A look at every listed server by id, and whether the listing went to its end."""
        listed: dict[int, ServerLook] = {}
        keep_ports = dci.switches_each_port
        self.looked_at = time.time()
        try:
            for server in dci.iter_servers(concurrent_pages=True):
                # seen twice: the later look wins
                listed[server.id] = ServerLook.of(server, keep_ports=keep_ports)
        except ModuleError as exc:
            log.error("sync.listing_failed", error=str(exc.type), value=exc.value,
                      detail=exc.detail)
            return listed, False
        except Exception:
            log.exception("sync.listing_crashed")
            return listed, False
        return listed, True

    def _confirm_unlisted(self, dci: DciClient, unlisted: dict[int, list[SyncEntry]],
                          attention: Attention) -> None:
        """One direct read per server the listing did not show, `workers` at a time."""

        def read(server_id: int) -> tuple[int, ServerLook | None, ModuleError | None]:
            try:
                return server_id, _look(_server_or_none(dci, server_id)), None
            except ModuleError as exc:
                return server_id, None, exc

        for server_id, found, error in map_bounded(read, list(unlisted), self.workers):
            if error is not None:
                log.error("sync.server_unreadable", server_id=server_id,
                          error=str(error.type), value=error.value)
                self.tally.count(Outcome.FAILED, len(unlisted[server_id]))
                continue
            for entry in unlisted[server_id]:
                self._sort(entry, found, attention)

    def _sort(self, entry: SyncEntry, server: ServerLook | None, attention: Attention) -> None:
        """Count a service at once when nothing is to be done, else keep it (with its server)
        for acting on."""
        assessment = assess(entry, server)
        if needs_attention(entry, assessment):
            attention.append((entry, server))
        elif assessment.drift:
            log.warning("sync.drift", item=entry.item, server_id=entry.bookkeeping.server_id_text,
                        drift=list(assessment.drift), reported=True)
            self.tally.count(Outcome.DRIFTED)
        else:
            self.tally.count(_untouched(assessment))

    def _settle_locked(self, settings: ModuleSettings, dci: DciClient, entry: SyncEntry,
                       server: ServerLook | None) -> Outcome:
        """Settle one service under its lock, re-reading its BILLmanager side first: a
        suspend that finished since the bulk read must not be undone. Runs in a worker."""
        structlog.contextvars.bind_contextvars(item=entry.item)
        try:
            with ExitStack() as stack:
                try:
                    held = stack.enter_context(
                        service_lock(self.inv.paths, entry.item, wait_seconds=0))
                except LockBusy:
                    log.info("sync.service_busy")
                    return Outcome.SKIPPED
                fresh = self.billing.services_for_sync(self.module, item=entry.item)
                if not fresh:
                    log.info("sync.no_longer_live")
                    return Outcome.IN_STEP
                if (recorded_server_id(fresh[0]) != recorded_server_id(entry)
                        or held.let_go_since(self.looked_at)):
                    # another process (sync_item, suspend, ...) worked on the service after
                    # the listing: one direct read, so as not to redo or undo what it did
                    log.info("sync.look_again")
                    server = _look(_server_or_none(dci, recorded_server_id(fresh[0])))
                entry = fresh[0]
                ctx = ServiceContext(inv=self.inv, billing=self.billing,
                                     service=_service_of(entry, self.module),
                                     settings=settings, dci=dci)
                return settle(ctx, entry, server, assess(entry, server))
        except DciError as exc:
            log.error("sync.panel_failed", error=str(exc.type), value=exc.value,
                      http_status=exc.http_status, transient=_is_transient(exc))
            return Outcome.FAILED
        except ModuleError as exc:
            log.error("sync.service_failed", error=str(exc.type), object=exc.object,
                      value=exc.value, detail=exc.detail)
            return Outcome.FAILED
        except Exception:
            # one broken service never stops the rest
            log.exception("sync.service_crashed")
            return Outcome.FAILED
        finally:
            structlog.contextvars.unbind_contextvars("item")


def _count(first: SyncEntry | None, rest: Iterator[SyncEntry]) -> int:
    """How many services a module has that cannot be looked at (at least one)."""
    if first is None:
        return 1
    try:
        return 1 + sum(1 for _ in rest)
    except ModuleError:
        return 1


def _is_transient(exc: DciError) -> bool:
    return isinstance(exc, (DciBusy, DciUnreachable, PanelInternalError))


def _service_of(entry: SyncEntry, module: int) -> Service:
    return Service(id=entry.item, module=module, status=entry.status,
                   pricelist=entry.pricelist, account_id=entry.account_id,
                   client_email=entry.client_email,
                   params={Param.SERVER_ID.value: entry.bookkeeping.server_id_text,
                           Param.DRIFT.value: entry.bookkeeping.drift})
