"""`open`: hand the client a real machine — the WHMCS guide's ten steps in BILLmanager's terms.

Every step is safe to repeat: the claimed server, the generated password and the install
operation are recorded on the service as they happen; everything else is read from the panel.
`postopen` is reported only once the server has its addresses and credentials.
"""

from __future__ import annotations

import secrets
import string

import structlog

from dci6_processing import validation
from dci6_processing.dci.models import IpFamily, Operation, OsFamily, OsTemplate, Server
from dci6_processing.errors import ErrorType, ModuleError
from dci6_processing.invocation import Invocation
from dci6_processing.lifecycle.claim import claim_server
from dci6_processing.lifecycle.common import ServiceContext, run_on_service, step
from dci6_processing.lifecycle.ips import AssignedIps, ensure_ips, remove_temporary_ips
from dci6_processing.lifecycle.panel_access import ensure_panel_user
from dci6_processing.lifecycle.power import (
    OperationKind,
    power_on,
    set_ports,
    start_or_resume,
    stop_foreign_operation,
    wait_operation,
)
from dci6_processing.lifecycle.resolve import resolve_os_template, resolve_pool
from dci6_processing.lifecycle.steps import (
    INSTALL_DONE,
    INSTALL_STARTED,
    IP_ADDED_TO_SERVER,
    IPS_ASSIGNED,
    OPEN_REPORTED,
    OPERATION_STOPPED,
    PARAMS_SAVED,
    PORTS_ON,
    POWERED_ON,
    SERVER_CLAIMED,
    SERVER_RECORDED,
    USER_READY,
    OperationSteps,
)
from dci6_processing.log import register_secret

log = structlog.get_logger(__name__)

PASSWORD_ALPHABET = string.ascii_letters + string.digits
PASSWORD_LENGTH = 20

OPEN_STEPS = OperationSteps("open", (
    USER_READY,
    SERVER_RECORDED,  # NOTE(13c): skipped on a rerun that finds the server already recorded
    SERVER_CLAIMED,
    PORTS_ON,
    POWERED_ON,
    OPERATION_STOPPED,
    IP_ADDED_TO_SERVER,  # once per address the server still lacks
    IPS_ASSIGNED,
    INSTALL_STARTED,
    INSTALL_DONE,  # NOTE(13c): not reached with the tariff's no_wait_install
    PARAMS_SAVED,
    OPEN_REPORTED,
))


def open_service(inv: Invocation) -> bytes | None:
    run_on_service(inv, activate, steps=OPEN_STEPS)
    return None


def activate(ctx: ServiceContext) -> None:
    hostname_for(ctx)  # a bad name from the order fails before the panel is touched
    tariff = ctx.tariff
    if tariff.check_email_verified and not ctx.service.client_email_verified:
        raise ModuleError(ErrorType.email_not_verified, object=ctx.service.client_email)
    template = _chosen_template(ctx)
    _check_pools(ctx)
    user = ensure_panel_user(ctx)
    step(USER_READY)
    server = claim_server(ctx, user)
    set_ports(ctx, server, True, required=False)
    step(PORTS_ON)
    power_on(ctx, server)
    step(POWERED_ON)
    stop_foreign_operation(ctx, server, ours=OperationKind.INSTALL)
    step(OPERATION_STOPPED)
    ips = ensure_ips(ctx, ctx.dci.server(server.id))
    server = install_os(ctx, ctx.dci.server(server.id), template)
    _report_open(ctx, server, template, ips)


def _chosen_template(ctx: ServiceContext) -> OsTemplate:
    ref = ctx.order.os_template or ctx.tariff.os_template
    if not ref:
        # without an OS there are no credentials to hand over: refuse before touching hardware
        raise ModuleError(ErrorType.invalid_param, object="os_template", value="")
    return resolve_os_template(ctx.dci, ref, param="ostempl" if ctx.order.os_template
                               else "os_template")


def _check_pools(ctx: ServiceContext) -> None:
    """A tariff naming no pool, or one the panel lacks, fails before any server is touched."""
    if ctx.tariff.dont_manage_ips:
        return
    resolve_pool(ctx.dci, ctx.tariff.ipv4_pool, family=IpFamily.V4, param="ipv4_pool")
    if ctx.order.ipv6_count:
        resolve_pool(ctx.dci, ctx.tariff.ipv6_pool, family=IpFamily.V6, param="ipv6_pool")


def root_password(ctx: ServiceContext) -> str:
    """The server's root password: generated once and saved (crypted) before it is used."""
    password = ctx.service.bookkeeping.root_password
    if not password:
        password = "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(PASSWORD_LENGTH))
        register_secret(password)
        ctx.billing.save_bookkeeping(ctx.item, root_password=password)
        ctx.refresh()
    register_secret(password)
    return password


def hostname_for(ctx: ServiceContext) -> str:
    """The order's host name, RFC 1123-checked (msg_error_bad_hostname), else srv<item>."""
    if ctx.order.hostname:
        return validation.hostname(ctx.order.hostname)
    return f"srv{ctx.item}"


def install_os(ctx: ServiceContext, server: Server, template: OsTemplate) -> Server:
    """Start (or keep waiting for) the install of `template`, unless it already completed."""
    password = root_password(ctx)
    hostname = hostname_for(ctx)

    def start() -> Operation:
        return ctx.dci.install_os(server.id, template_id=template.id, password=password,
                                  hostname=hostname, temporary_ipv4=ctx.tariff.temp_ipv4)

    operation_id = start_or_resume(ctx, server, OperationKind.INSTALL, start)
    step(INSTALL_STARTED)
    if ctx.tariff.no_wait_install:
        return ctx.dci.server(server.id)
    minutes = ctx.settings.timeout_for(template.os_family)
    if operation_id is not None:
        server = wait_operation(ctx, server.id, operation_id, minutes)
    else:
        server = ctx.dci.server(server.id)
    if ctx.tariff.remove_temp_ip:
        remove_temporary_ips(ctx, server)
        server = ctx.dci.server(server.id)
    step(INSTALL_DONE)
    return server


def _report_open(ctx: ServiceContext, server: Server, template: OsTemplate,
                 ips: AssignedIps) -> None:
    if not ips.main:
        raise ModuleError(ErrorType.pool_exhausted, object=str(server.id),
                          detail="the server has no address to hand to the client")
    username = "Administrator" if template.os_family == OsFamily.WINDOWS else "root"
    ctx.billing.save_param(ctx.item, "hostname", hostname_for(ctx))
    ctx.billing.save_param(ctx.item, "username", username)
    ctx.billing.save_param(ctx.item, "ostempl", str(template.id))
    step(PARAMS_SAVED)
    ctx.billing.post(ctx.item, "open", ip=ips.main)
    log.info("service.opened", server_id=server.id, ip=ips.main, os=template.name)
    step(OPEN_REPORTED)
