"""`suspend` / `resume`: the client's switch ports off / on (resume also powers the server on
if the status sync had powered it off, unless its client had stopped it). Both are safe to
repeat."""

from __future__ import annotations

import structlog

from dci6_processing.invocation import Invocation
from dci6_processing.lifecycle.common import ServiceContext, client_server, run_on_service, step
from dci6_processing.lifecycle.power import power_on, set_ports
from dci6_processing.lifecycle.steps import (
    PORTS_OFF,
    PORTS_ON,
    POWERED_ON,
    RESUME_REPORTED,
    SUSPEND_REPORTED,
    OperationSteps,
)

log = structlog.get_logger(__name__)

SUSPEND_STEPS = OperationSteps("suspend", (PORTS_OFF, SUSPEND_REPORTED))
# NOTE(13c): the sync would power an Active service's server on anyway; the client need not wait
RESUME_STEPS = OperationSteps("resume", (PORTS_ON, POWERED_ON, RESUME_REPORTED))


def suspend_service(inv: Invocation) -> bytes | None:
    return _switch(inv, enabled=False)


def resume_service(inv: Invocation) -> bytes | None:
    return _switch(inv, enabled=True)


def _switch(inv: Invocation, *, enabled: bool) -> bytes | None:
    def switch(ctx: ServiceContext) -> None:
        server = client_server(ctx)
        set_ports(ctx, server, enabled, required=True)
        step(PORTS_ON if enabled else PORTS_OFF)
        if enabled and not ctx.service.bookkeeping.client_stopped:
            # the sync would power an Active service's server on anyway; the client need not
            # wait. A server its client stopped stays off until they start it.
            power_on(ctx, server)
            step(POWERED_ON)
        ctx.billing.post(ctx.item, "resume" if enabled else "suspend")
        log.info("service.resumed" if enabled else "service.suspended", server_id=server.id)
        step(RESUME_REPORTED if enabled else SUSPEND_REPORTED)

    run_on_service(inv, switch, steps=RESUME_STEPS if enabled else SUSPEND_STEPS)
    return None
