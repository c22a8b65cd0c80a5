"""Bring a server's addresses to what the service ordered, with BILLmanager's IP rows as the
record of which addresses are the service's.

An address on the server that BILLmanager does not list is not ours (a previous tenant's, or one
added by a run that crashed before recording it) and is removed; a listed one is kept. So the
same function serves activation, a changed IP count and a rerun after a crash at any point.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from dci6_processing.billing.port import BillingIp
from dci6_processing.dci.models import IpFamily, Server, ServerIp
from dci6_processing.lifecycle.common import ServiceContext, step
from dci6_processing.lifecycle.resolve import resolve_pool
from dci6_processing.lifecycle.steps import IP_ADDED_TO_SERVER, IPS_ASSIGNED, IPS_RELEASED

log = structlog.get_logger(__name__)

TEMPORARY_STATUS = "temporary"


@dataclass(frozen=True)
class AssignedIps:
    main: str
    additional: list[str]


def _permanent(server: Server, family: str) -> list[ServerIp]:
    return [ip for ip in server.ips(family) if (ip.status or "") != TEMPORARY_STATUS]


def ensure_ips(ctx: ServiceContext, server: Server) -> AssignedIps:
    """Make the server's permanent addresses match the order; record them in BILLmanager."""
    if ctx.tariff.dont_manage_ips:
        return _keep_panel_ips(ctx, server)
    order = ctx.order
    recorded = {row.address: row for row in ctx.billing.service_ips(ctx.item) if row.address}
    for family, wanted, pool_param in (
        (IpFamily.V4, order.ipv4_count, "ipv4_pool"),
        (IpFamily.V6, order.ipv6_count, "ipv6_pool"),
    ):
        present = _permanent(server, family)
        ours = [ip for ip in present if ip.address in recorded]
        foreign = [ip for ip in present if ip.address not in recorded]
        surplus = ours[wanted:]
        for ip in foreign + surplus:
            ctx.dci.remove_ip(ip.id)
            row = recorded.pop(ip.address, None)
            if row is not None:
                ctx.billing.remove_ip(row.id)
            log.info("ip.removed", address=ip.address, foreign=ip in foreign)
        missing = wanted - len(ours[:wanted])
        if missing > 0:
            pool = resolve_pool(ctx.dci, getattr(ctx.tariff, pool_param), family=family,
                                param=pool_param)
            prefix = order.ipv6_prefix if family == IpFamily.V6 else None
            for _ in range(missing):
                ip = ctx.dci.add_ip(server.id, family, pool.id, prefix)
                step(IP_ADDED_TO_SERVER)
                row_id = ctx.billing.add_ip(ctx.item, ip.address, gateway=ip.gateway or "")
                recorded[ip.address] = BillingIp(id=row_id, address=ip.address)
                log.info("ip.added", address=ip.address, pool=pool.id)
    # rows for addresses the server no longer has (removed in the panel by hand)
    server = ctx.dci.server(server.id)
    on_server = {ip.address for ip in server.ip}
    for address, row in list(recorded.items()):
        if address not in on_server:
            ctx.billing.remove_ip(row.id)
            recorded.pop(address)
    step(IPS_ASSIGNED)
    return _split(server)


def _keep_panel_ips(ctx: ServiceContext, server: Server) -> AssignedIps:
    """"Do not manage IPs": keep the server's addresses; add one only when it has none."""
    if not _permanent(server, IpFamily.V4):
        pool = resolve_pool(ctx.dci, ctx.tariff.ipv4_pool, family=IpFamily.V4, param="ipv4_pool")
        ctx.dci.add_ip(server.id, IpFamily.V4, pool.id)
        server = ctx.dci.server(server.id)
    recorded = {row.address for row in ctx.billing.service_ips(ctx.item) if row.address}
    for ip in _permanent(server, IpFamily.V4) + _permanent(server, IpFamily.V6):
        if ip.address not in recorded:
            ctx.billing.add_ip(ctx.item, ip.address, gateway=ip.gateway or "")
    step(IPS_ASSIGNED)
    return _split(server)


def _split(server: Server) -> AssignedIps:
    v4 = [ip.address for ip in _permanent(server, IpFamily.V4)]
    v6 = [ip.address for ip in _permanent(server, IpFamily.V6)]
    addresses = v4 + v6
    return AssignedIps(main=addresses[0] if addresses else "", additional=addresses[1:])


def release_ips(ctx: ServiceContext, server: Server) -> None:
    """Termination: take every permanent address off the server and the service."""
    if not ctx.tariff.dont_manage_ips:
        for ip in server.ip:
            if (ip.status or "") != TEMPORARY_STATUS:
                ctx.dci.remove_ip(ip.id)
    for row in ctx.billing.service_ips(ctx.item):
        ctx.billing.remove_ip(row.id)
    step(IPS_RELEASED)


def remove_temporary_ips(ctx: ServiceContext, server: Server) -> None:
    for ip in server.ip:
        if (ip.status or "") == TEMPORARY_STATUS:
            ctx.dci.remove_ip(ip.id)
            log.info("ip.temporary_removed", address=ip.address)
