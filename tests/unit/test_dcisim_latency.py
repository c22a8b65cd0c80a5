"""The simulator at a real panel's latency: every answer waits, concurrent requests do not
wait for each other, and the request log still has each one."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from pmdci6_sandbox.cli import sandbox_group
from pmdci6_sandbox.dcisim import DciSimulator, Inventory
from tests.unit.test_dcisim_cli import read_banner

LATENCY_MS = 200.0


def login(sim: DciSimulator, http: requests.Session) -> None:
    answer = http.post(f"{sim.url}/api/auth/v4/public/token",
                       json={"email": sim.admin_email, "password": sim.admin_password},
                       timeout=10)
    assert answer.status_code == 201
    http.headers["x-xsrf-token"] = answer.json()["token"]


def timed_get(sim: DciSimulator, http: requests.Session, server_id: int) -> float:
    started = time.perf_counter()
    answer = http.get(f"{sim.url}/api/dci/v3/server/{server_id}", timeout=10)
    assert answer.status_code == 200
    return time.perf_counter() - started


def test_every_answer_waits_the_latency() -> None:
    with DciSimulator(Inventory.generate(servers=5, seed=1), latency_ms=LATENCY_MS) as sim:
        http = requests.Session()
        login(sim, http)
        assert timed_get(sim, http, 1) >= LATENCY_MS / 1000
        sim.set_latency(0)
        assert timed_get(sim, http, 1) < LATENCY_MS / 1000


def test_concurrent_requests_are_served_concurrently_and_each_is_logged() -> None:
    threads = 8
    with DciSimulator(Inventory.generate(servers=threads, seed=1), latency_ms=LATENCY_MS) as sim:
        sessions = [requests.Session() for _ in range(threads)]
        for http in sessions:
            login(sim, http)
        sim.clear_requests()
        took: list[float] = []
        started = time.perf_counter()
        workers = [threading.Thread(target=lambda n=n: took.append(
            timed_get(sim, sessions[n], n + 1))) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        wall = time.perf_counter() - started

    assert len(took) == threads and min(took) >= LATENCY_MS / 1000
    # one after another would take 8 latencies (1.6 s); together about one
    assert wall < 4 * LATENCY_MS / 1000, wall
    logged = sorted(r.path for r in sim.requests)
    assert logged == sorted(f"/api/dci/v3/server/{n + 1}" for n in range(threads))
    assert all(r.status == 200 for r in sim.requests)


def test_jitter_stays_within_its_bounds_and_never_below_zero() -> None:
    sim = DciSimulator(Inventory.generate(servers=1, seed=1), latency_ms=50, jitter_ms=20, seed=3)
    samples = [sim.latency_seconds() for _ in range(500)]
    assert 0.030 <= min(samples) < 0.035 and 0.065 < max(samples) <= 0.070
    sim.set_latency(5, 50)
    assert min(sim.latency_seconds() for _ in range(500)) == 0.0
    with pytest.raises(ValueError):
        sim.set_latency(-1)


def test_the_command_line_takes_latency_and_jitter(sandbox_bin: Path, tmp_path: Path) -> None:
    process = subprocess.Popen(
        [str(sandbox_bin), "dci", "--servers", "3", "--latency-ms", "150", "--jitter-ms", "0",
         "--password-file", str(tmp_path / "pw")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        banner = read_banner(process, 4)
        assert "latency: 150 ± 0 ms" in banner[3]
        url = banner[0].rsplit(" ", 1)[-1]
        started = time.perf_counter()
        answer = requests.post(f"{url}/api/auth/v4/public/token",
                               json={"email": "nobody@example.com", "password": "x"}, timeout=10)
        assert answer.status_code == 401 and time.perf_counter() - started >= 0.150
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    refused = CliRunner().invoke(sandbox_group, ["dci", "--latency-ms", "-5"])
    assert refused.exit_code == 2
