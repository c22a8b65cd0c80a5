"""One authenticated conversation with a DCImanager 6 panel.

What the spec's "Transport" section asks, in one place:
- login with POST /api/auth/v4/public/token; afterwards every request carries the token as
  `x-xsrf-token`, cookie `ses6` and `isp-box-instance: true`;
- the token is reused across processes through a 0600 file in a 0700 directory, named by
  sha256 of the panel URL and the e-mail, written atomically, and used only by a process
  holding the same password (an HMAC-SHA256 digest of it under a random per-host key is kept
  beside the token, never the password): a changed or wrong password always logs in again;
- HTTP 401 on a call: log in again once and repeat the call; a second 401 is bad credentials;
  a 401 on login itself is bad credentials at once;
- HTTP 503 (the platform waking a suspended service): retried with a short growing backoff
  (or the panel's `Retry-After`, capped at MAX_RETRY_AFTER) for GET, POST and DELETE,
  `retries_503` tries in all and never past the deadline, then DciBusy;
- every answer >= 400 becomes its typed error in `errors.raise_from_response` (one place);
- a dropped connection is retried a couple of times for GET only (a POST may have landed);
- timeouts as a pair plus a deadline (`Limits`): connecting (10 s), waiting for the next
  bytes (60 s), and one deadline per logical request (120 s) that covers every retry, the
  re-login and a body trickling in; past it, DeadlineExceeded (panel_timeout);
- bodies are streamed and cut at `Limits.max_answer_bytes` (64 MiB): past it, AnswerTooLarge
  naming the route and the limit, with memory bounded by the limit;
- TLS is verified by default, against a CA bundle when given; verification off must be asked
  for and logs a warning once per panel, as plain http does;
- one session may serve several threads (the cron sync's workers): at most `concurrency`
  requests are in flight, a 503 holds every thread back, a rejected token is renewed once
  however many threads saw it rejected, each thread has its own HTTP connection pool
  (`pool.py`) and its own request deadline.
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import hashlib
import hmac
import json
import os
import secrets
import stat
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, NoReturn, TypedDict
from urllib.parse import urlsplit

import requests
import structlog
from urllib3 import exceptions as urllib3_exceptions
from urllib3.exceptions import InsecureRequestWarning

from dci6_processing.dci.errors import (
    AnswerTooLarge,
    BadAnswer,
    DciError,
    DciTlsError,
    DciUnreachable,
    DeadlineExceeded,
    clean_text,
    raise_from_response,
)
from dci6_processing.dci.pool import HttpSessions, PanelGate
from dci6_processing.dci.routes import DEFAULT_TABLE, Route, RouteTable
from dci6_processing.log import register_secret
from dci6_processing.validation import panel_url

log = structlog.get_logger(__name__)

XSRF_HEADER = "x-xsrf-token"
SESSION_COOKIE = "ses6"
BOX_HEADER = "isp-box-instance"
DEFAULT_503_TRIES = 10  # ISPsystem's own example
MAX_503_DELAY = 2.0
DROPPED_GET_RETRIES = 2
DROPPED_RETRY_DELAY = 0.1
MAX_RETRY_AFTER = 30.0  # seconds: a panel's Retry-After is honoured up to this
BODY_CHUNK = 64 * 1024  # the most one read of a body asks for
BODY_SEGMENT = 1024 * 1024  # a body is held in pieces of this size (_BoundedBody)
MIB = 1024 * 1024

_warned_insecure: set[str] = set()
_warned_plain_http: set[str] = set()


@dataclass(frozen=True)
class Limits:
    """How long and how much one logical request may take (module settings, README)."""

    connect_timeout: float = 10.0  # seconds to open the TCP (and TLS) connection
    read_timeout: float = 60.0  # seconds to wait for the next bytes of an answer
    deadline: float = 120.0  # seconds for the whole logical request, retries included
    max_answer_bytes: int = 64 * MIB  # a body past this is cut and the request fails


class TokenCache:
    """The panel token shared by every process of this module for one (URL, e-mail).

    The file is named by sha256 of the URL and the e-mail and holds, beside the token, an
    HMAC-SHA256 of the password under a random key kept in the same 0700 directory (never the
    password). A token is reused only by a process holding the very password it was issued
    for: a changed or wrong password always logs in again.
    """

    KEY_FILE = "digest.key"
    KEY_BYTES = 32

    def __init__(self, directory: Path, url: str, email: str, password: str) -> None:
        self.directory = directory
        key = hashlib.sha256(f"{url}\n{email}".encode()).hexdigest()
        self.path = directory / f"{key}.json"
        self._password = password
        self._digest: str | None = None

    def digest(self) -> str | None:
        """HMAC-SHA256 of the password under this host's key; None when the key is unusable."""
        if self._digest is None:
            key = self._key()
            if key is not None:
                self._digest = hmac.new(key, self._password.encode(), hashlib.sha256).hexdigest()
        return self._digest

    def _key(self) -> bytes | None:
        path = self.directory / self.KEY_FILE
        try:
            self._ensure_directory()
            if not path.exists():
                tmp = self.directory / f".{self.KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                try:
                    os.write(fd, secrets.token_bytes(self.KEY_BYTES))
                    os.fsync(fd)
                finally:
                    os.close(fd)
                with contextlib.suppress(FileExistsError):
                    os.link(tmp, path)  # the first process to get here sets the key for all
                tmp.unlink()
            data = _read_private(path)
        except OSError as exc:
            log.warning("dci.token_cache.key_unusable", path=str(path), error=str(exc))
            return None
        if data is None or len(data) != self.KEY_BYTES:
            log.warning("dci.token_cache.key_unusable", path=str(path), error="untrusted")
            return None
        return data

    def load(self) -> str | None:
        digest = self.digest()
        if digest is None:
            return None
        try:
            raw = _read_private(self.path)
        except OSError:
            return None
        if raw is None:
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(data, dict) or not hmac.compare_digest(
                str(data.get("password_digest", "")), digest):
            return None  # issued for another password (or by an older version)
        token = data.get("token")
        return token if isinstance(token, str) and token else None

    def store(self, token: str) -> None:
        digest = self.digest()
        if digest is None:
            return  # without the key no later process could trust the file
        try:
            self._ensure_directory()
            tmp = self.directory / f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                os.fchmod(fd, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump({"token": token, "password_digest": digest,
                               "saved_at": int(time.time())}, handle)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                raise
        except OSError as exc:
            # the cache only saves logins: a read-only disk must not fail the call
            log.warning("dci.token_cache.write_failed", path=str(self.path), error=str(exc))

    def forget(self, token: str) -> None:
        """Drop the cached token if it is still `token` (another process may have renewed it)."""
        if self.load() == token:
            with contextlib.suppress(OSError):
                self.path.unlink()

    def _ensure_directory(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = self.directory.stat()
        if stat.S_IMODE(info.st_mode) != 0o700 and info.st_uid == os.getuid():
            os.chmod(self.directory, 0o700)


def _read_private(path: Path) -> bytes | None:
    """The file's bytes if only this user can read and write it; an untrusted file is removed
    (someone else could read or planted it). OSError when it cannot be opened."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        info = os.fstat(fd)
        if info.st_mode & 0o077 or info.st_uid != os.getuid():
            log.warning("dci.token_cache.untrusted", path=str(path))
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


class SessionOptions(TypedDict, total=False):
    """The keyword options of a `DciSession` a `DciClient` passes through (defaults there)."""

    verify: bool | str
    timeout: float | None
    limits: Limits | None
    token_cache_dir: Path | None
    retries_503: int
    backoff: float
    session: requests.Session | None
    concurrency: int


class DciSession:
    """Sends one route's request and returns its JSON, or raises a typed DciError."""

    def __init__(
        self,
        url: str,
        email: str,
        password: str,
        *,
        verify: bool | str = True,
        timeout: float | None = None,
        limits: Limits | None = None,
        token_cache_dir: Path | None = None,
        retries_503: int = DEFAULT_503_TRIES,
        backoff: float = 0.2,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
        routes: RouteTable | None = None,
        concurrency: int = 1,
    ) -> None:
        self._routes = routes if routes is not None else DEFAULT_TABLE
        register_secret(password)
        self.base_url = panel_url(url)
        self.email = email
        self._password = password
        self.limits = limits or Limits()
        if timeout is not None:  # the read timeout alone (older callers and tests)
            self.limits = Limits(connect_timeout=min(self.limits.connect_timeout, timeout),
                                 read_timeout=timeout, deadline=self.limits.deadline,
                                 max_answer_bytes=self.limits.max_answer_bytes)
        self.retries_503 = max(1, retries_503)
        self.backoff = backoff
        self._sleep = sleep or time.sleep
        self._clock = clock or time.monotonic
        self._request = threading.local()  # each thread's logical request (its deadline)
        self._http = HttpSessions(session)
        self.gate = PanelGate(concurrency, sleep=self._sleep)
        self._token: str | None = None
        self._auth_lock = threading.RLock()  # one login at a time, whatever the threads
        self._cache = (TokenCache(token_cache_dir, self.base_url, email, password)
                       if token_cache_dir else None)
        self.request_counts: collections.Counter[str] = collections.Counter()
        self._count_lock = threading.Lock()
        self.verify = self._tls_verify(verify)
        if self.base_url.startswith("http://") and self.base_url not in _warned_plain_http:
            _warned_plain_http.add(self.base_url)
            log.warning("dci.plain_http", panel=self.host,
                        why="the URL is http://: the password and token cross the network "
                            "unencrypted; use https://")

    @property
    def timeout(self) -> float:
        return self.limits.read_timeout

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).netloc

    def _tls_verify(self, verify: bool | str) -> bool | str:
        if isinstance(verify, str):
            if not Path(verify).is_file():
                raise DciTlsError(verify, object="ca_bundle",
                                  detail="the CA bundle file does not exist")
            return verify
        if not verify:
            warnings.filterwarnings("ignore", category=InsecureRequestWarning)
            if self.base_url not in _warned_insecure:
                _warned_insecure.add(self.base_url)
                log.warning("dci.tls.verification_disabled", panel=self.host,
                            why="explicitly configured; the panel's identity is not checked")
        return verify

    # authentication

    def login(self) -> str:
        """A fresh token from the panel (the cache is refreshed, never consulted)."""
        with self._logical_request():
            return self._login()

    def _login(self) -> str:
        login_route = self._routes["auth.token"]
        path = login_route.path()
        response = self._send(login_route, path, None,
                              {"email": self.email, "password": self._password}, token=None)
        if response.status_code in (401, 403):
            self._raise(login_route, path, response, subject=self.email, detail="login refused")
        body = self._body(login_route, path, response, subject=self.host)
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise BadAnswer("login answer has no token", object=self.host,
                            http_status=response.status_code)
        register_secret(token)
        self._token = token
        if self._cache is not None:
            self._cache.store(token)
        log.info("dci.login", panel=self.host)
        return token

    def _current_token(self) -> str:
        with self._auth_lock:
            if self._token is None and self._cache is not None:
                cached = self._cache.load()
                if cached:
                    register_secret(cached)
                    self._token = cached
            return self._token or self._login()

    def _renewed_token(self, rejected: str) -> str:
        """A token to replace `rejected`: the one another thread already got, or a new login."""
        with self._auth_lock:
            if self._token is not None and self._token != rejected:
                return self._token
            if self._cache is not None:
                self._cache.forget(rejected)
            self._token = None
            return self._login()

    def _secrets(self) -> list[str]:
        return [s for s in (self._password, self._token) if s]

    # calls

    def call(
        self,
        target: Route,
        *,
        ids: Mapping[str, int] | None = None,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        subject: str | None = None,
    ) -> Any:
        """The route's JSON answer; 401 re-logs in once, errors raise typed DciErrors."""
        with self._logical_request():
            return self._call(target, ids=ids, params=params, body=body, subject=subject)

    @contextlib.contextmanager
    def _logical_request(self) -> Iterator[None]:
        """One deadline for everything a call needs: login, retries, re-login, bodies."""
        if getattr(self._request, "deadline", None) is not None:
            yield
            return
        self._request.deadline = self._clock() + self.limits.deadline
        try:
            yield
        finally:
            self._request.deadline = None

    def _remaining(self, target: Route) -> float:
        """Seconds left of the logical request; DeadlineExceeded when none are."""
        deadline = getattr(self._request, "deadline", None)
        if deadline is None:
            deadline = self._clock() + self.limits.deadline
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise DeadlineExceeded(route=target.name, seconds=self.limits.deadline)
        return remaining

    def _call(
        self,
        target: Route,
        *,
        ids: Mapping[str, int] | None,
        params: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
        subject: str | None,
    ) -> Any:
        path = target.path(**dict(ids or {}))
        what = subject if subject is not None else path.removeprefix("/api/")
        token = self._current_token()
        response = self._send(target, path, params, body, token=token)
        if response.status_code == 401:
            log.info("dci.token.rejected", route=target.name)
            token = self._renewed_token(token)
            response = self._send(target, path, params, body, token=token)
            if response.status_code == 401:
                self._raise(target, path, response, subject=self.email,
                            detail="fresh token rejected")
        return self._body(target, path, response, subject=what)

    def _body(self, target: Route, path: str, response: requests.Response, *,
              subject: str) -> Any:
        if response.status_code >= 400:
            self._raise(target, path, response, subject=subject)
        if not response.content:
            return {}
        try:
            return _decoded_json(response)
        except ValueError as exc:
            raise BadAnswer("the panel's answer is not JSON", object=subject,
                            http_status=response.status_code,
                            detail=f"{target.name}: {exc}"[:200]) from None

    def _raise(self, target: Route, path: str, response: requests.Response, *,
               subject: str, detail: str = "") -> NoReturn:
        """The typed error for an answer >= 400 (errors.raise_from_response maps it)."""
        raise_from_response(
            response.status_code, _json_or_none(response), route=target.name,
            method=target.method, path=path, subject=subject, secrets=self._secrets(),
            detail=detail,
        )

    def _send(
        self,
        target: Route,
        path: str,
        params: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
        *,
        token: str | None,
    ) -> requests.Response:
        """One logical request: 503s retried with backoff; after the last try, DciBusy."""
        for attempt in range(self.retries_503):
            response = self._transmit(target, path, params, body, token)
            if response.status_code != 503:
                return response
            if attempt + 1 < self.retries_503:
                delay = _retry_after(response)
                if delay is None:
                    delay = min(self.backoff * 2**attempt, MAX_503_DELAY)
                if delay >= self._remaining(target):
                    log.info("dci.busy.no_time_left", route=target.name, attempt=attempt + 1,
                             delay=delay)
                    break
                log.info("dci.busy.retry", route=target.name, attempt=attempt + 1, delay=delay)
                self.gate.hold(delay)  # the other threads wait too
                self._sleep(delay)
        self._raise(target, path, response, subject=self.host,
                    detail=f"{target.name}: 503 after {attempt + 1} tries")

    def _transmit(
        self,
        target: Route,
        path: str,
        params: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
        token: str | None,
    ) -> requests.Response:
        """One HTTP exchange; transport failures become DciTlsError / DciUnreachable."""
        headers = {BOX_HEADER: "true", "Accept": "application/json"}
        if token is not None:
            headers[XSRF_HEADER] = token
            headers["Cookie"] = f"{SESSION_COOKIE}={token}"
        tries = 1 + (DROPPED_GET_RETRIES if target.method == "GET" else 0)
        for attempt in range(tries):
            remaining = self._remaining(target)
            with self._count_lock:
                self.request_counts[target.name] += 1
            started = time.monotonic()
            read_timeout = min(self.limits.read_timeout, remaining)
            try:
                with self.gate.slot():  # the whole exchange, body included, is one request
                    response = self._http.current().request(
                        target.method, self.base_url + path,
                        params=dict(params or {}) or None,
                        json=target.panel_body(body) if body is not None else None,
                        headers=headers,
                        timeout=(min(self.limits.connect_timeout, remaining), read_timeout),
                        verify=self.verify, allow_redirects=False, stream=True,
                    )
                    try:
                        self._read_body(target, response)  # to the end: the connection is reused
                    except BaseException:
                        response.close()
                        raise
            except requests.exceptions.SSLError as exc:
                raise DciTlsError(
                    clean_text(f"TLS handshake with {self.host} failed: {_reason(exc)}",
                               self._secrets()),
                    object=self.host, detail=target.name) from None
            except requests.exceptions.ConnectTimeout:
                self._remaining(target)
                raise DciUnreachable(
                    f"no connection to {self.host} within "
                    f"{min(self.limits.connect_timeout, remaining):g} s",
                    object=self.host, detail=f"{target.name}: connect timeout") from None
            except requests.exceptions.Timeout:
                self._remaining(target)
                raise DciUnreachable(
                    f"no answer from {self.host} within {read_timeout:g} s",
                    object=self.host, detail=f"{target.name}: read timeout") from None
            except requests.exceptions.ConnectionError as exc:
                if attempt + 1 < tries and self._remaining(target) > DROPPED_RETRY_DELAY:
                    log.info("dci.connection.retry", route=target.name, attempt=attempt + 1)
                    self._sleep(DROPPED_RETRY_DELAY)
                    continue
                raise DciUnreachable(
                    clean_text(f"cannot reach {self.host}: {_reason(exc)}", self._secrets()),
                    object=self.host, detail=f"{target.name}: connection failed") from None
            except requests.exceptions.RequestException as exc:
                raise DciUnreachable(
                    clean_text(f"request to {self.host} failed: {_reason(exc)}",
                               self._secrets()),
                    object=self.host, detail=f"{target.name}: {type(exc).__name__}") from None
            log.debug("dci.request", route=target.name, status=response.status_code,
                      ms=round((time.monotonic() - started) * 1000, 1))
            return response
        raise AssertionError("unreachable: the loop returns or raises")

    def get_document(self, url: str) -> requests.Response:
        """GET a page of the panel that is not a route (its API description under
        /swagger/), with the session's token, TLS settings and timeout; for doctor only."""
        if urlsplit(url)[:2] != urlsplit(self.base_url)[:2]:
            # the token goes only to the panel itself
            raise DciError(f"{url} is not on the panel {self.base_url}", object=self.host,
                           detail="api description elsewhere")
        token = self._current_token()
        headers = {BOX_HEADER: "true", XSRF_HEADER: token,
                   "Cookie": f"{SESSION_COOKIE}={token}"}
        try:
            return self._http.current().get(
                url, headers=headers,
                timeout=(self.limits.connect_timeout, self.limits.read_timeout),
                verify=self.verify, allow_redirects=False)
        except requests.exceptions.RequestException as exc:
            raise DciUnreachable(
                clean_text(f"cannot fetch {url}: {_reason(exc)}", self._secrets()),
                object=self.host, detail="api description") from None

    def _read_body(self, target: Route, response: requests.Response) -> None:
        """Read the streamed body into `response.content`, within the size limit and the
        deadline; a body arriving a byte at a time ends at the deadline too."""
        limit = self.limits.max_answer_bytes
        declared = response.headers.get("Content-Length", "").strip()
        if declared.isdigit() and int(declared) > limit:
            raise self._too_large(target, response)
        raw = response.raw
        read1 = getattr(raw, "read1", None)
        body = _BoundedBody()
        while True:
            remaining = self._remaining(target)
            _tighten_socket(raw, min(self.limits.read_timeout, remaining))
            try:
                if read1 is not None:  # what has arrived, not a full chunk: the deadline holds
                    chunk = read1(BODY_CHUNK, decode_content=True)
                else:
                    chunk = raw.read(BODY_CHUNK, decode_content=True)
            except (urllib3_exceptions.HTTPError, OSError) as exc:
                self._remaining(target)
                raise DciUnreachable(
                    clean_text(f"the answer from {self.host} broke off: {_reason(exc)}",
                               self._secrets()),
                    object=self.host, detail=f"{target.name}: body read failed") from None
            if not chunk:
                break
            if body.size + len(chunk) > limit:
                raise self._too_large(target, response)  # the caller drops the connection
            body.add(chunk)
        response._content = body.join()  # requests' own slot: .content / .json() use it

    def _too_large(self, target: Route, response: requests.Response) -> AnswerTooLarge:
        return AnswerTooLarge(route=target.name, limit=self.limits.max_answer_bytes,
                              http_status=response.status_code)


class _BoundedBody:
    """An answer's bytes in segments of BODY_SEGMENT: no buffer larger than a segment is ever
    copied to grow, and a flood of tiny reads costs no more than its bytes, so the memory an
    answer holds before the limit cuts it is the limit plus one segment."""

    def __init__(self) -> None:
        self._full: list[bytearray] = []
        self._current = bytearray()
        self.size = 0

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        view = memoryview(chunk)
        while view:
            room = BODY_SEGMENT - len(self._current)
            self._current += view[:room]
            view = view[room:]
            if len(self._current) == BODY_SEGMENT:
                self._full.append(self._current)
                self._current = bytearray()

    def join(self) -> bytes:
        """The whole body, copied once."""
        if not self._full:
            return bytes(self._current)
        return b"".join([*self._full, self._current])


def _tighten_socket(raw: Any, seconds: float) -> None:
    """Let the next read wait no longer than `seconds` (the deadline's remainder)."""
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.settimeout(max(seconds, 0.001))


def _retry_after(response: requests.Response) -> float | None:
    """The panel's Retry-After in seconds (delta or HTTP date), capped; None when absent."""
    value = (response.headers.get("Retry-After") or "").strip()
    if not value:
        return None
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.UTC)
        seconds = (when - datetime.datetime.now(datetime.UTC)).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _decoded_json(response: requests.Response) -> Any:
    """The body as JSON. ValueError when it is not JSON, including JSON nested deeper than
    Python's parser goes (it raises RecursionError: a hostile `[[[[...` must not escape)."""
    try:
        return response.json()
    except RecursionError:
        raise ValueError("non-JSON body: nested too deep to parse") from None
    except ValueError:
        raise ValueError("non-JSON body") from None


def _json_or_none(response: requests.Response) -> Any:
    try:
        return _decoded_json(response)
    except ValueError:
        return None


def _reason(exc: BaseException) -> str:
    """The innermost cause's message: the useful part of urllib3's long wrappers."""
    inner: BaseException = exc
    while True:
        nested = inner.args[0] if inner.args and isinstance(inner.args[0], BaseException) else None
        nested = nested or getattr(inner, "reason", None) or inner.__cause__
        if not isinstance(nested, BaseException) or nested is inner:
            break
        inner = nested
    return str(inner) or type(inner).__name__
