"""Hostile panels on 127.0.0.1 for transport tests: one that accepts and never answers, one
that trickles its answer a byte at a time, one whose body never ends.

Each is a plain TCP server (no HTTP library: the point is to misbehave) whose handler runs per
connection in a daemon thread; `close()` (or leaving the `with`) stops it and its handlers.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from types import TracebackType

Handler = Callable[[socket.socket, threading.Event], None]


class LoopbackServer:
    def __init__(self, handler: Handler, *, backlog: int = 16) -> None:
        self._handler = handler
        self._stop = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0), backlog=backlog)
        self.port = int(self._sock.getsockname()[1])
        self.connections = 0
        self.finished = 0  # handlers that ended (the client hung up, or the server stopped)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        try:
            _read_request(conn)
            self._handler(conn, self._stop)
        except OSError:
            pass  # the client went away: that is how these tests end
        finally:
            conn.close()
            self.finished += 1

    def close(self) -> None:
        self._stop.set()
        try:  # wake the accept() (closing the socket alone does not, on Linux)
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            pass
        self._thread.join(timeout=5)
        self._sock.close()

    def __enter__(self) -> LoopbackServer:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _read_request(conn: socket.socket) -> None:
    """Read up to the end of the request head (the small JSON body may follow unread)."""
    conn.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk


def never_answer(conn: socket.socket, stop: threading.Event) -> None:
    stop.wait(60)


def trickle(interval: float = 1.0) -> Handler:
    """A 200 whose 1000-byte body comes one byte every `interval` seconds."""

    def handler(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n")
        while not stop.wait(interval):
            conn.sendall(b" ")

    return handler


def endless(conn: socket.socket, stop: threading.Event) -> None:
    """A 200 with no length whose body never ends (until the client hangs up)."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Connection: close\r\n\r\n")
    block = b"[" * (1024 * 1024)
    while not stop.is_set():
        conn.sendall(block)
