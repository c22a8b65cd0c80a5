"""`pmdci6 doctor --openapi FILE` with no panel at all: the fixture documents of
tests/fixtures/openapi (Swagger 2 and OpenAPI 3.x, JSON and YAML; their README says what each
holds), the exact differences doctor names, its exit code, and the routes.toml fix it prints,
which, pasted into routes.toml, makes the routes match."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from click.testing import CliRunner, Result

from dci6_processing.api_check import HINT
from dci6_processing.dci.routes import ROUTES
from dci6_processing.doctor import doctor_command
from dci6_processing.paths import ROOT_ENV
from tests.doctor_report import printed_overrides

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "openapi"
DCI = FIXTURES / "dci-back.openapi3.json"
AUTH = FIXTURES / "auth-v4.openapi3.yaml"
IPMGR = FIXTURES / "ipmanager.swagger2.json"
DIFFERS = FIXTURES / "dci-back-differs.swagger2.yaml"
MOVED = FIXTURES / "dci-back-moved.openapi31.yaml"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def doctor(*documents: Path, routes: Path, as_json: bool = False) -> Result:
    args = [arg for doc in documents for arg in ("--openapi", str(doc))]
    args += ["--routes", str(routes)] + (["--json"] if as_json else [])
    return CliRunner().invoke(doctor_command, args)


def rows(result: Result) -> dict[str, str]:
    """route name -> its verdict, from doctor's table (name, mark, override, method, path,
    verdict)."""
    found = {}
    names = {r.name for r in ROUTES}
    for line in result.stdout.splitlines():
        words = line.split()
        if words and words[0] in names:
            path = words[4] if words[2] == "yes" else words[3]
            found[words[0]] = line.split(f" {path} ", 1)[1].strip()
    return found


def verdicts(report: dict[str, Any]) -> dict[str, str]:
    return {row["route"]: row["verdict"] for row in report["api_description"]["routes"]}


def test_the_matching_documents_match_every_route(tmp_path: Path) -> None:
    result = doctor(DCI, AUTH, IPMGR, routes=tmp_path / "routes.toml")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert ("API description: DCI back (OpenAPI 3.0.3), Auth v4 (OpenAPI 3.0.1), IPmanager "
            "(Swagger 2.0) from ") in out
    assert rows(result) == {r.name: "matches" for r in ROUTES}
    assert (f"Routes: {len(ROUTES)} checked, {len(ROUTES)} match, 0 differ, 0 absent; "
            f"0 overridden by {tmp_path / 'routes.toml'}") in out
    assert out.rstrip().endswith("Result: all is well")


def test_json_of_the_matching_documents(tmp_path: Path) -> None:
    result = doctor(DCI, AUTH, IPMGR, routes=tmp_path / "routes.toml", as_json=True)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["panel"] is None and report["result"] == "all is well"
    documents = report["api_description"]["documents"]
    assert [(d["title"], d["format"]) for d in documents] == [
        ("DCI back", "OpenAPI 3.0.3"), ("Auth v4", "OpenAPI 3.0.1"), ("IPmanager", "Swagger 2.0")]
    get = next(r for r in report["api_description"]["routes"] if r["route"] == "server.get")
    # the document names its slot {id}; compared by shape, it is the same route
    assert get["documented_as"] == "GET /api/dci/v3/server/{id}"
    assert get["path"] == "/api/dci/v3/server/{server_id}"


def test_a_document_alone_leaves_the_other_services_absent(tmp_path: Path) -> None:
    result = doctor(IPMGR, routes=tmp_path / "routes.toml", as_json=True)
    assert result.exit_code == 1
    found = verdicts(json.loads(result.stdout))
    assert found["ippool.list"] == "matches"
    assert {name for name, verdict in found.items() if verdict != "matches"} == \
        {r.name for r in ROUTES} - {"ippool.list"}


DIFFERS_ROWS = {
    "server.list": "differs: answer field power_status: the document's values are on, off; "
                   "not unknown",
    "server.get": "differs: answer field power_status: the document's values are on, off; "
                  "not unknown",
    "user.create": "differs: body field full_name is required by the document; we do not "
                   "send it",
    "server.operation.stop": "differs: method: the document has PUT for this path, not POST; "
                             "an override cannot express that method",
    "server.operation.install": "differs: body field os_template is string in the document, "
                                "not integer",
    "server.operation.diag": "differs: body field clear_disks is not in the document",
    "server.ip.add": "differs: body field ippool is not in the document (the document has "
                     "'pool')",
    "ip.remove": "differs: method: the document has POST for this path, not DELETE",
    "location.list": "absent",
}


def test_a_differing_panel_each_difference_named(tmp_path: Path) -> None:
    routes = tmp_path / "routes.toml"
    result = doctor(DIFFERS, AUTH, IPMGR, routes=routes)
    assert result.exit_code == 1
    expected = {r.name: DIFFERS_ROWS.get(r.name, "matches") for r in ROUTES}
    assert rows(result) == expected
    out = result.stdout
    assert "DCI back (Swagger 2.0)" in out
    assert "      closest: PUT /api/dci/v3/server/{id}/operation/stop\n" in out
    assert "      closest: POST /api/dci/v3/ip/{ip}\n" in out
    lines = out.splitlines()
    location = next(i for i, line in enumerate(lines) if line.startswith("  location.list "))
    assert lines[location + 1] == "      no similar operation in the documents"
    # only the two differences routes.toml can mend get an override
    assert printed_overrides(out) == (
        '[route."server.ip.add"]\nbody = { ippool = "pool" }\n\n'
        '[route."ip.remove"]\nmethod = "POST"\n')
    assert out.count(f"override (add to {routes}):") == 2
    assert (f"Routes: {len(ROUTES)} checked, {len(ROUTES) - 9} match, 8 differ, 1 absent; "
            f"0 overridden by {routes}") in out
    assert "Result: 9 problem(s)" in out


def test_the_printed_fix_mends_what_it_can(tmp_path: Path) -> None:
    routes = tmp_path / "routes.toml"
    routes.write_text(printed_overrides(doctor(DIFFERS, AUTH, IPMGR, routes=routes).stdout))
    result = doctor(DIFFERS, AUTH, IPMGR, routes=routes, as_json=True)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    found = verdicts(report)
    assert found["server.ip.add"] == found["ip.remove"] == "matches"
    still = {name for name, verdict in found.items() if verdict != "matches"}
    assert still == set(DIFFERS_ROWS) - {"server.ip.add", "ip.remove"}
    overridden = {r["route"] for r in report["api_description"]["routes"] if r["overridden"]}
    assert overridden == {"server.ip.add", "ip.remove"}
    assert report["api_description"]["summary"]["overridden"] == 2
    assert len(report["problems"]) == 7


MOVED_OVERRIDES = (
    '[route."server.owner.set"]\n'
    'path = "/api/dci/v3/server/{server_id}/user"\n'
    'body = { owner = "user" }\n\n'
    '[route."server.switch_port.enable"]\n'
    'path = "/api/dci/v3/switch/{switch_id}/port/{port_id}/enable"\n\n'
    '[route."server.switch_port.disable"]\n'
    'path = "/api/dci/v3/switch/{switch_id}/port/{port_id}/disable"\n\n'
    '[route."server.operation.install"]\n'
    'path = "/api/dci/v3/server/{server_id}/install"\n'
    'body = { os_template = "template", hostname = "host_name" }\n'
)


def test_a_panel_that_moved_routes_then_the_printed_fix(tmp_path: Path) -> None:
    routes = tmp_path / "routes.toml"
    result = doctor(MOVED, AUTH, IPMGR, routes=routes)
    assert result.exit_code == 1
    moved = {"server.owner.set", "server.switch_port.enable", "server.switch_port.disable",
             "server.operation.install"}
    assert rows(result) == {r.name: "absent" if r.name in moved else "matches" for r in ROUTES}
    out = result.stdout
    assert "DCI back (OpenAPI 3.1.0)" in out
    owner = out.split("server.owner.set")[1].split("server.owner.remove")[0]
    assert owner.splitlines()[1] == "      closest: POST /api/dci/v3/server/{server}/user"
    assert printed_overrides(out) == MOVED_OVERRIDES
    assert "Result: 4 problem(s)" in out

    routes.write_text(MOVED_OVERRIDES)
    fixed = doctor(MOVED, AUTH, IPMGR, routes=routes)
    assert fixed.exit_code == 0, fixed.output
    assert rows(fixed) == {r.name: "matches" for r in ROUTES}
    for name in moved:  # marked as overridden in the table
        line = next(line for line in fixed.stdout.splitlines() if line.split()[:1] == [name])
        assert line.split()[2] == "yes", line
    assert f"4 overridden by {routes}" in fixed.stdout


def test_an_override_the_document_contradicts_is_replaced(tmp_path: Path) -> None:
    # the fix for one panel, kept while checking another whose routes are as shipped: doctor
    # says each overridden route is absent and prints the entry to put in its place, a bare
    # table that restores the shipped route (adding a second one would be invalid TOML)
    routes = tmp_path / "routes.toml"
    routes.write_text(MOVED_OVERRIDES)
    result = doctor(DCI, AUTH, IPMGR, routes=routes)
    assert result.exit_code == 1
    moved = ["server.owner.set", "server.switch_port.enable", "server.switch_port.disable",
             "server.operation.install"]
    assert {name for name, verdict in rows(result).items() if verdict != "matches"} == set(moved)
    out = result.stdout
    assert out.count(f"override (replace the route's entry in {routes}):") == 4
    assert "override (add to" not in out
    assert printed_overrides(out) == "\n\n".join(f'[route."{name}"]' for name in moved) + "\n"
    routes.write_text(printed_overrides(out))
    fixed = doctor(DCI, AUTH, IPMGR, routes=routes)
    assert fixed.exit_code == 0, fixed.output


@pytest.mark.parametrize(("make", "reason"), [
    (lambda d: d / "absent.json", "cannot read {path}: No such file or directory"),
    (lambda d: _write(d / "page.html", "<!DOCTYPE html><html><body>Swagger UI</body></html>"),
     "{path}: an HTML page, not an OpenAPI or Swagger document"),
    (lambda d: _write(d / "other.json", '{"openapi": "3.0.0", "info": {}}'),
     "{path}: not an OpenAPI or Swagger document (no 'paths')"),
    (lambda d: _write(d / "broken.yaml", "paths: [unclosed\n"), "{path}: neither JSON nor YAML"),
])
def test_a_document_doctor_cannot_read(tmp_path: Path, make: Any, reason: str) -> None:
    path = make(tmp_path)
    result = doctor(path, routes=tmp_path / "routes.toml")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert (f"PROBLEM: cannot read the panel's API description: {reason.format(path=path)}"
            in result.stdout)
    assert f"  hint: {HINT}" in result.stdout


def test_a_bad_routes_file_stops_doctor_before_any_check(tmp_path: Path) -> None:
    routes = _write(tmp_path / "routes.toml", '[route."server.owner.set"]\nmethod = "PUT"\n')
    result = doctor(DCI, AUTH, IPMGR, routes=routes)
    assert result.exit_code == 1
    assert (f"PROBLEM: {routes}: server.owner.set: method 'PUT' is not GET, POST or DELETE"
            in result.stdout)
    assert "API description:" not in result.stdout


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_the_installed_binary_with_files_only(pmdci6_bin: Path, tmp_path: Path) -> None:
    # what an admin runs on the BILLmanager host, routes.toml under the BILLmanager root
    (tmp_path / "etc" / "pmdci6").mkdir(parents=True)
    (tmp_path / "etc" / "pmdci6" / "routes.toml").write_text(MOVED_OVERRIDES)
    result = subprocess.run(
        [str(pmdci6_bin), "doctor", "--openapi", str(MOVED), "--openapi", str(AUTH),
         "--openapi", str(IPMGR)],
        capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": "/usr/bin:/bin", ROOT_ENV: str(tmp_path)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    assert f"4 overridden by {tmp_path / 'etc' / 'pmdci6' / 'routes.toml'}" in result.stdout
    assert result.stdout.rstrip().endswith("Result: all is well")
