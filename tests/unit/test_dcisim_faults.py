"""Injected faults and concurrent clients, over real HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from pmdci6_sandbox.dcisim import DciSimulator, Inventory


@pytest.fixture
def sim() -> Iterator[DciSimulator]:
    with DciSimulator(Inventory.default(), time_scale=0.0) as simulator:
        yield simulator


def login(sim: DciSimulator) -> requests.Session:
    session = requests.Session()
    response = session.post(
        f"{sim.url}/api/auth/v4/public/token",
        json={"email": sim.admin_email, "password": sim.admin_password},
        timeout=10,
    )
    assert response.status_code == 201
    session.headers["x-xsrf-token"] = response.json()["token"]
    return session


def api(sim: DciSimulator, path: str) -> str:
    return f"{sim.url}/api{path}"


def test_burst_503_then_recovers(sim: DciSimulator) -> None:
    session = login(sim)
    sim.faults.burst_503(2)
    statuses = [session.get(api(sim, "/dci/v3/server/1"), timeout=10) for _ in range(3)]
    assert [r.status_code for r in statuses] == [503, 503, 200]
    assert statuses[0].json() == {
        "error": {"code": 503, "msg": "Service temporarily unavailable", "value": {}}
    }
    assert sim.faults.pending == 0


def test_503_also_hits_login(sim: DciSimulator) -> None:
    sim.faults.burst_503(1)
    url = api(sim, "/auth/v4/public/token")
    body = {"email": sim.admin_email, "password": sim.admin_password}
    assert requests.post(url, json=body, timeout=10).status_code == 503
    assert requests.post(url, json=body, timeout=10).status_code == 201


def test_faults_only_hit_matching_paths(sim: DciSimulator) -> None:
    session = login(sim)
    sim.faults.error_500(1, path_contains="/owner")
    assert session.get(api(sim, "/dci/v3/server/1"), timeout=10).status_code == 200
    first = session.post(api(sim, "/dci/v3/server/1/owner"), json={"owner": 2}, timeout=10)
    assert first.status_code == 500
    assert first.json()["error"] == {"code": 500, "msg": "Internal server error", "value": {}}
    assert sim.server(1)["owner"] is None  # an answered fault is not acted on
    second = session.post(api(sim, "/dci/v3/server/1/owner"), json={"owner": 2}, timeout=10)
    assert second.status_code == 200


def test_slow_answer_beyond_the_client_timeout_is_still_acted_on(sim: DciSimulator) -> None:
    session = login(sim)
    sim.faults.slow(0.6, 1, path_contains="/owner")
    with pytest.raises(requests.exceptions.Timeout):
        session.post(api(sim, "/dci/v3/server/1/owner"), json={"owner": 2}, timeout=0.2)
    for _ in range(50):  # the panel finishes the request after its delay
        if sim.server(1)["owner"] == 2:
            break
        time.sleep(0.05)
    assert sim.server(1)["owner"] == 2
    fast = session.get(api(sim, "/dci/v3/server/1"), timeout=5)
    assert fast.status_code == 200
    assert [r.status for r in sim.requests if r.route == "server.owner.set"] == [200]


def test_drop_closes_the_connection_without_acting(sim: DciSimulator) -> None:
    session = login(sim)
    sim.faults.drop(1, path_contains="/owner")
    with pytest.raises(requests.exceptions.ConnectionError):
        session.post(api(sim, "/dci/v3/server/1/owner"), json={"owner": 2}, timeout=5)
    assert sim.server(1)["owner"] is None
    dropped = [r for r in sim.requests if r.route == "server.owner.set"]
    assert [(r.method, r.status) for r in dropped] == [("POST", 0)]
    retried = session.post(api(sim, "/dci/v3/server/1/owner"), json={"owner": 2}, timeout=5)
    assert retried.status_code == 200


def test_expired_tokens_answer_401_and_relogin_works(sim: DciSimulator) -> None:
    session = login(sim)
    sim.faults.expire_tokens()
    expired = session.get(api(sim, "/dci/v3/server/1"), timeout=10)
    assert expired.status_code == 401
    assert expired.json()["error"]["code"] == 1001
    assert login(sim).get(api(sim, "/dci/v3/server/1"), timeout=10).status_code == 200


def test_faults_combine_and_clear(sim: DciSimulator) -> None:
    session = login(sim)
    sim.faults.slow(0.2, 1)
    sim.faults.burst_503(1)
    slow_503 = session.get(api(sim, "/dci/v3/location"), timeout=5)
    assert slow_503.status_code == 503 and slow_503.elapsed.total_seconds() >= 0.2
    sim.faults.error_500(5)
    sim.faults.drop(5, path_contains="/nothing-matches")
    assert sim.faults.pending == 10
    sim.faults.clear()
    assert sim.faults.pending == 0
    assert session.get(api(sim, "/dci/v3/location"), timeout=5).status_code == 200
    with pytest.raises(ValueError):
        sim.faults.burst_503(-1)
    with pytest.raises(ValueError):
        sim.faults.slow(-1.0, 1)


def test_fault_countdown_is_exact_under_concurrency(sim: DciSimulator) -> None:
    sessions = [login(sim) for _ in range(4)]
    sim.faults.burst_503(25)

    def call(index: int) -> int:
        session = sessions[index % len(sessions)]
        return session.get(api(sim, "/dci/v3/server/1"), timeout=10).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(call, range(60)))
    assert statuses.count(503) == 25 and statuses.count(200) == 35


def test_twenty_clients_claiming_one_server_exactly_one_wins(sim: DciSimulator) -> None:
    sessions = [login(sim) for _ in range(20)]
    barrier = threading.Barrier(20)

    def claim(index: int) -> tuple[int, Any]:
        barrier.wait()
        response = sessions[index].post(
            api(sim, "/dci/v3/server/1/owner"), json={"owner": 2 + index % 2}, timeout=10
        )
        return response.status_code, response.json()

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(claim, range(20)))
    statuses = [status for status, _ in results]
    assert statuses.count(200) == 1 and statuses.count(409) == 19
    assert all(body["error"]["code"] == 2001 for status, body in results if status == 409)
    assert sim.server(1)["owner"] in (2, 3)


def test_concurrent_allocations_never_hand_out_an_address_twice(sim: DciSimulator) -> None:
    sessions = [login(sim) for _ in range(20)]

    def allocate(index: int) -> str:
        response = sessions[index].post(
            api(sim, f"/dci/v3/server/{index + 1}/ip"),
            json={"family": "ipv4", "ippool": 1},
            timeout=10,
        )
        assert response.status_code == 200
        name: str = response.json()["name"]
        return name

    with ThreadPoolExecutor(max_workers=20) as pool:
        names = list(pool.map(allocate, range(20)))
    assert len(set(names)) == 20
