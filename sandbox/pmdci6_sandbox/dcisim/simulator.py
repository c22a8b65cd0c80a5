"""The simulated panel over real HTTP on loopback (stdlib ThreadingHTTPServer).

Every connection has its own thread, so concurrent requests are served concurrently, as a
real panel's nginx and workers serve them; the panel's state takes one lock per action, the
request log another. `latency_ms` (± `jitter_ms`) delays every answer the way a real panel's
tens of milliseconds do; the delay is spent outside both locks, so N requests sent together
take one latency, not N.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import random
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import structlog

from dci6_processing.log import register_secret
from pmdci6_sandbox.dcisim import openapi
from pmdci6_sandbox.dcisim.faults import Faults
from pmdci6_sandbox.dcisim.inventory import Inventory
from pmdci6_sandbox.dcisim.state import PanelError, PanelState
from pmdci6_sandbox.dcisim.variants import Variant, variant

log = structlog.get_logger(__name__)

Action = Callable[[PanelState, dict[str, int], dict[str, str], Any], Any]

GATEWAY_404 = "<html><head><title>404 Not Found</title></head><body><center><h1>404 Not Found" \
              "</h1></center><hr><center>nginx</center></body></html>\n"
FAULT_ANSWERS = {
    503: PanelError(503, 503, "Service temporarily unavailable"),
    500: PanelError(500, 500, "Internal server error"),
}


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    query: dict[str, str]
    status: int  # 0: the connection was dropped without an answer
    route: str  # a stable name such as "server.get"; "unknown" for no route


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    pattern: re.Pattern[str]
    action: Action
    status: int = 200
    public: bool = False
    path: str = ""  # the template, e.g. /api/dci/v3/server/{server_id}
    renames: tuple[tuple[str, str], ...] = ()  # body fields: (standard name, this panel's)

    def standard_body(self, body: Any) -> Any:
        """The body with this panel's field names turned back into the ones state.py reads."""
        if not self.renames or not isinstance(body, dict):
            return body
        back = {theirs: ours for ours, theirs in self.renames}
        return {back.get(key, key): value for key, value in body.items()
                if key not in dict(self.renames) or key in back}

    def moved(self, path: str) -> Route:
        return dataclasses.replace(_route(self.name, self.method, path, self.action,
                                          self.status, self.public), renames=self.renames)


# the authenticated caller's user id, passed to the routes that depend on who asks
CALLER = "caller"


def _route(
    name: str, method: str, path: str, action: Action, status: int = 200, public: bool = False
) -> Route:
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[0-9]+)", path)
    return Route(name, method, re.compile(f"{regex}/?"), action, status, public, path)


# Browser pages (not the API): a key login opens a session and sends the browser on (inferred:
# a 302 to the interface with the session cookie); the login form is a plain page.
KEY_LOGIN_PAGE = re.compile(r"/auth/key-v4/(?P<key>[A-Za-z0-9_-]{1,512})/?")
LOGIN_PAGE = re.compile(r"/auth/login/?")


_SERVER = "/api/dci/v3/server/{server_id}"

ROUTES: tuple[Route, ...] = (
    _route("auth.token", "POST", "/api/auth/v4/public/token",
           lambda s, a, q, b: s.login(b), status=201, public=True),
    _route("server.list", "GET", "/api/dci/v3/server", lambda s, a, q, b: s.list_servers(q)),
    _route("server.configuration", "GET", "/api/dci/v3/server/configuration",
           lambda s, a, q, b: s.configurations(q)),
    _route("server.get", "GET", _SERVER, lambda s, a, q, b: s.get_server(a["server_id"])),
    _route("server.owner.set", "POST", f"{_SERVER}/owner",
           lambda s, a, q, b: s.set_owner(a["server_id"], b)),
    _route("server.owner.remove", "DELETE", f"{_SERVER}/owner",
           lambda s, a, q, b: s.remove_owner(a["server_id"])),
    _route("server.switch_port.enable", "POST", f"{_SERVER}/switch_port/enable",
           lambda s, a, q, b: s.set_switch_ports(a["server_id"], True)),
    _route("server.switch_port.disable", "POST", f"{_SERVER}/switch_port/disable",
           lambda s, a, q, b: s.set_switch_ports(a["server_id"], False)),
    _route("server.power_on", "POST", f"{_SERVER}/power_on",
           lambda s, a, q, b: s.power(a["server_id"], "on")),
    _route("server.power_off", "POST", f"{_SERVER}/power_off",
           lambda s, a, q, b: s.power(a["server_id"], "off")),
    _route("server.power_reset", "POST", f"{_SERVER}/power_reset",
           lambda s, a, q, b: s.power(a["server_id"], "reset")),
    _route("server.operation.stop", "POST", f"{_SERVER}/operation/stop",
           lambda s, a, q, b: s.stop_operation(a["server_id"])),
    _route("server.operation.install", "POST", f"{_SERVER}/operation/install",
           lambda s, a, q, b: s.install(a["server_id"], b)),
    _route("server.operation.diag", "POST", f"{_SERVER}/operation/diag",
           lambda s, a, q, b: s.diag(a["server_id"], b)),
    _route("server.ip.add", "POST", f"{_SERVER}/ip",
           lambda s, a, q, b: s.add_ip(a["server_id"], b)),
    _route("ip.remove", "DELETE", "/api/dci/v3/ip/{ip_id}",
           lambda s, a, q, b: s.remove_ip(a["ip_id"])),
    _route("user.list", "GET", "/api/dci/v3/user", lambda s, a, q, b: s.list_users(q)),
    _route("user.create", "POST", "/api/dci/v3/user", lambda s, a, q, b: s.create_user(b)),
    _route("os_template.list", "GET", "/api/dci/v3/os_template",
           lambda s, a, q, b: s.list_os_templates(q)),
    _route("location.list", "GET", "/api/dci/v3/location",
           lambda s, a, q, b: s.list_locations(q)),
    _route("ippool.list", "GET", "/api/ip/v3/ippool", lambda s, a, q, b: s.list_pools(q)),
    _route("auth.user.key.create", "POST", "/api/auth/v4/user/{user_id}/key",
           lambda s, a, q, b: s.create_login_key(a[CALLER] or None, a["user_id"]), status=201),
    _route("switch.port.list", "GET", "/api/dci/v3/switch/{switch_id}/port",
           lambda s, a, q, b: s.list_switch_ports(a["switch_id"], q)),
)  # fmt: skip


# Routes only some variant panels serve (variants.py).
EXTRA_ROUTES: tuple[Route, ...] = (
    _route("switch.port.enable", "POST", "/api/dci/v3/switch/{switch_id}/port/{port_id}/enable",
           lambda s, a, q, b: s.set_switch_port(a["switch_id"], a["port_id"], True)),
    _route("switch.port.disable", "POST",
           "/api/dci/v3/switch/{switch_id}/port/{port_id}/disable",
           lambda s, a, q, b: s.set_switch_port(a["switch_id"], a["port_id"], False)),
)


def variant_routes(panel: Variant) -> tuple[Route, ...]:
    """The routes a panel of this variant serves."""
    extra = {route.name: route for route in EXTRA_ROUTES}
    routes: list[Route] = []
    for route in (*ROUTES, *(extra[name] for name in panel.added)):
        if route.name in panel.removed:
            continue
        if route.name in panel.renames:
            route = dataclasses.replace(route, renames=tuple(panel.renames[route.name].items()))
        if route.name in panel.moved:
            route = route.moved(panel.moved[route.name])
        routes.append(route)
    return tuple(routes)


def resolve(
    method: str, path: str, routes: Iterable[Route] = ROUTES
) -> tuple[Route | None, dict[str, int], bool]:
    """The route for a request, its path ids, and whether only the method was wrong."""
    path_known = False
    for route in routes:
        match = route.pattern.fullmatch(path)
        if match is None:
            continue
        if route.method == method:
            return route, {key: int(value) for key, value in match.groupdict().items()}, False
        path_known = True
    return None, {}, path_known


_variant = variant


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _PanelHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512

    def __init__(self, address: tuple[str, int], simulator: DciSimulator) -> None:
        self.simulator = simulator
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _PanelRequestHandler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        context = self.simulator.ssl_context
        if context is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(_PanelRequestHandler.timeout)
        try:
            # Handshake in the worker thread: a stuck client never blocks accept().
            secure = context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            super().finish_request(secure, client_address)
        finally:
            secure.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("dcisim.connection_error", client=str(client_address), exc_info=True)


class _PanelRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real panel's nginx
    server_version = "dcisim"
    sys_version = ""
    timeout = 120
    wbufsize = 64 * 1024  # headers and body leave in one write: no delayed-ACK stall
    server: _PanelHTTPServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Requests go to the simulator's request log, not stderr."""

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _token(self) -> str | None:
        header = self.headers.get("x-xsrf-token")
        if header:
            return header.strip()
        try:
            cookie = SimpleCookie(self.headers.get("Cookie", ""))
        except CookieError:
            return None
        morsel = cookie.get("ses6")
        return morsel.value if morsel is not None else None

    def _handle(self, method: str) -> None:
        simulator = self.server.simulator
        parts = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        body = self._read_body()
        if method == "GET" and self._browser_page(parts.path, query):
            return
        if method == "GET":
            page = openapi.serve(parts.path, simulator.routes)
            if page is not None:
                simulator._log_request(method, parts.path, query, page[0], "swagger")
                self._send(page[0], page[2], page[1])
                return
        route, ids, method_mismatch = resolve(method, parts.path, simulator.routes)
        route_name = route.name if route else "unknown"
        plan = simulator.faults.plan(parts.path)
        if plan.drop:
            simulator._log_request(method, parts.path, query, 0, route_name)
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        latency = simulator.latency_seconds()
        if plan.delay or latency:
            time.sleep(plan.delay + latency)
        content_type = "application/json"
        if plan.status is not None:
            status, payload = plan.status, json.dumps(FAULT_ANSWERS[plan.status].body())
        elif route is None and not method_mismatch:
            # no service has the path: the gateway in front of them answers, not in JSON
            status, payload, content_type = 404, GATEWAY_404, "text/html"
        else:
            status, payload = self._dispatch(route, ids, method_mismatch, query, body)
        simulator._log_request(method, parts.path, query, status, route_name)
        self._send(status, payload.encode(), content_type)

    def _dispatch(
        self,
        route: Route | None,
        ids: dict[str, int],
        method_mismatch: bool,
        query: dict[str, str],
        raw_body: bytes,
    ) -> tuple[int, str]:
        state = self.server.simulator.state
        try:
            caller = state.authenticate(self._token())
            if (route is None or not route.public) and caller is None:
                raise PanelError(401, 1001, "Unauthorized")
            if route is None:
                if method_mismatch:
                    raise PanelError(405, 1000, "Bad request: method not allowed")
                raise PanelError(404, 1004, "Not found")
            body: Any = {}
            if raw_body.strip():
                try:
                    body = json.loads(raw_body)
                except ValueError:
                    raise PanelError(400, 1000, "Bad request: body is not JSON") from None
            body = route.standard_body(body)
            with state.lock:  # serialize live documents before another request changes them
                answer = route.action(state, {**ids, CALLER: caller or 0}, query, body)
                return route.status, json.dumps(answer)
        except PanelError as error:
            return error.status, json.dumps(error.body())
        except Exception:
            log.exception("dcisim.internal_error", route=route.name if route else None)
            return 500, json.dumps(FAULT_ANSWERS[500].body())

    def _browser_page(self, path: str, query: dict[str, str]) -> bool:
        """Serve a key login or the login form; False when the path is no such page."""
        simulator = self.server.simulator
        match = KEY_LOGIN_PAGE.fullmatch(path)
        if match is not None:
            try:
                _, token = simulator.state.open_key_session(match["key"])
            except PanelError as error:
                simulator._log_request("GET", "/auth/key-v4/***", query, error.status,
                                       "page.key_login")
                self._send(error.status, json.dumps(error.body()).encode())
                return True
            simulator._log_request("GET", "/auth/key-v4/***", query, 302, "page.key_login")
            self._send(302, b"", headers={"Location": "/",
                                           "Set-Cookie": f"ses6={token}; Path=/; HttpOnly"})
            return True
        if LOGIN_PAGE.fullmatch(path):
            simulator._log_request("GET", path, query, 200, "page.login")
            self._send(200, b"<html><body><form>DCImanager 6 login</form></body></html>",
                       content_type="text/html")
            return True
        return False

    def _send(self, status: int, payload: bytes, content_type: str = "application/json", *,
              headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True  # the client gave up (e.g. its timeout after `slow`)


class DciSimulator:
    """A stateful DCImanager 6 on loopback. Use as a context manager, or `serve_forever()`."""

    def __init__(
        self,
        inventory: Inventory | None = None,
        *,
        time_scale: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.monotonic,
        certfile: Path | str | None = None,
        keyfile: Path | str | None = None,
        variant: str | None = None,
        latency_ms: float = 0.0,
        jitter_ms: float = 0.0,
        seed: int | None = None,
    ) -> None:
        if not _is_loopback(host):
            raise ValueError(f"the simulator binds to loopback only, not {host!r}")
        inventory = inventory if inventory is not None else Inventory.default()
        self.variant = _variant(variant)
        self.routes = variant_routes(self.variant)
        self.state = PanelState(inventory, time_scale=time_scale, clock=clock)
        self.faults = Faults(self.state.expire_tokens)
        self.admin_email = inventory.admin_email
        self.admin_password = inventory.admin_password
        register_secret(self.admin_password)
        self.ssl_context: ssl.SSLContext | None = None
        if certfile is not None:
            self.ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ssl_context.load_cert_chain(str(certfile), str(keyfile) if keyfile else None)
        self._address = (host, port)
        self._httpd: _PanelHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._requests: list[LoggedRequest] = []
        self._requests_lock = threading.Lock()
        self._random = random.Random(seed)
        self._random_lock = threading.Lock()
        self.set_latency(latency_ms, jitter_ms)

    # --- latency ----------------------------------------------------------------------------

    def set_latency(self, latency_ms: float, jitter_ms: float = 0.0) -> None:
        """Every answer from now on comes `latency_ms` ± `jitter_ms` (uniform) later."""
        if latency_ms < 0 or jitter_ms < 0:
            raise ValueError("latency and jitter must not be negative")
        self.latency_ms = float(latency_ms)
        self.jitter_ms = float(jitter_ms)

    def latency_seconds(self) -> float:
        """How long the next answer waits (never below zero)."""
        if not self.latency_ms and not self.jitter_ms:
            return 0.0
        jitter = 0.0
        if self.jitter_ms:
            with self._random_lock:
                jitter = self._random.uniform(-self.jitter_ms, self.jitter_ms)
        return max(0.0, self.latency_ms + jitter) / 1000.0

    # --- lifecycle --------------------------------------------------------------------------

    def bind(self) -> str:
        """Opens the listening socket (idempotent); returns the base URL."""
        if self._httpd is None:
            self._httpd = _PanelHTTPServer(self._address, self)
        return self.url

    def start(self) -> DciSimulator:
        """Serves in a daemon thread."""
        self.bind()
        if self._thread is None:
            assert self._httpd is not None
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"dcisim-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        self._httpd, self._thread = None, None
        if httpd is not None:
            if thread is not None:
                httpd.shutdown()
                thread.join(timeout=10)
            httpd.server_close()

    def serve_forever(self) -> None:
        """Serves in the calling thread until interrupted."""
        self.bind()
        assert self._httpd is not None
        try:
            self._httpd.serve_forever(poll_interval=0.2)
        finally:
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> DciSimulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the simulator is not bound yet: use `with sim:` or bind()")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        host = self._address[0]
        shown = f"[{host}]" if ":" in host else host
        return f"{scheme}://{shown}:{self.port}"

    @property
    def time_scale(self) -> float:
        return self.state.time_scale

    # --- request log ------------------------------------------------------------------------

    def _log_request(
        self, method: str, path: str, query: dict[str, str], status: int, route: str
    ) -> None:
        with self._requests_lock:
            self._requests.append(LoggedRequest(method, path, query, status, route))

    @property
    def requests(self) -> list[LoggedRequest]:
        with self._requests_lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._requests_lock:
            self._requests.clear()

    # --- snapshot and restore ---------------------------------------------------------------

    def snapshot(self) -> PanelState:
        """The panel's state as it is now, to `restore()` later, as often as wanted: a test
        suite prepares a service once (a real order run through the binary) and starts many
        tests from it."""
        return self.state.copy()

    def restore(self, saved: PanelState) -> None:
        """The panel as it was at `snapshot()` (a fresh copy: `saved` stays reusable), with no
        pending fault, no latency and an empty request log. Call it with no request in
        flight."""
        state = saved.copy()
        self.faults = Faults(state.expire_tokens)
        self.state = state
        self.set_latency(0.0)
        self.clear_requests()

    # --- state, for tests and the demo -------------------------------------------------------

    def server(self, server_id: int) -> dict[str, Any]:
        """A deep copy of the server as `GET /dci/v3/server/{id}` would return it."""
        try:
            return self.state.server_copy(server_id)
        except PanelError as error:
            raise KeyError(f"no server {server_id}") from error

    def servers(self, ids: Iterable[int] | None = None) -> list[dict[str, Any]]:
        """Deep copies of servers (all, or the given ids) in id order."""
        wanted = sorted(self.state.server_ids if ids is None else ids)
        return [self.server(server_id) for server_id in wanted]

    def update_server(self, server_id: int, **fields: Any) -> dict[str, Any]:
        try:
            return self.state.update_server(server_id, fields)
        except PanelError as error:
            raise KeyError(f"no server {server_id}") from error

    def user_by_email(self, email: str) -> dict[str, Any] | None:
        return self.state.user_by_email(email)

    def add_user(
        self, email: str, roles: Iterable[str] = ("@user",), *, password: str | None = None
    ) -> dict[str, Any]:
        try:
            return self.state.add_user(email, roles, password=password)
        except PanelError as error:
            raise ValueError(error.msg) from error

    def exhaust_pool(self, pool_id: int) -> None:
        self.state.exhaust_pool(pool_id)

    def power_actions(self, server_id: int | None = None) -> list[str]:
        """The power requests the panel accepted (`power_on`, `power_off`, `power_reset`), in
        order, for one server or (as "<id>:<action>") for all."""
        with self.state.lock:
            actions = list(self.state.power_actions)
        if server_id is not None:
            return [action for sid, action in actions if sid == server_id]
        return [f"{sid}:{action}" for sid, action in actions]

    def refuse_login_keys(self, refused: bool = True) -> None:
        """Make the panel refuse key creation (403), as one without that right would."""
        self.state.login_keys_refused = refused

    def expire_login_keys(self) -> None:
        self.state.expire_login_keys()

    def session_user(self, token: str) -> dict[str, Any] | None:
        """The user a session token belongs to (as the user list shows it), or None."""
        user_id = self.state.authenticate(token)
        if user_id is None:
            return None
        email = self.state.users[user_id].email
        return self.state.user_by_email(email)

    def fail_operations(
        self, kind: str = "install", count: int = 1, reason: str = "Operation failed"
    ) -> None:
        """The next `count` operations of `kind` end `failed` with `reason` as status_info."""
        self.state.fail_operations(kind, count, reason)

    def hang_operations(self, kind: str = "install", count: int = 1) -> None:
        """The next `count` operations of `kind` stay `running` until stopped."""
        self.state.hang_operations(kind, count)

    def advance(self, panel_seconds: float) -> None:
        """Moves the panel clock forward by `panel_seconds` (scaled by time_scale)."""
        self.state.advance(panel_seconds)
