"""`reboot`, `start`, `stop`: the client's own power buttons in BILLmanager.

Each is refused, touching nothing, unless the service is active, its server is still the
client's (by the panel's owner id, and the client's DCImanager user is no administrator), and
the server is neither in maintenance nor busy with an operation (an install or diagnostics
drives power itself). The panel's power rules are respected: starting a server that is on, or
stopping one that is off, is a success without a call. The post-call is made only after the
panel accepted the request.

The client's wish survives the status sync: `stop` records it on the service (param
`dci_power_wish` = `off`) *before* powering off, `start` and `reboot` clear it first; the sync
and `resume` leave a server whose client stopped it powered off (lifecycle.reconcile,
lifecycle.suspend). With `--runningoperation R`, what a run achieved is recorded
(`dci_client_action` = `<command> <R> accepted|reported`), so BILLmanager retrying the same
operation after a crash neither reboots twice nor reports twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from dci6_processing.billing.port import PostEvent
from dci6_processing.bookkeeping import POWER_WISH_OFF
from dci6_processing.dci.client import PowerAction
from dci6_processing.dci.errors import PowerActionRejected
from dci6_processing.dci.models import PowerStatus, Server, User
from dci6_processing.errors import ErrorType, ModuleError
from dci6_processing.invocation import Invocation
from dci6_processing.lifecycle.common import (
    ServiceContext,
    client_server,
    owned_by,
    run_on_service,
    save_bookkeeping,
    step,
)
from dci6_processing.lifecycle.steps import (
    POWER_RESET,
    POWERED_OFF,
    POWERED_ON,
    REBOOT_REPORTED,
    REBOOT_WISH_CLEARED,
    START_REPORTED,
    START_WISH_CLEARED,
    STOP_REPORTED,
    STOP_WISH_RECORDED,
    OperationSteps,
)
from dci6_processing.settings import Service, ServiceStatus

log = structlog.get_logger(__name__)

ACCEPTED = "accepted"
REPORTED = "reported"


@dataclass(frozen=True)
class ClientPowerAction:
    """One of the client's power buttons: what it asks of the panel, what it records, how it
    reports, and its step list (wish saved, panel accepted, reported; crash tests stop after
    each)."""

    power: PowerAction
    wish: str  # the power wish recorded first: "off" for stop, "" (none) otherwise
    post: PostEvent
    steps: OperationSteps

    @property
    def command(self) -> str:
        return self.steps.command


REBOOT_STEPS = OperationSteps("reboot", (REBOOT_WISH_CLEARED, POWER_RESET, REBOOT_REPORTED))
START_STEPS = OperationSteps("start", (START_WISH_CLEARED, POWERED_ON, START_REPORTED))
STOP_STEPS = OperationSteps("stop", (STOP_WISH_RECORDED, POWERED_OFF, STOP_REPORTED))

ACTIONS: dict[str, ClientPowerAction] = {
    action.command: action
    for action in (
        ClientPowerAction("reset", "", "reboot", REBOOT_STEPS),
        ClientPowerAction("on", "", "start", START_STEPS),
        ClientPowerAction("off", POWER_WISH_OFF, "stop", STOP_STEPS),
    )
}


def reboot_service(inv: Invocation) -> bytes | None:
    return _run(inv, ACTIONS["reboot"])


def start_service(inv: Invocation) -> bytes | None:
    return _run(inv, ACTIONS["start"])


def stop_service(inv: Invocation) -> bytes | None:
    return _run(inv, ACTIONS["stop"])


def client_stopped(service: Service) -> bool:
    """Whether the service's client powered its server off (and has not started it since)."""
    return service.bookkeeping.client_stopped


def _run(inv: Invocation, action: ClientPowerAction) -> bytes | None:
    run_on_service(inv, lambda ctx: perform(ctx, action), steps=action.steps)
    return None


def verified_client_server(ctx: ServiceContext) -> tuple[Server, User]:
    """The active service's server and the client's DCImanager user, re-checked on the panel:
    the server is owned by that user (by id), who is no administrator. Nothing is touched
    otherwise: a client acts only on their own server, as themselves."""
    if ctx.service.status != ServiceStatus.active:
        raise ModuleError(ErrorType.service_not_active, object=f"service {ctx.item}",
                          value=_status_name(ctx.service.status))
    server = client_server(ctx)
    email = ctx.service.client_email
    user = ctx.dci.user_by_email(email)
    if user is None or not owned_by(server, user, email):
        raise ModuleError(ErrorType.owner_mismatch, object=str(server.id),
                          value=server.owner_email or "",
                          detail=f"owner id {server.owner}, client user "
                                 f"{user.id if user else 'missing'}")
    if user.is_admin:
        raise ModuleError(ErrorType.user_is_admin, object=email)
    return server, user


def perform(ctx: ServiceContext, action: ClientPowerAction) -> None:
    done = _achieved(ctx, action)
    if done == REPORTED:
        log.info("client_power.already_reported", command=action.command)
        return
    server, _ = verified_client_server(ctx)
    _require_idle(server)
    if ctx.service.bookkeeping.power_wish != action.wish:
        save_bookkeeping(ctx, power_wish=action.wish)
    wish_saved, accepted, reported = action.steps.steps
    step(wish_saved)
    if done != ACCEPTED:
        _apply(ctx, server, action)
        _record(ctx, action, ACCEPTED)
    step(accepted)
    ctx.billing.post(ctx.item, action.post)
    _record(ctx, action, REPORTED)
    log.info("client_power.done", command=action.command, server_id=server.id)
    step(reported)


def _status_name(status: int) -> str:
    try:
        return ServiceStatus(status).name
    except ValueError:
        return str(status)


def _require_idle(server: Server) -> None:
    if server.maintenance_mode:
        raise ModuleError(ErrorType.server_in_maintenance, object=str(server.id))
    op = server.operation
    if op is not None and op.is_running:
        raise ModuleError(ErrorType.server_operation_running, object=str(server.id),
                          value=f"operation {op.id}")


def _apply(ctx: ServiceContext, server: Server, action: ClientPowerAction) -> None:
    """One power request, unless the server already is where the action leads."""
    power = (server.power_status or "").lower()
    if (action.power == "on" and power == PowerStatus.ON) or (
            action.power == "off" and power == PowerStatus.OFF):
        log.info("client_power.already", server_id=server.id, power=power)
        return
    try:
        ctx.dci.power(server.id, action.power)
    except PowerActionRejected as exc:
        # refused by the power rules: fine only if the server got there meanwhile
        now = (ctx.dci.server(server.id).power_status or "").lower()
        wanted = PowerStatus.OFF if action.power == "off" else PowerStatus.ON
        if action.power == "reset" or now != wanted:
            raise ModuleError(ErrorType.power_refused, object=str(server.id),
                              value=exc.value, detail=f"power_status {now or 'unknown'}") from exc
        log.info("client_power.already", server_id=server.id, power=now)
        return
    log.info("client_power.requested", server_id=server.id, power=action.power)


def _achieved(ctx: ServiceContext, action: ClientPowerAction) -> str:
    """How far an earlier run of this very operation got ('' when none, or no operation id)."""
    if ctx.inv.runningoperation is None:
        return ""
    command, operation, stage = [*ctx.service.bookkeeping.client_action.split(), "", "", ""][:3]
    if command == action.command and operation == str(ctx.inv.runningoperation):
        return stage
    return ""


def _record(ctx: ServiceContext, action: ClientPowerAction, stage: str) -> None:
    if ctx.inv.runningoperation is not None:
        value = f"{action.command} {ctx.inv.runningoperation} {stage}"
        if ctx.service.bookkeeping.client_action != value:
            save_bookkeeping(ctx, client_action=value)
