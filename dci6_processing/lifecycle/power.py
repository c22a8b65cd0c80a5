"""Switch ports, power and running operations: the small idempotent moves every command makes."""

from __future__ import annotations

import os
from collections.abc import Callable
from enum import StrEnum

import structlog

from dci6_processing.dci.client import Backoff
from dci6_processing.dci.models import Operation, PortStatus, Server
from dci6_processing.errors import ErrorType, ModuleError
from dci6_processing.lifecycle.common import ServiceContext

log = structlog.get_logger(__name__)

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


class OperationKind(StrEnum):
    """The operations a service records (bookkeeping), kept apart: one is never taken for the
    other."""

    INSTALL = "install"
    DIAG = "diag"


def our_operation_id(ctx: ServiceContext, kind: OperationKind) -> int | None:
    record = ctx.service.bookkeeping
    return record.install_operation if kind is OperationKind.INSTALL else record.diag_operation


def record_operation(ctx: ServiceContext, kind: OperationKind, operation_id: int | None) -> None:
    """Save (or with None, forget) the operation this service started, and re-read it."""
    if kind is OperationKind.INSTALL:
        ctx.billing.save_bookkeeping(ctx.item, install_operation=operation_id)
    else:
        ctx.billing.save_bookkeeping(ctx.item, diag_operation=operation_id)
    ctx.refresh()


def stop_foreign_operation(ctx: ServiceContext, server: Server, *, ours: OperationKind) -> bool:
    """Stop a running operation unless it is the one this command's rerun waits on: the
    operation this service recorded as `ours` (open: its install; close: its diagnostics).

    Anything else is stopped, the service's other recorded operation included: close must stop
    the install an open with no_wait_install left running, or the wipe is refused.
    """
    op = server.operation
    if op is None or not op.is_running or op.id == our_operation_id(ctx, ours):
        return False
    ctx.dci.stop_operation(server.id)
    log.info("operation.stopped", server_id=server.id, operation_id=op.id)
    return True


def start_or_resume(ctx: ServiceContext, server: Server, kind: OperationKind,
                    start: Callable[[], Operation]) -> int | None:
    """The operation to wait for: ours (recorded as `kind`) while it runs, else a new one.

    Returns None when ours already finished ok: a rerun after a crash does not repeat it.
    """
    ours = our_operation_id(ctx, kind)
    op = server.operation
    if ours is not None and op is not None and op.id == ours:
        if op.is_running:
            log.info("operation.resume_wait", operation_id=ours)
            return ours
        if op.is_ok:
            return None
    new_op = start()
    record_operation(ctx, kind, new_op.id)
    log.info("operation.started", operation_id=new_op.id)
    return int(new_op.id) if new_op.id is not None else None


def wait_operation(ctx: ServiceContext, server_id: int, operation_id: int | None,
                   minutes: int) -> Server:
    return ctx.dci.wait_for_operation(server_id, timeout=minutes * 60.0,
                                      operation_id=operation_id, poll=poll_backoff())
