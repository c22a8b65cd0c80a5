"""Kill the binary after every step of open and close, run it again, and check it finishes
correctly: one server, never a second one, never a lost one, nothing half-done."""

from __future__ import annotations

import subprocess

import pytest

from dci6_processing.lifecycle.common import FAILPOINT_EXIT_CODE
from tests.e2e.conftest import CLIENT_EMAIL, Sandbox
from tests.e2e.test_lifecycle import ACTIVE, DELETED, ok, permanent_ips

OPEN_STEPS = [
    "user_ready", "server_recorded", "server_claimed", "ports_on", "powered_on",
    "operation_stopped", "ip_added_to_server", "ips_assigned", "install_started",
    "install_done", "params_saved", "open_reported",
]
CLOSE_STEPS = [
    "ports_on", "powered_on", "operation_stopped", "ips_released", "diagnostics_started",
    "diagnostics_done", "powered_off", "ports_off", "owner_released", "close_reported",
]


def crash(sandbox: Sandbox, command: str, item: int, step: str) -> None:
    result = sandbox.run(command, item, env={"PMDCI6_FAILPOINT": f"crash-after:{step}"})
    assert isinstance(result, subprocess.CompletedProcess)
    assert result.returncode == FAILPOINT_EXIT_CODE, (step, result.stdout, result.stderr)


def owned_by_client(sandbox: Sandbox) -> list[int]:
    return [int(s["id"]) for s in sandbox.sim.servers() if s["owner_email"] == CLIENT_EMAIL]


@pytest.mark.parametrize("step", OPEN_STEPS)
def test_open_killed_after_any_step_finishes_on_rerun(sandbox: Sandbox, step: str) -> None:
    item = sandbox.order(201, addons={"ip": "2"})
    crash(sandbox, "open", item, step)
    ok(sandbox.run("open", item))
    record = sandbox.host.service(item)
    assert record.status == ACTIVE
    server = sandbox.server_of(item)
    assert owned_by_client(sandbox) == [server["id"]]  # exactly one server, none leaked
    assert server["operation"]["status"] == "ok" and server["os_template"] is not None
    v4 = permanent_ips(server, "ipv4")
    assert len(v4) == 2
    assert sorted(addr for _, addr in record.ips) == sorted(v4)
    assert [f for f, _ in record.events].count("service.postopen") >= 1


@pytest.mark.parametrize("step", CLOSE_STEPS)
def test_close_killed_after_any_step_finishes_on_rerun(sandbox: Sandbox, step: str) -> None:
    item = sandbox.order(202)
    ok(sandbox.run("open", item))
    server_id = sandbox.server_of(item)["id"]
    crash(sandbox, "close", item, step)
    if step not in ("owner_released", "close_reported"):
        # until the wipe is verified and the owner released, the server is never free
        assert sandbox.sim.server(server_id)["owner_email"] == CLIENT_EMAIL
    ok(sandbox.run("close", item))
    assert sandbox.host.service(item).status == DELETED
    server = sandbox.sim.server(server_id)
    assert server["owner"] is None
    assert server["os_template"] is None
    assert server["power_status"] == "off"
    assert permanent_ips(server, "ipv4") == []


CHANGE_STEPS = ["ip_added_to_server", "ips_assigned", "install_started", "install_done",
                "changes_applied"]


@pytest.mark.parametrize("step", CHANGE_STEPS)
def test_setparam_killed_after_any_step_finishes_on_rerun(sandbox: Sandbox, step: str) -> None:
    item = sandbox.order(203, addons={"ip": "1"}, params={"ostempl": "1"})
    ok(sandbox.run("open", item))
    server_id = sandbox.server_of(item)["id"]
    sandbox.host.set_addon(item, "ip", "2")
    sandbox.host.set_param(item, "ostempl", "4")
    crash(sandbox, "setparam", item, step)
    ok(sandbox.run("setparam", item))
    record = sandbox.host.service(item)
    server = sandbox.sim.server(server_id)
    assert server["os_template"]["id"] == 4 and server["operation"]["status"] == "ok"
    v4 = permanent_ips(server, "ipv4")
    assert len(v4) == 2 and sorted(addr for _, addr in record.ips) == sorted(v4)
    assert owned_by_client(sandbox) == [server_id]
    assert "service.postsetparam" in [f for f, _ in record.events]
