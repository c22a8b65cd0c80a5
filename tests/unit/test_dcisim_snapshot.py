"""The simulator's snapshot and restore: what the crash tests start from must be exactly the
panel a real run left, every time, and nothing one test did may reach the next."""

from __future__ import annotations

import requests

from pmdci6_sandbox.dcisim import DciSimulator, Inventory


def _token(sim: DciSimulator) -> str:
    answer = requests.post(f"{sim.url}/api/auth/v4/public/token",
                           json={"email": sim.admin_email, "password": sim.admin_password},
                           timeout=10)
    assert answer.status_code in (200, 201)
    return str(answer.json()["token"])


def test_restore_brings_back_the_saved_panel_and_the_saved_copy_stays_reusable() -> None:
    with DciSimulator(Inventory.default(), time_scale=0.0) as sim:
        token = _token(sim)
        server_id = sim.state.server_ids[0]
        sim.update_server(server_id, power_status="off", maintenance_mode=True)
        saved = sim.snapshot()
        before = sim.server(server_id)

        sim.update_server(server_id, power_status="on", maintenance_mode=False)
        sim.state.expire_tokens()
        sim.add_user("later@example.com")
        sim.restore(saved)
        assert sim.server(server_id) == before
        assert sim.user_by_email("later@example.com") is None
        assert sim.session_user(token) is not None  # the saved panel's token is valid again

        sim.update_server(server_id, power_status="on")  # the live copy, not the saved one
        sim.restore(saved)
        assert sim.server(server_id)["power_status"] == "off"


def test_restore_clears_faults_latency_and_the_request_log() -> None:
    with DciSimulator(Inventory.default(), time_scale=0.0) as sim:
        saved = sim.snapshot()
        sim.faults.burst_503(5)
        sim.set_latency(200)
        sim.hang_operations(kind="install", count=1)
        requests.get(f"{sim.url}/api/dci/v3/server", timeout=10)
        assert sim.requests
        sim.restore(saved)
        assert sim.faults.pending == 0 and sim.latency_ms == 0.0
        assert sim.requests == []
        assert sim.state._hangs["install"] == 0  # pending failures are state: the saved ones
        _token(sim)  # answers at once, no 503


def test_a_snapshot_has_its_own_lock() -> None:
    with DciSimulator(Inventory.default(), time_scale=0.0) as sim:
        saved = sim.snapshot()
        assert saved.lock is not sim.state.lock
        with sim.state.lock:  # a restore while the live state is locked does not deadlock
            sim.restore(saved)
        assert sim.state.lock is not saved.lock
