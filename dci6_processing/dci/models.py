"""Typed DCImanager 6 objects (pydantic). Unknown fields are ignored; enum-like fields are
open strings compared against the known constants below, so a new panel value never breaks
parsing."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class OperationStatus:
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    CANCELED = "canceled"
    FINISHED = (OK, FAILED, CANCELED)


class PowerStatus:
    ON = "on"
    OFF = "off"
    UNKNOWN = "unknown"


class PortStatus:
    UP = "up"
    DOWN = "down"


class IpFamily:
    V4 = "ipv4"
    V6 = "ipv6"


class UserRole:
    ADMIN = "@admin"  # any role containing it is an administrator
    USER = "@user"


class OsFamily:
    LINUX = "linux"
    WINDOWS = "windows"


class Operation(_Model):
    id: int | None = None
    status: str | None = None
    status_info: str | None = None
    progress_info: Any = None

    @field_validator("status_info", mode="before")
    @classmethod
    def _status_info_as_text(cls, value: Any) -> str | None:
        """The reason as text, whether the panel sends a string or (as ISPsystem's sample
        answer shows) an object: `{}` is no reason, `{"msg": ...}` its message, any other
        object its compact JSON."""
        if value is None or isinstance(value, str):
            return value or None
        if isinstance(value, dict):
            if not value:
                return None
            for key in ("msg", "message", "error", "reason", "description"):
                text = value.get(key)
                if isinstance(text, str) and text:
                    return text
        if isinstance(value, (dict, list)):
            return json.dumps(value, ensure_ascii=False, sort_keys=True)[:500]
        return str(value)

    @property
    def is_running(self) -> bool:
        return (self.status or "").lower() == OperationStatus.RUNNING

    @property
    def is_ok(self) -> bool:
        return (self.status or "").lower() == OperationStatus.OK

    @property
    def is_failed(self) -> bool:
        return (self.status or "").lower() == OperationStatus.FAILED


class OsTemplateRef(_Model):
    id: int | None = None
    name: str | None = None
    tags: list[str] = Field(default_factory=list)


class ServerIp(_Model):
    id: int
    name: str  # the address itself, e.g. 203.0.113.7 or 2001:db8::/64
    family: str = IpFamily.V4
    gateway: str | None = None
    network: str | None = None
    status: str | None = None

    @property
    def address(self) -> str:
        return self.name


class SwitchConnection(_Model):
    id: int
    switch: Any = None  # the switch: an object with `id`, or its id
    connection_id: int | None = None  # the switch's port (as /switch/{id}/port lists it)
    description: str | None = None
    admin_status: str | None = None
    oper_status: str | None = None
    is_ipmi_connection: bool = False

    @property
    def switch_id(self) -> int | None:
        raw = self.switch.get("id") if isinstance(self.switch, dict) else self.switch
        return raw if isinstance(raw, int) and not isinstance(raw, bool) else None


class Server(_Model):
    id: int
    name: str = ""
    domain: str | None = None
    configuration: str | None = None
    location_id: int | None = None
    owner: int | None = None
    owner_email: str | None = None
    is_new: bool = False
    state: str | None = None
    power_status: str | None = None
    operation: Operation | None = None
    os_template: OsTemplateRef | None = None
    ip: list[ServerIp] = Field(default_factory=list)
    switch_connection: list[SwitchConnection] = Field(default_factory=list)
    maintenance_mode: bool = False

    @field_validator("ip", "switch_connection", mode="before")
    @classmethod
    def _null_list(cls, value: Any) -> Any:
        return [] if value is None else value

    @property
    def has_owner(self) -> bool:
        return self.owner is not None or bool(self.owner_email)

    @property
    def is_free(self) -> bool:
        """DCImanager's rule for billing: no owner, not new, last operation ok/canceled or
        none, not in maintenance."""
        op_status = (self.operation.status or "").lower() if self.operation else ""
        return (
            not self.has_owner
            and not self.is_new
            and not self.maintenance_mode
            and op_status in ("", OperationStatus.OK, OperationStatus.CANCELED)
        )

    @property
    def data_ports(self) -> list[SwitchConnection]:
        """Switch ports that carry the client's traffic (not the IPMI link)."""
        return [c for c in self.switch_connection if not c.is_ipmi_connection]

    @property
    def is_powered_on(self) -> bool:
        return (self.power_status or "").lower() == PowerStatus.ON

    def ips(self, family: str) -> list[ServerIp]:
        return [ip for ip in self.ip if ip.family == family]


def _roles(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip().strip("[]")
        return [part.strip().strip("'\"") for part in text.split(",") if part.strip()]
    if not isinstance(value, list | tuple):
        # pydantic turns a ValueError into a ValidationError (BadAnswer); a TypeError escapes
        raise ValueError(f"roles must be a list or a string, not {type(value).__name__}")
    return [str(part) for part in value]


class User(_Model):
    id: int
    email: str
    roles: list[str] = Field(default_factory=list)
    server_count: int | None = None

    @field_validator("roles", mode="before")
    @classmethod
    def _parse_roles(cls, value: Any) -> list[str]:
        return _roles(value)

    @property
    def is_admin(self) -> bool:
        return any(UserRole.ADMIN in role for role in self.roles)


class Configuration(_Model):
    configuration: str
    free_server_count: int = 0

    @property
    def name(self) -> str:
        return self.configuration


class IpPool(_Model):
    id: int
    name: str
    family: str = IpFamily.V4


class OsTemplate(_Model):
    id: int
    name: str
    tags: list[str] = Field(default_factory=list)
    os_family: str = OsFamily.LINUX


class Location(_Model):
    id: int
    name: str
