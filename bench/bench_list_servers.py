"""How fast the DCI client lists a large panel, and what it costs in requests and memory.

Starts the simulator with 10,000 generated servers on loopback, then lists every server
through `DciClient.iter_servers` with page sizes 100, 500 and 1000: five runs each, printing
the requests made, the median wall time and the peak memory the client allocates while
listing (traced in one more run; it holds one page at a time, so the peak follows the page
size, not the panel's size). The simulator runs in its own process.

    .venv/bin/python bench/bench_list_servers.py [--servers N] [--runs N]
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import statistics
import time
import tracemalloc
from dataclasses import dataclass
from multiprocessing.connection import Connection

import structlog

from dci6_processing.dci.client import DciClient
from pmdci6_sandbox.dcisim import DciSimulator, Inventory

PAGE_SIZES = (100, 500, 1000)


def serve(servers: int, conn: Connection) -> None:
    """The simulator in its own process, so it neither shares the GIL with the client nor
    shows up in the client's traced memory."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    started = time.perf_counter()
    inventory = Inventory.generate(servers=servers, seed=1)
    generated = time.perf_counter() - started
    with DciSimulator(inventory, time_scale=0.0) as sim:
        conn.send((sim.url, sim.admin_email, sim.admin_password, generated))
        conn.recv()  # until the benchmark is done


def list_once(panel: Panel, page_size: int, *, trace: bool) -> tuple[float, int, int, int]:
    """(seconds, servers, list requests, peak traced bytes or 0) of one full listing."""
    client = DciClient(panel.url, panel.email, panel.password, timeout=60.0)
    client.login()
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    count = sum(1 for _ in client.iter_servers(page_size=page_size))
    elapsed = time.perf_counter() - started
    peak = 0
    if trace:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return elapsed, count, client.request_counts["server.list"], peak


@dataclass(frozen=True)
class Panel:
    url: str
    email: str
    password: str


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    # the client's debug lines would dominate the timing on a terminal
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve, args=(args.servers, theirs), daemon=True)
    server.start()
    try:
        url, email, password, generated = ours.recv()
        panel = Panel(url, email, password)
        print(f"simulator: {args.servers} generated servers ({generated:.2f} s) at {url}, "
              f"own process")
        print(f"{'page size':>9}  {'requests':>8}  {'median s':>8}  {'min s':>6}  "
              f"{'max s':>6}  {'servers/s':>9}  {'peak MiB':>8}")
        for page_size in PAGE_SIZES:
            timings: list[float] = []
            requests_made = 0
            for _ in range(args.runs):
                elapsed, count, requests_made, _ = list_once(panel, page_size, trace=False)
                if count != args.servers:
                    raise SystemExit(f"listed {count} servers, expected {args.servers}")
                timings.append(elapsed)
            # traced separately: tracemalloc slows the listing it measures
            _, _, _, peak = list_once(panel, page_size, trace=True)
            median = statistics.median(timings)
            print(f"{page_size:>9}  {requests_made:>8}  {median:>8.3f}  {min(timings):>6.3f}  "
                  f"{max(timings):>6.3f}  {args.servers / median:>9.0f}  "
                  f"{peak / 2**20:>8.2f}")
    finally:
        ours.send("stop")
        server.join(timeout=10)


if __name__ == "__main__":
    main()
