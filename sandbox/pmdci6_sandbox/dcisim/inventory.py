"""What a simulated panel starts with: admin, locations, OS templates, IP pools, users, servers.

An inventory is plain JSON (see `sandbox/pmdci6_sandbox/inventory.json`). Omitted server
fields take the defaults of `normalize_server`; a server without `switch_connection` gets one
data port and one IPMI port. The admin password is never stored in the packaged file: when an
inventory gives none, a random sandbox-only password is made for it.
"""

from __future__ import annotations

import json
import random
import secrets
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pmdci6_sandbox.dcisim.pools import AddressPool

DEFAULT_DURATIONS = {"install": 600.0, "diag": 900.0, "power": 5.0}

SERVER_FIELDS = (
    "id",
    "name",
    "domain",
    "configuration",
    "location_id",
    "owner",
    "owner_email",
    "is_new",
    "state",
    "power_status",
    "operation",
    "os_template",
    "ip",
    "switch_connection",
    "pdu_connection",
    "maintenance_mode",
)


class InventoryError(ValueError):
    """The inventory document is inconsistent (duplicate id, unknown reference...)."""


@dataclass
class Inventory:
    admin_email: str
    admin_password: str = field(repr=False)
    locations: list[dict[str, Any]]
    os_templates: list[dict[str, Any]]
    ip_pools: list[dict[str, Any]]
    users: list[dict[str, Any]]
    servers: list[dict[str, Any]]
    durations: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_DURATIONS))

    def __post_init__(self) -> None:
        self.servers = [normalize_server(raw) for raw in self.servers]
        self.validate()

    # --- construction ----------------------------------------------------------------------

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> Inventory:
        admin = document.get("admin") or {}
        if not isinstance(admin, dict) or not admin.get("email"):
            raise InventoryError("inventory needs admin.email")
        durations = dict(DEFAULT_DURATIONS)
        durations.update({k: float(v) for k, v in (document.get("durations") or {}).items()})
        return cls(
            admin_email=str(admin["email"]),
            admin_password=str(admin.get("password") or secrets.token_urlsafe(18)),
            locations=list(document.get("locations") or []),
            os_templates=list(document.get("os_templates") or []),
            ip_pools=list(document.get("ip_pools") or []),
            users=list(document.get("users") or []),
            servers=list(document.get("servers") or []),
            durations=durations,
        )

    @classmethod
    def load(cls, path: Path | str) -> Inventory:
        with open(path, encoding="utf-8") as stream:
            document = json.load(stream)
        if not isinstance(document, dict):
            raise InventoryError(f"{path}: an inventory is a JSON object")
        return cls.from_document(document)

    @classmethod
    def default(cls) -> Inventory:
        """The hand-written sandbox inventory shipped with the package."""
        text = resources.files("pmdci6_sandbox").joinpath("inventory.json").read_text(
            encoding="utf-8"
        )
        return cls.from_document(json.loads(text))

    @classmethod
    def generate(cls, servers: int = 10_000, seed: int = 1) -> Inventory:
        """A large, realistic inventory: most servers free, ~5% owned, ~5% new, a few in
        maintenance or without a switch connection. Same seed, same inventory."""
        rng = random.Random(seed)
        base = cls.default()
        configurations = [
            ("i9-9900K-64Gb-2x1024NVMe", 50),
            ("E5-2690v4-128Gb-2x480SSD", 25),
            ("EPYC-7302-256Gb-4x960SSD", 15),
            ("Xeon-E-2388G-32Gb-2x480SSD", 10),
        ]
        names = [name for name, _ in configurations]
        weights = [weight for _, weight in configurations]
        clients = max(1, servers // 200)
        users: list[dict[str, Any]] = [{"id": 1, "email": base.admin_email, "roles": ["@admin"]}]
        for index in range(clients):
            user_id = index + 2
            roles: Any = "[@user]" if user_id % 2 == 0 else ["@user"]
            users.append(
                {"id": user_id, "email": f"client{index + 1}@client.example", "roles": roles}
            )
        pools = [dict(pool) for pool in base.ip_pools]
        for pool in pools:
            if pool["id"] == 1:  # room for every owned server of a large inventory
                pool.update({"network": "198.18.0.0/15", "gateway": "198.18.0.1"})
                pool.pop("range", None)
        location_ids = [int(location["id"]) for location in base.locations]
        owned_ip = 0
        generated: list[dict[str, Any]] = []
        for server_id in range(1, servers + 1):
            roll = rng.random()
            document: dict[str, Any] = {
                "id": server_id,
                "name": f"srv-{server_id:05d}",
                "configuration": rng.choices(names, weights)[0],
                "location_id": rng.choice(location_ids),
            }
            if roll < 0.05:
                owner = rng.randrange(2, clients + 2)
                owned_ip += 1
                document.update(
                    owner=owner,
                    owner_email=users[owner - 1]["email"],
                    power_status="on",
                    domain=f"host{server_id}.client.example",
                    os_template={"id": 1, "name": "Ubuntu 22.04", "tags": ["linux"]},
                    operation={"id": server_id, "status": "ok", "status_info": None},
                    ip=[{"name": _nth_address(owned_ip), "family": "ipv4"}],
                )
            elif roll < 0.10:
                document.update(is_new=True, configuration=None, power_status="unknown")
            elif roll < 0.11:
                document.update(maintenance_mode=True)
            elif roll < 0.12:
                document.update(switch_connection=[_ipmi_port(server_id)])
            generated.append(document)
        return cls(
            admin_email=base.admin_email,
            admin_password=base.admin_password,
            locations=base.locations,
            os_templates=base.os_templates,
            ip_pools=pools,
            users=users,
            servers=generated,
            durations=dict(base.durations),
        )

    # --- checks ----------------------------------------------------------------------------

    def validate(self) -> None:
        def unique_ids(kind: str, items: list[dict[str, Any]]) -> set[int]:
            ids: set[int] = set()
            for item in items:
                if not isinstance(item.get("id"), int):
                    raise InventoryError(f"{kind}: every entry needs an integer id: {item!r}")
                if item["id"] in ids:
                    raise InventoryError(f"{kind}: duplicate id {item['id']}")
                ids.add(item["id"])
            return ids

        location_ids = unique_ids("locations", self.locations)
        unique_ids("os_templates", self.os_templates)
        unique_ids("ip_pools", self.ip_pools)
        user_ids = unique_ids("users", self.users)
        unique_ids("servers", self.servers)
        for pool in self.ip_pools:
            try:
                AddressPool.from_document(pool)
            except (KeyError, ValueError) as error:
                raise InventoryError(f"ip_pools: {error}") from error
        if sum(bool(pool.get("for_deallocation")) for pool in self.ip_pools) > 1:
            raise InventoryError("ip_pools: at most one pool is marked for_deallocation")
        emails = [str(user.get("email", "")).casefold() for user in self.users]
        if len(set(emails)) != len(emails) or not all(emails):
            raise InventoryError("users: every user needs a unique email")
        if self.admin_email.casefold() not in emails:
            raise InventoryError("users: the admin must be one of the users")
        for server in self.servers:
            if server["location_id"] is not None and server["location_id"] not in location_ids:
                raise InventoryError(f"server {server['id']}: unknown location_id")
            if server["owner"] is not None and server["owner"] not in user_ids:
                raise InventoryError(f"server {server['id']}: unknown owner {server['owner']}")
        for kind, seconds in self.durations.items():
            if seconds < 0:
                raise InventoryError(f"durations.{kind} must not be negative")

    def to_document(self) -> dict[str, Any]:
        """The inventory as JSON (without the admin password)."""
        return {
            "admin": {"email": self.admin_email},
            "durations": self.durations,
            "locations": self.locations,
            "os_templates": self.os_templates,
            "ip_pools": self.ip_pools,
            "users": self.users,
            "servers": self.servers,
        }


def _nth_address(index: int) -> str:
    """The index-th host address of the generated public pool 198.18.0.0/15 (skips .0/.1)."""
    base = (198 << 24) | (18 << 16)
    return ".".join(str(((base + index + 1) >> shift) & 0xFF) for shift in (24, 16, 8, 0))


def _data_port(server_id: int) -> dict[str, Any]:
    return {
        "id": server_id * 10 + 1,
        "switch": {"id": 1 + server_id % 4, "name": f"sw-{1 + server_id % 4}"},
        "connection_id": 1000 + server_id,  # the switch's port: its own id, not the link's
        "description": "eth0",
        "admin_status": "up",
        "oper_status": "up",
        "is_ipmi_connection": False,
    }


def _ipmi_port(server_id: int) -> dict[str, Any]:
    return {
        "id": server_id * 10 + 2,
        "switch": {"id": 9, "name": "sw-mgmt"},
        "connection_id": 5000 + server_id,
        "description": "ipmi",
        "admin_status": "up",
        "oper_status": "up",
        "is_ipmi_connection": True,
    }


def _with_port_id(raw: dict[str, Any]) -> dict[str, Any]:
    """A copy of a switch connection with its switch port's id (`connection_id`, which real
    panels serve) made up from the link's id when the inventory leaves it out."""
    port = dict(raw)
    if port.get("connection_id") is None and isinstance(port.get("id"), int):
        port["connection_id"] = 9000 + port["id"]
    return port


def normalize_server(raw: dict[str, Any]) -> dict[str, Any]:
    """A server document with every field the API serves, in a fresh dict."""
    unknown = set(raw) - set(SERVER_FIELDS)
    if unknown:
        raise InventoryError(f"server {raw.get('id')}: unknown fields {sorted(unknown)}")
    if not isinstance(raw.get("id"), int):
        raise InventoryError(f"every server needs an integer id: {raw!r}")
    server_id = int(raw["id"])
    ports = raw.get("switch_connection")
    if ports is None:
        ports = [_data_port(server_id), _ipmi_port(server_id)]
    operation = raw.get("operation")
    os_template = raw.get("os_template")
    return {
        "id": server_id,
        "name": str(raw.get("name") or f"srv-{server_id:05d}"),
        "domain": raw.get("domain"),
        "configuration": raw.get("configuration"),
        "location_id": raw.get("location_id"),
        "owner": raw.get("owner"),
        "owner_email": raw.get("owner_email"),
        "is_new": bool(raw.get("is_new", False)),
        "state": raw.get("state", "ok"),
        "power_status": raw.get("power_status", "off"),
        "operation": dict(operation) if operation else None,
        "os_template": dict(os_template) if os_template else None,
        "ip": [dict(entry) for entry in raw.get("ip") or []],
        "switch_connection": [_with_port_id(port) for port in ports],
        "pdu_connection": [dict(port) for port in raw.get("pdu_connection") or []],
        "maintenance_mode": bool(raw.get("maintenance_mode", False)),
    }
