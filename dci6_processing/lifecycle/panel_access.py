"""The client's own way into DCImanager 6: the login saved on the service at activation, and
"Go to panel" (`transition_controlpanel`) with a one-time key.

Activation saves where and as whom the client logs in (`panel_url`, `panel_login`) and, when it
creates the client's DCImanager user, that user's password (`panel_password`, crypted) so the
service instruction can show it. The password is generated and saved *before* the user is
created: a run killed in between finds it and still knows the user is ours. A client who
already had a DCImanager user keeps their password: nothing is reset, and `panel_account`
says `existing` so the instruction tells them to use it.

`transition_controlpanel` answers the URL BILLmanager sends the client's browser to: a one-time
key login (`POST /api/auth/v4/user/{id}/key`, then `https://<host>/auth/key-v4/<key>`) for the
service's client, re-checked as the server's owner and never an administrator. When the panel
refuses to make a key, the client gets the panel's login page and the log says why: never an
administrator's session, never another client's.

Which command BILLmanager runs for "Go to panel", and with which arguments, is recorded (with
its sources) at its row of the CLI's command table: that row is the one place the name lives.
"""

from __future__ import annotations

import secrets

import structlog

from dci6_processing import protocol
from dci6_processing.bookkeeping import BookkeepingChanges
from dci6_processing.dci.errors import (
    DciAuthError,
    DciBusy,
    DciError,
    DciTlsError,
    DciUnreachable,
    DeadlineExceeded,
    PanelInternalError,
)
from dci6_processing.dci.models import User
from dci6_processing.invocation import Invocation
from dci6_processing.lifecycle.claim import ensure_client_user
from dci6_processing.lifecycle.client_power import verified_client_server
from dci6_processing.lifecycle.common import ServiceContext, load_service, save_bookkeeping
from dci6_processing.log import register_secret

log = structlog.get_logger(__name__)

PANEL_KEYNAME = "dci"
PANEL_NAME = "DCImanager 6"

CREATED = "created"
EXISTING = "existing"
PANEL_PASSWORD_LENGTH = 20
# panel conditions after which the login page would not work either: the command fails
_UNAVAILABLE = (DciUnreachable, DciBusy, DciTlsError, DciAuthError, PanelInternalError,
                DeadlineExceeded)


def ensure_panel_user(ctx: ServiceContext) -> User:
    """The client's DCImanager user for activation, with how to log in saved on the service."""
    saved = ctx.service.bookkeeping.panel_password
    register_secret(saved)
    created_now = False

    def new_password() -> str:
        nonlocal created_now
        created_now = True
        if saved:
            return saved  # an earlier run saved it and died before creating the user
        password = secrets.token_urlsafe(PANEL_PASSWORD_LENGTH)
        register_secret(password)
        save_bookkeeping(ctx, panel_password=password)  # crypted (bookkeeping.CRYPTED)
        return password

    user = ensure_client_user(ctx, new_password=new_password)
    account = CREATED if created_now or saved else EXISTING
    record = ctx.service.bookkeeping
    changes: BookkeepingChanges = {}
    if record.panel_url != ctx.dci.url:
        changes["panel_url"] = ctx.dci.url
    if record.panel_login != user.email:
        changes["panel_login"] = user.email
    if record.panel_account != account:
        changes["panel_account"] = account
    if changes:
        save_bookkeeping(ctx, **changes)
    log.info("panel.access_saved", user_id=user.id, account=account)
    return user


def transition_control_panel(inv: Invocation) -> bytes:
    """The URL that logs the service's client in to DCImanager 6 (read-only: no lock)."""
    ctx = load_service(inv)
    server, user = verified_client_server(ctx)
    try:
        url = ctx.dci.key_login_url(ctx.dci.create_login_key(user.id))
        log.info("panel.key_issued", user_id=user.id, server_id=server.id)
    except _UNAVAILABLE:
        raise
    except DciError as exc:  # the panel refused (no right, no such route, no usable key)
        log.warning("panel.key_refused", user_id=user.id, server_id=server.id,
                    http_status=exc.http_status, code=exc.code, reason=exc.value,
                    sent="login page")
        url = ctx.dci.login_page_url
    return protocol.control_panel_xml(url, keyname=PANEL_KEYNAME, name=PANEL_NAME)
