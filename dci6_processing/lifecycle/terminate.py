"""`close`: take the server back — the guides' eight steps, reordered so that the server is
never free while it still holds the client's data.

The guides remove the owner before diagnostics; we wipe first and release the owner last (after
power off and ports off), because an unowned server with a finished operation is "free" in
DCImanager's rule and could be handed to the next order mid-teardown (Ironic: cleaning always
precedes availability). A failed or timed-out wipe leaves the server owned and the service open:
visibly failed, never silently free. A rerun continues from the panel's state.
"""

from __future__ import annotations

import structlog

from dci6_processing.dci.errors import OperationTimedOut
from dci6_processing.dci.models import IpFamily, Operation, Server
from dci6_processing.errors import ErrorType, ModuleError
from dci6_processing.invocation import Invocation
from dci6_processing.lifecycle.claim import ensure_client_user
from dci6_processing.lifecycle.common import (
    ServiceContext,
    claim_lock,
    owned_by,
    run_on_service,
    step,
)
from dci6_processing.lifecycle.ips import release_ips
from dci6_processing.lifecycle.power import (
    OperationKind,
    our_operation_id,
    power_off,
    power_on,
    set_ports,
    start_or_resume,
    stop_foreign_operation,
    wait_operation,
)
from dci6_processing.lifecycle.resolve import resolve_pool
from dci6_processing.lifecycle.steps import (
    CLOSE_REPORTED,
    DIAGNOSTICS_DONE,
    DIAGNOSTICS_STARTED,
    IPS_RELEASED,
    OPERATION_STOPPED,
    OWNER_RELEASED,
    PORTS_OFF,
    PORTS_ON,
    POWERED_OFF,
    POWERED_ON,
    OperationSteps,
)

log = structlog.get_logger(__name__)

# NOTE(13c): the owner goes last: an unowned server whose operation finished is free in
# DCImanager's rule, so it must already be wiped, off and disconnected
CLOSE_STEPS = OperationSteps("close", (
    PORTS_ON,
    POWERED_ON,
    OPERATION_STOPPED,
    IPS_RELEASED,
    DIAGNOSTICS_STARTED,
    DIAGNOSTICS_DONE,
    POWERED_OFF,
    PORTS_OFF,
    OWNER_RELEASED,
    CLOSE_REPORTED,
))


def close_service(inv: Invocation) -> bytes | None:
    run_on_service(inv, terminate, steps=CLOSE_STEPS)
    return None


def terminate(ctx: ServiceContext) -> None:
    server_id = ctx.service.bookkeeping.recorded_server()
    if server_id is None:
        log.info("close.nothing_provisioned")
        for row in ctx.billing.service_ips(ctx.item):
            ctx.billing.remove_ip(row.id)
        ctx.billing.post(ctx.item, "close")
        return
    server = ctx.dci.server(server_id)
    if not _wiped_and_released(ctx, server):
        _check_ownership(ctx, server)
        server = _teardown(ctx, server)
        _release_owner(ctx, server)
    ctx.billing.post(ctx.item, "close")
    log.info("service.closed", server_id=server_id)
    step(CLOSE_REPORTED)


def _wiped_and_released(ctx: ServiceContext, server: Server) -> bool:
    """A rerun after the owner was released: only the report to BILLmanager is left."""
    ours = our_operation_id(ctx, OperationKind.DIAG)
    op = server.operation
    finished = ours is not None and op is not None and op.id == ours and op.is_ok
    return finished and not owned_by(server, None, ctx.service.client_email)


def _check_ownership(ctx: ServiceContext, server: Server) -> None:
    if not server.has_owner or owned_by(server, None, ctx.service.client_email):
        return
    handover = ctx.tariff.owner_on_close
    if handover and (server.owner_email or "").lower() == handover.lower():
        return
    raise ModuleError(ErrorType.owner_mismatch, object=str(server.id),
                      value=server.owner_email or "",
                      detail=f"expected owner {ctx.service.client_email}")


def _teardown(ctx: ServiceContext, server: Server) -> Server:
    tariff = ctx.tariff
    set_ports(ctx, server, True, required=False)
    step(PORTS_ON)
    power_on(ctx, server)
    step(POWERED_ON)
    stop_foreign_operation(ctx, server, ours=OperationKind.DIAG)
    step(OPERATION_STOPPED)
    release_ips(ctx, ctx.dci.server(server.id))
    server = _wipe(ctx, ctx.dci.server(server.id))
    if tariff.shutdown_on_close:
        power_off(ctx, server)
    step(POWERED_OFF)
    if tariff.ports_off_on_close:
        set_ports(ctx, ctx.dci.server(server.id), False, required=False)
    step(PORTS_OFF)
    return ctx.dci.server(server.id)


def _wipe(ctx: ServiceContext, server: Server) -> Server:
    """Diagnostics with disk cleaning (unless the tariff disables it), bounded by diagtimeout."""
    tariff = ctx.tariff
    pool_id = (resolve_pool(ctx.dci, tariff.diag_pool, family=IpFamily.V4, param="diag_pool").id
               if tariff.diag_pool else None)

    def start() -> Operation:
        return ctx.dci.run_diagnostics(server.id, template=tariff.diag_template,
                                       clear_disks=not tariff.skip_disk_clean, pool_id=pool_id)

    operation_id = start_or_resume(ctx, server, OperationKind.DIAG, start)
    step(DIAGNOSTICS_STARTED)
    if operation_id is not None:
        try:
            server = wait_operation(ctx, server.id, operation_id, ctx.settings.diagtimeout)
        except OperationTimedOut:
            if tariff.shutdown_on_close:
                # the guide: diagnostics past the timeout are forcibly completed
                ctx.dci.stop_operation(server.id)
                log.warning("diagnostics.stopped_after_timeout", operation_id=operation_id)
            raise
    step(DIAGNOSTICS_DONE)
    return ctx.dci.server(server.id)


def _release_owner(ctx: ServiceContext, server: Server) -> None:
    handover = ctx.tariff.owner_on_close
    with claim_lock(ctx.paths):
        if handover:
            user = ensure_client_user(ctx, handover, allow_admin=True)
            if server.owner == user.id:
                step(OWNER_RELEASED)
                return
            if server.has_owner:
                ctx.dci.remove_owner(server.id)
            ctx.dci.set_owner(server.id, user.id)
        elif server.has_owner:
            ctx.dci.remove_owner(server.id)
    step(OWNER_RELEASED)
