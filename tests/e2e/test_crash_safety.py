"""Kill the binary after every listed step of every operation, run it again, and check it
finishes correctly: one server, never a second one, never a lost one, nothing half-done.

The steps come from the operations' own lists (`lifecycle.operations.STEP_LISTS`), so a new
step is crash-tested without anyone remembering to; a new operation needs a `Scenario` here
(`test_every_operation_has_a_scenario` says so).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from itertools import groupby

import pytest

from dci6_processing.lifecycle.common import FAILPOINT_EXIT_CODE
from dci6_processing.lifecycle.operations import STEP_LISTS
from pmdci6_sandbox.dcisim.state import is_free
from tests.e2e.conftest import CLIENT_EMAIL, Prepared, Sandbox
from tests.e2e.test_lifecycle import ACTIVE, DELETED, STOPPED, ok, permanent_ips


def crash(sandbox: Sandbox, command: str, item: int, step: str) -> None:
    result = sandbox.run(command, item, env={"PMDCI6_FAILPOINT": f"crash-after:{step}"})
    assert isinstance(result, subprocess.CompletedProcess)
    assert result.returncode == FAILPOINT_EXIT_CODE, (step, result.stdout, result.stderr)


def owned_by_client(sandbox: Sandbox) -> list[int]:
    return [int(s["id"]) for s in sandbox.sim.servers() if s["owner_email"] == CLIENT_EMAIL]


def data_ports(server: dict[str, object]) -> list[dict[str, str]]:
    connections = server["switch_connection"]
    assert isinstance(connections, list)
    return [c for c in connections if not c.get("is_ipmi_connection")]


# --- one scenario per operation: where a run starts, what a finished run leaves ---------------


@dataclass(frozen=True)
class Scenario:
    prepare: Callable[[Sandbox], int]  # a service ready for the command; returns its item
    finished: Callable[[Sandbox, int], None]  # asserts the end state of a completed run
    # asserts what must hold while the process lies dead after `step`
    crashed: Callable[[Sandbox, int, str], None] = lambda sandbox, item, step: None


def _order_to_open(sandbox: Sandbox) -> int:
    return sandbox.order(201, addons={"ip": "2"})


def _opened(sandbox: Sandbox, item: int) -> None:
    record = sandbox.host.service(item)
    assert record.status == ACTIVE
    server = sandbox.server_of(item)
    assert owned_by_client(sandbox) == [server["id"]]  # exactly one server, none leaked
    operation = server["operation"]
    assert isinstance(operation, dict)
    assert operation["status"] == "ok" and server["os_template"] is not None
    v4 = permanent_ips(server, "ipv4")
    assert len(v4) == 2
    assert sorted(addr for _, addr in record.ips) == sorted(v4)
    assert [f for f, _ in record.events].count("service.postopen") >= 1


def _open_service(sandbox: Sandbox, item: int) -> int:
    ok(sandbox.run("open", item))
    return item


def _service_to_close(sandbox: Sandbox) -> int:
    return _open_service(sandbox, sandbox.order(202))


def _close_crashed(sandbox: Sandbox, item: int, step: str) -> None:
    if step not in ("owner_released", "close_reported"):
        # until the wipe is verified and the owner released, the server is never free
        assert sandbox.server_of(item)["owner_email"] == CLIENT_EMAIL


def _closed(sandbox: Sandbox, item: int) -> None:
    assert sandbox.host.service(item).status == DELETED
    server = sandbox.server_of(item)
    assert server["owner"] is None
    assert server["os_template"] is None
    assert server["power_status"] == "off"
    assert permanent_ips(server, "ipv4") == []


def _service_to_change(sandbox: Sandbox) -> int:
    item = _open_service(sandbox, sandbox.order(203, addons={"ip": "1"}, params={"ostempl": "1"}))
    sandbox.host.set_addon(item, "ip", "2")
    sandbox.host.set_param(item, "ostempl", "4")
    return item


def _changed(sandbox: Sandbox, item: int) -> None:
    record = sandbox.host.service(item)
    server = sandbox.server_of(item)
    template, operation = server["os_template"], server["operation"]
    assert isinstance(template, dict) and isinstance(operation, dict)
    assert template["id"] == 4 and operation["status"] == "ok"
    v4 = permanent_ips(server, "ipv4")
    assert len(v4) == 2 and sorted(addr for _, addr in record.ips) == sorted(v4)
    assert owned_by_client(sandbox) == [server["id"]]
    assert "service.postsetparam" in [f for f, _ in record.events]


def _service_to_suspend(sandbox: Sandbox) -> int:
    return _open_service(sandbox, sandbox.order(204))


def _suspended(sandbox: Sandbox, item: int) -> None:
    assert sandbox.host.service(item).status == STOPPED
    ports = data_ports(sandbox.server_of(item))
    assert ports and all(port["admin_status"] == "down" for port in ports)


def _service_to_resume(sandbox: Sandbox) -> int:
    item = _open_service(sandbox, sandbox.order(205))
    ok(sandbox.run("suspend", item))
    server_id = sandbox.server_of(item)["id"]
    sandbox.sim.update_server(server_id, power_status="off")  # as the status sync leaves it
    return item


def _resumed(sandbox: Sandbox, item: int) -> None:
    assert sandbox.host.service(item).status == ACTIVE
    server = sandbox.server_of(item)
    assert server["power_status"] == "on"
    ports = data_ports(server)
    assert ports and all(port["admin_status"] == "up" for port in ports)


def _service_to_reboot(sandbox: Sandbox) -> int:
    return _open_service(sandbox, sandbox.order(206))


def _rebooted(sandbox: Sandbox, item: int) -> None:
    record = sandbox.host.service(item)
    assert record.status == ACTIVE
    server = sandbox.server_of(item)
    assert server["power_status"] == "on"
    assert owned_by_client(sandbox) == [server["id"]]
    assert "service.postreboot" in [f for f, _ in record.events]


def _service_to_stop(sandbox: Sandbox) -> int:
    return _open_service(sandbox, sandbox.order(207))


def _stopped_by_client(sandbox: Sandbox, item: int) -> None:
    record = sandbox.host.service(item)
    assert record.status == ACTIVE  # the client's stop is no suspension
    assert sandbox.server_of(item)["power_status"] == "off"
    assert record.params.get("dci_power_wish") == "off"
    assert "service.poststop" in [f for f, _ in record.events]


def _service_to_start(sandbox: Sandbox) -> int:
    item = _open_service(sandbox, sandbox.order(208))
    ok(sandbox.run("stop", item))
    return item


def _started(sandbox: Sandbox, item: int) -> None:
    record = sandbox.host.service(item)
    assert sandbox.server_of(item)["power_status"] == "on"
    assert not record.params.get("dci_power_wish")
    assert "service.poststart" in [f for f, _ in record.events]


SCENARIOS: dict[str, Scenario] = {
    "open": Scenario(_order_to_open, _opened),
    "close": Scenario(_service_to_close, _closed, _close_crashed),
    "setparam": Scenario(_service_to_change, _changed),
    "suspend": Scenario(_service_to_suspend, _suspended),
    "resume": Scenario(_service_to_resume, _resumed),
    "reboot": Scenario(_service_to_reboot, _rebooted),
    "start": Scenario(_service_to_start, _started),
    "stop": Scenario(_service_to_stop, _stopped_by_client),
}

CASES = [(command, name) for command, steps in STEP_LISTS.items() for name in steps.names]


def test_every_operation_has_a_scenario() -> None:
    assert SCENARIOS.keys() == STEP_LISTS.keys()


@pytest.mark.parametrize(("command", "step"), CASES, ids=[f"{c}-{s}" for c, s in CASES])
def test_killed_after_any_step_finishes_on_rerun(prepared: Prepared, command: str,
                                                  step: str) -> None:
    scenario = SCENARIOS[command]
    sandbox, item = prepared(scenario.prepare)
    crash(sandbox, command, item, step)
    scenario.crashed(sandbox, item, step)
    ok(sandbox.run(command, item))
    scenario.finished(sandbox, item)


def _installing_service_to_close(sandbox: Sandbox) -> int:
    """An open with no_wait_install whose install still runs: the service records it as its
    own, and close must stop it all the same (issue 10 point 4)."""
    item = sandbox.order_on_tariff(206, 14, no_wait_install="on")
    sandbox.sim.hang_operations(kind="install", count=1)
    ok(sandbox.run("open", item))
    operation = sandbox.server_of(item)["operation"]
    assert isinstance(operation, dict) and operation["status"] == "running"
    return item


CLOSE_CASES = list(STEP_LISTS["close"].names)


@pytest.mark.parametrize("step", CLOSE_CASES)
def test_close_killed_after_any_step_while_opens_install_runs_finishes_on_rerun(
        prepared: Prepared, step: str) -> None:
    sandbox, item = prepared(_installing_service_to_close)
    crash(sandbox, "close", item, step)
    _close_crashed(sandbox, item, step)
    ok(sandbox.run("close", item))
    _closed(sandbox, item)
    assert is_free(sandbox.server_of(item))


def _steps_logged(sandbox: Sandbox, since: int) -> list[str]:
    with (sandbox.host.root / "var" / "pmdci6.log").open("rb") as log:
        log.seek(since)
        events = [json.loads(line) for line in log if line.strip()]
    return [e["step"] for e in events if e.get("event") == "step.done"]


@pytest.mark.parametrize("command", list(STEP_LISTS))
def test_a_full_run_passes_exactly_the_listed_steps_in_order(prepared: Prepared,
                                                             command: str) -> None:
    scenario = SCENARIOS[command]
    sandbox, item = prepared(scenario.prepare)
    log_path = sandbox.host.root / "var" / "pmdci6.log"
    since = log_path.stat().st_size if log_path.exists() else 0
    ok(sandbox.run(command, item))
    scenario.finished(sandbox, item)
    passed = [name for name, _ in groupby(_steps_logged(sandbox, since))]  # one per address
    assert passed == list(STEP_LISTS[command].names)
