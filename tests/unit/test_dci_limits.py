"""Transport hardening of the DCI session: a token is reused only with the password it was
issued for, answers are cut at a size limit, and every logical request ends within its
timeouts and deadline (loopback servers that never answer, trickle, or never stop), with
503 retries honouring Retry-After inside that deadline."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import responses

from dci6_processing.dci.errors import (
    AnswerTooLarge,
    DciAuthError,
    DciBusy,
    DciUnreachable,
    DeadlineExceeded,
)
from dci6_processing.dci.session import (
    BODY_SEGMENT,
    MAX_RETRY_AFTER,
    MIB,
    DciSession,
    Limits,
    TokenCache,
    _BoundedBody,
)
from dci6_processing.errors import ErrorType, ModuleError
from tests.loopback import LoopbackServer, endless, never_answer, trickle
from tests.unit.test_dci_client import FakeTime

URL = "https://dci.example"
EMAIL = "admin@example.com"
RIGHT = "right-Pa55"
WRONG = "wrong-Pa55"
OTHER = "other-Pa55"
LOGIN = f"{URL}/api/auth/v4/public/token"
SERVER_1 = f"{URL}/api/dci/v3/server/1"
SERVER_JSON = {"id": 1, "name": "srv1"}


@pytest.fixture
def panel() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def server_route() -> object:
    from dci6_processing.dci.routes import route

    return route("server.get")


# --- 1. the token cache is keyed by a digest of the password -------------------------------


class PasswordPanel:
    """A panel that logs in only `accepted` passwords, each login with a new token, and
    answers a call only with a token it issued to an accepted password."""

    def __init__(self, panel: responses.RequestsMock, accepted: set[str]) -> None:
        self.accepted = accepted
        self.logins: list[str] = []
        self.tokens: set[str] = set()
        panel.add_callback(responses.POST, LOGIN, callback=self._login)
        panel.add_callback(responses.GET, SERVER_1, callback=self._server)

    def _login(self, request: object) -> tuple[int, dict[str, str], str]:
        body = json.loads(getattr(request, "body"))  # noqa: B009
        self.logins.append(body["password"])
        if body["password"] not in self.accepted:
            return 401, {}, json.dumps({"error": {"code": 1002, "msg": "bad login"}})
        token = f"6-{len(self.logins):032x}"
        self.tokens.add(token)
        return 201, {}, json.dumps({"token": token})

    def _server(self, request: object) -> tuple[int, dict[str, str], str]:
        token = getattr(request, "headers").get("x-xsrf-token")  # noqa: B009
        if token not in self.tokens:
            return 401, {}, json.dumps({"error": {"code": 1001, "msg": "Unauthorized"}})
        return 200, {}, json.dumps(SERVER_JSON)


def command(tmp_path: Path, password: str) -> None:
    """What one BILLmanager command does: a new process, the shared token cache, one call."""
    session = DciSession(URL, EMAIL, password, token_cache_dir=tmp_path / "tokens", backoff=0)
    session.call(server_route(), ids={"server_id": 1})  # type: ignore[arg-type]


def test_the_right_password_caches_a_token_the_next_command_reuses(
    panel: responses.RequestsMock, tmp_path: Path
) -> None:
    fake = PasswordPanel(panel, {RIGHT})
    command(tmp_path, RIGHT)
    command(tmp_path, RIGHT)
    assert fake.logins == [RIGHT]


def test_a_wrong_password_right_after_a_good_login_is_bad_credentials(
    panel: responses.RequestsMock, tmp_path: Path
) -> None:
    fake = PasswordPanel(panel, {RIGHT})
    command(tmp_path, RIGHT)
    with pytest.raises(DciAuthError) as caught:
        command(tmp_path, WRONG)
    assert caught.value.type is ErrorType.bad_credentials
    assert fake.logins == [RIGHT, WRONG]
    command(tmp_path, RIGHT)  # the good token is still there for the right password
    assert fake.logins == [RIGHT, WRONG]


def test_a_password_changed_back_and_forth_logs_in_each_time(
    panel: responses.RequestsMock, tmp_path: Path
) -> None:
    fake = PasswordPanel(panel, {RIGHT, OTHER})
    for password in (RIGHT, OTHER, RIGHT, OTHER):
        command(tmp_path, password)
    assert fake.logins == [RIGHT, OTHER, RIGHT, OTHER]


def test_the_digest_key_is_private_random_and_the_cache_holds_no_password(
    tmp_path: Path,
) -> None:
    one = TokenCache(tmp_path / "a", URL, EMAIL, RIGHT)
    one.store("6-abc")
    two = TokenCache(tmp_path / "b", URL, EMAIL, RIGHT)
    two.store("6-abc")
    key = tmp_path / "a" / TokenCache.KEY_FILE
    assert key.stat().st_mode & 0o777 == 0o600
    assert key.read_bytes() != (tmp_path / "b" / TokenCache.KEY_FILE).read_bytes()
    assert one.digest() != two.digest()  # per host: a digest is useless elsewhere
    assert RIGHT not in one.path.read_text()
    assert TokenCache(tmp_path / "a", URL, EMAIL, WRONG).load() is None
    key.chmod(0o644)  # someone could read it: trust neither it nor the tokens it vouches for
    assert TokenCache(tmp_path / "a", URL, EMAIL, RIGHT).load() is None


def test_check_connection_and_doctor_log_in_afresh(
    panel: responses.RequestsMock, tmp_path: Path
) -> None:
    from dci6_processing.dci.client import DciClient

    fake = PasswordPanel(panel, {RIGHT})
    command(tmp_path, RIGHT)
    client = DciClient(URL, EMAIL, WRONG, token_cache_dir=tmp_path / "tokens")
    with pytest.raises(DciAuthError):
        client.login()  # what check_connection and doctor call: never the cache
    assert fake.logins == [RIGHT, WRONG]


# --- 2. a size limit on answers ------------------------------------------------------------


def test_an_answer_past_the_limit_names_the_route_and_the_limit(
    panel: responses.RequestsMock,
) -> None:
    panel.post(LOGIN, json={"token": "6-t"})
    panel.get(SERVER_1, body=b"[" * (2 * MIB + 1))
    session = DciSession(URL, EMAIL, RIGHT, limits=Limits(max_answer_bytes=2 * MIB))
    with pytest.raises(AnswerTooLarge) as caught:
        session.call(server_route(), ids={"server_id": 1})  # type: ignore[arg-type]
    assert caught.value.type is ErrorType.panel_answer_too_large
    assert caught.value.object == "server.get"
    assert str(2 * MIB) in caught.value.value


def test_an_answer_at_the_limit_is_read_whole(panel: responses.RequestsMock) -> None:
    body = json.dumps({**SERVER_JSON, "pad": "x" * 1000}).encode()
    panel.post(LOGIN, json={"token": "6-t"})
    panel.get(SERVER_1, body=body)
    session = DciSession(URL, EMAIL, RIGHT, limits=Limits(max_answer_bytes=len(body)))
    assert session.call(server_route(), ids={"server_id": 1})["id"] == 1  # type: ignore[arg-type]


ENDLESS_SCRIPT = textwrap.dedent("""
    import sys
    from dci6_processing.dci.errors import DciError
    from dci6_processing.dci.session import DciSession

    def high_water_kib():
        # this process's own peak RSS: getrusage's ru_maxrss (SELF or the parent's CHILDREN)
        # also counts the image the process was forked from, i.e. the pytest worker
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

    imported = high_water_kib()
    try:
        DciSession(sys.argv[1], "admin@example.com", "pw").login()
        print("no error")
    except DciError as exc:
        print(exc.type.value, exc.object, exc.value, sep="|")
    print(imported, high_water_kib())
""")


def test_an_endless_body_ends_in_an_error_with_memory_bounded() -> None:
    """A fresh process does only the request, so its peak RSS is the request's, whatever else
    the test run holds (xdist workers, earlier tests)."""
    with LoopbackServer(endless) as server:
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-c", ENDLESS_SCRIPT, server.url],
                                capture_output=True, text=True, timeout=120, check=False)
        elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    outcome, peaks = result.stdout.strip().splitlines()[-2:]  # after any log lines
    error_type, route_name, value = outcome.split("|")
    assert (error_type, route_name) == ("panel_answer_too_large", "auth.token")
    assert str(64 * MIB) in value  # the default limit
    imported_kib, peak_kib = (int(field) for field in peaks.split())
    print(f"peak RSS {peak_kib / 1024:.1f} MiB ({imported_kib / 1024:.1f} MiB after imports)")
    assert peak_kib < 150 * 1024, f"peak RSS {peak_kib // 1024} MiB"
    # the body held before the cut is the limit plus at most two segments, never a copy of it
    grown_kib = peak_kib - imported_kib
    assert grown_kib < (64 + 8) * 1024, f"the request grew RSS by {grown_kib // 1024} MiB"
    assert elapsed < 60


def test_the_connection_is_dropped_as_soon_as_the_limit_is_passed() -> None:
    with LoopbackServer(endless) as server:
        session = DciSession(server.url, EMAIL, RIGHT, limits=Limits(max_answer_bytes=MIB))
        with pytest.raises(AnswerTooLarge) as caught:  # its traceback keeps the response
            session.login()
        assert caught.value.object == "auth.token"
        gone = time.monotonic() + 5
        while server.finished < 1 and time.monotonic() < gone:
            time.sleep(0.05)
        assert server.finished == 1  # the server's send failed: nobody reads the rest


def test_a_body_is_kept_whole_across_segments_and_floods_of_tiny_reads() -> None:
    body = _BoundedBody()
    expected = bytearray()
    pieces = [b"a", b"bc" * 1000, bytes(range(256)) * 5000, b"z" * BODY_SEGMENT, b"q"]
    pieces += [b"x"] * 70_000  # a panel sending one byte per packet
    for piece in pieces:
        body.add(piece)
        expected += piece
    assert body.size == len(expected)
    assert body.join() == bytes(expected)
    assert all(len(full) == BODY_SEGMENT for full in body._full)
    assert _BoundedBody().join() == b""


# --- 3. timeouts and the deadline ----------------------------------------------------------


def test_a_panel_that_accepts_and_never_answers_ends_at_the_read_timeout() -> None:
    with LoopbackServer(never_answer) as server:
        session = DciSession(server.url, EMAIL, RIGHT,
                             limits=Limits(connect_timeout=1, read_timeout=1, deadline=10))
        started = time.monotonic()
        with pytest.raises(DciUnreachable) as caught:
            session.login()
        elapsed = time.monotonic() - started
    assert caught.value.type is ErrorType.panel_unreachable
    assert "within 1 s" in caught.value.value
    assert elapsed < 3  # a POST is not retried on a timeout: it may have landed


def test_a_trickling_answer_ends_at_the_deadline() -> None:
    with LoopbackServer(trickle(0.2)) as server:
        session = DciSession(server.url, EMAIL, RIGHT,
                             limits=Limits(connect_timeout=1, read_timeout=1, deadline=2))
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded) as caught:
            session.login()
        elapsed = time.monotonic() - started
    assert caught.value.type is ErrorType.panel_timeout
    assert "within 2 s" in caught.value.value
    assert 1.8 < elapsed < 3.5


def test_a_trickle_of_a_byte_a_second_ends_within_the_deadline() -> None:
    with LoopbackServer(trickle(1.0)) as server:
        session = DciSession(server.url, EMAIL, RIGHT,
                             limits=Limits(connect_timeout=1, read_timeout=5, deadline=3))
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            session.login()
        assert time.monotonic() - started < 4.5


def test_a_connection_that_cannot_open_ends_at_the_connect_timeout() -> None:
    # a listening socket whose accept queue is full and never drained: Linux drops the SYN,
    # so the next connect hangs as it would towards a firewalled panel
    with socket.create_server(("127.0.0.1", 0), backlog=0) as full:
        port = full.getsockname()[1]
        fillers = []
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        time.sleep(0.2)
        session = DciSession(f"http://127.0.0.1:{port}", EMAIL, RIGHT,
                             limits=Limits(connect_timeout=1, read_timeout=30, deadline=30))
        started = time.monotonic()
        with pytest.raises(DciUnreachable) as caught:
            session.login()
        elapsed = time.monotonic() - started
        for filler in fillers:
            filler.close()
    assert elapsed < 5
    assert "no connection" in caught.value.value or "within" in caught.value.value


def test_retry_after_is_honoured_and_capped(panel: responses.RequestsMock) -> None:
    fake = FakeTime()
    panel.post(LOGIN, status=503, headers={"Retry-After": "7"})
    panel.post(LOGIN, status=503, headers={"Retry-After": "100000"})
    panel.post(LOGIN, json={"token": "6-t"})
    session = DciSession(URL, EMAIL, RIGHT, sleep=fake.sleep, clock=fake.clock, backoff=0.2,
                         limits=Limits(deadline=120))
    session.login()
    assert fake.sleeps == [7.0, MAX_RETRY_AFTER]


def test_503_retries_stop_at_the_deadline(panel: responses.RequestsMock) -> None:
    fake = FakeTime()
    for _ in range(10):
        panel.post(LOGIN, status=503, headers={"Retry-After": "20"})
    session = DciSession(URL, EMAIL, RIGHT, sleep=fake.sleep, clock=fake.clock,
                         limits=Limits(deadline=50))
    with pytest.raises(DciBusy) as caught:
        session.login()
    assert fake.sleeps == [20.0, 20.0]  # a third wait would end past the deadline
    assert session.request_counts["auth.token"] == 3
    assert "3 tries" in caught.value.detail


def test_the_deadline_covers_the_relogin_of_a_call(panel: responses.RequestsMock) -> None:
    fake = FakeTime()
    panel.post(LOGIN, json={"token": "6-a"})
    panel.get(SERVER_1, status=401, json={"error": {"code": 1001, "msg": "Unauthorized"}})
    panel.post(LOGIN, status=503, headers={"Retry-After": "30"})
    panel.post(LOGIN, status=503, headers={"Retry-After": "30"})
    session = DciSession(URL, EMAIL, RIGHT, sleep=fake.sleep, clock=fake.clock,
                         limits=Limits(deadline=45))
    with pytest.raises(DciBusy):
        session.call(server_route(), ids={"server_id": 1})  # type: ignore[arg-type]
    assert fake.sleeps == [30.0]


def test_limits_come_from_the_module_settings() -> None:
    from dci6_processing.invocation import dci_client
    from dci6_processing.settings import module_settings

    settings = module_settings({"url": URL, "username": EMAIL, "password": RIGHT,
                                "connect_timeout": "3", "read_timeout": "", "request_deadline":
                                "30", "max_answer_mb": "8"})
    limits = dci_client(settings)._session.limits
    assert limits == Limits(connect_timeout=3, read_timeout=60, deadline=30,
                            max_answer_bytes=8 * MIB)
    with pytest.raises(ModuleError) as caught:
        module_settings({"url": URL, "username": EMAIL, "password": RIGHT,
                         "request_deadline": "0"})
    assert caught.value.type is ErrorType.invalid_param
    assert caught.value.object == "request_deadline"

