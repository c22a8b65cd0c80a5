"""Power rules and operations on the simulator's clock, over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from pmdci6_sandbox.dcisim import DciSimulator, Inventory

ROOT_PASSWORD = "Sandbox-Root-Pass-1"
INSTALL: dict[str, Any] = {
    "os_template": 1,
    "password": ROOT_PASSWORD,
    "hostname": "web.example",
    "ssh_keys": ["ssh-ed25519 AAAA test"],
    "efi": False,
    "temporary_ipv4": False,
}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Panel:
    def __init__(self, sim: DciSimulator) -> None:
        self.sim = sim
        self.http = requests.Session()
        login = self.http.post(
            f"{sim.url}/api/auth/v4/public/token",
            json={"email": sim.admin_email, "password": sim.admin_password},
            timeout=10,
        )
        self.http.headers["x-xsrf-token"] = login.json()["token"]

    def get(self, path: str) -> requests.Response:
        return self.http.get(f"{self.sim.url}/api{path}", timeout=10)

    def post(self, path: str, body: Any = None) -> requests.Response:
        return self.http.post(f"{self.sim.url}/api{path}", json=body or {}, timeout=10)

    def server(self, server_id: int) -> dict[str, Any]:
        response = self.get(f"/dci/v3/server/{server_id}")
        assert response.status_code == 200
        body: dict[str, Any] = response.json()
        return body

    def operation(self, server_id: int) -> dict[str, Any]:
        operation: dict[str, Any] = self.server(server_id)["operation"]
        return operation


def error_of(response: requests.Response) -> tuple[int, int]:
    return response.status_code, response.json()["error"]["code"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock) -> Iterator[DciSimulator]:
    """Panel seconds are real seconds here, but the clock only moves when a test moves it."""
    with DciSimulator(Inventory.default(), time_scale=1.0, clock=clock) as simulator:
        yield simulator


@pytest.fixture
def panel(sim: DciSimulator) -> Panel:
    return Panel(sim)


@pytest.fixture
def instant() -> Iterator[Panel]:
    with DciSimulator(Inventory.default(), time_scale=0.0) as simulator:
        yield Panel(simulator)


# --- power ------------------------------------------------------------------------------------


def test_power_rules(instant: Panel) -> None:
    assert instant.server(1)["power_status"] == "off"
    assert error_of(instant.post("/dci/v3/server/1/power_off")) == (400, 2003)
    assert instant.post("/dci/v3/server/1/power_on").json() == {}
    assert instant.server(1)["power_status"] == "on"
    assert error_of(instant.post("/dci/v3/server/1/power_on")) == (400, 2003)
    assert instant.post("/dci/v3/server/1/power_reset").ok  # allowed in any state
    assert instant.post("/dci/v3/server/1/power_off").ok
    assert instant.server(1)["power_status"] == "off"
    assert instant.post("/dci/v3/server/1/power_reset").ok
    assert instant.server(1)["power_status"] == "on"
    assert instant.server(5)["power_status"] == "unknown"
    assert error_of(instant.post("/dci/v3/server/5/power_off")) == (400, 2003)
    assert instant.post("/dci/v3/server/5/power_on").ok  # unknown counts as off
    refused = instant.post("/dci/v3/server/3/power_on").json()["error"]
    assert refused["msg"] == "Power action not allowed in current state"
    assert refused["value"] == {"power_status": "on", "action": "power_on"}


def test_power_follows_after_a_panel_delay(clock: FakeClock, panel: Panel) -> None:
    assert panel.post("/dci/v3/server/1/power_on").ok
    assert panel.server(1)["power_status"] == "off"
    clock.now += 4.9
    assert panel.server(1)["power_status"] == "off"
    clock.now += 0.1
    assert panel.server(1)["power_status"] == "on"


# --- install ----------------------------------------------------------------------------------


def test_install_runs_600_panel_seconds(clock: FakeClock, sim: DciSimulator, panel: Panel) -> None:
    started = panel.post("/dci/v3/server/1/operation/install", INSTALL)
    assert started.status_code == 200
    operation = started.json()["operation"]
    assert operation["status"] == "running" and isinstance(operation["id"], int)
    server = panel.server(1)
    assert server["os_template"] == {"id": 1, "name": "Ubuntu 22.04", "tags": ["linux", "ubuntu"]}
    assert server["domain"] == "web.example"
    assert server["operation"]["status"] == "running"
    clock.now += 300
    halfway = panel.operation(1)
    assert halfway["status"] == "running" and halfway["progress_info"]["percent"] == 50
    clock.now += 299.9
    assert panel.operation(1)["status"] == "running"
    clock.now += 0.1
    done = panel.operation(1)
    assert done["id"] == operation["id"] and done["status"] == "ok" and done["status_info"] is None
    assert panel.server(1)["power_status"] == "on"
    # The operation stays on the server; the next one gets a new id.
    assert panel.operation(1)["status"] == "ok"
    second = panel.post("/dci/v3/server/1/operation/install", {**INSTALL, "os_template": 3})
    assert second.json()["operation"]["id"] > operation["id"]
    assert sim.server(1)["os_template"]["name"] == "Windows Server 2022"


def test_install_password_is_never_kept(sim: DciSimulator, panel: Panel) -> None:
    panel.post("/dci/v3/server/1/operation/install", INSTALL)
    assert ROOT_PASSWORD not in repr(sim.server(1))
    assert ROOT_PASSWORD not in repr(sim.requests)
    assert ROOT_PASSWORD not in repr(sim.state.__dict__)


def test_starting_while_running_conflicts(panel: Panel) -> None:
    assert panel.post("/dci/v3/server/1/operation/install", INSTALL).ok
    for kind, body in (("install", INSTALL), ("diag", {"clear_disks": False})):
        response = panel.post(f"/dci/v3/server/1/operation/{kind}", body)
        assert error_of(response) == (409, 2004)
        assert response.json()["error"]["msg"] == "Server has a running operation"


def test_stop_cancels_and_stop_when_idle_is_a_no_op(clock: FakeClock, panel: Panel) -> None:
    assert panel.post("/dci/v3/server/1/operation/stop").json() == {}
    assert panel.operation(1) is None
    started = panel.post("/dci/v3/server/1/operation/install", INSTALL).json()["operation"]
    assert panel.post("/dci/v3/server/1/operation/stop").json() == {}
    canceled = panel.operation(1)
    assert canceled["id"] == started["id"] and canceled["status"] == "canceled"
    assert canceled["status_info"]
    clock.now += 10_000
    assert panel.operation(1)["status"] == "canceled"  # the old deadline does not revive it
    assert panel.post("/dci/v3/server/1/operation/install", INSTALL).ok


def test_injected_failures_are_counted(clock: FakeClock, sim: DciSimulator, panel: Panel) -> None:
    sim.fail_operations("install", count=1, reason="No bootable disk found")
    panel.post("/dci/v3/server/1/operation/install", INSTALL)
    panel.post("/dci/v3/server/2/operation/install", INSTALL)
    panel.post("/dci/v3/server/3/operation/diag", {})
    assert panel.operation(1)["status"] == "running"  # fails when its time is up
    clock.now += 900
    failed = panel.operation(1)
    assert (failed["status"], failed["status_info"]) == ("failed", "No bootable disk found")
    assert panel.operation(2)["status"] == "ok"
    assert panel.operation(3)["status"] == "ok"  # a diag is not an install
    assert panel.server(1)["power_status"] == "off"  # a failed install changes nothing else
    with pytest.raises(ValueError):
        sim.fail_operations("reboot")


def test_hung_operations_never_finish_until_stopped(
    clock: FakeClock, sim: DciSimulator, panel: Panel
) -> None:
    sim.hang_operations("diag", count=1)
    panel.post("/dci/v3/server/1/operation/diag", {"clear_disks": True})
    panel.post("/dci/v3/server/2/operation/diag", {"clear_disks": True})
    clock.now += 10**7
    assert panel.operation(1)["status"] == "running"
    assert panel.operation(2)["status"] == "ok"
    assert panel.post("/dci/v3/server/1/operation/stop").ok
    assert panel.operation(1)["status"] == "canceled"
    assert [ip for ip in panel.server(1)["ip"]] == []  # the diag address went back


def test_install_with_temporary_ipv4_leaves_a_temporary_address(
    clock: FakeClock, panel: Panel
) -> None:
    panel.post("/dci/v3/server/1/operation/install", {**INSTALL, "temporary_ipv4": True})
    clock.now += 600
    assert panel.operation(1)["status"] == "ok"
    addresses = panel.server(1)["ip"]
    assert len(addresses) == 1
    assert addresses[0]["status"] == "temporary" and addresses[0]["name"] == "198.51.100.10"
    assert panel.http.delete(f"{panel.sim.url}/api/dci/v3/ip/{addresses[0]['id']}").ok


@pytest.mark.parametrize(
    ("body", "expected"),
    [({**INSTALL, "os_template": 42}, (404, 1004)),
     ({k: v for k, v in INSTALL.items() if k != "password"}, (400, 1000)),
     ({**INSTALL, "ssh_keys": "not-a-list"}, (400, 1000)),
     ({**INSTALL, "efi": "yes"}, (400, 1000)),
     ({**INSTALL, "os_template": "1"}, (400, 1000))],
)  # fmt: skip
def test_install_refusals(panel: Panel, body: dict[str, Any], expected: tuple[int, int]) -> None:
    assert error_of(panel.post("/dci/v3/server/1/operation/install", body)) == expected
    assert panel.operation(1) is None


# --- diagnostics ------------------------------------------------------------------------------


def test_diag_holds_a_temporary_address_and_wipes(clock: FakeClock, panel: Panel) -> None:
    assert panel.server(17)["os_template"] is not None
    body = {"diag_template": "Diag6", "clear_disks": True}
    started = panel.post("/dci/v3/server/17/operation/diag", body).json()["operation"]
    assert started["status"] == "running"
    during = panel.server(17)
    temporary = [ip for ip in during["ip"] if ip["status"] == "temporary"]
    assert len(temporary) == 1 and temporary[0]["name"].startswith("198.51.100.")
    assert during["os_template"] is not None  # wiped only when the diagnostics end
    clock.now += 899
    assert panel.operation(17)["status"] == "running"
    clock.now += 1
    after = panel.server(17)
    assert after["operation"]["status"] == "ok"
    assert after["os_template"] is None
    assert all(ip["status"] != "temporary" for ip in after["ip"])
    assert len(after["ip"]) == 2  # the client's own addresses stay


def test_diag_without_wipe_keeps_the_os_and_clears_is_new(clock: FakeClock, panel: Panel) -> None:
    panel.post("/dci/v3/server/17/operation/diag", {"clear_disks": False})
    panel.post("/dci/v3/server/36/operation/diag", {"clear_disks": True, "ippool": 3})
    assert panel.server(36)["ip"][0]["name"] == "192.0.2.10"  # the pool from the body
    assert panel.server(36)["is_new"] is True
    clock.now += 900
    assert panel.server(17)["os_template"]["id"] == 1
    assert panel.server(36)["is_new"] is False
    assert panel.server(36)["ip"] == []


def test_failed_diag_keeps_the_disks_and_releases_the_address(
    clock: FakeClock, sim: DciSimulator, panel: Panel
) -> None:
    sim.fail_operations("diag", reason="Memory test failed")
    panel.post("/dci/v3/server/17/operation/diag", {"clear_disks": True})
    clock.now += 900
    server = panel.server(17)
    assert server["operation"]["status_info"] == "Memory test failed"
    assert server["os_template"] is not None
    assert all(ip["status"] != "temporary" for ip in server["ip"])


def test_diag_with_exhausted_pool_does_not_start(sim: DciSimulator, panel: Panel) -> None:
    sim.exhaust_pool(2)
    response = panel.post("/dci/v3/server/1/operation/diag", {"clear_disks": True})
    assert error_of(response) == (409, 3001)
    assert panel.operation(1) is None
    assert error_of(panel.post("/dci/v3/server/1/operation/diag", {"ippool": 55})) == (404, 1004)


def test_advance_moves_the_panel_clock(sim: DciSimulator, panel: Panel) -> None:
    panel.post("/dci/v3/server/1/operation/install", INSTALL)
    sim.advance(599)
    assert panel.operation(1)["status"] == "running"
    sim.advance(1)
    assert panel.operation(1)["status"] == "ok"


# --- the real clock -----------------------------------------------------------------------------


def test_time_scale_zero_finishes_at_the_next_poll(instant: Panel) -> None:
    started = instant.post("/dci/v3/server/1/operation/install", INSTALL).json()
    assert started["operation"]["status"] == "running"
    assert instant.operation(1)["status"] == "ok"


def test_small_positive_time_scale_on_the_real_clock() -> None:
    with DciSimulator(Inventory.default(), time_scale=0.0005) as sim:  # install: 0.3 s
        panel = Panel(sim)
        panel.post("/dci/v3/server/1/operation/install", INSTALL)
        assert panel.operation(1)["status"] == "running"
        deadline = time.monotonic() + 10
        while panel.operation(1)["status"] == "running":
            assert time.monotonic() < deadline, "the install never finished"
            time.sleep(0.02)
        assert panel.operation(1)["status"] == "ok"
