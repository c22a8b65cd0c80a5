"""`pmdci6 doctor` against the simulator: by URL and password, and by BILLmanager module."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from click.testing import CliRunner, Result

from dci6_processing.dci.client import DciClient
from dci6_processing.dci.routes import ROUTES
from dci6_processing.doctor import doctor_command, probe_routes
from dci6_processing.paths import ROOT_ENV
from pmdci6_sandbox.billmgr_host import BillmgrHost
from pmdci6_sandbox.dcisim import DciSimulator

I9 = "i9-9900K-64Gb-2x1024NVMe"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def run(sim: DciSimulator, *args: str, password: str | None = None) -> Result:
    runner = CliRunner()
    env = {"DCI_PASSWORD": password if password is not None else sim.admin_password}
    return runner.invoke(doctor_command, ["--url", sim.url, "--email", sim.admin_email,
                                          "--password-env", "DCI_PASSWORD", *args], env=env)


def test_probe_routes_on_the_simulator(client: DciClient) -> None:
    probes = {p.route.name: p for p in probe_routes(client)}
    assert set(probes) == {r.name for r in ROUTES}
    for r in ROUTES:
        expected = "not probed" if r.changes_state and r.name != "auth.token" else "answers"
        assert probes[r.name].outcome == expected, (r.name, probes[r.name])


def test_a_healthy_panel(sim: DciSimulator) -> None:
    result = run(sim)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"DCImanager 6 at {sim.url} as {sim.admin_email}" in out
    assert "answers     GET    /api/dci/v3/server " in out
    assert "not probed  POST   /api/dci/v3/server/{server_id}/owner" in out
    assert I9 in out and "public-v6" in out and "Windows Server 2022" in out
    assert "Result: all is well" in out
    assert sim.admin_password not in result.output
    assert not [r for r in sim.requests if r.method != "GET" and r.route != "auth.token"]


def test_tariffs_naming_what_the_panel_lacks(sim: DciSimulator) -> None:
    tariffs = {
        "good": {"configuration": I9, "os_template": "ubuntu 22.04", "ipv4_pool": "1",
                 "ipv6_pool": "public-v6", "diag_pool": "diag-v4"},
        "bad": {"configuration": "No-Such-Config", "os_template": "Plan 9",
                "ipv4_pool": "public-v6", "ipv6_pool": "77", "diag_pool": "nope"},
        "empty": {"configuration": ""},
    }
    result = run(sim, "--tariff-params", json.dumps(tariffs))
    assert result.exit_code == 1, result.output
    out = result.stdout
    good = out.split("tariff good:")[1].split("tariff bad:")[0]
    assert good.strip() == "ok"
    for fragment in ("configuration 'No-Such-Config' is not on the panel",
                     "os_template 'Plan 9' names no OS template",
                     "ipv4_pool 'public-v6' names no ipv4 pool",
                     "ipv6_pool '77' names no ipv6 pool",
                     "diag_pool 'nope' names no ipv4 pool",
                     "tariff empty: configuration"):
        assert fragment in out, fragment
    assert "Result: 6 problem(s)" in out


def test_tariffs_from_a_file_as_a_list(sim: DciSimulator, tmp_path: Path) -> None:
    path = tmp_path / "tariffs.json"
    path.write_text(json.dumps([{"name": "t1", "configuration": I9, "ipv4_pool": "1"}]))
    result = run(sim, "--tariff-params", f"@{path}")
    assert result.exit_code == 0, result.output
    assert "tariff t1:\n    ok" in result.stdout


def test_a_tariff_that_could_not_activate_is_flagged(sim: DciSimulator) -> None:
    # the same checks as checkparam: managed addresses need an IPv4 pool
    result = run(sim, "--tariff-params", json.dumps({"t2": {"configuration": I9}}))
    assert result.exit_code == 1, result.output
    assert "tariff t2: ipv4_pool: addresses are managed and no IPv4 pool is set" in result.stdout


def test_bad_credentials(sim: DciSimulator) -> None:
    result = run(sim, password="wrong-password")
    assert result.exit_code == 1
    assert "PROBLEM: cannot log in: Invalid email or password" in result.stdout
    assert "wrong-password" not in result.output


def test_unreachable_panel(tmp_path: Path) -> None:
    password_file = tmp_path / "pw"
    password_file.write_text("secret-pw\n")
    result = CliRunner().invoke(doctor_command, [
        "--url", "http://127.0.0.1:9", "--email", "a@example.com",
        "--password-file", str(password_file), "--timeout", "2"])
    assert result.exit_code == 1
    assert "cannot log in: cannot reach 127.0.0.1:9" in result.stdout
    assert "secret-pw" not in result.output


def test_a_route_the_panel_does_not_answer(sim: DciSimulator) -> None:
    sim.faults.error_500(1, path_contains="/os_template")
    result = run(sim)
    assert result.exit_code == 1
    assert "PROBLEM: GET /api/dci/v3/os_template error: panel_error: Internal server error" \
        in result.stdout


@pytest.mark.parametrize("args", [
    [],
    ["--url", "https://x.example"],
    ["--url", "https://x.example", "--email", "a@x.example"],
    ["--url", "https://x.example", "--email", "a@x.example", "--password-env", "A",
     "--password-file", __file__],
    ["--module", "1", "--url", "https://x.example"],
])
def test_usage_errors(args: list[str]) -> None:
    result = CliRunner().invoke(doctor_command, args, env={"A": "pw"})
    assert result.exit_code == 2


def test_by_module(sim: DciSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    host = BillmgrHost.create(tmp_path / "mgr5")
    host.add_module(1, url=sim.url, username=sim.admin_email, password=sim.admin_password,
                    location_id=1)
    host.add_module(2, url=sim.url, username=sim.admin_email, password=sim.admin_password,
                    location_id=42)
    monkeypatch.setenv(ROOT_ENV, str(host.root))
    ok = CliRunner().invoke(doctor_command, ["--module", "1"])
    assert ok.exit_code == 0, ok.output
    assert "Result: all is well" in ok.stdout
    bad = CliRunner().invoke(doctor_command, ["--module", "2"])
    assert bad.exit_code == 1
    assert "the module's Location ID 42 is not on the panel" in bad.stdout
    assert sim.admin_password not in ok.output + bad.output
    log_text = host.paths.log_file.read_text()
    assert sim.admin_password not in log_text
    missing = CliRunner().invoke(doctor_command, ["--module", "9"])
    assert missing.exit_code == 1 and "cannot read module 9" in missing.output
