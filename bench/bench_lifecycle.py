"""Benchmark: one activation and one deletion through the real binary on the sandbox
(operations scaled to zero): panel requests by route and wall time; then 20 concurrent
activations. Prints medians over several runs; these machines are noisy.

    .venv/bin/python bench/bench_lifecycle.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pmdci6_sandbox.billmgr_host import BillmgrHost
from pmdci6_sandbox.dcisim import DciSimulator, Inventory

CONFIG = "EPYC-7302-256Gb-4x960SSD"


def seed(host: BillmgrHost, sim: DciSimulator, config: str = CONFIG) -> None:
    host.add_module(1, url=sim.url, username=sim.admin_email, password=sim.admin_password,
                    by_server_type="on")
    host.add_tariff(1, configuration=config, os_template="1", ipv4_pool="1", ipv6_pool="10",
                    diag_pool="2")


def one_cycle(workdir: Path) -> tuple[float, float, Counter[str], Counter[str]]:
    with DciSimulator(Inventory.default(), time_scale=0.0) as sim:
        host = BillmgrHost.create(workdir / "mgr5")
        seed(host, sim)
        host.add_client(7, "client@example.com")
        host.add_service(101, module=1, pricelist=1, account_id=7, params={"ostempl": "2"},
                         addons={"ip": "2"})
        sim.clear_requests()
        began = time.perf_counter()
        assert host.run("--command", "open", "--item", "101").returncode == 0
        open_s = time.perf_counter() - began
        open_routes = Counter(r.route for r in sim.requests)
        sim.clear_requests()
        began = time.perf_counter()
        assert host.run("--command", "close", "--item", "101").returncode == 0
        close_s = time.perf_counter() - began
        close_routes = Counter(r.route for r in sim.requests)
    return open_s, close_s, open_routes, close_routes


def concurrent_opens(workdir: Path, count: int = 20) -> float:
    with DciSimulator(Inventory.generate(servers=200, seed=9), time_scale=0.0) as sim:
        host = BillmgrHost.create(workdir / "mgr5")
        free = [int(s["id"]) for s in sim.servers() if s["owner"] is None and not s["is_new"]
                and not s.get("maintenance_mode")
                and (s.get("operation") or {}).get("status") in (None, "ok", "canceled")]
        for sid in free[:count]:
            sim.update_server(sid, configuration="bench-20")
        seed(host, sim, "bench-20")
        for n in range(count):
            host.add_client(100 + n, f"buyer{n}@example.com")
            host.add_service(500 + n, module=1, pricelist=1, account_id=100 + n,
                             params={"ostempl": "1"}, addons={"ip": "1"})
        env = dict(os.environ, PMDCI6_MGR_ROOT=str(host.root), PMDCI6_POLL_SECONDS="0.01")
        binary = str(Path(sys.executable).with_name("pmdci6"))
        began = time.perf_counter()
        procs = [subprocess.Popen([binary, "--command", "open", "--item", str(500 + n)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for n in range(count)]
        codes = [p.wait() for p in procs]
        spent = time.perf_counter() - began
        assert codes.count(0) == count, codes
    return spent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    os.environ["PMDCI6_POLL_SECONDS"] = "0.01"
    opens, closes, concurrent = [], [], []
    routes_open: Counter[str] = Counter()
    routes_close: Counter[str] = Counter()
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            o, c, routes_open, routes_close = one_cycle(Path(tmp))
            opens.append(o)
            closes.append(c)
    for _ in range(max(1, args.runs // 2)):
        with tempfile.TemporaryDirectory() as tmp:
            concurrent.append(concurrent_opens(Path(tmp)))
    print(f"bench_lifecycle: runs={args.runs}")
    print(f"  activation: median {statistics.median(opens):.3f}s, "
          f"{sum(routes_open.values())} panel requests")
    for route, n in sorted(routes_open.items()):
        print(f"    {route:<32} {n}")
    print(f"  deletion:   median {statistics.median(closes):.3f}s, "
          f"{sum(routes_close.values())} panel requests")
    for route, n in sorted(routes_close.items()):
        print(f"    {route:<32} {n}")
    print(f"  20 concurrent activations: median {statistics.median(concurrent):.2f}s wall "
          f"({statistics.median(concurrent) / statistics.median(opens):.1f}x one activation)")


if __name__ == "__main__":
    main()
