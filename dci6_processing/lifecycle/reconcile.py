"""`sync_item` and the cron `sync`: keep every server in step with its service in BILLmanager.

The guide's rule: an Active service's server is powered on (switch ports up) — unless its
client powered it off with `stop` (lifecycle.client_power): that one stays off, counted as
`client_stopped`; a Stopped service's server is powered off (ports down, as suspend left them).
What cannot be fixed without guessing — the server gone, owned by someone else, holding other
addresses than BILLmanager records — is reported in the log and as the service's status
message, and nothing of that service is touched (Tenantos). A server in maintenance mode or
busy with an operation is left alone until a later run. A transient panel error never changes
anything: it counts as failed and the next run tries again (VirtFusion).

The cron `sync` stays cheap for thousands of services: billing is read in bulk, the panel's
servers are listed once per module page by page, every decision is taken from that listing,
and only corrections cost a request each. A server missing from the listing is confirmed with
one read before it is called gone (a listing by offset can skip a row the panel deleted
meanwhile).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
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
from dci6_processing.dci.models import PortStatus, PowerStatus, Server
from dci6_processing.errors import ErrorType, LockBusy, ModuleError
from dci6_processing.invocation import Invocation
from dci6_processing.lifecycle.common import (
    ServiceContext,
    existing_service_lock,
    file_lock,
    load_service,
    owned_by,
    service_lock,
)
from dci6_processing.lifecycle.ips import TEMPORARY_STATUS
from dci6_processing.lifecycle.power import power_off, power_on, set_ports
from dci6_processing.paths import MgrPaths
from dci6_processing.settings import ModuleSettings, Service

log = structlog.get_logger(__name__)

DRIFT_PREFIX = "DCImanager drift: "
# NOTE(13c): the drift last reported is kept on the service (bookkeeping `drift`): a run
# re-reports only news and clears only what a sync wrote, without reading the status back
MAX_STATUS_MESSAGE = 480
MAX_LISTED_ADDRESSES = 6


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


def drift_of(entry: SyncEntry, server: Server | None) -> tuple[str, ...]:
    """What differs between the service and its server that a sync must not fix by itself."""
    raw = entry.bookkeeping.server_id_text
    if not raw:
        return (f"no DCImanager server is recorded on the service ({Param.SERVER_ID})",)
    if recorded_server_id(entry) is None:
        return (f"{Param.SERVER_ID} {raw[:40]!r} is not a DCImanager server id",)
    if server is None:
        return (f"server {raw} is gone from DCImanager",)
    drift: list[str] = []
    if not owned_by(server, None, entry.client_email):
        drift.append(f"server {server.id} belongs to {server.owner_email or 'no one'} "
                     f"in DCImanager, not to {entry.client_email}")
    on_panel = _permanent_addresses(server)
    in_billing = {address.lower() for address in entry.addresses}
    if on_panel != in_billing:
        drift.append(f"IP addresses of server {server.id} differ: DCImanager has "
                     f"{_shown(on_panel)}, BILLmanager has {_shown(in_billing)}")
    return tuple(drift)


def _ports_are(server: Server, wanted: str) -> bool:
    return all((port.admin_status or "").lower() == wanted for port in server.data_ports)


def assess(entry: SyncEntry, server: Server | None) -> Assessment:
    """The rule of the guide for one service, taken from one look at its server."""
    if entry.status not in LIVE_STATUSES:
        return Assessment()
    drift = drift_of(entry, server)
    if drift or server is None:
        return Assessment(drift=drift)
    if server.maintenance_mode:
        # an engineer works on it: power and ports are theirs until maintenance ends
        return Assessment(waiting="the server is in maintenance mode")
    operation = server.operation
    if operation is not None and operation.is_running:
        # an install or diagnostics drives power itself; a later run looks again
        return Assessment(waiting=f"operation {operation.id} is running")
    power = (server.power_status or "").lower()
    corrections: list[Correction] = []
    left_off = False
    if entry.status == ServiceStatus.active:
        if not _ports_are(server, PortStatus.UP):
            corrections.append(Correction.PORTS_UP)
        if power == PowerStatus.OFF:
            # the guide's rule, except for a server whose client powered it off
            left_off = entry.bookkeeping.client_stopped
            if not left_off:
                corrections.append(Correction.POWER_ON)
    else:
        if server.is_powered_on:
            corrections.append(Correction.POWER_OFF)
        if not _ports_are(server, PortStatus.DOWN):
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


def _correct(ctx: ServiceContext, server: Server, correction: Correction) -> bool:
    if correction is Correction.PORTS_UP:
        return set_ports(ctx, server, True, required=False)
    if correction is Correction.PORTS_DOWN:
        return set_ports(ctx, server, False, required=False)
    try:
        if correction is Correction.POWER_ON:
            return power_on(ctx, server)
        return power_off(ctx, server)
    except PowerActionRejected:
        # the panel's power rules refuse it only when the server is already there
        log.info("sync.power_already", server_id=server.id, correction=str(correction))
        return False


def settle(ctx: ServiceContext, entry: SyncEntry, server: Server | None,
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
    if server is not None:
        for correction in assessment.corrections:
            if _correct(ctx, server, correction):
                made = True
                log.info("sync.corrected", server_id=server.id, correction=str(correction),
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

    def count(self, outcome: Outcome, n: int = 1) -> None:
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
                f"requests={self.requests} seconds={seconds:.2f}")


def _sync_lock(paths: MgrPaths) -> AbstractContextManager[None]:
    return file_lock(paths.ensure_state_dir() / "locks" / "sync.lock", wait_seconds=0,
                     what="sync")




def sync_modules(inv: Invocation) -> bytes:
    """Reconcile every service of `--module` (or of every module of this type)."""
    started = time.monotonic()
    with ExitStack() as stack:
        try:
            stack.enter_context(_sync_lock(inv.paths))
        except LockBusy:
            raise ModuleError(ErrorType.sync_running, object="sync",
                              detail="another sync holds the lock") from None
        billing = inv.billing()
        modules = [inv.module] if inv.module is not None else billing.modules()
        tally = Tally()
        for module in modules:
            structlog.contextvars.bind_contextvars(module=module)
            ModuleSync(inv, billing, module, tally).run()
            tally.modules += 1
    seconds = time.monotonic() - started
    summary = tally.summary(seconds)
    log.info("sync.summary", modules=tally.modules, checked=tally.checked,
             corrected=tally.outcomes[Outcome.CORRECTED],
             drifted=tally.outcomes[Outcome.DRIFTED], failed=tally.failed,
             skipped=tally.outcomes[Outcome.SKIPPED],
             client_stopped=tally.outcomes[Outcome.CLIENT_STOPPED], requests=tally.requests,
             seconds=round(seconds, 3))
    if tally.failed:
        raise SyncFailed(summary)
    return summary.encode() + b"\n"


class ModuleSync:
    """One module's share of the cron sync: one listing, then only the corrections."""

    def __init__(self, inv: Invocation, billing: BillingPort, module: int, tally: Tally) -> None:
        self.inv = inv
        self.billing = billing
        self.module = module
        self.tally = tally

    def run(self) -> None:
        entries: list[SyncEntry] = []
        try:
            entries = self.billing.services_for_sync(self.module)
            if not entries:
                log.info("sync.module_empty")
                return
            settings = self.billing.module_settings(self.module)
            dci = self.inv.dci(settings)
        except ModuleError as exc:
            # without its settings no service of the module can be looked at
            log.error("sync.module_unreadable", error=str(exc.type), object=exc.object,
                      value=exc.value, detail=exc.detail)
            self.tally.count(Outcome.FAILED, max(1, len(entries)))
            return
        try:
            self._reconcile(settings, dci, entries)
        finally:
            self.tally.requests += sum(dci.request_counts.values())
            log.info("sync.module_requests", requests=dict(dci.request_counts))

    def _reconcile(self, settings: ModuleSettings, dci: DciClient,
                   entries: list[SyncEntry]) -> None:
        attention: list[tuple[SyncEntry, Server | None]] = []
        by_server: dict[int, list[SyncEntry]] = {}
        for entry in entries:
            server_id = recorded_server_id(entry)
            if server_id is None:
                self._sort(entry, None, attention)
            else:
                by_server.setdefault(server_id, []).append(entry)
        if self._walk_listing(dci, by_server, attention):
            self._confirm_unlisted(dci, by_server, attention)
        else:
            # an unlisted server is unknown, not gone
            self.tally.count(Outcome.FAILED, sum(len(e) for e in by_server.values()))
        for entry, server in attention:
            self.tally.count(self._settle_locked(settings, dci, entry, server))

    def _walk_listing(self, dci: DciClient, by_server: dict[int, list[SyncEntry]],
                      attention: list[tuple[SyncEntry, Server | None]]) -> bool:
        """Sort every listed server's services, taking them out of `by_server`; False when
        the listing broke off."""
        try:
            for listed in dci.iter_servers():
                for entry in by_server.pop(listed.id, ()):
                    self._sort(entry, listed, attention)
        except ModuleError as exc:
            log.error("sync.listing_failed", error=str(exc.type), value=exc.value,
                      detail=exc.detail)
            return False
        except Exception:
            log.exception("sync.listing_crashed")
            return False
        return True

    def _confirm_unlisted(self, dci: DciClient, by_server: dict[int, list[SyncEntry]],
                          attention: list[tuple[SyncEntry, Server | None]]) -> None:
        for server_id, unlisted in by_server.items():
            try:
                found = _server_or_none(dci, server_id)
            except ModuleError as exc:
                log.error("sync.server_unreadable", server_id=server_id, error=str(exc.type),
                          value=exc.value)
                self.tally.count(Outcome.FAILED, len(unlisted))
                continue
            for entry in unlisted:
                self._sort(entry, found, attention)

    def _sort(self, entry: SyncEntry, server: Server | None,
              attention: list[tuple[SyncEntry, Server | None]]) -> None:
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
                       server: Server | None) -> Outcome:
        """Settle one service under its lock, re-reading its BILLmanager side first: a
        suspend that finished since the bulk read must not be undone."""
        structlog.contextvars.bind_contextvars(item=entry.item)
        try:
            with ExitStack() as stack:
                try:
                    stack.enter_context(service_lock(self.inv.paths, entry.item, wait_seconds=0))
                except LockBusy:
                    log.info("sync.service_busy")
                    return Outcome.SKIPPED
                fresh = self.billing.services_for_sync(self.module, item=entry.item)
                if not fresh:
                    log.info("sync.no_longer_live")
                    return Outcome.IN_STEP
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


def _is_transient(exc: DciError) -> bool:
    return isinstance(exc, (DciBusy, DciUnreachable, PanelInternalError))


def _service_of(entry: SyncEntry, module: int) -> Service:
    return Service(id=entry.item, module=module, status=entry.status,
                   pricelist=entry.pricelist, account_id=entry.account_id,
                   client_email=entry.client_email,
                   params={Param.SERVER_ID.value: entry.bookkeeping.server_id_text,
                           Param.DRIFT.value: entry.bookkeeping.drift})
