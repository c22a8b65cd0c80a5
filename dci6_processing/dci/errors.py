"""Typed DCImanager 6 errors: one class per panel condition, under one root, `DciError`.

The funnel, in the manner of openstacksdk's `exceptions.raise_from_response()`:
- `raise_from_response()` is the ONE place that reads an HTTP status and the panel's error
  body and picks a class; `session.py` calls it for every answer >= 400;
- each class names the BILLmanager `ErrorType` it is reported as (`error_type`): that is the
  whole mapping from exceptions to `msg_error_*`, nothing else decides it;
- callers tell conditions apart by class (`except ServerOwned`), never by reading
  `http_status`/`code`/`type`;
- an error is never changed once built (ModuleError refuses it): to say more, raise a new
  one `from` it (`PoolExhausted.recast(exc, object=pool)`).

An error carries the HTTP status, the panel's error code and its message (`value`, shown to
admins): never a token or a password (`clean_text`). Panel error codes are the inferred table
of the project's interfaces (the spec confirms only the `{"error": {"code", "msg", "value"}}`
shape).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, ClassVar, NoReturn, Self

from dci6_processing.errors import ErrorType, ModuleError
from dci6_processing.log import redact

MAX_PANEL_MSG = 300
LOGIN_ROUTE = "auth.token"


class PanelCode(IntEnum):
    BAD_REQUEST = 1000
    UNAUTHORIZED = 1001
    BAD_LOGIN = 1002
    NOT_FOUND = 1004
    SERVER_HAS_OWNER = 2001
    NO_SWITCH_CONNECTION = 2002
    POWER_NOT_ALLOWED = 2003
    OPERATION_RUNNING = 2004
    USER_EXISTS = 2005
    POOL_EXHAUSTED = 3001


class DciError(ModuleError):
    """Any failure talking to DCImanager; `value` is the panel's message. Raised as is for
    an answer no narrower class describes (e.g. a 400 with an unknown code)."""

    error_type: ClassVar[ErrorType] = ErrorType.panel_error

    def __init__(
        self,
        value: str = "",
        *,
        object: str = "",
        http_status: int | None = None,
        code: int | None = None,
        panel_msg: str | None = None,
        detail: str = "",
    ) -> None:
        # set before ModuleError.__init__, which seals the error
        self.http_status = http_status
        self.code = code
        self.panel_msg = panel_msg
        super().__init__(self.error_type, object=object, value=value, detail=detail)

    @classmethod
    def recast(cls, error: DciError, *, object: str | None = None) -> Self:
        """A new error of this class with `error`'s panel answer, about `object` when given.
        Raise it `from error`. For classes that keep DciError's constructor."""
        return cls(error.value, object=error.object if object is None else object,
                   http_status=error.http_status, code=error.code, panel_msg=error.panel_msg,
                   detail=error.detail)


class DciUnreachable(DciError):
    """DNS, connection refused or dropped, no answer within the timeout."""

    error_type = ErrorType.panel_unreachable


class DciTlsError(DciError):
    error_type = ErrorType.tls_failed


class DciAuthError(DciError):
    """Bad credentials, or a token the panel rejects even when fresh."""

    error_type = ErrorType.bad_credentials


class DciBusy(DciError):
    """503 after every retry: the platform is waking the service."""

    error_type = ErrorType.panel_busy


class PanelInternalError(DciError):
    """A 5xx other than 503: the panel failed on its side (worth a later retry)."""


class DciNotFound(DciError):
    """404 with the panel's error body: the object (server, user, IP) does not exist."""

    error_type = ErrorType.not_found


class DciConflict(DciError):
    """The panel refused an action in the object's current state (a 409, or a code below)."""


class ServerOwned(DciConflict):
    """The server already has an owner."""

    error_type = ErrorType.server_in_use


class NoSwitchConnection(DciConflict):
    """The server is not connected to a switch port."""

    error_type = ErrorType.no_switch_connection


class PowerActionRejected(DciConflict):
    """power_on while on or power_off while off (the panel's power rules)."""


class OperationRunning(DciConflict):
    """Another operation runs on the server."""

    error_type = ErrorType.server_busy


class UserExists(DciConflict):
    """A panel user with this e-mail already exists."""


class PoolExhausted(DciError):
    error_type = ErrorType.pool_exhausted


class BadAnswer(DciError):
    """The panel answered, but not as the spec says: not JSON, a field missing or of the
    wrong type, a list without its envelope."""


class OperationFailed(DciError):
    error_type = ErrorType.operation_failed


class OperationTimedOut(DciError):
    error_type = ErrorType.operation_timeout


class RouteMismatch(DciError):
    """The panel does not know a route of the table: 405, or a 404 that is not the panel's
    error JSON (a gateway's page). Not "object not found": the route table is wrong here."""

    error_type = ErrorType.route_mismatch

    def __init__(
        self,
        *,
        route: str,
        method: str,
        path: str,
        http_status: int | None = None,
        code: int | None = None,
        panel_msg: str | None = None,
        detail: str = "",
    ) -> None:
        self.route = route
        self.method = method
        self.path = path
        answered = f" answered HTTP {http_status}" if http_status is not None else ""
        super().__init__(f"{method} {path}{answered}; run pmdci6 doctor", object=route,
                         http_status=http_status, code=code, panel_msg=panel_msg,
                         detail=detail or f"{route}: the panel does not know the route")


class AnswerTooLarge(DciError):
    """The panel's answer to a route was larger than the module reads."""

    error_type = ErrorType.panel_answer_too_large

    def __init__(self, *, route: str, limit: int, http_status: int | None = None,
                 detail: str = "") -> None:
        self.route = route
        self.limit = limit
        super().__init__(f"more than {limit} bytes", object=route, http_status=http_status,
                         detail=detail or f"{route}: answer over {limit} bytes")


class DeadlineExceeded(DciError):
    """A route's whole answer did not arrive within its deadline (a slow trickle counts)."""

    error_type = ErrorType.panel_timeout

    def __init__(self, *, route: str, seconds: float, detail: str = "") -> None:
        self.route = route
        self.seconds = seconds
        super().__init__(f"no complete answer within {seconds:g} s", object=route,
                         detail=detail or f"{route}: deadline of {seconds:g} s passed")


def clean_text(text: str, secrets: Iterable[str] = (), limit: int = MAX_PANEL_MSG) -> str:
    """One printable line for an admin: secrets masked, control characters dropped, capped."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = str(redact(text))  # every secret registered in this process (client passwords too)
    text = text[: 4 * limit]  # masked first (no secret cut in half); the rest is never shown
    text = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in text
    ).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class ErrorBody:
    """The spec's error envelope `{"error": {"code", "msg", ...}}`."""

    code: int | None
    msg: str | None


def parse_error_body(body: Any) -> ErrorBody | None:
    """The spec's error envelope, or None when the body is not one (a gateway's page)."""
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if not isinstance(error, dict):
        return None
    raw_code = error.get("code")
    code = raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else None
    if code is None and isinstance(raw_code, str) and raw_code.strip().isdigit():
        code = int(raw_code)
    msg = error.get("msg")
    return ErrorBody(code, str(msg) if msg is not None else None)


_BY_CODE: dict[int, type[DciError]] = {
    PanelCode.SERVER_HAS_OWNER: ServerOwned,
    PanelCode.NO_SWITCH_CONNECTION: NoSwitchConnection,
    PanelCode.POWER_NOT_ALLOWED: PowerActionRejected,
    PanelCode.OPERATION_RUNNING: OperationRunning,
    PanelCode.USER_EXISTS: UserExists,
    PanelCode.POOL_EXHAUSTED: PoolExhausted,
}

_BY_STATUS: dict[int, type[DciError]] = {
    401: DciAuthError,
    404: DciNotFound,
    409: DciConflict,
    503: DciBusy,
}


def raise_from_response(
    http_status: int,
    body: Any,
    *,
    route: str,
    method: str,
    path: str,
    subject: str,
    secrets: Iterable[str] = (),
    detail: str = "",
) -> NoReturn:
    """Raise the typed error for a panel answer with HTTP status >= 400: the only place
    that maps a status and an error body to a class.

    `body` is the parsed JSON (None when it was not JSON); `subject` names the object the
    call was about (the error's `object`); `secrets` are masked out of the panel's text.
    """
    envelope = parse_error_body(body)
    code = envelope.code if envelope else None
    panel_msg = clean_text(envelope.msg, secrets) if envelope and envelope.msg else None
    detail = detail or f"{method} {route} -> HTTP {http_status} code {code}"
    if http_status == 405 or (http_status == 404 and envelope is None):
        raise RouteMismatch(route=route, method=method, path=path, http_status=http_status,
                            code=code, panel_msg=panel_msg, detail=detail)
    cls: type[DciError]
    if http_status == 401 or (route == LOGIN_ROUTE and http_status == 403):
        cls = DciAuthError
    elif http_status == 503:
        cls = DciBusy
    elif code is not None and code in _BY_CODE:
        cls = _BY_CODE[code]
    elif http_status in _BY_STATUS:
        cls = _BY_STATUS[http_status]
    elif http_status >= 500:
        cls = PanelInternalError
    else:
        cls = DciError
    raise cls(panel_msg or f"HTTP {http_status}", object=subject, http_status=http_status,
              code=code, panel_msg=panel_msg, detail=detail)
