"""`setparam`: apply what changed on the service — IP counts, the OS, the tariff.

A tariff change to another server configuration cannot happen in place (it is another machine),
so it is rolled back in BILLmanager with a message that says why.
"""

from __future__ import annotations

import structlog

from dci6_processing.errors import ErrorType, ModuleError
from dci6_processing.invocation import Invocation
from dci6_processing.lifecycle.activate import hostname_for, install_os
from dci6_processing.lifecycle.common import (
    ServiceContext,
    client_server,
    run_on_service,
    step,
)
from dci6_processing.lifecycle.ips import ensure_ips
from dci6_processing.lifecycle.power import OperationKind, our_operation_id, record_operation
from dci6_processing.lifecycle.resolve import resolve_os_template
from dci6_processing.lifecycle.steps import (
    CHANGES_APPLIED,
    INSTALL_DONE,
    INSTALL_STARTED,
    IP_ADDED_TO_SERVER,
    IPS_ASSIGNED,
    SETPARAM_REPORTED,
    OperationSteps,
)

log = structlog.get_logger(__name__)

SETPARAM_STEPS = OperationSteps("setparam", (
    IP_ADDED_TO_SERVER,  # once per address the new count adds
    IPS_ASSIGNED,
    INSTALL_STARTED,  # NOTE(13c): the install steps only when the ordered OS changed
    INSTALL_DONE,
    CHANGES_APPLIED,
    SETPARAM_REPORTED,
))


def change_service(inv: Invocation) -> bytes | None:
    run_on_service(inv, change, steps=SETPARAM_STEPS)
    return None


def change(ctx: ServiceContext) -> None:
    hostname_for(ctx)  # a bad name from the order fails before anything is changed
    server = client_server(ctx)
    wanted_configuration = ctx.tariff.configuration
    if server.configuration and server.configuration != wanted_configuration:
        ctx.billing.rollback_tariff_change(ctx.item, ctx.service.userid)
        raise ModuleError(ErrorType.tariff_change_unsupported, object=wanted_configuration,
                          value=server.configuration)
    ensure_ips(ctx, server)
    server = ctx.dci.server(server.id)
    ref = ctx.order.os_template
    if ref:
        template = resolve_os_template(ctx.dci, ref, param="ostempl")
        installed = server.os_template.id if server.os_template else None
        op = server.operation
        if installed != template.id:
            log.info("os.reinstall", current=installed, wanted=template.id)
            # a new install, not a rerun of the old one
            record_operation(ctx, OperationKind.INSTALL, None)
            install_os(ctx, server, template)
        elif op is not None and op.is_running and op.id == our_operation_id(
                ctx, OperationKind.INSTALL):
            install_os(ctx, server, template)  # a rerun: keep waiting for the reinstall
    step(CHANGES_APPLIED)
    ctx.billing.post(ctx.item, "setparam")
    step(SETPARAM_REPORTED)
