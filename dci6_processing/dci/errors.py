"""Typed DCImanager 6 errors. Each IS a ModuleError, so the CLI reports it as is.

An error carries the HTTP status, the panel's error code and its message (`value`, shown to
admins): never a token or a password. Panel error codes are the inferred table of the
project's interfaces (the spec confirms only the `{"error": {"code", "msg", "value"}}` shape).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from enum import IntEnum
from typing import Any, ClassVar

from dci6_processing.errors import ErrorType, ModuleError
from dci6_processing.log import redact

MAX_PANEL_MSG = 300


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
    """Any failure talking to DCImanager; `value` is the panel's message."""

    default_type: ClassVar[ErrorType] = ErrorType.panel_error

    def __init__(
        self,
        value: str = "",
        *,
        object: str = "",
        http_status: int | None = None,
        code: int | None = None,
        panel_msg: str | None = None,
        detail: str = "",
        type: ErrorType | None = None,
    ) -> None:
        super().__init__(type or self.default_type, object=object, value=value, detail=detail)
        self.http_status = http_status
        self.code = code
        self.panel_msg = panel_msg


class DciUnreachable(DciError):
    default_type = ErrorType.panel_unreachable


class DeadlineExceeded(DciUnreachable):
    """No complete answer within the logical request's deadline (retries included)."""

    default_type = ErrorType.panel_timeout


class AnswerTooLarge(DciError):
    """The panel's answer grew past the size limit; reading stopped there."""

    default_type = ErrorType.panel_answer_too_large


class DciTlsError(DciError):
    default_type = ErrorType.tls_failed


class DciAuthError(DciError):
    default_type = ErrorType.bad_credentials


class DciBusy(DciError):
    default_type = ErrorType.panel_busy


class DciNotFound(DciError):
    default_type = ErrorType.not_found


class DciConflict(DciError):
    """The panel refused an action in the object's current state."""


class PowerActionRejected(DciConflict):
    """power_on while on or power_off while off (the panel's power rules)."""


class PoolExhausted(DciError):
    default_type = ErrorType.pool_exhausted


class OperationFailed(DciError):
    default_type = ErrorType.operation_failed


class OperationTimedOut(DciError):
    default_type = ErrorType.operation_timeout


def clean_text(text: str, secrets: Iterable[str] = (), limit: int = MAX_PANEL_MSG) -> str:
    """One printable line for an admin: secrets masked, control characters dropped, capped."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = str(redact(text))  # every secret registered in this process (client passwords too)
    text = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in text
    ).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_error_body(body: Any) -> tuple[int | None, str | None]:
    """(code, msg) of the spec's error envelope, or (None, None) when it is not one."""
    if not isinstance(body, dict):
        return None, None
    error = body.get("error")
    if not isinstance(error, dict):
        return None, None
    raw_code = error.get("code")
    code = raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else None
    if code is None and isinstance(raw_code, str) and raw_code.strip().isdigit():
        code = int(raw_code)
    msg = error.get("msg")
    return code, (str(msg) if msg is not None else None)


_BY_CODE: dict[int, tuple[type[DciError], ErrorType | None]] = {
    PanelCode.SERVER_HAS_OWNER: (DciConflict, ErrorType.server_in_use),
    PanelCode.NO_SWITCH_CONNECTION: (DciConflict, ErrorType.no_switch_connection),
    PanelCode.POWER_NOT_ALLOWED: (PowerActionRejected, None),
    PanelCode.OPERATION_RUNNING: (DciConflict, ErrorType.server_busy),
    PanelCode.USER_EXISTS: (DciConflict, None),
    PanelCode.POOL_EXHAUSTED: (PoolExhausted, None),
}

_BY_STATUS: dict[int, type[DciError]] = {
    401: DciAuthError,
    404: DciNotFound,
    409: DciConflict,
    503: DciBusy,
}


def classify(
    http_status: int,
    body: Any,
    *,
    subject: str,
    secrets: Iterable[str] = (),
    detail: str = "",
) -> DciError:
    """The typed error for a panel answer with HTTP status >= 400."""
    code, msg = parse_error_body(body)
    shown = clean_text(msg, secrets) if msg else f"HTTP {http_status}"
    cls: type[DciError]
    error_type: ErrorType | None = None
    if http_status in (401, 503):
        cls = _BY_STATUS[http_status]
    elif code is not None and code in _BY_CODE:
        cls, error_type = _BY_CODE[code]
    else:
        cls = _BY_STATUS.get(http_status, DciError)
    return cls(
        shown,
        object=subject,
        http_status=http_status,
        code=code,
        panel_msg=clean_text(msg, secrets) if msg else None,
        detail=detail or f"HTTP {http_status} code {code}",
        type=error_type,
    )
