"""The simulator's API description, published as a real DCImanager 6 publishes its own.

A real instance serves Swagger UI at `/swagger/` whose initializer lists one document per
service ("DCI back", "IPmanager", auth). The simulator does the same: `/swagger/` (an HTML
page), `/swagger/swagger-initializer.js` (the `urls` list) and one OpenAPI 3.0 document per
service under `/swagger/docs/<service>.json`, generated from the routes it really serves
(after its variant moved, renamed or replaced some) and the bodies its handlers read
(`state.py`). Unauthenticated, like the static Swagger UI files of a panel.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pmdci6_sandbox.dcisim.simulator import Route

SWAGGER_PREFIX = "/swagger/"
INITIALIZER = "swagger-initializer.js"
DOCS_DIR = "docs/"
SERVICES: dict[str, tuple[str, str]] = {  # service -> (version, the name Swagger UI shows)
    "auth": ("v4", "auth"),
    "dci": ("v3", "DCI back"),
    "ip": ("v3", "IPmanager"),
}
_PREFIX = re.compile(r"/api/(?P<service>[^/]+)/(?P<version>[^/]+)(?P<rest>/.*)?")


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _string(*values: str, nullable: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if values:
        schema["enum"] = list(values)
    if nullable:
        schema["nullable"] = True
    return schema


_INT = {"type": "integer"}
_BOOL = {"type": "boolean"}
_OPERATION_STATUS = ("running", "ok", "failed", "canceled")

SCHEMAS: dict[str, dict[str, Any]] = {
    "Operation": {"type": "object", "properties": {
        "id": _INT, "status": _string(*_OPERATION_STATUS),
        "status_info": _string(nullable=True),
        "progress_info": {"type": "object", "nullable": True,
                          "properties": {"percent": _INT, "step": _string()}},
    }},
    "OsTemplateRef": {"type": "object", "properties": {
        "id": _INT, "name": _string(), "tags": {"type": "array", "items": _string()}}},
    "ServerIp": {"type": "object", "properties": {
        "id": _INT, "name": _string(), "family": _string("ipv4", "ipv6"),
        "gateway": _string(nullable=True), "network": _string(nullable=True),
        "status": _string("assigned", "temporary"), "ippool": _INT}},
    "Switch": {"type": "object", "properties": {"id": _INT, "name": _string()}},
    "SwitchConnection": {"type": "object", "properties": {
        "id": _INT, "switch": _ref("Switch"), "connection_id": _INT,
        "description": _string(), "admin_status": _string("up", "down"),
        "oper_status": _string("up", "down"), "is_ipmi_connection": _BOOL}},
    "Server": {"type": "object", "properties": {
        "id": _INT, "name": _string(), "domain": _string(nullable=True),
        "configuration": _string(nullable=True), "location_id": _INT, "owner": _INT,
        "owner_email": _string(nullable=True), "is_new": _BOOL, "state": _string(),
        "power_status": _string("on", "off", "unknown"),
        "operation": {"allOf": [_ref("Operation")], "nullable": True},
        "os_template": {"allOf": [_ref("OsTemplateRef")], "nullable": True},
        "ip": {"type": "array", "items": _ref("ServerIp")},
        "switch_connection": {"type": "array", "items": _ref("SwitchConnection")},
        "pdu_connection": {"type": "array", "items": {"type": "object"}},
        "maintenance_mode": _BOOL}},
    "SwitchPort": {"type": "object", "properties": {
        "id": _INT, "server_id": _INT, "description": _string(),
        "admin_status": _string("up", "down"), "oper_status": _string("up", "down"),
        "is_ipmi_connection": _BOOL}},
    # roles arrive as an array or as one string "[@user]" (the spec): both are declared
    "User": {"type": "object", "properties": {
        "id": _INT, "email": _string(), "server_count": _INT,
        "roles": {"oneOf": [{"type": "array", "items": _string()}, _string()]}}},
    "Configuration": {"type": "object", "properties": {
        "configuration": _string(), "free_server_count": _INT}},
    "IpPool": {"type": "object", "properties": {
        "id": _INT, "name": _string(), "family": _string("ipv4", "ipv6"),
        "network": _string(), "gateway": _string(nullable=True), "note": _string()}},
    "OsTemplate": {"type": "object", "properties": {
        "id": _INT, "name": _string(), "tags": {"type": "array", "items": _string()},
        "os_family": _string("linux", "windows")}},
    "Location": {"type": "object", "properties": {"id": _INT, "name": _string()}},
    "Token": {"type": "object", "properties": {
        "id": _string(), "token": _string(), "expires_at": _string(nullable=True),
        "confirmed": _BOOL}},
    "Created": {"type": "object", "properties": {"id": _INT}},
    "LoginKey": {"type": "object", "properties": {"id": _INT, "key": _string()}},
    "Empty": {"type": "object"},
    "Started": {"type": "object", "properties": {"operation": _ref("Operation")}},
}


def _object(required: Iterable[str] = (), **properties: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


# What each handler of state.py reads from its body (`_required_*` ones are required).
BODIES: dict[str, dict[str, Any]] = {
    "auth.token": _object(("email", "password"), email=_string(), password=_string()),
    "user.create": _object(("email", "password"), email=_string(), password=_string(),
                           role=_string()),
    "server.owner.set": _object(("owner",), owner=_INT),
    "server.operation.install": _object(
        ("os_template", "password"), os_template=_INT, password=_string(),
        hostname=_string(), ssh_keys={"type": "array", "items": _string()}, efi=_BOOL,
        temporary_ipv4=_BOOL),
    "server.operation.diag": _object((), diag_template=_string(), clear_disks=_BOOL,
                                     ippool=_INT),
    "server.ip.add": _object(("family", "ippool"), family=_string("ipv4", "ipv6"),
                             ippool=_INT, prefix=_INT),
}


def _list_of(name: str) -> dict[str, Any]:
    return _object(("list", "size"), list={"type": "array", "items": _ref(name)}, size=_INT)


ANSWERS: dict[str, dict[str, Any]] = {
    "auth.token": _ref("Token"),
    "server.list": _list_of("Server"),
    "server.get": _ref("Server"),
    "server.configuration": _list_of("Configuration"),
    "user.list": _list_of("User"),
    "user.create": _ref("Created"),
    "server.owner.set": _ref("Created"),
    "server.operation.install": _ref("Started"),
    "server.operation.diag": _ref("Started"),
    "server.ip.add": _ref("ServerIp"),
    "os_template.list": _list_of("OsTemplate"),
    "location.list": _list_of("Location"),
    "ippool.list": _list_of("IpPool"),
    "auth.user.key.create": _ref("LoginKey"),
    "switch.port.list": _list_of("SwitchPort"),
}


def renamed_body(schema: Mapping[str, Any], renames: Mapping[str, str]) -> dict[str, Any]:
    """`schema` with its fields named as a variant panel names them (standard -> variant)."""
    properties = {renames.get(name, name): sub
                  for name, sub in (schema.get("properties") or {}).items()}
    result = {**schema, "properties": properties}
    if "required" in schema:
        result["required"] = [renames.get(name, name) for name in schema["required"]]
    return result


def document(service: str, routes: Iterable[Route], title: str) -> dict[str, Any]:
    """The OpenAPI 3 document of one service: every route the simulator serves there."""
    version = SERVICES[service][0]
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        match = _PREFIX.fullmatch(route.path)
        if match is None or match["service"] != service:
            continue
        operation: dict[str, Any] = {"operationId": route.name, "responses": {
            str(route.status): {"description": "OK", "content": {"application/json": {
                "schema": ANSWERS.get(route.name, _ref("Empty"))}}},
            "default": {"description": "The panel's error: {error: {code, msg, value}}"}}}
        if route.method != "GET":
            body = BODIES.get(route.name, _object())
            body = renamed_body(body, dict(route.renames))
            operation["requestBody"] = {"required": bool(body.get("required")), "content": {
                "application/json": {"schema": body}}}
        parameters = [{"name": slot, "in": "path", "required": True, "schema": _INT}
                      for slot in re.findall(r"\{(\w+)\}", route.path)]
        if parameters:
            operation["parameters"] = parameters
        paths.setdefault(match["rest"] or "/", {})[route.method.lower()] = operation
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "version": version,
                 "description": "DCImanager 6 simulator (pmdci6 sandbox)"},
        "servers": [{"url": f"/api/{service}/{version}"}],
        "paths": paths,
        "components": {"schemas": SCHEMAS},
    }


def swagger_page() -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"UTF-8\">"
        "<title>Swagger UI</title>"
        "<link rel=\"stylesheet\" href=\"./swagger-ui.css\"></head>\n<body>"
        "<div id=\"swagger-ui\"></div>\n"
        "<script src=\"./swagger-ui-bundle.js\" charset=\"UTF-8\"></script>\n"
        f"<script src=\"./{INITIALIZER}\" charset=\"UTF-8\"></script>\n</body></html>\n"
    )


def initializer() -> str:
    entries = ",\n".join(
        f'      {{url: "{SWAGGER_PREFIX}{DOCS_DIR}{service}.json", name: "{name}"}}'
        for service, (_, name) in SERVICES.items())
    return (
        "window.onload = function() {\n"
        "  window.ui = SwaggerUIBundle({\n"
        f"    urls: [\n{entries}\n    ],\n"
        "    dom_id: '#swagger-ui',\n    deepLinking: true,\n"
        "    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],\n"
        "    layout: \"StandaloneLayout\"\n  });\n};\n"
    )


def serve(path: str, routes: Iterable[Route]) -> tuple[int, str, bytes] | None:
    """(status, content type, body) for a GET under /swagger/, None for any other path."""
    if not path.startswith(SWAGGER_PREFIX.rstrip("/")):
        return None
    rest = path.removeprefix(SWAGGER_PREFIX.rstrip("/")).lstrip("/")
    if rest in ("", "index.html"):
        return 200, "text/html; charset=utf-8", swagger_page().encode()
    if rest == INITIALIZER:
        return 200, "application/javascript", initializer().encode()
    if rest.startswith(DOCS_DIR) and rest.endswith(".json"):
        service = rest.removeprefix(DOCS_DIR).removesuffix(".json")
        if service in SERVICES:
            body = document(service, routes, SERVICES[service][1])
            return 200, "application/json", json.dumps(body, indent=1).encode()
    return 404, "text/html", b"<html><body><h1>404 Not Found</h1></body></html>\n"
