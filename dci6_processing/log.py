"""Logging: one JSON line per event in `<root>/var/pmdci6.log`, secrets masked.

`configure(paths, command=..., item=...)` runs once per process (the CLI does it first thing);
every module then logs with `structlog.get_logger(__name__)`. Values of secret-looking keys,
`secret-looking-name=value` pairs inside text and every value passed to `register_secret` are
replaced by `***` anywhere in an event, tracebacks included. The level comes from
BILLmanager's `etc/debug.conf` (`pmdci6 <level>`).
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

import structlog

from dci6_processing.paths import MODULE_NAME, MgrPaths

MASK = "***"
# A key holding a secret contains one of these (case-insensitive)...
SECRET_KEY_PARTS = (
    "password",
    "passwd",
    "token",
    "secret",
    "cookie",
    "authorization",
    "xsrf",
    r"(?:api|crypt|encryption|private)[_.-]?key",
)
# ...or is one of these names whole: session cookies (DCImanager's `ses6`, BILLmanager's
# `billmgrses5`), BILLmanager's `auth` session id, `pwd`. Flags about secrets, such as
# `crypted="yes"` or `crypted=on`, say nothing secret and stay readable.
SECRET_KEY_NAMES = (r"(?:[a-z]*mgr)?ses\d*", "sesid", "auth", "pwd")

_SECRET_KEY = re.compile(
    r"(?i)(?:" + "|".join(SECRET_KEY_PARTS) + r")|^(?:" + "|".join(SECRET_KEY_NAMES) + r")$")

# `password=x`, `"token": "x"`, `x-xsrf-token: x`, `ses6=x` inside free text (exception
# messages, URLs, headers): a whole key, its separator and its value (an unclosed quote runs
# to the end). Keys are matched whole and judged by _is_secret_key, so the scan stays linear
# in the text's length (a key pattern around the secret parts backtracked quadratically: a
# 10 kB word took 16 s).
_ASSIGNMENT = re.compile(
    r"(?<![\w.-])([\w.-]++)([\"']?\s*[:=]\s*)(\"[^\"]*\"?|'[^']*'?|[^\s\"'&,;]+)")

# BILLmanager debug.conf levels (9 debug, 6 extinfo, 5 info, 4 warning, 3 error) -> logging levels.
DEBUG, INFO, WARNING, ERROR = 10, 20, 30, 40
DEFAULT_LEVEL = INFO

_secrets: set[str] = set()
_sink: TextIO | None = None  # the open log file; None sends events to the current sys.stderr
_sink_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Mask this exact value (and its URL-encoded form) wherever it appears in a log event."""
    if value is None or not value.strip():
        return
    _secrets.add(value)
    encoded = quote(value, safe="")
    if encoded != value:
        _secrets.add(encoded)


def _is_secret_key(key: object) -> bool:
    return _SECRET_KEY.search(str(key)) is not None


def _mask_text(text: str) -> str:
    # Longest first, so a secret containing another one is masked whole.
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return _mask_assignments(text)


def _mask_assignments(text: str) -> str:
    """`key=value` pairs with a secret key get their value masked; a pair whose key is not
    secret is scanned on from its value (`a=password=x` masks x)."""
    pieces: list[str] = []
    position = 0
    while (found := _ASSIGNMENT.search(text, position)) is not None:
        value_start = found.start(3)
        pieces.append(text[position:value_start])
        if _is_secret_key(found.group(1)):
            pieces.append(MASK)
            position = found.end(3)
        else:
            position = value_start
    pieces.append(text[position:])
    return "".join(pieces)


def redact(obj: Any) -> Any:
    """A copy of obj with secret-keyed values and registered secrets masked, recursively.

    Mappings, lists, tuples and sets are walked; strings are scanned; other values are
    returned as they are.
    """
    if isinstance(obj, str):
        return _mask_text(obj)
    if isinstance(obj, Mapping):
        return {
            key: (MASK if _is_secret_key(key) and obj[key] not in (None, "") else redact(value))
            for key, value in obj.items()
        }
    if isinstance(obj, list):
        return [redact(value) for value in obj]
    if isinstance(obj, tuple):
        return tuple(redact(value) for value in obj)
    if isinstance(obj, set | frozenset):
        return {redact(value) for value in obj}
    return obj


def _plain(obj: Any) -> Any:
    """JSON-native data only, so no object's repr can carry a secret past redaction."""
    if obj is None or isinstance(obj, str | bool | int | float):
        return obj
    if isinstance(obj, Mapping):
        return {str(key): _plain(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [_plain(value) for value in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return repr(obj)


_LEADING_KEYS = ("timestamp", "level", "event", "logger", "command", "item", "module", "pid")


def _redact_event(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    cleaned: dict[str, Any] = redact(_plain(dict(event_dict)))
    # When, how bad, what, where first: the line reads left to right in a terminal.
    leading = {key: cleaned.pop(key) for key in _LEADING_KEYS if key in cleaned}
    return {**leading, **cleaned}


def _add_logger_name(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    name = getattr(logger, "name", None)
    if name:
        event_dict.setdefault("logger", name)
    return event_dict


class _JsonLineLogger:
    """The structlog output end: writes each rendered event as one line and flushes it."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name

    def msg(self, message: str) -> None:
        with _sink_lock:
            sink = _sink if _sink is not None else sys.stderr
            sink.write(message + "\n")
            sink.flush()

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


def _logger_factory(*args: Any) -> _JsonLineLogger:
    return _JsonLineLogger(str(args[0]) if args else None)


def level_from_debug_conf(path: Path) -> int:
    """The logging level for this module from BILLmanager's debug.conf; info when unset."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return DEFAULT_LEVEL
    own: int | None = None
    everyone: int | None = None
    for line in lines:
        fields = line.split()
        if len(fields) < 2 or not fields[1].isdigit():
            continue
        if fields[0] == MODULE_NAME:
            own = int(fields[1])
        elif fields[0] == "*":
            everyone = int(fields[1])
    chosen = own if own is not None else everyone
    if chosen is None:
        return DEFAULT_LEVEL
    if chosen >= 6:
        return DEBUG
    if chosen == 5:
        return INFO
    if chosen == 4:
        return WARNING
    return ERROR


def _open_log_file(path: Path) -> TextIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.fchmod(fd, 0o600)  # an older file with wider permissions is tightened too
    return os.fdopen(fd, "a", encoding="utf-8")


def configure(paths: MgrPaths, **bind: Any) -> None:
    """Send this process's events to paths.log_file, bound to `bind` (command, item, module...)
    and the pid. When the log file cannot be opened, events go to stderr, never stdout."""
    global _sink
    level = level_from_debug_conf(paths.debug_conf)
    close()
    try:
        opened = _open_log_file(paths.log_file)
    except OSError as exc:
        print(f"pmdci6: cannot open {paths.log_file}: {exc.strerror}", file=sys.stderr)
    else:
        with _sink_lock:
            _sink = opened
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            _add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _redact_event,
            structlog.processors.JSONRenderer(sort_keys=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_logger_factory,
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(pid=os.getpid(), **bind)


def close() -> None:
    """Close the log file; later events go to stderr until the next configure()."""
    global _sink
    with _sink_lock:
        if _sink is not None:
            _sink.close()
        _sink = None


def bind(**values: Any) -> None:
    """Add values to every later event of this process (e.g. item once it is parsed)."""
    structlog.contextvars.bind_contextvars(**values)
