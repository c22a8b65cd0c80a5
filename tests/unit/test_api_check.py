"""The route check, one kind of difference at a time (openapi.check_route / check_routes),
and api_check: the table doctor prints, its summary, its JSON, reading the admin's documents."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from dci6_processing import api_check
from dci6_processing.dci.routes import DEFAULT_TABLE, ROUTES, Route
from dci6_processing.openapi import (
    ApiDocument,
    DescriptionError,
    DocOperation,
    RouteCheck,
    check_route,
    check_routes,
    load_document,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "openapi"
OK = {"200": {"description": "OK"}}


def obj(required: tuple[str, ...] = (), **properties: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


INT, STR, BOOL = {"type": "integer"}, {"type": "string"}, {"type": "boolean"}


def op(method: str, path: str, *, body: Any = None, answer: Any = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"responses": OK}
    if body is not None:
        entry["requestBody"] = {"content": {"application/json": {"schema": body}}}
    if answer is not None:
        entry["responses"] = {"200": {"description": "OK", "content": {
            "application/json": {"schema": answer}}}}
    return {path: {method.lower(): entry}}


def document(*operations: dict[str, Any], prefix: str | None = "/api/dci/v3") -> list[DocOperation]:
    paths: dict[str, Any] = {}
    for entry in operations:
        for path, methods in entry.items():
            paths.setdefault(path, {}).update(methods)
    doc: dict[str, Any] = {"openapi": "3.0.3", "info": {"title": "DCI back"}, "paths": paths}
    if prefix is not None:
        doc["servers"] = [{"url": prefix}]
    return list(load_document(json.dumps(doc), "doc.json").operations)


def check(name: str, *operations: dict[str, Any], route: Route | None = None,
          prefix: str | None = "/api/dci/v3") -> RouteCheck:
    return check_route(route or DEFAULT_TABLE[name], document(*operations, prefix=prefix))


OWNER_BODY = obj(("owner",), owner=INT)
IP_BODY = obj(("family", "ippool"), family={"type": "string", "enum": ["ipv4", "ipv6"]},
              ippool=INT, prefix=INT)


# --- verdicts ----------------------------------------------------------------------------------

def test_matches_whatever_the_slot_is_called() -> None:
    result = check("server.owner.set", op("POST", "/server/{serverId}/owner", body=OWNER_BODY))
    assert (result.verdict, result.differences, result.override) == ("matches", (), "")
    assert result.documented_as == "POST /api/dci/v3/server/{serverId}/owner"
    assert result.summary == "matches"


def test_absent_with_nothing_like_it() -> None:
    result = check("location.list", op("GET", "/server/configuration"))
    assert (result.verdict, result.candidates, result.override) == ("absent", (), "")
    assert result.summary == "absent"


def test_absent_the_closest_operation_and_its_override_with_our_slot_names() -> None:
    result = check("server.owner.set",
                   op("POST", "/server/{srv}/user", body=obj(("user",), user=INT)),
                   op("GET", "/location"))
    assert result.verdict == "absent"
    assert result.candidates == ("POST /api/dci/v3/server/{srv}/user",)
    assert result.override == ('[route."server.owner.set"]\n'
                               'path = "/api/dci/v3/server/{server_id}/user"\n'
                               'body = { owner = "user" }')


def test_absent_switch_ports_controlled_per_port() -> None:
    result = check("server.switch_port.disable",
                   op("POST", "/switch/{switch}/port/{port}/disable"))
    assert result.verdict == "absent"
    assert result.override == ('[route."server.switch_port.disable"]\n'
                               'path = "/api/dci/v3/switch/{switch_id}/port/{port_id}/disable"')


def test_the_method_differs_and_an_override_can_say_so() -> None:
    result = check("ip.remove", op("POST", "/ip/{id}"))
    assert result.verdict == "differs"
    assert result.differences == ("method: the document has POST for this path, not DELETE",)
    assert result.candidates == ("POST /api/dci/v3/ip/{id}",)
    assert result.override == '[route."ip.remove"]\nmethod = "POST"'
    assert result.summary == "differs: method: the document has POST for this path, not DELETE"


def test_the_method_differs_and_no_override_can_say_so() -> None:
    result = check("server.operation.stop", op("PATCH", "/server/{id}/operation/stop"))
    assert result.differences == (
        "method: the document has PATCH for this path, not POST",
        "an override cannot express that method")
    assert result.override == ""


def test_we_send_a_body_the_document_does_not_declare() -> None:
    result = check("server.owner.set", op("POST", "/server/{id}/owner"))
    assert result.differences == ("body: the document declares none; we send owner",)


def test_a_body_field_missing_with_nothing_to_rename_it_to() -> None:
    result = check("server.operation.diag", op("POST", "/server/{id}/operation/diag", body=obj(
        diag_template=STR, ippool=INT)))
    assert result.differences == ("body field clear_disks is not in the document",)
    assert result.override == ""


def test_a_body_field_renamed_a_similar_name_of_the_same_type() -> None:
    body = obj(("family", "pool"), family={"type": "string"}, pool=INT, prefix=INT,
               comment=STR)
    result = check("server.ip.add", op("POST", "/server/{id}/ip", body=body))
    assert result.differences == (
        "body field ippool is not in the document (the document has 'pool')",)
    assert result.override == '[route."server.ip.add"]\nbody = { ippool = "pool" }'


def test_a_body_field_renamed_to_the_only_required_field_of_its_type() -> None:
    result = check("server.owner.set", op("POST", "/server/{id}/owner", body=obj(
        ("uid",), uid=INT, note=STR)))
    assert result.differences == ("body field owner is not in the document (the document "
                                  "has 'uid')",)
    assert result.override == '[route."server.owner.set"]\nbody = { owner = "uid" }'


def test_no_rename_to_a_field_of_another_type() -> None:
    result = check("server.owner.set", op("POST", "/server/{id}/owner", body=obj(
        ("owner_email",), owner_email=STR)))
    assert result.differences == (
        "body field owner is not in the document",
        "body field owner_email is required by the document; we do not send it")
    assert result.override == ""


def test_a_body_field_of_another_type() -> None:
    result = check("server.owner.set", op("POST", "/server/{id}/owner", body=obj(
        ("owner",), owner=STR)))
    assert result.differences == ("body field owner is string in the document, not integer",)


def test_a_body_value_the_document_does_not_list() -> None:
    body = obj(("email", "password"), email=STR, password=STR,
               role={"type": "string", "enum": ["@admin", "@client"]})
    result = check("user.create", op("POST", "/user", body=body))
    assert result.differences == ("body field role: the document's values are @admin, "
                                  "@client; not @user",)


def test_a_required_field_we_do_not_send() -> None:
    body = obj(("email", "password", "full_name"), email=STR, password=STR, role=STR,
               full_name=STR)
    result = check("user.create", op("POST", "/user", body=body))
    assert result.differences == ("body field full_name is required by the document; we do "
                                  "not send it",)


def test_an_answer_field_missing_of_another_type_and_an_unlisted_value() -> None:
    started = obj(operation=obj(id=STR, status={"type": "string", "enum": [
        "running", "complete", "failed", "canceled"]}))
    result = check("server.operation.diag", op(
        "POST", "/server/{id}/operation/diag", answer=started, body=obj(
            diag_template=STR, clear_disks=BOOL, ippool=INT)))
    assert result.differences == (
        "answer field operation.id is string in the document, not integer",
        "answer field operation.status: the document's values are running, complete, failed, "
        "canceled; not ok")
    missing = check("server.operation.diag", op(
        "POST", "/server/{id}/operation/diag", answer=obj(id=INT), body=obj(
            diag_template=STR, clear_disks=BOOL, ippool=INT)))
    assert missing.differences == ("answer field operation.id is not in the document",
                                   "answer field operation.status is not in the document")


def test_a_listings_fields_are_read_inside_its_envelope() -> None:
    envelope = obj(list={"type": "array", "items": obj(id=INT, name=STR, family={
        "type": "string", "enum": ["ipv4"]})}, size=INT)
    result = check("ippool.list", op("GET", "/ippool", answer=envelope), prefix="/api/ip/v3")
    assert result.differences == ("answer field family: the document's values are ipv4; not "
                                  "ipv6",)


def test_an_undocumented_answer_and_a_number_for_an_integer_are_no_difference() -> None:
    assert check("server.get", op("GET", "/server/{id}")).verdict == "matches"
    body = obj(("owner",), owner={"type": "number"})
    assert check("server.owner.set", op("POST", "/server/{id}/owner", body=body)).verdict == \
        "matches"


def test_a_document_without_prefix_is_compared_by_template() -> None:
    result = check("server.owner.set", op("POST", "/server/{id}/user", body=obj(
        ("user",), user=INT)), prefix=None)
    assert result.override.splitlines()[1] == 'path = "/api/dci/v3/server/{server_id}/user"'
    assert check("server.owner.set", op("POST", "/server/{id}/owner", body=OWNER_BODY),
                 prefix=None).verdict == "matches"


# --- overridden routes ---------------------------------------------------------------------------

def overridden(name: str, **changes: Any) -> Route:
    return dataclasses.replace(DEFAULT_TABLE[name], overridden=True, **changes)


def test_an_overridden_route_is_checked_as_overridden() -> None:
    route = overridden("server.owner.set", template="server/{server_id}/user",
                       renames=(("owner", "user"),))
    result = check("server.owner.set", op("POST", "/server/{id}/user", body=obj(
        ("user",), user=INT)), route=route)
    assert result.verdict == "matches"


def test_a_stale_override_is_replaced_by_a_bare_entry_restoring_the_shipped_route() -> None:
    # regression: doctor printed `body = { owner = "owner" }`, and no way back per server
    route = overridden("server.owner.set", template="server/{server_id}/user",
                       renames=(("owner", "user"),))
    result = check("server.owner.set", op("POST", "/server/{id}/owner", body=OWNER_BODY),
                   route=route)
    assert result.verdict == "absent"
    assert result.override == '[route."server.owner.set"]'
    per_port = overridden("server.switch_port.enable",
                          template="switch/{switch_id}/port/{port_id}/enable")
    back = check("server.switch_port.enable", op("POST", "/server/{id}/switch_port/enable"),
                 route=per_port)
    assert back.override == '[route."server.switch_port.enable"]'


def test_an_override_that_cannot_help_is_not_printed_again() -> None:
    route = overridden("server.owner.set", template="server/{server_id}/user",
                       renames=(("owner", "user"),))
    result = check("server.owner.set", op("POST", "/server/{id}/user", body=obj(
        ("user",), user=STR)), route=route)
    assert result.differences == ("body field user is string in the document, not integer",)
    assert result.override == ""


def test_an_override_keeps_the_renames_that_still_hold() -> None:
    route = overridden("server.operation.install", renames=(("hostname", "host_name"),))
    body = obj(("template",), template=INT, password=STR, ssh_keys={"type": "array"},
               host_name=STR, efi=BOOL, temporary_ipv4=BOOL)
    result = check("server.operation.install", op("POST", "/server/{id}/install", body=body),
                   route=route)
    assert result.override == ('[route."server.operation.install"]\n'
                               'path = "/api/dci/v3/server/{server_id}/install"\n'
                               'body = { hostname = "host_name", os_template = "template" }')


# --- the whole table ------------------------------------------------------------------------------

def test_an_operation_another_route_is_documented_as_is_no_candidate() -> None:
    operations = document(op("POST", "/server/{id}/power_on"), op("POST", "/server/{id}/power_off"))
    documents = [ApiDocument("DCI back", "doc.json", "OpenAPI 3.0.3", tuple(operations))]
    checks = {c.route.name: c for c in check_routes(DEFAULT_TABLE, documents)}
    assert checks["server.power_on"].verdict == "matches"
    assert checks["server.power_reset"].verdict == "absent"
    assert not {"POST /api/dci/v3/server/{id}/power_on", "POST /api/dci/v3/server/{id}/power_off"} \
        & set(checks["server.power_reset"].candidates)
    assert [c.route.name for c in check_routes(DEFAULT_TABLE, [])] == [r.name for r in ROUTES]


# --- api_check: printing, JSON, sources ---------------------------------------------------

class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.problems: list[str] = []

    def line(self, text: str = "") -> None:
        self.lines.append(text)

    def problem(self, text: str, *, indent: int = 2) -> None:
        self.problems.append(text)
        self.lines.append(f"{' ' * indent}PROBLEM: {text}")

    def count_problem(self, text: str) -> None:
        self.problems.append(text)


def run(table: Mapping[str, Route], *sources: str, fetch: Any = None,
        panel: str | None = None) -> tuple[api_check.ApiCheck, Lines]:
    out = Lines()
    result = api_check.run(out, table, sources=list(sources), panel_url=panel, fetch=fetch,
                           routes_file=Path("/etc/routes.toml"))
    return result, out


MATCHING = [str(FIXTURES / name) for name in
            ("dci-back.openapi3.json", "auth-v4.openapi3.yaml", "ipmanager.swagger2.json")]


def test_the_table_its_problems_and_summary() -> None:
    table = {**DEFAULT_TABLE, "ip.remove": overridden("ip.remove", method="POST")}
    _, out = run(table, *MATCHING)
    differs = "differs: method: the document has DELETE for this path, not POST"
    assert out.problems == [f"route ip.remove: {differs}"]
    text = "\n".join(out.lines)
    assert "  route  " in text and "mark" in text and "verdict" in text
    row = out.lines.index(next(line for line in out.lines if line.startswith("  ip.remove ")))
    assert out.lines[row].split()[1:5] == ["INFERRED", "yes", "POST", "/api/dci/v3/ip/{ip_id}"]
    assert out.lines[row].endswith(f"  {differs}")
    # the entry that restores the shipped route, replacing the admin's (a second table for
    # one route would not be valid TOML)
    assert out.lines[row + 1:row + 4] == [
        "      closest: DELETE /api/dci/v3/ip/{id}",
        "      override (replace the route's entry in /etc/routes.toml):",
        '        [route."ip.remove"]']
    assert out.lines[-1] == (f"Routes: {len(ROUTES)} checked, {len(ROUTES) - 1} match, 1 differ, "
                             "0 absent; 1 overridden by /etc/routes.toml")


def test_the_json_shape() -> None:
    result, _ = run(DEFAULT_TABLE, *MATCHING)
    report = result.as_json()
    assert set(report) == {"documents", "error", "routes", "summary"}
    assert report["error"] is None
    assert report["documents"][0] == {"title": "DCI back", "source": MATCHING[0],
                                      "format": "OpenAPI 3.0.3", "operations": 20}
    assert report["summary"] == {"routes": len(ROUTES), "matches": len(ROUTES), "differs": 0,
                                 "absent": 0, "overridden": 0}
    row = report["routes"][0]
    assert row == {"route": "auth.token", "mark": "CONFIRMED", "method": "POST",
                   "path": "/api/auth/v4/public/token", "overridden": False,
                   "verdict": "matches", "differences": [],
                   "documented_as": "POST /api/auth/v4/public/token", "candidates": [],
                   "override": None}
    assert [r["route"] for r in report["routes"]] == [r.name for r in ROUTES]
    json.dumps(report)  # one JSON document


def test_a_source_url_is_fetched_a_failing_one_is_the_error_with_the_hint() -> None:
    body = (FIXTURES / "ipmanager.swagger2.json").read_bytes()
    asked: list[str] = []

    def fetch(url: str) -> tuple[int, str, bytes]:
        asked.append(url)
        return (200, "application/json", body) if url.endswith("ok.json") else (403, "", b"")

    result, _ = run(DEFAULT_TABLE, "https://dci.example.com/ok.json", fetch=fetch)
    assert asked == ["https://dci.example.com/ok.json"]
    assert [d.title for d in result.documents] == ["IPmanager"]
    failed, out = run(DEFAULT_TABLE, "https://dci.example.com/no.json", fetch=fetch)
    assert failed.error == f"https://dci.example.com/no.json answered HTTP 403; {api_check.HINT}"
    assert out.problems == ["cannot read the panel's API description: "
                            "https://dci.example.com/no.json answered HTTP 403"]
    assert out.lines[-1] == f"  hint: {api_check.HINT}"
    assert failed.checks == [] and failed.as_json()["summary"]["routes"] == 0


def test_no_panel_and_no_document() -> None:
    result, out = run(DEFAULT_TABLE)
    assert result.error.startswith("no panel and no --openapi document; ")
    assert out.lines[-1] == f"  hint: {api_check.HINT}"


def test_discovery_problems_are_listed_and_the_readable_documents_checked() -> None:
    pages = {"https://p/swagger/": b'<script>x({urls: [{url: "/a.json", name: "DCI back"},'
                                   b' {url: "/b.json", name: "BMC proxy service"}]})</script>',
             "https://p/a.json": (FIXTURES / "dci-back.openapi3.json").read_bytes()}

    def fetch(url: str) -> tuple[int, str, bytes]:
        return (200, "", pages[url]) if url in pages else (404, "text/html", b"")

    result, out = run(DEFAULT_TABLE, fetch=fetch, panel="https://p")
    assert out.problems[0] == ("API description: BMC proxy service: https://p/b.json answered "
                               "HTTP 404")
    assert [d.title for d in result.documents] == ["DCI back"]
    assert "API description: DCI back (OpenAPI 3.0.3) from https://p/swagger/" in out.lines


def test_load_sources_reads_files(tmp_path: Path) -> None:
    with pytest.raises(DescriptionError, match=r"cannot read .*absent\.yaml: No such file"):
        api_check.load_sources([str(tmp_path / "absent.yaml")], lambda url: (200, "", b""))
    documents = api_check.load_sources(MATCHING, lambda url: (500, "", b""))
    assert [d.title for d in documents] == ["DCI back", "Auth v4", "IPmanager"]
