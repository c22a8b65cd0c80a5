"""Switch ports, power and running operations: the small idempotent moves every command makes."""

from __future__ import annotations

import os
from collections.abc import Callable

import structlog

from dci6_processing.dci.client import Backoff
from dci6_processing.dci.models import Operation, PortStatus, Server
from dci6_processing.errors import ErrorType, ModuleError
from dci6_processing.lifecycle.common import ServiceContext

log = structlog.get_logger(__name__)

# the last install / diagnostics this service started, kept apart: one is never taken for the other
INSTALL_OPERATION_PARAM = "dci_install_operation"
DIAG_OPERATION_PARAM = "dci_diag_operation"
POLL_ENV = "PMDCI6_POLL_SECONDS"  # the sandbox polls fast; a real panel every few seconds


def poll_backoff() -> Backoff:
    first = float(os.environ.get(POLL_ENV) or 5.0)
    return Backoff(initial=first, factor=1.5, maximum=max(first, 60.0))


def set_ports(ctx: ServiceContext, server: Server, enabled: bool, *, required: bool) -> bool:
    """Switch the server's data ports; True when a call was made. `required` refuses a server
    with no switch connection (suspend/resume), otherwise there is nothing to do."""
    ports = server.data_ports
    if not ports:
        if required:
            raise ModuleError(ErrorType.no_switch_connection, object=str(server.id))
        log.info("ports.none", server_id=server.id)
        return False
    want = PortStatus.UP if enabled else PortStatus.DOWN
    if all((port.admin_status or "").lower() == want for port in ports):
        return False
    ctx.dci.set_switch_ports(server.id, enabled, ports)
    log.info("ports.set", server_id=server.id, enabled=enabled)
    return True


def power_on(ctx: ServiceContext, server: Server) -> bool:
    if server.is_powered_on:
        return False
    ctx.dci.power(server.id, "on")
    log.info("power.on", server_id=server.id)
    return True


def power_off(ctx: ServiceContext, server: Server) -> bool:
    if not server.is_powered_on:
        return False
    ctx.dci.power(server.id, "off")
    log.info("power.off", server_id=server.id)
    return True


def our_operation_id(ctx: ServiceContext, param: str) -> int | None:
    raw = (ctx.service.params.get(param) or "").strip()
    return int(raw) if raw.isdigit() else None


def stop_foreign_operation(ctx: ServiceContext, server: Server) -> bool:
    """Stop a running operation unless it is the one this service started (a rerun waits on it)."""
    op = server.operation
    ours = {our_operation_id(ctx, param)
            for param in (INSTALL_OPERATION_PARAM, DIAG_OPERATION_PARAM)}
    if op is None or not op.is_running or op.id in ours:
        return False
    ctx.dci.stop_operation(server.id)
    log.info("operation.stopped", server_id=server.id, operation_id=op.id)
    return True


def start_or_resume(ctx: ServiceContext, server: Server, param: str,
                    start: Callable[[], Operation]) -> int | None:
    """The operation to wait for: ours (recorded in `param`) while it runs, else a new one.

    Returns None when ours already finished ok: a rerun after a crash does not repeat it.
    """
    ours = our_operation_id(ctx, param)
    op = server.operation
    if ours is not None and op is not None and op.id == ours:
        if op.is_running:
            log.info("operation.resume_wait", operation_id=ours)
            return ours
        if op.is_ok:
            return None
    new_op = start()
    ctx.billing.save_param(ctx.item, param, str(new_op.id))
    ctx.refresh()
    log.info("operation.started", operation_id=new_op.id)
    return int(new_op.id) if new_op.id is not None else None


def wait_operation(ctx: ServiceContext, server_id: int, operation_id: int | None,
                   minutes: int) -> Server:
    return ctx.dci.wait_for_operation(server_id, timeout=minutes * 60.0,
                                      operation_id=operation_id, poll=poll_backoff())
