"""`setparam`: apply what changed on the service — IP counts, the OS, the tariff.

A tariff change to another server configuration cannot happen in place (it is another machine),
so it is rolled back in BILLmanager with a message that says why.
"""

from __future__ import annotations

import structlog

from dci6_processing.errors import ErrorType, ModuleError
from dci6_processing.invocation import Invocation
from dci6_processing.lifecycle.activate import install_os
from dci6_processing.lifecycle.common import (
    ServiceContext,
    client_server,
    run_on_service,
    step,
)
from dci6_processing.lifecycle.ips import ensure_ips
from dci6_processing.lifecycle.power import INSTALL_OPERATION_PARAM, our_operation_id
from dci6_processing.lifecycle.resolve import resolve_os_template

log = structlog.get_logger(__name__)


def change_service(inv: Invocation) -> bytes | None:
    run_on_service(inv, change)
    return None


def change(ctx: ServiceContext) -> None:
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
            ctx.billing.save_param(ctx.item, INSTALL_OPERATION_PARAM, "")
            ctx.refresh()
            install_os(ctx, server, template)
        elif op is not None and op.is_running and op.id == our_operation_id(
                ctx, INSTALL_OPERATION_PARAM):
            install_os(ctx, server, template)  # a rerun: keep waiting for the reinstall
    step("changes_applied")
    ctx.billing.post(ctx.item, "setparam")
