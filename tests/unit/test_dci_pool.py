"""dci/pool.py and the session's hooks into it: at most N requests in flight to one panel, a
503 holds every thread back, results in order with each item's failure its own, one token
renewal however many threads saw the token rejected, a deadline per thread."""

from __future__ import annotations

import contextvars
import itertools
import json
import random
import threading
import time
from collections.abc import Iterator

import pytest
import requests
import responses

from dci6_processing.dci.client import DciClient
from dci6_processing.dci.errors import BadAnswer, DciUnreachable
from dci6_processing.dci.pool import HttpSessions, PanelGate, map_bounded
from dci6_processing.dci.session import Limits
from pmdci6_sandbox.dcisim import DciSimulator, Inventory
from tests.unit.test_dci_fuzz import API, LOGIN, SERVER, URL


class Occupancy:
    """How many threads are inside a region at once, and the most there ever were."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.most = 0

    def __enter__(self) -> None:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.now -= 1


class FakeTime:
    """A clock that moves only when someone sleeps; every sleep recorded by thread name."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[tuple[str, float]] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append((threading.current_thread().name, round(seconds, 6)))
            self.now += seconds


def in_thread(name: str, work: object) -> None:
    assert callable(work)
    thread = threading.Thread(target=work, name=name)
    thread.start()
    thread.join(10)
    assert not thread.is_alive()


# --- PanelGate ------------------------------------------------------------------------------


def test_the_gate_never_lets_more_than_its_limit_in() -> None:
    gate = PanelGate(3)
    inside = Occupancy()

    def request() -> None:
        with gate.slot(), inside:
            time.sleep(0.02)

    threads = [threading.Thread(target=request) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert inside.most == 3 == gate.peak_in_flight
    assert inside.now == 0


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError):
        PanelGate(0)


def test_a_503_hold_makes_every_other_thread_wait_but_not_the_one_that_slept_it() -> None:
    fake = FakeTime()
    gate = PanelGate(4, clock=fake.clock, sleep=fake.sleep)

    gate.hold(2.0)  # this thread got the 503 and sleeps its own backoff
    fake.sleep(2.0)
    with gate.slot():
        pass
    assert fake.slept == [("MainThread", 2.0)]  # it does not wait a second time

    fake.now -= 2.0  # another thread arrives right after the 503
    in_thread("other", lambda: gate.slot().__enter__())
    assert fake.slept[1:] == [("other", 2.0)]
    assert gate.holds == 1


def test_a_hold_already_waited_out_does_not_delay_again_but_a_later_one_does() -> None:
    fake = FakeTime()
    gate = PanelGate(2, clock=fake.clock, sleep=fake.sleep)

    def twice() -> None:
        with gate.slot():
            pass
        with gate.slot():
            pass

    gate.hold(1.0)
    in_thread("worker", twice)
    assert [s for s in fake.slept if s[0] == "worker"] == [("worker", 1.0)]

    fake.slept.clear()
    gate.hold(0.5)
    in_thread("worker", twice)
    assert fake.slept == [("worker", 0.5)]
    assert gate.holds == 2


def test_holds_overlapping_keep_the_gate_closed_until_the_latest_ends() -> None:
    fake = FakeTime()
    gate = PanelGate(2, clock=fake.clock, sleep=fake.sleep)
    gate.hold(3.0)
    gate.hold(1.0)  # a shorter backoff does not reopen it early
    in_thread("worker", lambda: gate.slot().__enter__())
    assert fake.slept == [("worker", 3.0)]


# --- map_bounded ----------------------------------------------------------------------------


def test_results_come_in_the_items_order_whatever_order_they_finish_in() -> None:
    rng = random.Random(5)
    delays = [rng.uniform(0, 0.02) for _ in range(40)]

    def work(n: int) -> int:
        time.sleep(delays[n])
        return n * n

    assert list(map_bounded(work, range(40), 6)) == [n * n for n in range(40)]


def test_at_most_workers_items_run_at_once() -> None:
    inside = Occupancy()

    def work(n: int) -> int:
        with inside:
            time.sleep(0.01)
        return n

    assert list(map_bounded(work, range(30), 4)) == list(range(30))
    assert 1 < inside.most <= 4


def test_a_lazy_input_is_read_only_a_window_ahead() -> None:
    taken = itertools.count()

    def endless() -> Iterator[int]:
        while True:
            yield next(taken)

    results = map_bounded(lambda n: n, endless(), 3)
    first = [next(results) for _ in range(5)]
    assert first == [0, 1, 2, 3, 4]
    assert next(taken) <= 5 + 2 * 3  # never the whole input
    results.close()


def test_one_item_failing_fails_only_at_its_place() -> None:
    started: list[int] = []
    lock = threading.Lock()

    def work(n: int) -> int:
        with lock:
            started.append(n)
        if n == 3:
            raise ValueError("item 3 is broken")
        return n

    results = map_bounded(work, range(50), 2)
    assert [next(results) for _ in range(3)] == [0, 1, 2]  # the items before it are whole
    with pytest.raises(ValueError, match="item 3 is broken"):
        next(results)
    assert len(started) < 50  # what had not started yet is not run for nothing


def test_workers_see_the_callers_context_and_one_worker_is_the_caller() -> None:
    bound: contextvars.ContextVar[str] = contextvars.ContextVar("bound", default="")
    bound.set("module=1")

    def work(_: int) -> tuple[str, str]:
        return bound.get(), threading.current_thread().name

    pooled = list(map_bounded(work, range(4), 2))
    assert {value for value, _ in pooled} == {"module=1"}
    assert all(name.startswith("pmdci6-worker") for _, name in pooled)
    alone = list(map_bounded(work, range(2), 1))
    assert alone == [("module=1", threading.current_thread().name)] * 2


# --- HttpSessions ---------------------------------------------------------------------------


def test_each_thread_has_its_own_http_session_unless_one_is_shared() -> None:
    sessions = HttpSessions()
    mine = sessions.current()
    assert sessions.current() is mine
    theirs: list[requests.Session] = []
    in_thread("other", lambda: theirs.append(sessions.current()))
    assert theirs[0] is not mine
    sessions.close()

    shared = requests.Session()
    one = HttpSessions(shared)
    seen: list[requests.Session] = []
    in_thread("other", lambda: seen.append(one.current()))
    assert one.current() is shared and seen == [shared]


# --- the session over a real panel ----------------------------------------------------------


@pytest.fixture
def sim() -> Iterator[DciSimulator]:
    with DciSimulator(Inventory.generate(servers=12, seed=1), time_scale=0.0) as simulator:
        yield simulator


def client(sim: DciSimulator, concurrency: int, **kwargs: object) -> DciClient:
    return DciClient(sim.url, sim.admin_email, sim.admin_password, concurrency=concurrency,
                     **kwargs)  # type: ignore[arg-type]


def test_a_client_shared_by_many_threads_keeps_its_bound(sim: DciSimulator) -> None:
    sim.set_latency(100)
    dci = client(sim, 3)
    dci.server(1)  # logged in
    sim.clear_requests()

    started = time.perf_counter()
    read = list(map_bounded(lambda n: dci.server(n).id, range(1, 10), 9))
    wall = time.perf_counter() - started

    assert read == list(range(1, 10))
    assert dci.concurrency == 3 and dci._session.gate.peak_in_flight == 3
    assert wall >= 3 * 0.1  # nine requests, three at a time: three latencies at least
    assert len(sim.requests) == 9 and all(r.status == 200 for r in sim.requests)


def test_a_503_holds_the_whole_pool_back(sim: DciSimulator) -> None:
    dci = client(sim, 4, backoff=0.6)
    dci.server(1)
    sim.faults.burst_503(1, path_contains="/server/1")
    first = threading.Thread(target=lambda: dci.server(1))
    first.start()
    deadline = time.monotonic() + 10
    while dci._session.gate.holds == 0:
        assert time.monotonic() < deadline
        time.sleep(0.005)

    started = time.perf_counter()
    dci.server(2)  # the panel is not busy for this one: only the pool's hold delays it
    waited = time.perf_counter() - started
    first.join(10)

    assert waited >= 0.4, waited
    statuses = [(r.path, r.status) for r in sim.requests if r.route == "server.get"]
    assert statuses.count(("/api/dci/v3/server/1", 503)) == 1


def test_a_rejected_token_is_renewed_once_for_every_thread(sim: DciSimulator) -> None:
    dci = client(sim, 6)
    dci.server(1)
    sim.faults.expire_tokens()
    sim.clear_requests()

    assert list(map_bounded(lambda n: dci.server(n).id, range(1, 7), 6)) == list(range(1, 7))

    logins = [r for r in sim.requests if r.route == "auth.token"]
    assert len(logins) == 1


def test_each_thread_has_its_own_deadline(sim: DciSimulator) -> None:
    dci = client(sim, 2, limits=Limits(deadline=3.0, read_timeout=10.0))
    dci.server(1)
    sim.faults.slow(2.5, 2, path_contains="/server/")
    outcome: list[object] = []
    first = threading.Thread(target=lambda: outcome.append(dci.server(1).id))
    first.start()
    time.sleep(1.0)  # with the first thread's deadline this one would have 2 s, not 3
    try:
        second = dci.server(2).id
    except DciUnreachable as exc:
        pytest.fail(f"the second thread ran out of the first one's deadline: {exc}")
    first.join(10)
    assert (outcome, second) == ([1], 2)


def test_pages_fetched_side_by_side_still_catch_a_panel_ignoring_the_limit() -> None:
    body = json.dumps({"list": [SERVER], "size": 50})  # the same page at every offset
    with responses.RequestsMock() as mock:
        mock.post(LOGIN, json={"token": "6-abc"})
        mock.get(f"{API}/dci/v3/server", body=body)
        dci = DciClient(URL, "admin@example.com", "Admin-pw-1", backoff=0.0, retries_503=1,
                        concurrency=4)
        with pytest.raises(BadAnswer, match="same page again at offset 1"):
            list(dci.iter_servers(page_size=1, concurrent_pages=True))
        pages = [call for call in mock.calls if "/dci/v3/server" in call.request.url]
    assert len(pages) < 50  # stopped within the window, not after every page
