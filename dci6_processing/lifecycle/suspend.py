"""`suspend` / `resume`: the client's switch ports off / on (resume also powers the server on
if the status sync had powered it off, unless its client had stopped it). Both are safe to
repeat."""

from __future__ import annotations

import structlog

from dci6_processing.invocation import Invocation
from dci6_processing.lifecycle.client_power import client_stopped
from dci6_processing.lifecycle.common import ServiceContext, client_server, run_on_service, step
from dci6_processing.lifecycle.power import power_on, set_ports

log = structlog.get_logger(__name__)


def suspend_service(inv: Invocation) -> bytes | None:
    return _switch(inv, enabled=False)


def resume_service(inv: Invocation) -> bytes | None:
    return _switch(inv, enabled=True)


def _switch(inv: Invocation, *, enabled: bool) -> bytes | None:
    def switch(ctx: ServiceContext) -> None:
        server = client_server(ctx)
        set_ports(ctx, server, enabled, required=True)
        step("ports_on" if enabled else "ports_off")
        if enabled and not client_stopped(ctx.service):
            # the sync would power an Active service's server on anyway; the client need not
            # wait. A server its client stopped stays off until they start it.
            power_on(ctx, server)
        ctx.billing.post(ctx.item, "resume" if enabled else "suspend")
        log.info("service.resumed" if enabled else "service.suspended", server_id=server.id)

    run_on_service(inv, switch)
    return None
