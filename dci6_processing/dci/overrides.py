"""An admin's corrections to the route table: `etc/pmdci6/routes.toml` under BILLmanager's root.

When a panel answers a route elsewhere than `routes.py` guessed (`pmdci6 doctor` says which),
the admin writes, per route name, the panel's `method`, its full `path` (beginning `/api/`,
with the same `{slots}` as ours; a switch-port route may instead take the slots of one
switch port) and `body`, a table renaming the body fields we send (ours = the panel's):

    [route."server.owner.set"]
    method = "POST"
    path = "/api/dci/v3/server/{server_id}/user"
    body = { owner = "user" }

    [panel."dci2.example.com".route."server.owner.set"]   # only for this panel
    path = "/api/dci/v3/server/{server_id}/owner"

The whole file is validated when it is read, before any request: one mistake (an unknown route
or key, a path whose slots differ, a method other than GET/POST/DELETE) fails every command
with `msg_error_bad_routes` naming the file, the route and the reason; an override is never
half applied. Read with the standard library's `tomllib`.
"""

from __future__ import annotations

import dataclasses
import re
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from dci6_processing.dci.routes import DEFAULT_TABLE, METHODS, HttpMethod, Route, RouteTable
from dci6_processing.errors import ErrorType, ModuleError
from dci6_processing.paths import MgrPaths

ROUTE_KEYS = frozenset({"method", "path", "body"})
_SEGMENT = re.compile(r"[A-Za-z0-9_.~-]+|\{[a-z_][a-z0-9_]*\}")
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


def bad_routes(path: Path, where: str, reason: str) -> ModuleError:
    return ModuleError(ErrorType.bad_routes, object=f"{path}: {where}" if where else str(path),
                       value=reason)


@dataclass(frozen=True)
class RouteOverride:
    """What routes.toml says about one route (None: keep ours)."""

    method: HttpMethod | None = None
    service: str | None = None
    version: str | None = None
    template: str | None = None
    body: tuple[tuple[str, str], ...] | None = None

    def merged(self, other: RouteOverride) -> RouteOverride:
        """`other` (a panel's own entry) over this one, key by key."""
        return RouteOverride(
            method=other.method or self.method,
            service=other.service or self.service,
            version=other.version or self.version,
            template=other.template or self.template,
            body=other.body if other.body is not None else self.body,
        )

    def apply(self, route: Route) -> Route:
        return dataclasses.replace(
            route,
            method=self.method or route.method,
            service=self.service or route.service,
            version=self.version or route.version,
            template=self.template if self.template is not None else route.template,
            renames=self.body if self.body is not None else route.renames,
            overridden=True,
        )


@dataclass(frozen=True)
class RouteOverrides:
    """Every override of one routes.toml (empty when there is no file)."""

    source: Path | None = None
    everywhere: Mapping[str, RouteOverride] = dataclasses.field(default_factory=dict)
    panels: Mapping[str, Mapping[str, RouteOverride]] = dataclasses.field(default_factory=dict)

    def table(self, panel_url: str | None = None) -> RouteTable:
        """The route table for the panel at `panel_url` (a panel's own entries over the
        file-wide ones); the shipped table when nothing is overridden."""
        scoped = self._for_panel(panel_url)
        table: dict[str, Route] = dict(DEFAULT_TABLE)
        for name in set(self.everywhere) | set(scoped):
            override = self.everywhere.get(name, RouteOverride())
            if name in scoped:
                override = override.merged(scoped[name])
            table[name] = override.apply(DEFAULT_TABLE[name])
        return table

    def _for_panel(self, panel_url: str | None) -> Mapping[str, RouteOverride]:
        if not panel_url or not self.panels:
            return {}
        parts = urlsplit(panel_url if "//" in panel_url else f"//{panel_url}")
        names = {(parts.hostname or "").lower(), parts.netloc.lower()}
        for host, overrides in self.panels.items():
            if host.lower() in names:
                return overrides
        return {}


def panel_table(paths: MgrPaths, panel_url: str) -> RouteTable:
    """The route table every command uses for the panel at `panel_url`."""
    return load(paths.routes_file).table(panel_url)


def load(path: Path) -> RouteOverrides:
    """The validated overrides of `path`; none when the file does not exist."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return RouteOverrides()
    except OSError as exc:
        raise bad_routes(path, "", f"cannot read the file: {exc.strerror or exc}") from None
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise bad_routes(path, "", "the file is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise bad_routes(path, "", f"not valid TOML: {exc}") from None
    unknown = sorted(set(document) - {"route", "panel"})
    if unknown:
        raise bad_routes(path, unknown[0], "unknown key (expected [route.\"<name>\"] or "
                                           "[panel.\"<host>\".route.\"<name>\"])")
    everywhere = _routes(path, document.get("route", {}), "route")
    panels: dict[str, dict[str, RouteOverride]] = {}
    raw_panels = document.get("panel", {})
    if not isinstance(raw_panels, dict):
        raise bad_routes(path, "panel", "must be a table of panels by host name")
    for host, section in raw_panels.items():
        where = f'panel."{host}"'
        if not isinstance(section, dict):
            raise bad_routes(path, where, "must be a table holding route.\"<name>\" tables")
        extra = sorted(set(section) - {"route"})
        if extra:
            raise bad_routes(path, f"{where}.{extra[0]}", "unknown key (only route.\"<name>\" "
                                                         "tables go under a panel)")
        panels[host] = _routes(path, section.get("route", {}), f"{where}.route")
    return RouteOverrides(path, everywhere, panels)


def _routes(path: Path, section: Any, where: str) -> dict[str, RouteOverride]:
    if not isinstance(section, dict):
        raise bad_routes(path, where, 'must be a table of routes by name: [route."<name>"]')
    found: dict[str, RouteOverride] = {}
    for name, entry in section.items():
        if name not in DEFAULT_TABLE:
            raise bad_routes(path, name, "unknown route name (the names are listed in the "
                                         "README and by pmdci6 doctor)")
        found[name] = _route(path, DEFAULT_TABLE[name], entry)
    return found


def _route(path: Path, route: Route, entry: Any) -> RouteOverride:
    name = route.name
    if not isinstance(entry, dict):
        raise bad_routes(path, name, "must be a table with method, path and/or body")
    unknown = sorted(set(entry) - ROUTE_KEYS)
    if unknown:
        raise bad_routes(path, name, f"unknown key {unknown[0]!r} (allowed: body, method, "
                                     "path)")
    method: HttpMethod | None = None
    if "method" in entry:
        raw = entry["method"]
        if not isinstance(raw, str) or raw.upper() not in METHODS:
            raise bad_routes(path, name, f"method {raw!r} is not GET, POST or DELETE")
        method = cast(HttpMethod, raw.upper())
    service = version = template = None
    if "path" in entry:
        service, version, template = _path(path, route, entry["path"])
    body = _body(path, route, entry["body"]) if "body" in entry else None
    return RouteOverride(method, service, version, template, body)


def _path(path: Path, route: Route, raw: Any) -> tuple[str, str, str]:
    name = route.name
    if not isinstance(raw, str) or not raw.startswith("/api/"):
        raise bad_routes(path, name, f"path {raw!r} must begin with /api/<service>/<version>/")
    segments = raw.removeprefix("/api/").rstrip("/").split("/")
    if len(segments) < 3 or not all(_SEGMENT.fullmatch(s) for s in segments):
        raise bad_routes(path, name, f"path {raw!r} must be /api/<service>/<version>/..., "
                                     "with plain segments and {slot} segments only")
    service, version, *rest = segments
    if "{" in service + version:
        raise bad_routes(path, name, f"path {raw!r}: service and version cannot be slots")
    template = "/".join(rest)
    slots = [field for _, field, _, _ in string.Formatter().parse(template) if field]
    allowed = route.allowed_slots()
    if len(slots) != len(set(slots)) or frozenset(slots) not in allowed:
        ours = " or ".join(_slot_text(s) for s in allowed)
        raise bad_routes(path, name, f"path {raw!r} has slots {_slot_text(frozenset(slots))}; "
                                     f"this route's are {ours}")
    return service, version, template


def _slot_text(slots: frozenset[str]) -> str:
    return "{" + "}, {".join(sorted(slots)) + "}" if slots else "none"


def _body(path: Path, route: Route, raw: Any) -> tuple[tuple[str, str], ...]:
    name = route.name
    if not isinstance(raw, dict):
        raise bad_routes(path, name, 'body must be a table: body = { ours = "panel\'s" }')
    declared = {field.name for field in route.body}
    renames: list[tuple[str, str]] = []
    for ours, theirs in raw.items():
        if ours not in declared:
            sent = ", ".join(sorted(declared)) or "none"
            raise bad_routes(path, name, f"body field {ours!r} is not one we send (we send: "
                                         f"{sent})")
        if not isinstance(theirs, str) or not _FIELD.fullmatch(theirs):
            raise bad_routes(path, name, f"body.{ours} must be the panel's field name, "
                                         f"not {theirs!r}")
        renames.append((ours, theirs))
    sent_names = [theirs for _, theirs in renames] + sorted(declared - set(raw))
    if len(sent_names) != len(set(sent_names)):
        raise bad_routes(path, name, "body renames two fields to the same name")
    return tuple(renames)
