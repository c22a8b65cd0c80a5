"""Choosing the client's DCImanager user and a server, so that no server ever has two services.

The claim follows Ironic's allocation: under a host-wide lock, take candidates in shuffled order,
skip any that another live service records, record the server id on the service *before* setting
the owner (a rerun then finds it), set the owner, re-read and go on only if the panel says it is
really ours. The panel refuses a second owner (409), which also guards against other hosts.
"""

from __future__ import annotations

import random
import re
import secrets
from collections.abc import Callable, Iterator

import structlog

from dci6_processing.dci.errors import ServerOwned
from dci6_processing.dci.models import Configuration, Server, User
from dci6_processing.errors import ErrorType, ModuleError
from dci6_processing.lifecycle.common import ServiceContext, claim_lock, owned_by, step
from dci6_processing.lifecycle.steps import SERVER_CLAIMED, SERVER_RECORDED

log = structlog.get_logger(__name__)

CANDIDATES_PER_ROUND = 50


def ensure_client_user(ctx: ServiceContext, email: str | None = None, *,
                       allow_admin: bool = False,
                       new_password: Callable[[], str] | None = None) -> User:
    """The DCImanager user for an e-mail (the client's by default), created when missing with
    `new_password()` (a throwaway one when not given). A client is never an administrator;
    the provider's own handover owner may be."""
    email = email or ctx.service.client_email
    user = ctx.dci.user_by_email(email)
    if user is None:
        password = new_password() if new_password else secrets.token_urlsafe(24)
        user = ctx.dci.create_user(email, password)
        log.info("user.created", user_id=user.id)
    if user.is_admin and not allow_admin:
        raise ModuleError(ErrorType.user_is_admin, object=email)
    return user


def claim_server(ctx: ServiceContext, user: User) -> Server:
    """The service's server, owned by `user`: the recorded one on a rerun or a preset id,
    else a free one of the tariff's configuration (or the most similar, per "By server type")."""
    recorded = ctx.service.bookkeeping.recorded_server()
    if recorded is not None:
        server = _take_recorded(ctx, recorded, user)
    else:
        server = _claim_free(ctx, user)
    step(SERVER_CLAIMED)
    return server


def _held_elsewhere(ctx: ServiceContext, server_id: int) -> bool:
    return any(item != ctx.item for item in ctx.billing.services_holding_server(server_id))


def _take_recorded(ctx: ServiceContext, server_id: int, user: User) -> Server:
    server = ctx.dci.server(server_id)
    if owned_by(server, user, ctx.service.client_email) and not _held_elsewhere(ctx, server_id):
        return server
    if server.has_owner or _held_elsewhere(ctx, server_id):
        raise ModuleError(ErrorType.server_in_use, object=str(server_id),
                          detail=f"owner {server.owner_email or server.owner}")
    with claim_lock(ctx.paths):
        if _held_elsewhere(ctx, server_id):
            raise ModuleError(ErrorType.server_in_use, object=str(server_id))
        return _set_owner_verified(ctx, server_id, user) or _raise_in_use(server_id)


def _raise_in_use(server_id: int) -> Server:
    raise ModuleError(ErrorType.server_in_use, object=str(server_id))


def _set_owner_verified(ctx: ServiceContext, server_id: int, user: User) -> Server | None:
    try:
        ctx.dci.set_owner(server_id, user.id)
    except ServerOwned:
        return None
    server = ctx.dci.server(server_id)
    return server if server.owner == user.id else None


def _claim_free(ctx: ServiceContext, user: User) -> Server:
    configuration = ctx.tariff.configuration
    location = ctx.settings.location_id
    with claim_lock(ctx.paths):
        server = _claim_from(ctx, user, configuration, location)
        if server is not None:
            return server
        if ctx.settings.by_server_type:
            raise ModuleError(ErrorType.no_free_server, object=configuration,
                              value=str(location or ""))
        for similar in _similar_configurations(ctx, configuration):
            server = _claim_from(ctx, user, similar.configuration, location)
            if server is not None:
                _report_substitution(ctx, configuration, server)
                return server
    raise ModuleError(ErrorType.no_free_server, object=configuration, value=str(location or ""))


def _candidates(ctx: ServiceContext, configuration: str, location: int | None) -> Iterator[Server]:
    batch: list[Server] = []
    for server in ctx.dci.free_servers(configuration, location):
        batch.append(server)
        if len(batch) == CANDIDATES_PER_ROUND:
            break
    random.shuffle(batch)  # two billing hosts starting together rarely pick the same server
    yield from batch


def _claim_from(ctx: ServiceContext, user: User, configuration: str,
                location: int | None) -> Server | None:
    for candidate in _candidates(ctx, configuration, location):
        if _held_elsewhere(ctx, candidate.id):
            log.warning("claim.skip_held", server_id=candidate.id)
            continue
        ctx.billing.save_bookkeeping(ctx.item, server_id=candidate.id)
        step(SERVER_RECORDED)
        server = _set_owner_verified(ctx, candidate.id, user)
        if server is not None:
            log.info("claim.ok", server_id=server.id, configuration=configuration)
            ctx.refresh()
            return server
        log.warning("claim.lost_race", server_id=candidate.id)
        ctx.billing.save_bookkeeping(ctx.item, server_id=None)
    return None


def _tokens(configuration: str) -> list[str]:
    return [t for t in re.split(r"[-_\s/]+", configuration.lower()) if t]


def similarity(ordered: str, offered: str) -> tuple[int, int]:
    """How alike two configuration names are: shared leading parts (CPU first), then any."""
    a, b = _tokens(ordered), _tokens(offered)
    leading = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        leading += 1
    return leading, len(set(a) & set(b))


def _similar_configurations(ctx: ServiceContext, ordered: str) -> list[Configuration]:
    stocked = [c for c in ctx.dci.configurations()
               if c.free_server_count > 0 and c.configuration != ordered]
    return sorted(stocked, key=lambda c: similarity(ordered, c.configuration), reverse=True)


def _report_substitution(ctx: ServiceContext, ordered: str, server: Server) -> None:
    comment = (f"No free server of configuration {ordered}; service {ctx.item} got server "
               f"{server.id} ({server.name}, {server.configuration}). Please review.")
    log.warning("claim.substituted", ordered=ordered, server_id=server.id,
                configuration=server.configuration)
    ctx.billing.create_manual_task(ctx.item, None, "open", comment)
