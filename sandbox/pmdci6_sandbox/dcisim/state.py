"""The simulated panel's state: servers, users, pools, tokens, operations on a clock.

Every public method takes the one lock, so concurrent requests see a consistent panel. Timed
changes (operations, power) are evaluated lazily: whatever reads a server first settles the
changes whose time has come. Panel-level failures are raised as `PanelError`, which the HTTP
layer turns into the spec's error body.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from pmdci6_sandbox.dcisim.inventory import SERVER_FIELDS, Inventory
from pmdci6_sandbox.dcisim.pools import (
    AddressPool,
    AllocationRefused,
    PoolExhausted,
    family_of,
)
from pmdci6_sandbox.dcisim.query import (
    QuerySyntaxError,
    apply_orderby,
    parse_limit,
    parse_orderby,
    parse_where,
)

OperationKind = Literal["install", "diag"]
OPERATION_KINDS: tuple[OperationKind, ...] = ("install", "diag")
USER_FIELDS = ("id", "email", "roles", "server_count")
CONFIGURATION_FIELDS = ("configuration", "free_server_count")
SWITCH_PORT_FIELDS = ("id", "server_id", "description", "admin_status", "oper_status",
                      "is_ipmi_connection")
FREE_OPERATION_STATUSES = (None, "ok", "canceled")
KEY_LIFETIME = 3600.0  # seconds a login key stays valid (DCImanager KB: one hour); not scaled


class PanelError(Exception):
    """An error the panel answers with: HTTP status plus the spec's error body."""

    def __init__(self, status: int, code: int, msg: str, value: dict[str, Any] | None = None):
        super().__init__(f"{status} {code} {msg}")
        self.status = status
        self.code = code
        self.msg = msg
        self.value = value or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "msg": self.msg, "value": self.value}}


def bad_request(detail: str) -> PanelError:
    return PanelError(400, 1000, f"Bad request: {detail}")


def not_found(what: str, object_id: object) -> PanelError:
    return PanelError(404, 1004, f"{what} not found", {"id": object_id})


def is_free(server: dict[str, Any]) -> bool:
    """DCImanager's rule for billing: no owner, not new, last operation ok/canceled or none,
    not in maintenance mode."""
    operation = server.get("operation") or {}
    return (
        server.get("owner") is None
        and not server.get("owner_email")
        and not server.get("is_new")
        and not server.get("maintenance_mode")
        and operation.get("status") in FREE_OPERATION_STATUSES
    )


@dataclass
class _User:
    id: int
    email: str
    roles: Any  # served as given: a list ["@user"] or a string "[@user]"
    password_digest: bytes | None = None
    salt: bytes = field(default_factory=lambda: secrets.token_bytes(16))

    def set_password(self, password: str) -> None:
        self.password_digest = hashlib.sha256(self.salt + password.encode()).digest()

    def check_password(self, password: str) -> bool:
        if self.password_digest is None:
            return False
        candidate = hashlib.sha256(self.salt + password.encode()).digest()
        return hmac.compare_digest(candidate, self.password_digest)


@dataclass
class _OperationRun:
    id: int
    kind: OperationKind
    server_id: int
    started: float
    deadline: float | None  # None: hangs until stopped
    outcome: str  # "ok" or "failed"
    reason: str | None
    clear_disks: bool = False
    temporary_ip_id: int | None = None  # diagnostics' address, released at the end


@dataclass
class _LoginKey:
    user_id: int
    expires: float  # on the panel clock
    used: bool = False


@dataclass
class _PowerChange:
    deadline: float
    target: str


@dataclass
class _IpRecord:
    server_id: int
    pool_id: int | None


class PanelState:
    def __init__(
        self,
        inventory: Inventory,
        *,
        time_scale: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if time_scale < 0:
            raise ValueError("time_scale must not be negative")
        self.lock = threading.RLock()
        self.time_scale = time_scale
        self._clock = clock
        self._clock_offset = 0.0
        self.durations = dict(inventory.durations)
        self.admin_email = inventory.admin_email
        self.locations = {int(doc["id"]): dict(doc) for doc in inventory.locations}
        self.os_templates = {int(doc["id"]): dict(doc) for doc in inventory.os_templates}
        self.pools = {
            pool.id: pool for pool in map(AddressPool.from_document, inventory.ip_pools)
        }
        self.users: dict[int, _User] = {}
        self._user_ids_by_email: dict[str, int] = {}
        for doc in inventory.users:
            self._store_user(_User(int(doc["id"]), str(doc["email"]), doc.get("roles", [])))
        admin = self.users[self._user_ids_by_email[inventory.admin_email.casefold()]]
        admin.set_password(inventory.admin_password)
        self.servers: dict[int, dict[str, Any]] = {}
        self._owned_counts: Counter[int] = Counter()
        self._ips: dict[int, _IpRecord] = {}
        self._next_ip_id = 1
        for raw in inventory.servers:
            server = copy.deepcopy(raw)
            self.servers[server["id"]] = server
            self._register_ips(server)
            if server["owner"] is not None:
                self._owned_counts[server["owner"]] += 1
        self.server_ids = sorted(self.servers)
        operation_ids = [
            int(server["operation"]["id"])
            for server in self.servers.values()
            if server["operation"] and isinstance(server["operation"].get("id"), int)
        ]
        self._next_operation_id = max(operation_ids, default=0) + 1
        self._next_user_id = max(self.users, default=0) + 1
        self._runs: dict[int, _OperationRun] = {}
        self._power_changes: dict[int, _PowerChange] = {}
        self._tokens: dict[str, int] = {}
        self._login_keys: dict[str, _LoginKey] = {}
        self._next_key_id = 1
        self.login_keys_refused = False  # fault: the panel will not make keys (e.g. no right)
        self.power_actions: list[tuple[int, str]] = []  # accepted (server id, action)
        self._failures: dict[str, deque[str]] = {kind: deque() for kind in OPERATION_KINDS}
        self._hangs: Counter[str] = Counter()

    def copy(self) -> PanelState:
        """A deep copy of everything the panel holds (servers, users and tokens, IPs, operations
        and their deadlines, pending failures), with a lock of its own and the same clock."""
        with self.lock:
            return copy.deepcopy(self, {id(self.lock): threading.RLock(),
                                        id(self._clock): self._clock})

    # --- clock ------------------------------------------------------------------------------

    def now(self) -> float:
        return self._clock() + self._clock_offset

    def advance(self, panel_seconds: float) -> None:
        """Moves the panel clock forward (scaled like every panel duration)."""
        with self.lock:
            self._clock_offset += panel_seconds * self.time_scale

    def _deadline(self, kind: str) -> float:
        return self.now() + self.durations[kind] * self.time_scale

    # --- users and tokens -------------------------------------------------------------------

    def _store_user(self, user: _User) -> None:
        self.users[user.id] = user
        self._user_ids_by_email[user.email.casefold()] = user.id

    def _user_document(self, user: _User) -> dict[str, Any]:
        roles = copy.deepcopy(user.roles)
        return {
            "id": user.id,
            "email": user.email,
            "roles": roles,
            "server_count": self._owned_counts[user.id],
        }

    def login(self, body: Any) -> dict[str, Any]:
        email = _required_str(body, "email")
        password = _required_str(body, "password")
        with self.lock:
            user_id = self._user_ids_by_email.get(email.casefold())
            user = self.users.get(user_id) if user_id is not None else None
            if user is None or not user.check_password(password):
                raise PanelError(401, 1002, "Invalid email or password")
            token = f"{user.id}-{secrets.token_hex(16)}"
            self._tokens[token] = user.id
            return {"id": str(user.id), "token": token, "expires_at": None, "confirmed": True}

    def authenticate(self, token: str | None) -> int | None:
        if not token:
            return None
        with self.lock:
            return self._tokens.get(token)

    def expire_tokens(self) -> None:
        with self.lock:
            self._tokens.clear()

    def is_admin(self, user_id: int | None) -> bool:
        with self.lock:
            user = self.users.get(user_id) if user_id is not None else None
            roles = user.roles if user is not None else []
            text = roles if isinstance(roles, str) else " ".join(str(r) for r in roles)
            return "@admin" in text

    def create_login_key(self, caller: int | None, user_id: int) -> dict[str, Any]:
        """A one-time key for `user_id` (DCImanager KB "sign in with a key"): single use,
        valid KEY_LIFETIME seconds (expire_login_keys ends them early), bound to that user.
        Only an administrator may ask (inferred)."""
        with self.lock:
            if self.login_keys_refused or not self.is_admin(caller):
                raise PanelError(403, 1006, "Access denied: cannot create a key for this user",
                                 {"id": user_id})
            if user_id not in self.users:
                raise not_found("User", user_id)
            key = secrets.token_urlsafe(24)
            self._login_keys[key] = _LoginKey(user_id, self.now() + KEY_LIFETIME)
            key_id = self._next_key_id
            self._next_key_id += 1
            return {"id": key_id, "key": key}

    def open_key_session(self, key: str) -> tuple[int, str]:
        """Spend a key: (its user's id, a new session token of that user)."""
        with self.lock:
            entry = self._login_keys.get(key)
            if entry is None or entry.used or self.now() >= entry.expires:
                raise PanelError(403, 1007, "The key is invalid, used or expired")
            entry.used = True
            token = f"{entry.user_id}-{secrets.token_hex(16)}"
            self._tokens[token] = entry.user_id
            return entry.user_id, token

    def expire_login_keys(self) -> None:
        with self.lock:
            for entry in self._login_keys.values():
                entry.expires = self.now()

    def list_users(self, query: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            records = [self._user_document(user) for user in self.users.values()]
            return _page(records, query, USER_FIELDS)

    def create_user(self, body: Any) -> dict[str, Any]:
        email = _required_str(body, "email")
        password = _required_str(body, "password")
        role = body.get("role", "@user")
        if not isinstance(role, str) or not role.startswith("@"):
            raise bad_request("role must be a string like '@user'")
        with self.lock:
            user = self.add_user(email, [role], password=password)
            return {"id": user["id"]}

    def add_user(
        self, email: str, roles: Iterable[str] = ("@user",), *, password: str | None = None
    ) -> dict[str, Any]:
        local, _, domain = email.partition("@")
        if not local or "." not in domain or any(char.isspace() for char in email):
            raise bad_request(f"malformed email {email!r}")
        with self.lock:
            if email.casefold() in self._user_ids_by_email:
                raise PanelError(409, 2005, "User already exists", {"email": email})
            user_id = self._next_user_id
            self._next_user_id += 1
            role_list = list(roles)
            # Real panels serve roles both ways; even ids get the string form.
            served: Any = f"[{', '.join(role_list)}]" if user_id % 2 == 0 else role_list
            user = _User(user_id, email, served)
            if password is not None:
                user.set_password(password)
            self._store_user(user)
            return self._user_document(user)

    def user_by_email(self, email: str) -> dict[str, Any] | None:
        with self.lock:
            user_id = self._user_ids_by_email.get(email.casefold())
            return self._user_document(self.users[user_id]) if user_id is not None else None

    # --- servers: reading -------------------------------------------------------------------

    def _settle(self, server_id: int) -> None:
        """Applies the timed changes of one server whose time has come."""
        now = self.now()
        change = self._power_changes.get(server_id)
        if change is not None and now >= change.deadline:
            self.servers[server_id]["power_status"] = change.target
            del self._power_changes[server_id]
        run = self._runs.get(server_id)
        if run is None:
            return
        if run.deadline is not None and now >= run.deadline:
            self._finish(run, run.outcome, run.reason)
        else:
            self.servers[server_id]["operation"]["progress_info"] = _progress(run, now)

    def _settle_all(self) -> None:
        for server_id in list(self._runs) + list(self._power_changes):
            self._settle(server_id)

    def _server(self, server_id: int) -> dict[str, Any]:
        server = self.servers.get(server_id)
        if server is None:
            raise not_found("Server", server_id)
        self._settle(server_id)
        return server

    def get_server(self, server_id: int) -> dict[str, Any]:
        """The live document: callers serialize it while holding the lock."""
        with self.lock:
            return self._server(server_id)

    def server_copy(self, server_id: int) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self._server(server_id))

    def list_servers(self, query: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            self._settle_all()
            where = _parse_where(query, SERVER_FIELDS)
            orderby = _parse_orderby(query, SERVER_FIELDS)
            offset, count = _parse_limit(query)
            if where is None and (not orderby or orderby == [("id", False)]):
                # Fast path: already in id order, serialize only the page.
                ids = self.server_ids[offset : None if count is None else offset + count]
                return {"list": [self.servers[i] for i in ids], "size": len(self.server_ids)}
            records = [self.servers[i] for i in self.server_ids]
            if where is not None:
                records = [record for record in records if where.matches(record)]
            return _slice(_order(records, query, SERVER_FIELDS), offset, count)

    def configurations(self, query: dict[str, str]) -> dict[str, Any]:
        """Free servers per configuration; `where` (inferred) narrows the servers counted."""
        with self.lock:
            self._settle_all()
            where = _parse_where(query, SERVER_FIELDS)
            offset, count = _parse_limit(query)
            counts: Counter[str] = Counter()
            for server in self.servers.values():
                name = server.get("configuration")
                if not name or (where is not None and not where.matches(server)):
                    continue
                counts[name] += 1 if is_free(server) else 0
            records = [
                {"configuration": name, "free_server_count": counts[name]}
                for name in sorted(counts)
            ]
            ordered = _order(records, query, CONFIGURATION_FIELDS, default=None)
            return _slice(ordered, offset, count)

    # --- servers: owner, ports, power ------------------------------------------------------

    def set_owner(self, server_id: int, body: Any) -> dict[str, Any]:
        user_id = _required_int(body, "owner")
        with self.lock:
            server = self._server(server_id)
            user = self.users.get(user_id)
            if user is None:
                raise not_found("User", user_id)
            if server["owner"] is not None or server["owner_email"]:
                raise PanelError(409, 2001, "Server already has an owner", {"id": server_id})
            self._assign_owner(server, user)
            return {"id": server_id}

    def remove_owner(self, server_id: int) -> dict[str, Any]:
        with self.lock:
            self._assign_owner(self._server(server_id), None)
            return {}

    def _assign_owner(self, server: dict[str, Any], user: _User | None) -> None:
        if server["owner"] is not None:
            self._owned_counts[server["owner"]] -= 1
        server["owner"] = user.id if user else None
        server["owner_email"] = user.email if user else None
        if user is not None:
            self._owned_counts[user.id] += 1

    def set_switch_ports(self, server_id: int, enabled: bool) -> dict[str, Any]:
        with self.lock:
            server = self._server(server_id)
            ports = [
                port
                for port in server["switch_connection"]
                if not port.get("is_ipmi_connection")
            ]
            if not ports:
                raise PanelError(400, 2002, "Server has no switch connection", {"id": server_id})
            status = "up" if enabled else "down"
            for port in ports:
                port["admin_status"] = status
                port["oper_status"] = status
            return {}

    def _switch_ports(self, switch_id: int) -> list[tuple[int, dict[str, Any]]]:
        return [(server["id"], port) for server in self.servers.values()
                for port in server["switch_connection"]
                if isinstance(port.get("switch"), dict) and port["switch"].get("id") == switch_id]

    def list_switch_ports(self, switch_id: int, query: dict[str, str]) -> dict[str, Any]:
        """The ports of one switch, each with the server connected to it."""
        with self.lock:
            records = [
                {"id": port.get("connection_id"), "server_id": server_id,
                 "description": port.get("description"),
                 "admin_status": port.get("admin_status"),
                 "oper_status": port.get("oper_status"),
                 "is_ipmi_connection": bool(port.get("is_ipmi_connection"))}
                for server_id, port in self._switch_ports(switch_id)
            ]
            return _page(records, query, SWITCH_PORT_FIELDS)

    def set_switch_port(self, switch_id: int, port_id: int, enabled: bool) -> dict[str, Any]:
        """One switch port on or off (a per-port panel, variants.py); any port, IPMI too."""
        with self.lock:
            for _, port in self._switch_ports(switch_id):
                if port.get("connection_id") == port_id:
                    status = "up" if enabled else "down"
                    port["admin_status"] = status
                    port["oper_status"] = status
                    return {}
            raise not_found("Switch port", port_id)

    def power(self, server_id: int, action: str) -> dict[str, Any]:
        with self.lock:
            server = self._server(server_id)
            status = server["power_status"]
            allowed = {
                "on": status in ("off", "unknown"),
                "off": status == "on",
                "reset": True,
            }
            if action not in allowed:
                raise bad_request(f"unknown power action {action!r}")
            if not allowed[action]:
                raise PanelError(
                    400,
                    2003,
                    "Power action not allowed in current state",
                    {"power_status": status, "action": f"power_{action}"},
                )
            target = "off" if action == "off" else "on"
            self._power_changes[server_id] = _PowerChange(self._deadline("power"), target)
            self.power_actions.append((server_id, f"power_{action}"))
            return {}

    # --- operations -------------------------------------------------------------------------

    def _new_run(
        self, kind: OperationKind, server_id: int, *, clear_disks: bool = False
    ) -> _OperationRun:
        """Starts the clock of a new operation, applying any injected hang or failure."""
        deadline: float | None = self._deadline(kind)
        outcome, reason = "ok", None
        if self._hangs[kind] > 0:
            self._hangs[kind] -= 1
            deadline = None
        elif self._failures[kind]:
            outcome, reason = "failed", self._failures[kind].popleft()
        run = _OperationRun(
            id=self._next_operation_id,
            kind=kind,
            server_id=server_id,
            started=self.now(),
            deadline=deadline,
            outcome=outcome,
            reason=reason,
            clear_disks=clear_disks,
        )
        self._next_operation_id += 1
        return run

    def _begin(self, server: dict[str, Any], run: _OperationRun) -> dict[str, Any]:
        self._runs[server["id"]] = run
        server["operation"] = {
            "id": run.id,
            "status": "running",
            "status_info": None,
            "progress_info": _progress(run, run.started),
        }
        return {"operation": {"id": run.id, "status": "running"}}

    def _ensure_idle(self, server: dict[str, Any]) -> None:
        if server["id"] in self._runs:
            raise PanelError(409, 2004, "Server has a running operation", {"id": server["id"]})

    def install(self, server_id: int, body: Any) -> dict[str, Any]:
        template_id = _required_int(body, "os_template")
        _required_str(body, "password")  # checked, never stored: only the installer sees it
        hostname = _optional(body, "hostname", str)
        ssh_keys = _optional(body, "ssh_keys", list) or []
        if not all(isinstance(key, str) for key in ssh_keys):
            raise bad_request("ssh_keys must be a list of strings")
        _optional(body, "efi", bool)
        temporary_ipv4 = bool(_optional(body, "temporary_ipv4", bool))
        with self.lock:
            server = self._server(server_id)
            template = self.os_templates.get(template_id)
            if template is None:
                raise not_found("OS template", template_id)
            self._ensure_idle(server)
            if temporary_ipv4:
                # Stays on the server after the install, marked "temporary".
                self._allocate(server, self._temporary_pool(None), None, "temporary")
            run = self._new_run("install", server_id)
            server["os_template"] = {
                "id": template["id"],
                "name": template["name"],
                "tags": list(template.get("tags", [])),
            }
            if hostname:
                server["domain"] = hostname
            return self._begin(server, run)

    def diag(self, server_id: int, body: Any) -> dict[str, Any]:
        _optional(body, "diag_template", str)  # e.g. "Diag6"; every template behaves alike here
        clear_disks = bool(_optional(body, "clear_disks", bool))
        pool_id = _optional(body, "ippool", int)
        with self.lock:
            server = self._server(server_id)
            self._ensure_idle(server)
            entry = self._allocate(server, self._temporary_pool(pool_id), None, "temporary")
            run = self._new_run("diag", server_id, clear_disks=clear_disks)
            run.temporary_ip_id = entry["id"]
            return self._begin(server, run)

    def stop_operation(self, server_id: int) -> dict[str, Any]:
        """Cancels the running operation; with none running it is a no-op (inferred)."""
        with self.lock:
            self._server(server_id)
            run = self._runs.get(server_id)
            if run is not None:
                self._finish(run, "canceled", "Operation canceled")
            return {}

    def _finish(self, run: _OperationRun, status: str, reason: str | None) -> None:
        server = self.servers[run.server_id]
        del self._runs[run.server_id]
        progress = {"percent": 100, "step": "done"} if status == "ok" else None
        server["operation"] = {
            "id": run.id,
            "status": status,
            "status_info": reason,
            "progress_info": progress,
        }
        if run.temporary_ip_id is not None:
            self._release_ip(run.temporary_ip_id)
        if status != "ok":
            return
        if run.kind == "install":
            server["power_status"] = "on"
            self._power_changes.pop(run.server_id, None)
        else:
            server["is_new"] = False
            if run.clear_disks:
                server["os_template"] = None

    def fail_operations(self, kind: str, count: int, reason: str) -> None:
        with self.lock:
            self._failures[_kind(kind)].extend([reason] * count)

    def hang_operations(self, kind: str, count: int) -> None:
        with self.lock:
            self._hangs[_kind(kind)] += count

    # --- addresses --------------------------------------------------------------------------

    def _temporary_pool(self, pool_id: int | None) -> AddressPool:
        if pool_id is not None:
            pool = self.pools.get(pool_id)
            if pool is None:
                raise not_found("IP pool", pool_id)
            return pool
        for pool in self.pools.values():
            if pool.for_deallocation:
                return pool
        raise bad_request("no ippool given and no pool is marked for deallocation")

    def _allocate(
        self, server: dict[str, Any], pool: AddressPool, prefix: int | None, status: str
    ) -> dict[str, Any]:
        try:
            name = pool.allocate(prefix)
        except PoolExhausted:
            raise PanelError(
                409, 3001, "No free addresses in pool", {"ippool": pool.id}
            ) from None
        except AllocationRefused as error:
            raise bad_request(str(error)) from None
        entry: dict[str, Any] = {
            "id": self._next_ip_id,
            "name": name,
            "family": pool.family,
            "gateway": pool.gateway,
            "network": name if "/" in name else str(pool.network),
            "status": status,
            "ippool": pool.id,
        }
        self._next_ip_id += 1
        server["ip"].append(entry)
        self._ips[entry["id"]] = _IpRecord(server["id"], pool.id)
        return entry

    def add_ip(self, server_id: int, body: Any) -> dict[str, Any]:
        family = _required_str(body, "family")
        pool_id = _required_int(body, "ippool")
        prefix = _optional(body, "prefix", int)
        if family not in ("ipv4", "ipv6"):
            raise bad_request("family must be ipv4 or ipv6")
        with self.lock:
            server = self._server(server_id)
            pool = self.pools.get(pool_id)
            if pool is None:
                raise not_found("IP pool", pool_id)
            if pool.family != family:
                raise bad_request(f"pool {pool_id} is {pool.family}, not {family}")
            entry = self._allocate(server, pool, prefix, "assigned")
            return {key: entry[key] for key in ("id", "name", "family", "gateway", "network")}

    def remove_ip(self, ip_id: int) -> dict[str, Any]:
        with self.lock:
            if ip_id not in self._ips:
                raise not_found("IP address", ip_id)
            run = self._runs.get(self._ips[ip_id].server_id)
            if run is not None and run.temporary_ip_id == ip_id:
                run.temporary_ip_id = None
            self._release_ip(ip_id)
            return {}

    def _release_ip(self, ip_id: int) -> None:
        record = self._ips.pop(ip_id, None)
        if record is None:
            return
        server = self.servers[record.server_id]
        for entry in [e for e in server["ip"] if e.get("id") == ip_id]:
            server["ip"].remove(entry)
            pool = self.pools.get(record.pool_id) if record.pool_id is not None else None
            if pool is not None:
                pool.release(entry["name"])

    def _register_ips(self, server: dict[str, Any]) -> None:
        """Gives inventory addresses ids and marks them used in the pool that holds them."""
        for entry in server["ip"]:
            name = str(entry["name"])
            entry.setdefault("family", family_of(name))
            pool = next((p for p in self.pools.values() if p.contains(name)), None)
            if not isinstance(entry.get("id"), int) or entry["id"] in self._ips:
                entry["id"] = self._next_ip_id
            self._next_ip_id = max(self._next_ip_id, entry["id"] + 1)
            entry.setdefault("gateway", pool.gateway if pool else None)
            network = str(pool.network) if pool else None
            entry.setdefault("network", name if "/" in name else network)
            entry.setdefault("status", "assigned")
            entry.setdefault("ippool", pool.id if pool else None)
            if pool is not None:
                pool.mark_used(name)
            self._ips[entry["id"]] = _IpRecord(server["id"], pool.id if pool else None)

    def exhaust_pool(self, pool_id: int) -> None:
        with self.lock:
            if pool_id not in self.pools:
                raise KeyError(f"no IP pool {pool_id}")
            self.pools[pool_id].forced_exhausted = True

    # --- catalogue --------------------------------------------------------------------------

    def list_os_templates(self, query: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            records = [self.os_templates[key] for key in sorted(self.os_templates)]
            return _page(records, query, ("id", "name", "tags", "os_family"))

    def list_locations(self, query: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            records = [self.locations[key] for key in sorted(self.locations)]
            return _page(records, query, ("id", "name"))

    def list_pools(self, query: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            records = [self.pools[key].describe() for key in sorted(self.pools)]
            return _page(records, query, ("id", "name", "family", "network", "gateway", "note"))

    # --- test hooks -------------------------------------------------------------------------

    def update_server(self, server_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        """Sets top-level fields as an administrator would in the panel's UI."""
        unknown = set(fields) - (set(SERVER_FIELDS) - {"id"})
        if unknown:
            raise ValueError(f"unknown server fields {sorted(unknown)}")
        with self.lock:
            server = self._server(server_id)
            if "owner" in fields or "owner_email" in fields:
                user_id = fields.get("owner", server["owner"])
                user = self.users.get(user_id) if user_id is not None else None
                if user_id is not None and user is None:
                    raise KeyError(f"no user {user_id}")
                self._assign_owner(server, user)
                if "owner_email" in fields:
                    server["owner_email"] = fields["owner_email"]
            if "operation" in fields:
                run = self._runs.pop(server_id, None)
                if run is not None and run.temporary_ip_id is not None:
                    self._release_ip(run.temporary_ip_id)
            if "power_status" in fields:
                self._power_changes.pop(server_id, None)
            if "ip" in fields:
                for entry in list(server["ip"]):
                    self._release_ip(entry["id"])
            for key, value in fields.items():
                if key not in ("owner", "owner_email"):
                    server[key] = copy.deepcopy(value)
            if "ip" in fields:
                self._register_ips(server)
            return copy.deepcopy(server)


# --- request parsing helpers ------------------------------------------------------------------


def _kind(kind: str) -> OperationKind:
    for known in OPERATION_KINDS:
        if kind == known:
            return known
    raise ValueError(f"operation kind must be one of {OPERATION_KINDS}, got {kind!r}")


def _progress(run: _OperationRun, now: float) -> dict[str, Any]:
    step = "installing" if run.kind == "install" else "diagnostics"
    if run.deadline is None:
        return {"percent": 50, "step": f"{step}: waiting for the server"}
    span = run.deadline - run.started
    percent = 99 if span <= 0 else min(99, int((now - run.started) / span * 100))
    return {"percent": percent, "step": step}


def _required_str(body: Any, name: str) -> str:
    value = body.get(name) if isinstance(body, dict) else None
    if not isinstance(value, str) or not value:
        raise bad_request(f"'{name}' must be a non-empty string")
    return value


def _required_int(body: Any, name: str) -> int:
    value = body.get(name) if isinstance(body, dict) else None
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad_request(f"'{name}' must be an integer")
    return value


def _optional(body: Any, name: str, kind: type) -> Any:
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object")
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise bad_request(f"'{name}' must be of type {kind.__name__}")
    return value


def _parse_where(query: dict[str, str], fields: Iterable[str]) -> Any:
    try:
        return parse_where(query.get("where", ""), fields)
    except QuerySyntaxError as error:
        raise bad_request(f"where: {error}") from None


def _parse_orderby(query: dict[str, str], fields: Iterable[str]) -> list[tuple[str, bool]]:
    try:
        keys = parse_orderby(query.get("orderby", ""), fields)
    except QuerySyntaxError as error:
        raise bad_request(f"orderby: {error}") from None
    return [(".".join(key.field), key.descending) for key in keys]


def _parse_limit(query: dict[str, str]) -> tuple[int, int | None]:
    if "limit" not in query:
        return 0, None
    try:
        return parse_limit(query["limit"])
    except QuerySyntaxError as error:
        raise bad_request(f"limit: {error}") from None


def _order(
    records: list[dict[str, Any]],
    query: dict[str, str],
    fields: Iterable[str],
    default: str | None = "id",
) -> list[dict[str, Any]]:
    keys = parse_orderby(query.get("orderby", ""), fields) if query.get("orderby") else []
    if not keys and default is not None:
        keys = parse_orderby(default, fields)
    return apply_orderby(records, keys) if keys else records


def _slice(records: list[dict[str, Any]], offset: int, count: int | None) -> dict[str, Any]:
    end = None if count is None else offset + count
    return {"list": records[offset:end], "size": len(records)}


def _page(
    records: list[dict[str, Any]], query: dict[str, str], fields: Iterable[str]
) -> dict[str, Any]:
    """where, orderby and limit over a small collection."""
    field_names = tuple(fields)
    where = _parse_where(query, field_names)
    _parse_orderby(query, field_names)
    offset, count = _parse_limit(query)
    if where is not None:
        records = [record for record in records if where.matches(record)]
    return _slice(_order(records, query, field_names), offset, count)
