"""Variant panels through the real binary: doctor names the difference and prints the override;
with it in routes.toml the whole lifecycle runs; without it the first command that needs the
route fails with msg_error_route_mismatch naming it, and nothing is half done."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from pmdci6_sandbox.dcisim.variants import VARIANTS
from tests.doctor_report import printed_overrides
from tests.e2e.conftest import CLIENT_EMAIL, MODULE, Sandbox, running_sandbox
from tests.e2e.test_lifecycle import ACTIVE, DELETED, ok, permanent_ips

# variant -> (the route it moves, what doctor prints for it)
EXPECTED = {
    "owner-user": ("server.owner.set", [
        '[route."server.owner.set"]',
        'path = "/api/dci/v3/server/{server_id}/user"',
        'body = { owner = "user" }',
    ]),
    "switch-per-port": ("server.switch_port.disable", [
        '[route."server.switch_port.disable"]',
        'path = "/api/dci/v3/switch/{switch_id}/port/{port_id}/disable"',
    ]),
    "install-v2": ("server.operation.install", [
        '[route."server.operation.install"]',
        'path = "/api/dci/v3/server/{server_id}/install"',
        'body = { os_template = "template", hostname = "host_name" }',
    ]),
}


@pytest.fixture(params=sorted(EXPECTED))
def variant_box(request: pytest.FixtureRequest, tmp_path: Path,
                monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    monkeypatch.setenv("PMDCI6_POLL_SECONDS", "0.01")
    with running_sandbox(tmp_path / "mgr5", variant=request.param) as box:
        yield box


def doctor(box: Sandbox, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*box.host.command(), "doctor", "--url", box.sim.url, "--email", box.sim.admin_email,
         "--password-env", "DCI_PASSWORD", *args],
        capture_output=True, text=True, timeout=120, check=False,
        env={**box.host.env(), "DCI_PASSWORD": box.sim.admin_password},
    )


def error_of(result: subprocess.CompletedProcess[bytes]) -> etree._Element:
    assert result.returncode == 1, result.stdout
    assert b"Traceback" not in result.stdout + result.stderr
    error = etree.fromstring(result.stdout).find("error")
    assert error is not None, result.stdout
    return error


def write_routes(box: Sandbox, text: str) -> None:
    box.host.paths.routes_file.parent.mkdir(parents=True, exist_ok=True)
    box.host.paths.routes_file.write_text(text)


def data_ports(box: Sandbox, server_id: int) -> list[str]:
    return [c["admin_status"] for c in box.sim.server(server_id)["switch_connection"]
            if not c.get("is_ipmi_connection")]


def test_doctor_prints_the_override_and_with_it_the_whole_lifecycle_runs(
    variant_box: Sandbox,
) -> None:
    box = variant_box
    route, expected = EXPECTED[box.sim.variant.name]
    first = doctor(box)
    assert first.returncode == 1, first.stdout
    row = next(line for line in first.stdout.splitlines() if line.startswith(f"  {route} "))
    assert row.rstrip().endswith("absent"), row
    overrides = printed_overrides(first.stdout)
    assert all(line in overrides.splitlines() for line in expected), overrides
    assert sum(line.rstrip().endswith(" absent") or "  differs:" in line
               for line in first.stdout.splitlines()) == overrides.count("[route.")
    assert not [r for r in box.sim.requests if r.method != "GET" and r.route != "auth.token"]

    write_routes(box, overrides)
    second = doctor(box)
    assert second.returncode == 0, second.stdout
    row = next(line for line in second.stdout.splitlines() if line.startswith(f"  {route} "))
    assert " yes " in row and row.rstrip().endswith("matches"), row

    item = box.order(401, addons={"ip": "1"})
    ok(box.run("open", item))
    server = box.server_of(item)
    assert server["owner_email"] == CLIENT_EMAIL and server["operation"]["status"] == "ok"
    assert box.host.service(item).status == ACTIVE
    ok(box.run("suspend", item))
    assert set(data_ports(box, server["id"])) == {"down"}
    ok(box.run("resume", item))
    assert set(data_ports(box, server["id"])) == {"up"}
    # drift the cron sync corrects: power off, data ports down
    box.sim.update_server(server["id"], power_status="off", switch_connection=[
        {**c, "admin_status": "down"} if not c.get("is_ipmi_connection") else c
        for c in box.sim.server(server["id"])["switch_connection"]])
    synced = box.run("sync", None, "--module", str(MODULE))
    assert isinstance(synced, subprocess.CompletedProcess)
    assert synced.returncode == 0 and b" corrected=1 " in synced.stdout, synced.stdout
    assert box.sim.server(server["id"])["power_status"] == "on"
    assert set(data_ports(box, server["id"])) == {"up"}
    ok(box.run("close", item))
    assert box.host.service(item).status == DELETED
    closed = box.sim.server(server["id"])
    assert closed["owner"] is None and permanent_ips(closed, "ipv4") == []
    assert set(data_ports(box, server["id"])) == {"down"}
    # the IPMI link was never switched, the per-port panel's or any other
    assert all(c["admin_status"] == "up" for c in closed["switch_connection"]
               if c.get("is_ipmi_connection"))
    if box.sim.variant.name == "switch-per-port":
        data = {f"/port/{c['connection_id']}/" for c in closed["switch_connection"]
                if not c.get("is_ipmi_connection")}
        per_port = [r for r in box.sim.requests if r.route.startswith("switch.port.")]
        assert per_port and all(r.status == 200 for r in per_port)
        assert all(any(port in r.path for port in data) for r in per_port)


def test_without_the_override_the_first_command_needing_the_route_fails_cleanly(
    variant_box: Sandbox,
) -> None:
    box = variant_box
    route, _ = EXPECTED[box.sim.variant.name]
    item = box.order(402, addons={"ip": "1"})
    if route == "server.switch_port.disable":  # open finds the ports up and leaves them
        ok(box.run("open", item))
        server_id = box.server_of(item)["id"]
        command = "suspend"
    else:
        command = "open"
    error = error_of(box.run(command, item))
    assert error.get("type") == "route_mismatch"
    assert error.get("object") == route
    assert "run pmdci6 doctor" in (error.get("value") or "")
    record = box.host.service(item)
    if command == "suspend":
        assert record.status == ACTIVE
        assert set(data_ports(box, server_id)) == {"up"}
    else:
        assert record.status != ACTIVE
        assert [func for func, _ in record.events].count("service.postopen") == 0
        for server in box.sim.servers():  # no install started, no server left half given
            assert server["owner_email"] != CLIENT_EMAIL or server["operation"] is None or \
                server["operation"]["status"] != "running"


BAD_ROUTES = {
    "unknown route": ('[route."server.owner.sett"]\nmethod = "POST"\n', "server.owner.sett",
                      "unknown route name"),
    "slots differ": ('[route."server.get"]\npath = "/api/dci/v3/server/{id}"\n', "server.get",
                     "has slots {id}"),
    "bad method": ('[route."server.owner.set"]\nmethod = "PUT"\n', "server.owner.set",
                   "is not GET, POST or DELETE"),
    "unknown key": ('[route."server.owner.set"]\nverb = "POST"\n', "server.owner.set",
                    "unknown key 'verb'"),
}
COMMANDS = [("open", ()), ("suspend", ()), ("resume", ()), ("close", ()), ("setparam", ()),
            ("sync_item", ()), ("sync", ()), ("get_server_config", ("--module", "1"))]


@pytest.mark.parametrize("case", sorted(BAD_ROUTES))
def test_a_bad_routes_file_fails_every_command_before_any_request(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text, route, reason = BAD_ROUTES[case]
    with running_sandbox(tmp_path / "mgr5") as box:
        item = box.order(403)
        write_routes(box, text)
        commands = COMMANDS if case == "unknown route" else COMMANDS[:2]
        for command, extra in commands:
            error = error_of(box.run(command, None if extra else item, *extra))
            assert error.get("type") == "bad_routes", command
            assert error.get("object") == f"{box.host.paths.routes_file}: {route}"
            assert reason in (error.get("value") or ""), error.get("value")
        assert box.sim.requests == []
        assert box.host.service(item).status != ACTIVE
        result = doctor(box)
        assert result.returncode == 1 and reason in result.stdout


def test_all_variants_are_tested() -> None:
    assert set(EXPECTED) == set(VARIANTS) - {"standard"}
