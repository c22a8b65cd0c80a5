"""Every DCImanager 6 route the module uses, in ONE table: a public contract.

Each route is marked CONFIRMED (found in ISPsystem's public docs or real client code) or
INFERRED (a real instance may answer elsewhere). Each also declares the JSON body fields the
module sends (`body`) and the answer fields its models read (`reads`), so `pmdci6 doctor`
can check them against the panel's own API description (its Swagger at `/swagger/`). The
route names are the keys of an admin's overrides in `etc/pmdci6/routes.toml`
(`dci/overrides.py`), which change a route's method, path or body field names without a
release. Nothing else in the project writes a path: the client asks this table for one.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from dci6_processing.dci.models import (
    IpFamily,
    OperationStatus,
    OsFamily,
    PortStatus,
    PowerStatus,
    UserRole,
)

HttpMethod = Literal["GET", "POST", "DELETE"]
METHODS: tuple[HttpMethod, ...] = ("GET", "POST", "DELETE")
JsonType = Literal["integer", "number", "string", "boolean", "array", "object", "any"]


class Confirmation(StrEnum):
    CONFIRMED = "confirmed"
    INFERRED = "inferred"


CONFIRMED = Confirmation.CONFIRMED
INFERRED = Confirmation.INFERRED


@dataclass(frozen=True)
class Field:
    """A JSON field: one the module sends in a body, or one its models read in an answer.

    `name` goes into objects with `.` and into arrays with `[]` (`operation.status`,
    `ip[].family`); `values` are the constants the code sends or compares against (an
    enumeration the panel's document must list); `optional` body fields are sent only by
    some calls (e.g. an IPv6 `prefix`)."""

    name: str
    type: JsonType
    values: tuple[str, ...] = ()
    optional: bool = False


# Slot sets a switch-port route may have: per server (ours), or per connected port of the
# server's `switch_connection[]` ({switch_id} = its switch, {port_id} = its `connection_id`,
# the switch's port as `GET /switch/{switch_id}/port` lists it, {connection_id} = its `id`).
PER_SERVER_SLOTS = frozenset({"server_id"})
PER_PORT_SLOTS: tuple[frozenset[str], ...] = (
    frozenset({"switch_id", "port_id"}),
    frozenset({"switch_id", "connection_id"}),
    frozenset({"port_id"}),
    frozenset({"connection_id"}),
)


@dataclass(frozen=True)
class Route:
    """One call of the panel: `/api/<service>/<version>/<template>` with `{name}` slots.

    `listing` routes answer the `{"list": [...], "size": N}` envelope and `reads` name the
    fields of one list item. `other_slots` are the slot sets an override may give instead of
    ours (per-port switch control). `renames` (ours -> the panel's body field names) and
    `overridden` come from the admin's routes.toml. `source` is where a CONFIRMED route was
    found (the README lists it beside the route)."""

    name: str
    method: HttpMethod
    service: str
    version: str
    template: str
    confirmation: Confirmation
    note: str = ""
    source: str = ""
    body: tuple[Field, ...] = ()
    reads: tuple[Field, ...] = ()
    listing: bool = False
    other_slots: tuple[frozenset[str], ...] = ()
    renames: tuple[tuple[str, str], ...] = ()
    overridden: bool = False

    @property
    def placeholders(self) -> tuple[str, ...]:
        return tuple(
            field for _, field, _, _ in string.Formatter().parse(self.template) if field
        )

    @property
    def changes_state(self) -> bool:
        return self.method != "GET"

    @property
    def pattern(self) -> str:
        """The path as documentation shows it, slots unfilled."""
        return f"/api/{self.service}/{self.version}/{self.template}"

    @property
    def per_port(self) -> bool:
        """Called once per connected switch port rather than once per server."""
        return frozenset(self.placeholders) in PER_PORT_SLOTS

    def allowed_slots(self) -> tuple[frozenset[str], ...]:
        return (frozenset(self.placeholders), *self.other_slots)

    def panel_body(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The body as the panel names its fields. Every field sent must be declared in
        `body`: the table, not the caller, is what doctor checks."""
        declared = {field.name for field in self.body}
        unknown = sorted(set(body) - declared)
        if unknown:
            raise ValueError(f"route {self.name} does not declare body fields {unknown}")
        renames = dict(self.renames)
        return {renames.get(key, key): value for key, value in body.items()}

    def path(self, **ids: int) -> str:
        """The request path with every slot filled by an integer id.

        Only integers are accepted so no value can add a path segment or a query.
        """
        expected = set(self.placeholders)
        if set(ids) != expected:
            raise ValueError(f"route {self.name} needs {sorted(expected)}, got {sorted(ids)}")
        for key, value in ids.items():
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"route {self.name}: {key} must be an integer id")
        return f"/api/{self.service}/{self.version}/{self.template.format(**ids)}"


def _fields(type_: JsonType, *names: str) -> tuple[Field, ...]:
    return tuple(Field(name, type_) for name in names)


_POWER = (PowerStatus.ON, PowerStatus.OFF, PowerStatus.UNKNOWN)
_OPERATION = (OperationStatus.RUNNING, *OperationStatus.FINISHED)
_FAMILIES = (IpFamily.V4, IpFamily.V6)
_PORTS = (PortStatus.UP, PortStatus.DOWN)

# What models.Server reads of a server, by-id and in lists alike.
SERVER_READS: tuple[Field, ...] = (
    Field("id", "integer"),
    *_fields("string", "name", "domain", "configuration", "owner_email", "state"),
    Field("location_id", "integer"),
    Field("owner", "integer"),
    Field("is_new", "boolean"),
    Field("power_status", "string", _POWER),
    Field("operation.id", "integer"),
    Field("operation.status", "string", _OPERATION),
    # ISPsystem's sample answer (docs "examples of API use") shows status_info as an object
    # ({}); our panels' and the simulator's as text or null: models.Operation reads either.
    Field("operation.status_info", "any"),
    Field("operation.progress_info", "any"),
    Field("os_template.id", "integer"),
    Field("os_template.name", "string"),
    Field("os_template.tags", "array"),
    Field("ip[].id", "integer"),
    Field("ip[].name", "string"),
    Field("ip[].family", "string", _FAMILIES),
    *_fields("string", "ip[].gateway", "ip[].network", "ip[].status"),
    Field("switch_connection[].id", "integer"),
    Field("switch_connection[].switch", "any"),
    Field("switch_connection[].connection_id", "integer"),
    Field("switch_connection[].description", "string"),
    Field("switch_connection[].admin_status", "string", _PORTS),
    Field("switch_connection[].oper_status", "string"),
    Field("switch_connection[].is_ipmi_connection", "boolean"),
    Field("maintenance_mode", "boolean"),
)
OPERATION_READS = (Field("operation.id", "integer"), Field("operation.status", "string",
                                                           _OPERATION))
IP_READS = (
    Field("id", "integer"),
    Field("name", "string"),
    Field("family", "string", _FAMILIES),
    *_fields("string", "gateway", "network"),
)
_SERVER_ID = "server/{server_id}"
# where the CONFIRMED routes are documented
_API_GUIDE = "https://ispsystem.com/docs/dcimanager-admin/developer-section/api-guide"
_EXAMPLES = ("https://www.ispsystem.com/docs/dcimanager-admin/developer-section/"
             "examples-of-api-use")
_POWER_LOGIC = ("https://www.ispsystem.com/docs/dcimanager-admin/equipment/servers/"
                "server-power-supply-management-logic")

ROUTES: tuple[Route, ...] = (
    Route("auth.token", "POST", "auth", "v4", "public/token", CONFIRMED, source=_API_GUIDE,
          body=_fields("string", "email", "password"), reads=(Field("token", "string"),)),
    Route("server.list", "GET", "dci", "v3", "server", CONFIRMED, source=_EXAMPLES,
          reads=SERVER_READS, listing=True),
    Route("server.get", "GET", "dci", "v3", _SERVER_ID, CONFIRMED, source=_EXAMPLES,
          reads=SERVER_READS),
    Route("server.configuration", "GET", "dci", "v3", "server/configuration", CONFIRMED,
          source=_EXAMPLES,
          reads=(Field("configuration", "string"), Field("free_server_count", "integer")),
          listing=True),
    Route("user.list", "GET", "dci", "v3", "user", CONFIRMED, source=_EXAMPLES,
          note="the list is confirmed; filtering it by e-mail is inferred",
          reads=(Field("id", "integer"), Field("email", "string"),
                 Field("roles", "any", (UserRole.ADMIN, UserRole.USER)),
                 Field("server_count", "integer")), listing=True),
    Route("user.create", "POST", "dci", "v3", "user", CONFIRMED, source=_EXAMPLES,
          note="the call is confirmed; the exact body is inferred",
          body=(*_fields("string", "email", "password"),
                Field("role", "string", (UserRole.USER,))),
          reads=(Field("id", "integer"),)),
    Route("server.owner.set", "POST", "dci", "v3", f"{_SERVER_ID}/owner", INFERRED,
          body=(Field("owner", "integer"),)),
    Route("server.owner.remove", "DELETE", "dci", "v3", f"{_SERVER_ID}/owner", INFERRED),
    Route("server.switch_port.enable", "POST", "dci", "v3",
          f"{_SERVER_ID}/switch_port/enable", INFERRED, other_slots=PER_PORT_SLOTS,
          note="per server; an override may make it per port"),
    Route("server.switch_port.disable", "POST", "dci", "v3",
          f"{_SERVER_ID}/switch_port/disable", INFERRED, other_slots=PER_PORT_SLOTS,
          note="per server; an override may make it per port"),
    Route("server.power_on", "POST", "dci", "v3", f"{_SERVER_ID}/power_on", CONFIRMED,
          source=_POWER_LOGIC),
    Route("server.power_off", "POST", "dci", "v3", f"{_SERVER_ID}/power_off", CONFIRMED,
          source=_POWER_LOGIC),
    Route("server.power_reset", "POST", "dci", "v3", f"{_SERVER_ID}/power_reset", CONFIRMED,
          source=_POWER_LOGIC),
    Route("server.operation.stop", "POST", "dci", "v3",
          f"{_SERVER_ID}/operation/stop", INFERRED),
    Route("server.operation.install", "POST", "dci", "v3",
          f"{_SERVER_ID}/operation/install", INFERRED,
          body=(Field("os_template", "integer"), Field("password", "string"),
                Field("ssh_keys", "array"), Field("hostname", "string"),
                *_fields("boolean", "efi", "temporary_ipv4")),
          reads=OPERATION_READS),
    Route("server.operation.diag", "POST", "dci", "v3",
          f"{_SERVER_ID}/operation/diag", INFERRED,
          body=(Field("diag_template", "string"), Field("clear_disks", "boolean"),
                Field("ippool", "integer", optional=True)),
          reads=OPERATION_READS),
    Route("server.ip.add", "POST", "dci", "v3", f"{_SERVER_ID}/ip", INFERRED,
          body=(Field("family", "string", _FAMILIES), Field("ippool", "integer"),
                Field("prefix", "integer", optional=True)),
          reads=IP_READS),
    Route("ip.remove", "DELETE", "dci", "v3", "ip/{ip_id}", INFERRED),
    Route("ippool.list", "GET", "ip", "v3", "ippool", INFERRED,
          reads=(Field("id", "integer"), Field("name", "string"),
                 Field("family", "string", _FAMILIES)), listing=True),
    Route("os_template.list", "GET", "dci", "v3", "os_template", INFERRED,
          reads=(Field("id", "integer"), Field("name", "string"), Field("tags", "array"),
                 Field("os_family", "string", (OsFamily.LINUX, OsFamily.WINDOWS))),
          listing=True),
    Route("location.list", "GET", "dci", "v3", "location", INFERRED,
          reads=(Field("id", "integer"), Field("name", "string")), listing=True),
    # DCImanager KB "how to sign in to the platform with a key": documented through the panel's
    # internal port (header Internal-Auth: on); an administrator's token calling it from outside
    # is inferred
    Route("auth.user.key.create", "POST", "auth", "v4", "user/{user_id}/key", INFERRED,
          note="a one-time login key for a user; documented only for the internal port",
          reads=(Field("id", "integer"), Field("key", "string"))),
)

RouteTable = Mapping[str, Route]
DEFAULT_TABLE: RouteTable = {route.name: route for route in ROUTES}

_PAGE_SLOT = re.compile(r"[A-Za-z0-9_-]{1,512}")


@dataclass(frozen=True)
class Page:
    """A page of the panel's web interface a client's browser is sent to (not an API call)."""

    name: str
    template: str
    confirmation: Confirmation
    note: str = ""

    def path(self, **slots: str) -> str:
        """The page path with every slot filled by an opaque token the panel issued; a value
        that could add a path segment, a query or a fragment is refused."""
        expected = {field for _, field, _, _ in string.Formatter().parse(self.template) if field}
        if set(slots) != expected:
            raise ValueError(f"page {self.name} needs {sorted(expected)}, got {sorted(slots)}")
        for key, value in slots.items():
            if not isinstance(value, str) or not _PAGE_SLOT.fullmatch(value):
                raise ValueError(f"page {self.name}: {key} is not a panel token")
        return "/" + self.template.format(**slots)


# DCImanager KB "how to sign in to the platform with a key": the key opens a session, one hour
KEY_LOGIN_PAGE = Page("page.key_login", "auth/key-v4/{key}", CONFIRMED)
# the platform's login form, where a client goes when no key could be made
LOGIN_PAGE = Page("page.login", "auth/login", INFERRED)


def route(name: str) -> Route:
    """The route called `name` as shipped (no override); a typo is a programming error,
    so KeyError."""
    return DEFAULT_TABLE[name]
