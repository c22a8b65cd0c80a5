"""`pmdci6 doctor` against the simulator, the API-description part: the shape of `--json`,
and what an admin is told when the panel's /swagger/ cannot be read (absent, an HTML page
that is not Swagger UI, documents that fail), with and without `--openapi FILE`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from click.testing import CliRunner, Result

from dci6_processing.api_check import HINT
from dci6_processing.dci.routes import ROUTES
from dci6_processing.doctor import doctor_command
from pmdci6_sandbox.dcisim import DciSimulator
from pmdci6_sandbox.dcisim import openapi as published

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "openapi"
REAL_SERVE = published.serve


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def doctor(sim: DciSimulator, tmp_path: Path, *args: str) -> Result:
    return CliRunner().invoke(doctor_command, [
        "--url", sim.url, "--email", sim.admin_email, "--password-env", "DCI_PASSWORD",
        "--routes", str(tmp_path / "routes.toml"), *args],
        env={"DCI_PASSWORD": sim.admin_password})


def panel_serving(monkeypatch: pytest.MonkeyPatch,
                  pages: Callable[[str], tuple[int, str, bytes] | None]) -> None:
    """The simulator's /swagger/ pages as `pages` answers them (None: the path is no
    Swagger page, and the panel's gateway answers it as any unknown path)."""
    def serve(path: str, routes: Iterable[Any]) -> tuple[int, str, bytes] | None:
        if not path.startswith("/swagger"):
            return REAL_SERVE(path, routes)
        return pages(path)

    monkeypatch.setattr(published, "serve", serve)


def test_json_report_shape(sim: DciSimulator, tmp_path: Path) -> None:
    result = doctor(sim, tmp_path, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # stdout is one JSON document, nothing else
    assert set(report) == {"panel", "result", "problems", "api_description"}
    assert (report["panel"], report["result"], report["problems"]) == (
        sim.url, "all is well", [])
    api = report["api_description"]
    assert set(api) == {"documents", "error", "routes", "summary"}
    assert api["error"] is None
    assert [(d["title"], d["format"], d["source"]) for d in api["documents"]] == [
        (name, "OpenAPI 3.0.3", f"{sim.url}/swagger/docs/{service}.json")
        for service, (_, name) in published.SERVICES.items()]
    assert all(isinstance(d["operations"], int) and d["operations"] > 0
               for d in api["documents"])
    assert [row["route"] for row in api["routes"]] == [r.name for r in ROUTES]
    for row, route in zip(api["routes"], ROUTES, strict=True):
        assert row == {
            "route": route.name, "mark": route.confirmation.value.upper(),
            "method": route.method, "path": route.pattern, "overridden": False,
            "verdict": "matches", "differences": [], "documented_as": row["documented_as"],
            "candidates": [], "override": None}
        assert row["documented_as"].split()[0] == route.method
    assert api["summary"] == {"routes": len(ROUTES), "matches": len(ROUTES), "differs": 0,
                              "absent": 0, "overridden": 0}


def test_json_report_of_a_variant(tmp_path: Path) -> None:
    with DciSimulator(variant="owner-user") as sim:
        result = doctor(sim, tmp_path, "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["result"] == "problems"
    assert report["problems"] == ["route server.owner.set: absent"]
    row = next(r for r in report["api_description"]["routes"]
               if r["route"] == "server.owner.set")
    assert row["verdict"] == "absent" and row["documented_as"] is None
    assert row["candidates"][0] == "POST /api/dci/v3/server/{server_id}/user"
    assert row["override"] == ('[route."server.owner.set"]\n'
                               'path = "/api/dci/v3/server/{server_id}/user"\n'
                               'body = { owner = "user" }')
    assert report["api_description"]["summary"]["absent"] == 1


def not_swagger_ui(path: str) -> tuple[int, str, bytes] | None:
    # a panel whose web interface answers every path with its single-page app
    return 200, "text/html", b"<!DOCTYPE html><html><body><div id='app'></div></body></html>"


def documents_behind_login(path: str) -> tuple[int, str, bytes] | None:
    if path.rstrip("/") == "/swagger":
        return REAL_SERVE(path, ())
    if path.endswith(published.INITIALIZER):
        return 200, "application/javascript", published.initializer().encode()
    return 200, "text/html", b"<html><body>Please log in</body></html>"


@pytest.mark.parametrize(("pages", "reason"), [
    (lambda path: None, "{url}/swagger/ answered HTTP 404"),
    (not_swagger_ui, "{url}/swagger/ lists no API documents"),
    (documents_behind_login, "none of the API documents {url}/swagger/ lists could be read "
                             "(auth: {url}/swagger/docs/auth.json: an HTML page, not an OpenAPI"),
], ids=["no-swagger", "html-not-swagger-ui", "documents-not-readable"])
def test_discovery_failing_says_why_and_what_to_do(
    sim: DciSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    pages: Callable[[str], tuple[int, str, bytes] | None], reason: str,
) -> None:
    panel_serving(monkeypatch, pages)
    result = doctor(sim, tmp_path)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    out = result.stdout
    expected = reason.format(url=sim.url)
    assert f"  PROBLEM: cannot read the panel's API description: {expected}" in out
    assert f"  hint: {HINT}" in out
    assert "Routes: " not in out  # no table of routes "absent" for want of a document
    assert "answers     GET    /api/dci/v3/server " in out  # the probes still ran
    assert out.rstrip().endswith("Result: 1 problem(s)")
    as_json = json.loads(doctor(sim, tmp_path, "--json").stdout)
    assert as_json["api_description"]["error"].startswith(expected)
    assert as_json["api_description"]["error"].endswith(HINT)
    assert as_json["api_description"]["routes"] == []


def test_without_swagger_the_admins_files_are_used(
    sim: DciSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    panel_serving(monkeypatch, lambda path: None)
    files = [str(FIXTURES / name) for name in
             ("dci-back.openapi3.json", "auth-v4.openapi3.yaml", "ipmanager.swagger2.json")]
    result = doctor(sim, tmp_path, *(arg for f in files for arg in ("--openapi", f)))
    assert result.exit_code == 0, result.output
    assert f"from {', '.join(files)}" in result.stdout
    assert not [r for r in sim.requests if r.path.startswith("/swagger")]
