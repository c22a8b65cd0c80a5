"""The cron sync's pool of workers through the real binary, against the simulator at latency:
503 bursts and dropped connections end with every service corrected or counted failed and
none corrected twice; a sync_item or a suspend that finishes while the sync runs is neither
redone nor undone by it. (Two cron syncs never overlap: test_sync.py.)"""

from __future__ import annotations

import subprocess
import time
from collections import Counter

import pytest

from pmdci6_sandbox.billmgr_host import LiveService
from tests.e2e.conftest import CLIENT_ACCOUNT, CLIENT_EMAIL, MODULE, TARIFF, Sandbox
from tests.e2e.test_sync import data_ports, run_sync, summary

ACTIVE, STOPPED = 2, 3
FIRST_ITEM = 600
LATENCY_MS = 20


def seed_live_services(sandbox: Sandbox, count: int) -> dict[int, int]:
    """`count` active services, each on its own server (owned by the client, powered on,
    data ports up, one address); item -> server id."""
    owner = sandbox.sim.add_user(CLIENT_EMAIL)
    servers = [s for s in sandbox.sim.servers()
               if data_ports(s) and not s.get("maintenance_mode")][:count]
    assert len(servers) == count
    seeds: list[LiveService] = []
    server_of: dict[int, int] = {}
    for n, server in enumerate(servers):
        item, address = FIRST_ITEM + n, f"198.51.100.{n + 10}"
        ports = [{**port, "admin_status": "up"} for port in server["switch_connection"]]
        sandbox.sim.update_server(server["id"], owner=owner["id"], owner_email=CLIENT_EMAIL,
                                  is_new=False, power_status="on", operation=None,
                                  switch_connection=ports,
                                  ip=[{"name": address, "family": "ipv4"}])
        seeds.append(LiveService(item, MODULE, TARIFF, CLIENT_ACCOUNT, ACTIVE,
                                 {"dci_server_id": str(server["id"])}, (address,)))
        server_of[item] = server["id"]
    sandbox.host.add_live_services(seeds)
    return server_of


def power_ons(sandbox: Sandbox, since: int = 0) -> Counter[int]:
    """Power-on requests the panel acted on (answered 2xx), by server id."""
    acted: Counter[int] = Counter()
    for request in sandbox.sim.requests[since:]:
        if request.route == "server.power_on" and 200 <= request.status < 300:
            acted[int(request.path.split("/")[-2])] += 1
    return acted


def acts_on(sandbox: Sandbox, server_id: int, since: int = 0) -> list[str]:
    """Every state-changing request for one server after the `since`-th logged one."""
    return [r.route for r in sandbox.sim.requests[since:]
            if r.method != "GET" and f"/server/{server_id}/" in r.path + "/"]


def switch_off(sandbox: Sandbox, server_of: dict[int, int], items: list[int]) -> None:
    for item in items:
        sandbox.sim.update_server(server_of[item], power_status="off")


def assert_corrected_or_failed_once(sandbox: Sandbox, server_of: dict[int, int],
                                    drifted: list[int], figures: dict[str, str]) -> set[int]:
    """Each drifted service's server was powered on by exactly one request, or by none and
    the service counted failed; the services' BILLmanager side is untouched. The corrected."""
    acted = power_ons(sandbox)
    corrected = {item for item in drifted if acted[server_of[item]]}
    assert all(acted[server_of[item]] <= 1 for item in drifted), acted
    assert set(acted) <= {server_of[item] for item in drifted}  # nothing else was touched
    for item in drifted:
        power = sandbox.sim.server(server_of[item])["power_status"]
        assert power == ("on" if item in corrected else "off"), (item, power)
    assert figures["corrected"] == str(len(corrected))
    assert figures["failed"] == str(len(drifted) - len(corrected))
    assert figures["checked"] == str(len(server_of))
    for item in server_of:
        record = sandbox.host.service(item)
        assert record.status == ACTIVE and record.status_message == ""
    return corrected


@pytest.fixture
def pool(sandbox: Sandbox) -> tuple[Sandbox, dict[int, int], list[int]]:
    server_of = seed_live_services(sandbox, 24)
    drifted = sorted(server_of)[::2]  # twelve active services whose server is off
    switch_off(sandbox, server_of, drifted)
    sandbox.sim.set_latency(LATENCY_MS)
    return sandbox, server_of, drifted


def test_a_503_burst_during_a_concurrent_sync(
        pool: tuple[Sandbox, dict[int, int], list[int]]) -> None:
    sandbox, server_of, drifted = pool
    # more 503s than one correction's ten tries: eight workers share them out
    sandbox.sim.faults.burst_503(30, path_contains="power_on")

    first = run_sync(sandbox, "--module", str(MODULE), "--workers", "8")
    figures = summary(first)
    corrected = assert_corrected_or_failed_once(sandbox, server_of, drifted, figures)
    assert (first.returncode == 0) == (len(corrected) == len(drifted))
    busy = [r for r in sandbox.sim.requests if r.status == 503]
    assert len(busy) == 30 - sandbox.sim.faults.pending

    # the next run settles what failed, and does not touch what the first one corrected
    sandbox.sim.faults.clear()
    second = run_sync(sandbox, "--module", str(MODULE), "--workers", "8")
    assert second.returncode == 0, second.stdout
    assert summary(second)["corrected"] == str(len(drifted) - len(corrected))
    total = power_ons(sandbox)
    assert all(total[server_of[item]] == 1 for item in drifted), total


def test_dropped_connections_during_a_concurrent_sync(
        pool: tuple[Sandbox, dict[int, int], list[int]]) -> None:
    sandbox, server_of, drifted = pool
    sandbox.sim.faults.drop(1, path_contains="/dci/v3/server")  # the listing: a GET, retried
    sandbox.sim.faults.drop(5, path_contains="power_on")  # a POST may have landed: not retried

    result = run_sync(sandbox, "--module", str(MODULE), "--workers", "8")

    assert result.returncode != 0
    figures = summary(result)
    corrected = assert_corrected_or_failed_once(sandbox, server_of, drifted, figures)
    assert len(corrected) == len(drifted) - 5
    dropped = [r.route for r in sandbox.sim.requests if r.status == 0]
    assert Counter(dropped) == {"server.list": 1, "server.power_on": 5}
    assert sandbox.sim.faults.pending == 0


def test_sync_item_and_suspend_finishing_while_a_sync_runs_are_not_redone_or_undone(
        sandbox: Sandbox) -> None:
    server_of = seed_live_services(sandbox, 6)
    items = sorted(server_of)
    busy, suspended, synced_alone = items[:2], items[2], items[3]
    switch_off(sandbox, server_of, [*busy, suspended, synced_alone])
    # the first two corrections keep both workers busy: the next two wait their turn with
    # what the listing showed, while a suspend and a sync_item act on them
    for item in busy:
        sandbox.sim.faults.slow(8.0, 1, path_contains=f"/server/{server_of[item]}/power_on")
    sandbox.sim.set_latency(LATENCY_MS)

    sync = subprocess.Popen(
        [*sandbox.host.command(), "--command", "sync", "--module", str(MODULE),
         "--workers", "2"],
        cwd=sandbox.host.root, env=sandbox.host.env(), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not any(r.route == "server.list" for r in sandbox.sim.requests):
            assert sync.poll() is None, sync.communicate()
            assert time.monotonic() < deadline, "the sync never listed the servers"
            time.sleep(0.02)
        # it has seen both servers off while their services are active: both look wrong now
        others = [subprocess.Popen([*sandbox.host.command(), "--command", command,
                                    "--item", str(item)],
                                   cwd=sandbox.host.root, env=sandbox.host.env(),
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
                  for command, item in (("suspend", suspended), ("sync_item", synced_alone))]
        for other in others:
            out, err = other.communicate(timeout=60)
            assert other.returncode == 0, out + err
        assert sync.poll() is None, "the sync ended before the others: no overlap was tested"
        others_done = len(sandbox.sim.requests)
    finally:
        out, err = sync.communicate(timeout=120)

    assert b"Traceback" not in out + err
    figures = summary(subprocess.CompletedProcess([], sync.returncode, out, err))
    # the suspend stands: stopped, ports down, and the sync sent nothing for it after it
    assert sandbox.host.service(suspended).status == STOPPED
    server = sandbox.sim.server(server_of[suspended])
    assert server["power_status"] == "off" and set(data_ports(server)) == {"down"}
    assert acts_on(sandbox, server_of[suspended], since=others_done) == []
    # sync_item powered its server on; the sync did not do it a second time
    assert power_ons(sandbox)[server_of[synced_alone]] == 1
    assert acts_on(sandbox, server_of[synced_alone], since=others_done) == []
    assert all(power_ons(sandbox)[server_of[item]] == 1 for item in busy)
    assert (figures["corrected"], figures["failed"], figures["checked"]) == ("2", "0", "6")
