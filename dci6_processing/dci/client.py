"""The typed DCImanager 6 client: every call the module makes, in the panel's own terms.

Paths come from `routes.py`, filters from `query.py`, transport (login, token reuse, retries,
TLS) from `session.py`, the error class of a refusal from `errors.raise_from_response`; this
module turns answers into `models.py` objects (a malformed one is `BadAnswer`) and re-raises
a refusal, at most, as a new error naming the object it is about. Lists are generators that
hold one page at a time (a few pages when
they are fetched concurrently).
"""

from __future__ import annotations

import collections
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, Unpack, cast

import structlog
from pydantic import BaseModel, ValidationError

from dci6_processing.dci.errors import (
    BadAnswer,
    DciBusy,
    DciConflict,
    DciError,
    DciUnreachable,
    NoSwitchConnection,
    OperationFailed,
    OperationTimedOut,
    PoolExhausted,
    ServerOwned,
)
from dci6_processing.dci.models import (
    Configuration,
    IpPool,
    Location,
    Operation,
    OperationStatus,
    OsTemplate,
    PortStatus,
    Server,
    ServerIp,
    SwitchConnection,
    User,
)
from dci6_processing.dci.pool import map_bounded
from dci6_processing.dci.query import Where
from dci6_processing.dci.routes import DEFAULT_TABLE, KEY_LOGIN_PAGE, LOGIN_PAGE, Route, RouteTable
from dci6_processing.dci.session import DciSession, SessionOptions
from dci6_processing.log import register_secret

log = structlog.get_logger(__name__)

PowerAction = Literal["on", "off", "reset"]
_POWER_ROUTES: dict[str, str] = {
    "on": "server.power_on",
    "off": "server.power_off",
    "reset": "server.power_reset",
}
_ORDERBY = re.compile(r"[A-Za-z_][A-Za-z0-9_.]* (?:asc|desc)")
_M = TypeVar("_M", bound=BaseModel)


@dataclass(frozen=True)
class Backoff:
    """How `wait_for_operation` polls: `initial` seconds, times `factor`, at most
    `maximum`. `clock` and `sleep` are injectable so tests run on fake time."""

    initial: float = 2.0
    factor: float = 1.5
    maximum: float = 30.0
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def intervals(self) -> Iterator[float]:
        interval = max(self.initial, 0.0)
        while True:
            yield min(interval, self.maximum)
            interval = min(interval * self.factor, self.maximum)


class DciClient:
    def __init__(self, url: str, email: str, password: str, *,
                 routes: RouteTable | None = None, **options: Unpack[SessionOptions]) -> None:
        """`options`: the session's (TLS, timeouts and limits, token cache, 503 tries,
        concurrency), as `DciSession` takes and defaults them."""
        self.routes: RouteTable = routes if routes is not None else DEFAULT_TABLE
        self._session = DciSession(url, email, password, routes=self.routes, **options)

    @property
    def concurrency(self) -> int:
        """How many requests this client may have in flight to the panel at once."""
        return self._session.gate.limit

    @property
    def switches_each_port(self) -> bool:
        """Whether switching a server's ports needs its switch connections (one call per
        port: a routes.toml override), not just its id."""
        return self.routes["server.switch_port.enable"].per_port

    @property
    def url(self) -> str:
        return self._session.base_url

    @property
    def request_counts(self) -> collections.Counter[str]:
        """Requests sent per route name, retries and logins included."""
        return self._session.request_counts

    def login(self) -> None:
        """Log in afresh, ignoring any cached token (check_connection, doctor)."""
        self._session.login()

    # reads

    def server(self, server_id: int) -> Server:
        body = self._call("server.get", ids={"server_id": server_id},
                          subject=f"server {server_id}")
        return _parse(Server, body, "server.get")

    def iter_servers(
        self,
        where: Where | None = None,
        *,
        orderby: str | None = "id asc",
        page_size: int = 500,
        concurrent_pages: bool = False,
    ) -> Iterator[Server]:
        """Every server matching `where`. `concurrent_pages`: once the first page gives the
        total, fetch the others `concurrency` at a time (in order all the same). Offsets over
        a panel that changes meanwhile can show a server twice or skip one: callers that
        must see every server confirm the missing ones by id."""
        for raw in self._iterate(self.routes["server.list"], where=where, orderby=orderby,
                                 page_size=page_size,
                                 workers=self.concurrency if concurrent_pages else 1):
            yield _parse(Server, raw, "server.list")

    def free_servers(
        self,
        configuration: str | None,
        location_id: int | None,
        *,
        page_size: int = 100,
    ) -> Iterator[Server]:
        """Servers DCImanager would hand to billing: filtered by the panel, re-checked here
        against the full free rule (the panel's filter cannot see every part of it)."""
        where = Where.all((
            Where.is_null("owner_email"),
            Where.eq("is_new", False),
            Where.eq("configuration", configuration) if configuration is not None else None,
            Where.eq("location_id", location_id) if location_id is not None else None,
        ))
        for server in self.iter_servers(where, page_size=page_size):
            if not server.is_free:
                continue
            if configuration is not None and (
                (server.configuration or "").casefold() != configuration.casefold()
            ):  # the panel compares strings case-insensitively (MySQL collation)
                continue
            if location_id is not None and server.location_id != location_id:
                continue
            yield server

    def configurations(self) -> list[Configuration]:
        body = self._call("server.configuration")
        return [_parse(Configuration, raw, "server.configuration")
                for raw in _envelope(body, "server.configuration")[0]]

    def user_by_email(self, email: str) -> User | None:
        """The panel user with exactly this e-mail (case-insensitive), or None."""
        wanted = email.strip()
        for raw in self._iterate(self.routes["user.list"], where=Where.eq("email", wanted),
                                 orderby=None, page_size=100):
            user = _parse(User, raw, "user.list")
            if user.email.strip().lower() == wanted.lower():
                return user
        return None

    def create_user(self, email: str, password: str, role: str = "@user") -> User:
        register_secret(password)
        body = self._call("user.create", body={"email": email, "password": password,
                                               "role": role}, subject=email)
        user_id = body.get("id") if isinstance(body, dict) else None
        if user_id is None:
            raise BadAnswer("user created but the panel returned no id", object=email)
        return _parse(User, {"id": user_id, "email": email, "roles": [role]}, "user.create")

    def ip_pools(self) -> list[IpPool]:
        return self._list(IpPool, "ippool.list")

    def os_templates(self) -> list[OsTemplate]:
        return self._list(OsTemplate, "os_template.list")

    def locations(self) -> list[Location]:
        return self._list(Location, "location.list")

    # actions

    def set_owner(self, server_id: int, user_id: int) -> None:
        try:
            self._call("server.owner.set", ids={"server_id": server_id},
                       body={"owner": user_id}, subject=f"server {server_id}")
        except DciConflict as exc:
            # NOTE: the spec promises only "a 409-style error if already owned": any refusal
            # of a new owner in the server's state means the server is not ours to take
            raise ServerOwned.recast(exc, object=str(server_id)) from exc

    def remove_owner(self, server_id: int) -> None:
        self._call("server.owner.remove", ids={"server_id": server_id},
                   subject=f"server {server_id}")

    def set_switch_ports(
        self, server_id: int, enabled: bool, ports: Sequence[SwitchConnection] = ()
    ) -> None:
        """Switch the server's data ports: one call for the server, or, when the route
        table says so (an override with a switch port's slots), one call per connected data
        port of `ports` not yet in the wanted state. IPMI connections are never switched."""
        name = "server.switch_port.enable" if enabled else "server.switch_port.disable"
        target = self.routes[name]
        if target.per_port:
            self._set_each_port(target, server_id, enabled, ports)
            return
        try:
            self._call(name, ids={"server_id": server_id}, body={},
                       subject=f"server {server_id}")
        except NoSwitchConnection as exc:
            raise NoSwitchConnection.recast(exc, object=str(server_id)) from exc

    def _set_each_port(
        self, target: Route, server_id: int, enabled: bool, ports: Sequence[SwitchConnection]
    ) -> None:
        calls = [(port, {slot: _port_slot(port, slot) for slot in target.placeholders})
                 for port in ports if not port.is_ipmi_connection]
        connected = [(port, ids) for port, ids in calls
                     if all(value is not None for value in ids.values())]
        if not connected:
            raise NoSwitchConnection("the server has no connected data port",
                                     object=str(server_id),
                                     detail=f"{target.name}: per-port control, no data port")
        wanted = PortStatus.UP if enabled else PortStatus.DOWN
        for port, ids in connected:
            if (port.admin_status or "").lower() != wanted:
                self._session.call(target, ids=cast(dict[str, int], ids), body={},
                                   subject=f"server {server_id} port {port.id}")

    def power(self, server_id: int, action: PowerAction) -> None:
        if action not in _POWER_ROUTES:
            raise ValueError(f"unknown power action {action!r}")
        self._call(_POWER_ROUTES[action], ids={"server_id": server_id}, body={},
                   subject=f"server {server_id}")

    def create_login_key(self, user_id: int) -> str:
        """A one-time key that opens a session of this user (`{"id", "key"}`); the key is a
        credential, masked in every log line from here on."""
        answer = self._call("auth.user.key.create", ids={"user_id": user_id}, body={},
                            subject=f"user {user_id}")
        key = answer.get("key") if isinstance(answer, dict) else None
        if not isinstance(key, str) or not key:
            raise BadAnswer("the panel answered a key request without a key",
                           object=f"user {user_id}", detail="auth.user.key.create: no 'key'")
        register_secret(key)
        return key

    def key_login_url(self, key: str) -> str:
        """Where a browser opens the session of a login key."""
        try:
            return self.url + KEY_LOGIN_PAGE.path(key=key)
        except ValueError:
            raise BadAnswer("the panel issued a login key that cannot be put in a URL",
                           object="auth.user.key.create") from None

    @property
    def login_page_url(self) -> str:
        return self.url + LOGIN_PAGE.path()

    def stop_operation(self, server_id: int) -> None:
        self._call("server.operation.stop", ids={"server_id": server_id}, body={},
                   subject=f"server {server_id}")

    def add_ip(
        self, server_id: int, family: str, pool_id: int, prefix: int | None = None
    ) -> ServerIp:
        body: dict[str, Any] = {"family": family, "ippool": pool_id}
        if prefix is not None:
            body["prefix"] = prefix
        try:
            answer = self._call("server.ip.add", ids={"server_id": server_id}, body=body,
                                subject=f"server {server_id}")
        except PoolExhausted as exc:
            raise PoolExhausted.recast(exc, object=str(pool_id)) from exc
        if isinstance(answer, dict):
            answer = {"family": family, **answer}
        return _parse(ServerIp, answer, "server.ip.add")

    def remove_ip(self, ip_id: int) -> None:
        self._call("ip.remove", ids={"ip_id": ip_id}, subject=f"ip {ip_id}")

    def install_os(
        self,
        server_id: int,
        *,
        template_id: int,
        password: str,
        hostname: str,
        temporary_ipv4: bool = False,
        ssh_keys: Sequence[str] = (),
        efi: bool = False,
    ) -> Operation:
        register_secret(password)
        body = {
            "os_template": template_id,
            "password": password,
            "ssh_keys": list(ssh_keys),
            "hostname": hostname,
            "efi": efi,
            "temporary_ipv4": temporary_ipv4,
        }
        answer = self._call("server.operation.install", ids={"server_id": server_id},
                            body=body, subject=f"server {server_id}")
        return _operation(answer, "server.operation.install")

    def run_diagnostics(
        self, server_id: int, *, template: str, clear_disks: bool, pool_id: int | None
    ) -> Operation:
        body: dict[str, Any] = {"diag_template": template, "clear_disks": clear_disks}
        if pool_id is not None:
            body["ippool"] = pool_id
        answer = self._call("server.operation.diag", ids={"server_id": server_id},
                            body=body, subject=f"server {server_id}")
        return _operation(answer, "server.operation.diag")

    def wait_for_operation(
        self,
        server_id: int,
        *,
        timeout: float,
        operation_id: int | None = None,
        poll: Backoff | None = None,
    ) -> Server:
        """Poll the server until its operation (or `operation_id`) finishes.

        ok -> the server; failed or canceled -> OperationFailed with the panel's reason;
        a newer operation replacing ours -> OperationFailed (its outcome is unknown);
        still running at the deadline -> OperationTimedOut. A transient panel error while
        polling (busy, unreachable) does not end the wait: only the deadline does. A poll
        past its request deadline (DeadlineExceeded) is not transient and ends the wait.
        """
        poll = poll or Backoff()
        deadline = poll.clock() + timeout
        intervals = poll.intervals()
        last: Server | None = None
        last_error: DciError | None = None
        while True:
            try:
                last = self.server(server_id)
                last_error = None
            except (DciBusy, DciUnreachable) as exc:  # never DeadlineExceeded: see above
                last_error = exc
                log.warning("dci.operation.poll_failed", server_id=server_id,
                            error=exc.type.value)
            if last is not None and last_error is None:
                finished = _finished(last, operation_id)
                if finished is not None:
                    return finished
            remaining = deadline - poll.clock()
            if remaining <= 0:
                raise OperationTimedOut(
                    _still_running(last, operation_id, last_error), object=str(server_id),
                    detail=f"waited {timeout:g} s")
            poll.sleep(min(next(intervals), remaining))

    # any route (doctor's probes)

    def call(
        self,
        target: Route,
        *,
        ids: Mapping[str, int] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        """One route's raw JSON answer, for `doctor`'s probes; the lifecycle never uses it."""
        return self._session.call(target, ids=ids, params=params)

    def get_document(self, url: str) -> tuple[int, str, bytes]:
        """(HTTP status, content type, body) of a page on the panel such as its API
        description at /swagger/; never a route that changes state."""
        response = self._session.get_document(url)
        return response.status_code, response.headers.get("Content-Type", ""), response.content

    # plumbing

    def _call(
        self,
        name: str,
        *,
        ids: Mapping[str, int] | None = None,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        subject: str | None = None,
    ) -> Any:
        return self._session.call(self.routes[name], ids=ids, params=params, body=body,
                                  subject=subject)

    def _list(self, model: type[_M], name: str) -> list[_M]:
        return [_parse(model, raw, name)
                for raw in self._iterate(self.routes[name], where=None, orderby=None,
                                         page_size=500)]

    def _iterate(
        self,
        target: Route,
        *,
        where: Where | None,
        orderby: str | None,
        page_size: int,
        workers: int = 1,
    ) -> Iterator[Any]:
        """Every item of a list route, one `limit=<offset>,<count>` page in memory at a time;
        with `workers` > 1, the pages after the first are fetched that many at a time once the
        first one has told the total (`size`)."""
        if page_size < 1:
            raise ValueError("page_size must be positive")
        if orderby is not None and not _ORDERBY.fullmatch(orderby):
            raise ValueError(f"orderby must be '<field> asc|desc', got {orderby!r}")

        def page(offset: int, count: int) -> tuple[list[Any], int | None]:
            params = {"limit": f"{offset},{count}"}
            if where is not None:
                params["where"] = str(where)
            if orderby is not None:
                params["orderby"] = orderby
            return _envelope(self._session.call(target, params=params), target.name)

        previous_edges: tuple[Any, Any] | None = None

        def checked(items: list[Any], offset: int) -> list[Any]:
            nonlocal previous_edges
            edges = (items[0], items[-1]) if items else None
            if edges is not None and edges == previous_edges:
                # a panel (or proxy) ignoring `limit` would be paged through forever
                raise BadAnswer(f"the panel answered the same page again at offset {offset}",
                                object=target.name,
                                detail=f"{target.name}: the limit parameter is ignored")
            previous_edges = edges
            return items

        items, size = page(0, page_size)
        if workers > 1 and size is not None and items:
            yield from checked(items, 0)
            step = len(items)  # the panel's own page size, should it cap ours
            offsets = range(step, size, step)
            pages = map_bounded(lambda offset: (offset, page(offset, step)[0]), offsets, workers)
            for offset, more in pages:
                yield from checked(more, offset)
            return
        offset = 0
        while True:
            yield from checked(items, offset)
            offset += len(items)
            if not items or (size is not None and offset >= size):
                return
            if size is None and len(items) < page_size:
                return
            items, size = page(offset, page_size)


def _port_slot(port: SwitchConnection, slot: str) -> int | None:
    """A per-port route's slot value for one switch connection (see routes.PER_PORT_SLOTS)."""
    return {"switch_id": port.switch_id, "port_id": port.connection_id,
            "connection_id": port.id}.get(slot)


def _envelope(body: Any, name: str) -> tuple[list[Any], int | None]:
    """(list, size) of the spec's list envelope."""
    if not isinstance(body, dict) or not isinstance(body.get("list"), list):
        raise BadAnswer("the panel's list answer has no 'list'", object=name,
                       detail=f"{name}: unexpected list envelope")
    size = body.get("size")
    total = size if isinstance(size, int) and not isinstance(size, bool) else None
    return body["list"], total


def _parse(model: type[_M], raw: Any, name: str) -> _M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise BadAnswer(f"unexpected answer from the panel ({where}: {first['msg']})",
                       object=name, detail=f"{name}: {model.__name__} validation") from None


def _operation(answer: Any, name: str) -> Operation:
    raw = answer.get("operation", answer) if isinstance(answer, dict) else answer
    return _parse(Operation, raw, name)


def _finished(server: Server, operation_id: int | None) -> Server | None:
    """The server when the awaited operation has ended well; raises when it ended badly;
    None while it is still going (or not yet visible)."""
    op = server.operation
    if op is None:
        return server if operation_id is None else None
    if operation_id is not None and op.id != operation_id:
        if op.id is not None and op.id > operation_id:
            raise OperationFailed(
                f"operation {operation_id} was replaced by operation {op.id} "
                f"({op.status or 'unknown'})", object=str(server.id))
        return None
    status = (op.status or "").lower()
    if status == OperationStatus.OK:
        return server
    if status in (OperationStatus.FAILED, OperationStatus.CANCELED):
        reason = op.status_info or status
        raise OperationFailed(reason if status == OperationStatus.FAILED
                              else f"canceled: {reason}" if op.status_info else "canceled",
                              object=str(server.id), detail=f"operation {op.id} {status}")
    return None


def _still_running(
    server: Server | None, operation_id: int | None, error: DciError | None
) -> str:
    if server is None:
        return f"panel unreachable while waiting: {error.value if error else 'no answer'}"
    op = server.operation
    if op is None or (operation_id is not None and op.id != operation_id):
        return f"operation {operation_id} never appeared on the server"
    progress = f", progress {op.progress_info}" if op.progress_info not in (None, "", {}) else ""
    text = f"operation {op.id} still {op.status or 'running'}{progress}"
    if error is not None:
        text += f"; last poll: {error.value}"
    return text
