"""One authenticated conversation with a DCImanager 6 panel.

What the spec's "Transport" section asks, in one place:
- login with POST /api/auth/v4/public/token; afterwards every request carries the token as
  `x-xsrf-token`, cookie `ses6` and `isp-box-instance: true`;
- the token is reused across processes through a 0600 file in a 0700 directory, named by
  sha256 of the panel URL and the e-mail (never the password), written atomically;
- HTTP 401 on a call: log in again once and repeat the call; a second 401 is bad credentials;
  a 401 on login itself is bad credentials at once;
- HTTP 503 (the platform waking a suspended service): retried with a short growing backoff
  for GET, POST and DELETE, `retries_503` tries in all, then DciBusy;
- every answer >= 400 becomes its typed error in `errors.raise_from_response` (one place);
- a dropped connection is retried a couple of times for GET only (a POST may have landed);
- every request has a timeout; TLS is verified by default, against a CA bundle when given;
  verification off must be asked for and logs a warning once per panel;
- one session may serve several threads (the cron sync's workers): at most `concurrency`
  requests are in flight, a 503 holds every thread back, a rejected token is renewed once
  however many threads saw it rejected, and each thread has its own HTTP connection pool
  (`pool.py`).
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import os
import secrets
import stat
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import requests
import structlog
from urllib3.exceptions import InsecureRequestWarning

from dci6_processing.dci.errors import (
    BadAnswer,
    DciTlsError,
    DciUnreachable,
    clean_text,
    raise_from_response,
)
from dci6_processing.dci.pool import HttpSessions, PanelGate
from dci6_processing.dci.routes import Route, route
from dci6_processing.log import register_secret

log = structlog.get_logger(__name__)

XSRF_HEADER = "x-xsrf-token"
SESSION_COOKIE = "ses6"
BOX_HEADER = "isp-box-instance"
DEFAULT_TIMEOUT = 60.0  # seconds per request, as ISPsystem's PHP library
DEFAULT_503_TRIES = 10  # ISPsystem's own example
MAX_503_DELAY = 2.0
DROPPED_GET_RETRIES = 2
DROPPED_RETRY_DELAY = 0.1

_warned_insecure: set[str] = set()


class TokenCache:
    """The panel token shared by every process of this module for one (URL, e-mail)."""

    def __init__(self, directory: Path, url: str, email: str) -> None:
        self.directory = directory
        key = hashlib.sha256(f"{url}\n{email}".encode()).hexdigest()
        self.path = directory / f"{key}.json"

    def load(self) -> str | None:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return None
        try:
            info = os.fstat(fd)
            if info.st_mode & 0o077 or info.st_uid != os.getuid():
                # someone else could read or planted it: do not trust it
                log.warning("dci.token_cache.untrusted", path=str(self.path))
                with contextlib.suppress(OSError):
                    self.path.unlink()
                return None
            with os.fdopen(fd, "r", encoding="utf-8") as handle:
                fd = -1
                data = json.load(handle)
        except (OSError, ValueError):
            return None
        finally:
            if fd >= 0:
                os.close(fd)
        token = data.get("token") if isinstance(data, dict) else None
        return token if isinstance(token, str) and token else None

    def store(self, token: str) -> None:
        try:
            self._ensure_directory()
            tmp = self.directory / f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                os.fchmod(fd, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump({"token": token, "saved_at": int(time.time())}, handle)
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


class DciSession:
    """Sends one route's request and returns its JSON, or raises a typed DciError."""

    def __init__(
        self,
        url: str,
        email: str,
        password: str,
        *,
        verify: bool | str = True,
        timeout: float = DEFAULT_TIMEOUT,
        token_cache_dir: Path | None = None,
        retries_503: int = DEFAULT_503_TRIES,
        backoff: float = 0.2,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] | None = None,
        concurrency: int = 1,
    ) -> None:
        self.base_url = url.strip().rstrip("/")
        if not self.base_url.startswith(("http://", "https://")):
            self.base_url = "https://" + self.base_url
        self.email = email
        self._password = password
        self.timeout = timeout
        self.retries_503 = max(1, retries_503)
        self.backoff = backoff
        self._sleep = sleep or time.sleep
        self._http = HttpSessions(session)
        self.gate = PanelGate(concurrency, sleep=self._sleep)
        self._token: str | None = None
        self._auth_lock = threading.RLock()  # one login at a time, whatever the threads
        self._cache = TokenCache(token_cache_dir, self.base_url, email) if token_cache_dir else None
        self.request_counts: collections.Counter[str] = collections.Counter()
        self._count_lock = threading.Lock()
        self.verify = self._tls_verify(verify)
        register_secret(password)

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
        login_route = route("auth.token")
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
            return self._token or self.login()

    def _renewed_token(self, rejected: str) -> str:
        """A token to replace `rejected`: the one another thread already got, or a new login."""
        with self._auth_lock:
            if self._token is not None and self._token != rejected:
                return self._token
            if self._cache is not None:
                self._cache.forget(rejected)
            self._token = None
            return self.login()

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
            return response.json()
        except ValueError:
            raise BadAnswer("the panel's answer is not JSON", object=subject,
                            http_status=response.status_code,
                            detail=f"{target.name}: non-JSON body") from None

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
                delay = min(self.backoff * 2**attempt, MAX_503_DELAY)
                log.info("dci.busy.retry", route=target.name, attempt=attempt + 1, delay=delay)
                self.gate.hold(delay)  # the other threads wait too
                self._sleep(delay)
        self._raise(target, path, response, subject=self.host,
                    detail=f"{target.name}: 503 after {self.retries_503} tries")

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
            with self._count_lock:
                self.request_counts[target.name] += 1
            started = time.monotonic()
            try:
                with self.gate.slot():
                    response = self._http.current().request(
                        target.method, self.base_url + path,
                        params=dict(params or {}) or None,
                        json=dict(body) if body is not None else None, headers=headers,
                        timeout=self.timeout, verify=self.verify, allow_redirects=False,
                    )
            except requests.exceptions.SSLError as exc:
                raise DciTlsError(
                    clean_text(f"TLS handshake with {self.host} failed: {_reason(exc)}",
                               self._secrets()),
                    object=self.host, detail=target.name) from None
            except requests.exceptions.Timeout:
                raise DciUnreachable(
                    f"no answer from {self.host} within {self.timeout:g} s",
                    object=self.host, detail=f"{target.name}: timeout") from None
            except requests.exceptions.ConnectionError as exc:
                if attempt + 1 < tries:
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


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
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
