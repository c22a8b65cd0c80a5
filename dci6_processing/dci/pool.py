"""One panel shared by worker threads: a bound on requests in flight, one backoff for all.

The cron sync talks to a panel from several threads at once (Ironic's power-state sync runs
a pool of workers per conductor for the same reason: a real panel answers in tens of
milliseconds, and one request after another does not fit a cron slot). What the threads
share lives here, so that `session.py` keeps only a few hooks:

- `PanelGate`: at most `limit` requests in flight to the panel, whoever sends them (listing
  pages, corrections and direct reads alike), and one shared backoff: when the panel answers
  503, every thread waits before its next request instead of N threads hammering a waking
  panel;
- `HttpSessions`: one `requests.Session` per thread, because requests does not promise that a
  Session is thread-safe (psf/requests#2766, https://github.com/psf/requests/issues/2766);
- `map_bounded`: a function over items with at most `workers` threads, results in the items'
  order, each call in a copy of the caller's context (log fields bound by the caller stay
  bound in the workers).
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import requests

_T = TypeVar("_T")
_R = TypeVar("_R")


class PanelGate:
    """Admission to one panel: `slot()` around every HTTP exchange, `hold()` after a 503."""

    def __init__(
        self,
        limit: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._slots = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep or time.sleep
        self._closed_until = 0.0
        self._waited = threading.local()  # how far this thread has already waited
        self.holds = 0  # how many 503s closed the gate (tests, logs)
        self._in_flight = 0
        self.peak_in_flight = 0

    def hold(self, seconds: float) -> None:
        """Close the gate for `seconds` from now for every thread. The calling thread sleeps
        that time itself (its own retry backoff), so its wait counts as done."""
        with self._lock:
            self.holds += 1
            until = self._clock() + max(seconds, 0.0)
            self._closed_until = max(self._closed_until, until)
            self._waited.until = self._closed_until

    def _wait_open(self) -> None:
        while True:
            with self._lock:
                until = self._closed_until
            if until <= getattr(self._waited, "until", 0.0):
                return
            remaining = until - self._clock()
            if remaining <= 0:
                return
            self._sleep(remaining)
            self._waited.until = until  # waited it out; only a later hold makes us wait again

    @contextmanager
    def slot(self) -> Iterator[None]:
        """One request in flight: waits while the gate is held, then for a free slot."""
        self._wait_open()
        with self._slots:
            with self._lock:
                self._in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
            try:
                yield
            finally:
                with self._lock:
                    self._in_flight -= 1


class HttpSessions:
    """A `requests.Session` per thread; `shared` (tests inject one) is used by every thread."""

    def __init__(self, shared: requests.Session | None = None) -> None:
        self._shared = shared
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: list[requests.Session] = []

    def current(self) -> requests.Session:
        if self._shared is not None:
            return self._shared
        http: requests.Session | None = getattr(self._local, "http", None)
        if http is None:
            http = requests.Session()
            self._local.http = http
            with self._lock:
                self._opened.append(http)
        return http

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        for http in opened:
            http.close()


def map_bounded(
    work: Callable[[_T], _R], items: Iterable[_T], workers: int
) -> Generator[_R, None, None]:
    """`work` over `items` with at most `workers` threads; results in the items' order.

    At most twice `workers` items are taken ahead of the results read, so a long or lazy input
    (listing pages) is never held whole. One worker runs everything in the calling thread.
    """
    if workers <= 1:
        for item in items:
            yield work(item)
        return
    window: deque[Future[_R]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pmdci6-worker") as pool:
        try:
            for item in items:
                context = contextvars.copy_context()
                window.append(pool.submit(context.run, work, item))
                if len(window) >= 2 * workers:
                    yield window.popleft().result()
            while window:
                yield window.popleft().result()
        finally:
            for pending in window:
                pending.cancel()
