"""`sync_item` and the cron `sync` through the real binary, against the simulator and the
stand-in BILLmanager host."""

from __future__ import annotations

import fcntl
import os
import subprocess
import time
from pathlib import Path

import pytest
from lxml import etree

from tests.e2e.conftest import MODULE, Sandbox

ACTIVE, STOPPED = 2, 3


def opened(sandbox: Sandbox, item: int) -> int:
    """Open a service through the binary; the id of its server."""
    sandbox.order(item)
    result = sandbox.run("open", item)
    assert result.returncode == 0, result.stdout  # type: ignore[attr-defined]
    return int(sandbox.host.service(item).params["dci_server_id"])


def run_sync(sandbox: Sandbox, *extra: str) -> subprocess.CompletedProcess[bytes]:
    result = sandbox.run("sync", None, *extra)
    assert isinstance(result, subprocess.CompletedProcess)
    assert b"Traceback" not in result.stdout + result.stderr
    return result


def summary(result: subprocess.CompletedProcess[bytes]) -> dict[str, str]:
    """The summary line's figures, from plain stdout or from the sync_failed error."""
    text = result.stdout.decode()
    if text.startswith("<doc"):
        error = etree.fromstring(result.stdout).find("error")
        assert error is not None, text
        assert error.get("type") == "sync_failed", text
        text = str(error.get("value"))
    assert text.startswith("pmdci6 sync: "), text
    return dict(part.split("=", 1) for part in text.split() if "=" in part)


def data_ports(server: dict[str, object]) -> list[str]:
    connections = server["switch_connection"]
    assert isinstance(connections, list)
    return [c["admin_status"] for c in connections if not c.get("is_ipmi_connection")]


def actions(sandbox: Sandbox) -> list[str]:
    """Routes of the state-changing requests the panel got (login aside)."""
    return [r.route for r in sandbox.sim.requests
            if r.method != "GET" and r.route != "auth.token"]


def test_active_service_with_server_off_is_powered_on(sandbox: Sandbox) -> None:
    server_id = opened(sandbox, 201)
    sandbox.sim.update_server(server_id, power_status="off")
    sandbox.sim.clear_requests()

    result = run_sync(sandbox, "--module", str(MODULE))

    assert result.returncode == 0, result.stdout
    figures = summary(result)
    assert (figures["checked"], figures["corrected"], figures["failed"]) == ("1", "1", "0")
    assert sandbox.sim.server(server_id)["power_status"] == "on"
    assert actions(sandbox) == ["server.power_on"]
    listings = [r for r in sandbox.sim.requests if r.route == "server.list"]
    assert len(listings) == 1
    assert sandbox.host.service(201).status == ACTIVE


def test_stopped_service_with_server_on_is_powered_off(sandbox: Sandbox) -> None:
    server_id = opened(sandbox, 202)
    assert sandbox.run("suspend", 202).returncode == 0  # type: ignore[attr-defined]
    assert sandbox.host.service(202).status == STOPPED
    assert sandbox.sim.server(server_id)["power_status"] == "on"  # suspend only cut the ports

    result = run_sync(sandbox)  # no --module: every module of this type

    assert result.returncode == 0, result.stdout
    assert summary(result)["corrected"] == "1"
    server = sandbox.sim.server(server_id)
    assert server["power_status"] == "off"
    assert set(data_ports(server)) == {"down"}
    assert sandbox.host.service(202).status == STOPPED


def test_ports_follow_the_status_too(sandbox: Sandbox) -> None:
    server_id = opened(sandbox, 203)
    sandbox.sim.update_server(server_id, switch_connection=[
        {**c, "admin_status": "down"} if not c.get("is_ipmi_connection") else c
        for c in sandbox.sim.server(server_id)["switch_connection"]
    ])

    result = sandbox.run("sync_item", 203)

    assert result.returncode == 0, result.stdout  # type: ignore[attr-defined]
    assert set(data_ports(sandbox.sim.server(server_id))) == {"up"}


def test_owner_drift_is_reported_and_nothing_is_touched(sandbox: Sandbox) -> None:
    server_id = opened(sandbox, 204)
    other = sandbox.sim.add_user("someone-else@example.com")
    sandbox.sim.update_server(server_id, owner=other["id"], power_status="off")
    sandbox.sim.clear_requests()

    result = run_sync(sandbox, "--module", str(MODULE))

    assert result.returncode == 0, result.stdout
    assert summary(result)["drifted"] == "1"
    assert actions(sandbox) == []
    assert sandbox.sim.server(server_id)["power_status"] == "off"
    record = sandbox.host.service(204)
    assert record.status == ACTIVE
    assert "someone-else@example.com" in record.status_message
    assert record.params["dci_drift"] == record.status_message

    writes = len(sandbox.host.mgrctl_log())
    again = run_sync(sandbox, "--module", str(MODULE))
    assert summary(again)["drifted"] == "1"
    assert len(sandbox.host.mgrctl_log()) == writes  # reported once, not every run

    sandbox.sim.update_server(server_id, owner=sandbox.sim.user_by_email(
        "client@example.com")["id"])  # type: ignore[index]
    item_result = sandbox.run("sync_item", 204)
    assert item_result.returncode == 0  # type: ignore[attr-defined]
    assert sandbox.sim.server(server_id)["power_status"] == "on"
    record = sandbox.host.service(204)
    assert record.status_message == "" and record.params["dci_drift"] == ""


def test_gone_server_and_ip_drift_are_reported(sandbox: Sandbox) -> None:
    gone = opened(sandbox, 205)
    differs = opened(sandbox, 206)
    sandbox.host.set_param(205, "dci_server_id", "999999")
    sandbox.sim.update_server(differs, power_status="off", ip=[])
    sandbox.sim.clear_requests()

    result = run_sync(sandbox, "--module", str(MODULE))

    assert result.returncode == 0, result.stdout
    assert summary(result)["drifted"] == "2"
    assert "server 999999 is gone" in sandbox.host.service(205).status_message
    assert "IP addresses" in sandbox.host.service(206).status_message
    assert actions(sandbox) == []
    assert gone != differs


@pytest.mark.slow  # the client's ten tries back off for real: about 13 s of waiting
def test_a_503_burst_changes_nothing_and_the_run_reports_failed(sandbox: Sandbox) -> None:
    first = opened(sandbox, 207)
    second = opened(sandbox, 208)
    for server_id in (first, second):
        sandbox.sim.update_server(server_id, power_status="off")
    # longer than the client's ten tries: the first correction cannot get through
    sandbox.sim.faults.burst_503(10, path_contains="power_on")

    # one worker: the burst meets one correction's ten tries (a pool would share it out)
    result = run_sync(sandbox, "--module", str(MODULE), "--workers", "1")

    assert result.returncode != 0
    figures = summary(result)
    assert (figures["failed"], figures["corrected"], figures["checked"]) == ("1", "1", "2")
    powered = sorted(sandbox.sim.server(s)["power_status"] for s in (first, second))
    assert powered == ["off", "on"]
    for item in (207, 208):
        record = sandbox.host.service(item)
        assert record.status == ACTIVE and record.status_message == ""


def _lock_is_held(path: Path) -> bool:
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_two_overlapping_syncs_the_second_refuses(sandbox: Sandbox) -> None:
    opened(sandbox, 209)
    sandbox.sim.faults.slow(3.0, 1, path_contains="/dci/v3/server")
    first = subprocess.Popen([*sandbox.host.command(), "--command", "sync", "--module", "1"],
                             cwd=sandbox.host.root, env=sandbox.host.env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        lock = sandbox.host.paths.state_dir / "locks" / "sync.lock"
        deadline = time.monotonic() + 20
        while not _lock_is_held(lock):
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first sync never took its lock"
            time.sleep(0.02)

        second = run_sync(sandbox, "--module", "1")

        assert second.returncode != 0
        error = etree.fromstring(second.stdout).find("error")
        assert error is not None and error.get("type") == "sync_running"
    finally:
        out, _ = first.communicate(timeout=60)
    assert first.returncode == 0, out
    assert out.startswith(b"pmdci6 sync: ")


def test_maintenance_switch_stops_the_sync(sandbox: Sandbox) -> None:
    server_id = opened(sandbox, 210)
    sandbox.sim.update_server(server_id, power_status="off")
    sandbox.host.maintenance(True)

    result = run_sync(sandbox, "--module", str(MODULE))

    assert result.returncode == 0
    assert sandbox.sim.server(server_id)["power_status"] == "off"


def test_the_summary_reaches_the_log(sandbox: Sandbox) -> None:
    opened(sandbox, 211)
    result = run_sync(sandbox, "--module", str(MODULE))
    assert result.returncode == 0
    log_text = sandbox.host.paths.log_file.read_text()
    assert '"event": "sync.summary"' in log_text
    assert '"checked": 1' in log_text
