"""What keeping a big host in step costs: the cron `sync` at a real panel's latency, with its
pool of workers and with one, against `sync_item` per service.

Sets up the sandbox with N servers (2,000 by default: `make bench`'s quick size; the issue's
targets are set at 100,000), each sold as one service of module 1
(90% active, 10% stopped), then puts `--drift` percent of them out of step before every
measured run:

    power drift   active service, server off; stopped service, server on
    port drift    active service, ports down
    drift a sync must report, not fix: owner changed, IP addresses differ, server gone

The simulator answers every request `--latency-ms` later (± `--jitter-ms`), as a real
DCImanager 6 does, and serves concurrent requests concurrently. Measured through the real
binary (`pmdci6 --command sync --module 1`, a new process each time, as cron runs it):
panel requests from the simulator's request log (login aside), split into listing pages,
corrections and direct reads of servers the listing did not show; BILLmanager calls
(database reads as the adapter counted them; writes are mgrctl processes, counted from the
stand-in's mgrctl event log); wall time (median of `--runs` runs after a first one, which
also writes the new drift reports); the process's peak RSS (VmHWM, sampled). Then one more
run with `--workers 1` for the ratio, and `pmdci6 --command sync_item --item N` for
`--item-runs` services (with the same share of drift, simulator latency 0: a request count
does not depend on latency), extrapolated to every service and saying so.

The ratio to one worker is judged from 100,000 services on, the 20x fewer requests than
`sync_item` from 10,000: smaller runs print both without judging them.

    .venv/bin/python bench/bench_sync.py --services 100000 --latency-ms 50 --drift 5 \
        --item-runs 0                                   # the issue's size, with the ratio
    .venv/bin/python bench/bench_sync.py --services 10000 --latency-ms 0 --no-single-worker
                                                        # requests against sync_item

    .venv/bin/python bench/bench_sync.py [--services N] [--latency-ms MS] [--jitter-ms MS]
        [--drift PERCENT] [--workers N] [--runs N] [--item-runs N] [--no-single-worker]
"""

from __future__ import annotations

import argparse
import logging
import math
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import structlog

from pmdci6_sandbox.billmgr_host import BillmgrHost, LiveService
from pmdci6_sandbox.dcisim import DciSimulator, Inventory

MODULE = 1
TARIFF = 1
CLIENT_ACCOUNTS = 50
FIRST_ITEM = 100_000
GONE_SERVER = 10_000_000  # no such server on the panel
LIMITS = {"seconds": 60.0, "rss_mb": 150.0, "speedup": 6.0, "fewer_than_sync_item": 20.0}
# the sizes the targets are set at: below them, a new process's start-up and the
# listing hide what the pool saves, and one drifted service more or less moves the ratio
SPEEDUP_AT_SERVICES = 100_000
FEWER_REQUESTS_AT_SERVICES = 10_000
QUICK_SERVICES = 2_000  # `make bench`
PAGE_SIZE = 500  # the sync's listing page (DciClient.iter_servers)
RSS_POLL_SECONDS = 0.005


@dataclass
class Drift:
    """Which services are out of step, and how."""

    power_on: list[int] = field(default_factory=list)  # active, server off
    ports_up: list[int] = field(default_factory=list)  # active, ports down
    power_off: list[int] = field(default_factory=list)  # stopped, server on
    owner: list[int] = field(default_factory=list)  # reported: someone else owns the server
    ips: list[int] = field(default_factory=list)  # reported: the server's addresses differ
    gone: list[int] = field(default_factory=list)  # reported: the server was deleted

    @property
    def fixable(self) -> int:
        return len(self.power_on) + len(self.ports_up) + len(self.power_off)

    @property
    def reported(self) -> list[int]:
        return self.owner + self.ips + self.gone

    @property
    def total(self) -> int:
        return self.fixable + len(self.reported)


@dataclass(frozen=True)
class Run:
    seconds: float
    rss_mb: float
    requests: int  # as the client counted them
    panel_requests: int  # as the simulator logged them, login aside
    summary: str
    returncode: int
    pages: int = 0  # server.list
    corrections: int = 0  # power and switch port requests
    direct_reads: int = 0  # server.get
    mgrctl: int = 0  # BILLmanager writes: mgrctl processes, from the stand-in's event log

    @property
    def figures(self) -> dict[str, str]:
        return dict(part.split("=", 1) for part in self.summary.split() if "=" in part)


def high_water_kb(pid: int) -> int:
    """VmHWM of a running process: the peak RSS of the program it runs now.

    Not wait4's ru_maxrss: Linux carries the parent's peak into a forked child, and this
    process holds the simulator's 10,000 servers.
    """
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass  # the process just ended
    return 0


def address(index: int) -> str:
    """The index-th host of the generated inventory's public pool 198.18.0.0/15."""
    value = (198 << 24) | (18 << 16) | (index + 2)
    return ".".join(str((value >> shift) & 0xFF) for shift in (24, 16, 8, 0))


def owned_inventory(servers: int) -> tuple[Inventory, dict[int, str]]:
    """The generated inventory with every server sold: owner, power on, ports up, one IPv4
    address. Returns it with the e-mail of each server's owner."""
    base = Inventory.generate(servers=servers, seed=1)
    clients = [u for u in base.users if u["email"] != base.admin_email][:CLIENT_ACCOUNTS]
    documents: list[dict[str, Any]] = []
    owners: dict[int, str] = {}
    for index, server in enumerate(base.servers):
        client = clients[index % len(clients)]
        documents.append({**server, "owner": client["id"], "owner_email": client["email"],
                          "is_new": False, "maintenance_mode": False, "power_status": "on",
                          "configuration": server["configuration"] or "i9-9900K-64Gb-2x1024NVMe",
                          "operation": {"id": server["id"], "status": "ok"},
                          "ip": [{"name": address(index), "family": "ipv4"}]})
        owners[server["id"]] = client["email"]
    inventory = Inventory(admin_email=base.admin_email, admin_password=base.admin_password,
                          locations=base.locations, os_templates=base.os_templates,
                          ip_pools=base.ip_pools, users=base.users, servers=documents,
                          durations=base.durations)
    return inventory, owners


def plan_drift(items: list[int], stopped: set[int], share: float,
               portless: frozenset[int] = frozenset()) -> Drift:
    """`share` of the services out of step, spread evenly: one in fifty of them in a way only
    a person can fix (owner, IPs, gone), the rest power or ports, stopped ones included;
    port drift only where the server has a data port (`portless`: the others)."""
    total = round(len(items) * share)
    reported = max(3, total // 50) if total >= 10 else 0
    fixable = total - reported
    drift = Drift()
    off_when_stopped = [i for i in items if i in stopped]
    active = [i for i in items if i not in stopped]
    drift.power_off = _spread(off_when_stopped, fixable // 5)
    taken = set(drift.power_off)
    chosen = _spread(active, fixable - len(drift.power_off) + reported)
    drift.ports_up = [i for i in chosen[0::4] if i not in portless][: fixable // 4]
    rest = [i for i in chosen if i not in set(drift.ports_up)]
    kinds = [drift.owner, drift.ips, drift.gone]
    for n, item in enumerate(rest[:reported]):
        kinds[n % 3].append(item)
    drift.power_on = rest[reported:]
    assert not taken & set(chosen)
    return drift


def _spread(items: list[int], count: int) -> list[int]:
    if count <= 0:
        return []
    return items[:: max(1, len(items) // count)][:count]


class Bench:
    def __init__(self, root: Path, services: int) -> None:
        self.services = services
        inventory, self.owners = owned_inventory(services)
        self.sim = DciSimulator(inventory, time_scale=0.0)
        self.sim.start()
        self.host = BillmgrHost.create(root)
        self.host.add_module(MODULE, url=self.sim.url, username=self.sim.admin_email,
                             password=self.sim.admin_password, verify_tls="on")
        self.host.add_tariff(TARIFF, configuration="i9-9900K-64Gb-2x1024NVMe", os_template="1",
                             ipv4_pool="1")
        accounts: dict[str, int] = {}
        for email in sorted(set(self.owners.values())):
            accounts[email] = len(accounts) + 1
            self.host.add_client(accounts[email], email)
        self.server_of: dict[int, int] = {}
        self.stopped: set[int] = set()
        portless: set[int] = set()  # services whose server has no data port to switch
        seeds: list[LiveService] = []
        for index, server_id in enumerate(sorted(self.sim.state.server_ids)):
            server = self.sim.server(server_id)  # one copy at a time: 100,000 are a lot
            item = FIRST_ITEM + index
            status = 3 if index % 10 == 9 else 2
            if status == 3:
                self.stopped.add(item)
                self.sim.update_server(server["id"], power_status="off",
                                       switch_connection=self._ports(server, "down"))
            self.server_of[item] = int(server["id"])
            if not any(not port.get("is_ipmi_connection") for port in server["switch_connection"]):
                portless.add(item)
            seeds.append(LiveService(item, MODULE, TARIFF, accounts[self.owners[server["id"]]],
                                     status, {"dci_server_id": str(server["id"])},
                                     tuple(ip["name"] for ip in server["ip"])))
        self.host.add_live_services(seeds)
        self.items = sorted(self.server_of)
        self.portless = frozenset(portless)
        self.intruder = self.sim.add_user("intruder@other.example")

    @staticmethod
    def _ports(server: dict[str, Any], status: str) -> list[dict[str, Any]]:
        return [{**port, "admin_status": status} if not port.get("is_ipmi_connection") else port
                for port in server["switch_connection"]]

    def put_out_of_step(self, drift: Drift) -> None:
        """Re-create the drift a sync corrects before each run. Drift it only reports stays
        as it is (nobody fixed it), so a later run finds it already reported."""
        for item in drift.power_on:
            self.sim.update_server(self.server_of[item], power_status="off")
        for item in drift.ports_up:
            server = self.sim.server(self.server_of[item])
            self.sim.update_server(server["id"], switch_connection=self._ports(server, "down"))
        for item in drift.power_off:
            self.sim.update_server(self.server_of[item], power_status="on")
        for item in drift.owner:
            self.sim.update_server(self.server_of[item], owner=self.intruder["id"])
        for item in drift.ips:
            self.sim.update_server(self.server_of[item], ip=[{"name": "203.0.113.250",
                                                              "family": "ipv4"}])
        for item in drift.gone:
            self.host.set_param(item, "dci_server_id", str(GONE_SERVER + item))
        self.sim.clear_requests()

    def in_step(self, drift: Drift) -> bool:
        """Whether every fixable drift was corrected."""
        return (all(self.sim.server(self.server_of[i])["power_status"] == "on"
                    for i in drift.power_on)
                and all(self.sim.server(self.server_of[i])["power_status"] == "off"
                        for i in drift.power_off)
                and all(port["admin_status"] == "up"
                        for i in drift.ports_up
                        for port in self.sim.server(self.server_of[i])["switch_connection"]))

    def mgrctl_events(self) -> int:
        with sqlite3.connect(self.host.store_path) as conn:
            [(count,)] = conn.execute("SELECT COUNT(*) FROM mgrctl_event").fetchall()
        return int(count)

    def run(self, *argv: str) -> Run:
        """One pmdci6 process: wall time, its peak RSS, and the requests it made."""
        self.sim.clear_requests()
        events_before = self.mgrctl_events()
        with tempfile.TemporaryFile() as out:
            started = time.perf_counter()
            process = subprocess.Popen([*self.host.command(), *argv], cwd=self.host.root,
                                       env=self.host.env(), stdin=subprocess.DEVNULL,
                                       stdout=out, stderr=subprocess.STDOUT)
            peak_kb = 0
            while process.poll() is None:
                peak_kb = max(peak_kb, high_water_kb(process.pid))
                time.sleep(RSS_POLL_SECONDS)
            seconds = time.perf_counter() - started
            out.seek(0)
            text = out.read().decode(errors="replace").strip()
        routes = Counter(r.route for r in self.sim.requests if r.route != "auth.token")
        run = Run(seconds, peak_kb / 1024, 0, sum(routes.values()), text, process.returncode,
                  pages=routes["server.list"], direct_reads=routes["server.get"],
                  corrections=sum(n for route, n in routes.items()
                                  if route.startswith(("server.power", "server.switch_port"))),
                  mgrctl=self.mgrctl_events() - events_before)
        return replace(run, requests=int(run.figures.get("requests", "0").strip('"')))

    def close(self) -> None:
        self.sim.stop()


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=QUICK_SERVICES)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--drift", type=float, default=5.0, help="percent of services")
    parser.add_argument("--workers", type=int, default=None,
                        help="--workers for the sync (default: the module's, 8)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--item-runs", type=int, default=20)
    parser.add_argument("--no-single-worker", action="store_true",
                        help="skip the --workers 1 run")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        started = time.perf_counter()
        bench = Bench(Path(tmp) / "mgr5", args.services)
        drift = plan_drift(bench.items, bench.stopped, args.drift / 100, bench.portless)
        print(f"setup: {args.services} servers, {len(bench.items)} services "
              f"({len(bench.stopped)} stopped), {time.perf_counter() - started:.1f} s")
        print(f"drift per run: {drift.total} services ({drift.total / len(bench.items):.1%}): "
              f"{len(drift.power_on)} active+off, {len(drift.ports_up)} active+ports down, "
              f"{len(drift.power_off)} stopped+on (corrected); {len(drift.owner)} owner, "
              f"{len(drift.ips)} IP, {len(drift.gone)} gone (reported)")
        print(f"panel latency: {args.latency_ms:g} ± {args.jitter_ms:g} ms per request")
        try:
            failures = measure(bench, drift, args)
        finally:
            bench.close()
    return 1 if failures else 0


def sync_argv(workers: int | None) -> list[str]:
    argv = ["--command", "sync", "--module", str(MODULE)]
    return argv + (["--workers", str(workers)] if workers is not None else [])


def measure(bench: Bench, drift: Drift, args: argparse.Namespace) -> list[str]:
    failures: list[str] = []
    bench.sim.set_latency(args.latency_ms, args.jitter_ms)
    argv = sync_argv(args.workers)

    def sync_once(argv: list[str]) -> Run:
        bench.put_out_of_step(drift)
        run = bench.run(*argv)
        if run.returncode != 0 or not bench.in_step(drift):
            failures.append(f"sync run failed or left drift: {run.summary}")
        return run

    sync_runs = [sync_once(argv) for _ in range(1 + args.runs)]
    first, measured = sync_runs[0], sync_runs[1:]
    last = measured[-1]
    seconds = median([r.seconds for r in measured])
    rss = max(r.rss_mb for r in sync_runs)
    pages = math.ceil(len(bench.server_of) / PAGE_SIZE)
    workers = args.workers or 8
    print()
    print(f"cron sync: pmdci6 {' '.join(argv)} (a new process per run, as cron runs it; "
          f"{workers} workers)")
    print(f"  summary:        {last.summary}")
    print(f"  panel requests: {last.panel_requests} = {last.pages} listing pages + "
          f"{last.corrections} corrections + {last.direct_reads} direct reads of unlisted "
          f"servers (the client counted {last.requests})")
    print(f"  BILLmanager:    {last.figures.get('billing_reads', '?')} database reads, "
          f"{last.mgrctl} writes (mgrctl processes); first run: {first.mgrctl} writes "
          f"(the {len(drift.reported)} new drift reports, status message and param each)")
    print(f"  wall time:      {seconds:.2f} s median of {len(measured)} runs "
          f"({', '.join(f'{r.seconds:.2f}' for r in measured)}); first run {first.seconds:.2f} s")
    print(f"  peak RSS:       {rss:.0f} MB (largest of {len(sync_runs)} runs)")
    if last.panel_requests != last.pages + last.corrections + last.direct_reads:
        failures.append(f"{last.panel_requests} requests, not only pages, corrections and "
                        f"direct reads")
    expected = (pages, drift.fixable, len(drift.gone))
    if (last.pages, last.corrections, last.direct_reads) != expected:
        failures.append(f"pages, corrections, direct reads were {last.pages}, "
                        f"{last.corrections}, {last.direct_reads}; expected {expected}")
    if last.mgrctl:
        failures.append(f"a run with nothing new to report made {last.mgrctl} mgrctl calls")
    if seconds > LIMITS["seconds"]:
        failures.append(f"sync took {seconds:.2f} s (target < {LIMITS['seconds']:.0f} s)")
    if rss > LIMITS["rss_mb"]:
        failures.append(f"sync peaked at {rss:.0f} MB (target < {LIMITS['rss_mb']:.0f} MB)")

    if not args.no_single_worker and workers > 1:
        single = sync_once(sync_argv(1))
        ratio = single.seconds / seconds
        print()
        print(f"one worker: pmdci6 {' '.join(sync_argv(1))}, one run")
        print(f"  wall time:      {single.seconds:.2f} s, {single.panel_requests} panel requests, "
              f"peak RSS {single.rss_mb:.0f} MB: the pool of {workers} is {ratio:.1f}x faster")
        if (args.latency_ms >= 10 and args.services >= SPEEDUP_AT_SERVICES
                and ratio < LIMITS["speedup"]):
            failures.append(f"{workers} workers only {ratio:.1f}x faster than one "
                            f"(target >= {LIMITS['speedup']:.0f}x)")

    if args.item_runs > 0:
        failures += compare_sync_item(bench, drift, args.item_runs, last)
    print()
    if failures:
        for failure in failures:
            print(f"FAILED: {failure}")
    else:
        print(f"targets met: requests = pages + corrections + direct reads, no needless "
              f"BILLmanager write, < {LIMITS['seconds']:.0f} s, < {LIMITS['rss_mb']:.0f} MB")
    return failures


def compare_sync_item(bench: Bench, drift: Drift, count: int, last: Run) -> list[str]:
    """`sync_item` per service on a sample, extrapolated; at latency 0 (requests are counted,
    and their number does not depend on the latency)."""
    failures: list[str] = []
    bench.sim.set_latency(0)
    sample = sample_items(bench.items, drift, count)
    bench.put_out_of_step(drift)
    item_runs = [bench.run("--command", "sync_item", "--item", str(item)) for item in sample]
    item_requests = sum(r.panel_requests for r in item_runs)
    item_seconds = sum(r.seconds for r in item_runs)
    scale = len(bench.items) / len(sample)
    failed_items = [r.summary for r in item_runs if r.returncode != 0]
    if failed_items:
        failures.append(f"{len(failed_items)} sync_item runs failed: {failed_items[0]}")
    fewer = item_requests * scale / max(last.panel_requests, 1)
    print()
    print(f"per service: pmdci6 --command sync_item --item N, {len(sample)} real runs "
          f"({len(drifted_items(drift) & set(sample))} drifted), panel latency 0")
    print(f"  measured:       {item_requests} requests, {item_seconds:.1f} s, "
          f"peak RSS {max(r.rss_mb for r in item_runs):.0f} MB")
    print(f"  extrapolated x{scale:.0f} to {len(bench.items)} runs (an estimate, not measured): "
          f"~{item_requests * scale:,.0f} requests, ~{item_seconds * scale / 60:,.1f} min "
          f"(and more at a real panel's latency)")
    print(f"  cron sync does it in {last.panel_requests} requests: {fewer:,.0f}x fewer")
    if len(bench.items) >= FEWER_REQUESTS_AT_SERVICES and fewer < LIMITS["fewer_than_sync_item"]:
        failures.append(f"only {fewer:.0f}x fewer requests than sync_item per service "
                        f"(target >= {LIMITS['fewer_than_sync_item']:.0f}x)")
    return failures


def drifted_items(drift: Drift) -> set[int]:
    return {*drift.power_on, *drift.ports_up, *drift.power_off, *drift.reported}


def sample_items(items: list[int], drift: Drift, count: int) -> list[int]:
    """`count` services, spread over all, with the same share of drift as the whole."""
    out_of_step = drifted_items(drift)
    drifted = [i for i in items if i in out_of_step]
    others = [i for i in items if i not in out_of_step]
    want = round(count * len(drifted) / len(items))
    chosen = drifted[:: max(1, len(drifted) // max(want, 1))][:want]
    need = count - len(chosen)
    chosen += others[:: max(1, len(others) // max(need, 1))][:need]
    return sorted(chosen)


if __name__ == "__main__":
    sys.exit(main())
