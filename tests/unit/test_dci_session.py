"""Transport of the DCI client, pinned with `responses`: login, token reuse, 401/503 handling,
timeouts, dropped connections, TLS and the error table."""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
import responses
from responses import matchers
from structlog.testing import capture_logs

from dci6_processing.dci import session as session_module
from dci6_processing.dci.client import DciClient
from dci6_processing.dci.errors import (
    DciAuthError,
    DciBusy,
    DciError,
    DciNotFound,
    DciTlsError,
    DciUnreachable,
    PanelInternalError,
)
from dci6_processing.dci.session import TokenCache
from dci6_processing.errors import ErrorType

URL = "https://dci.example"
EMAIL = "admin@example.com"
PASSWORD = "S3cret-pa55"
LOGIN = f"{URL}/api/auth/v4/public/token"
SERVER_1 = f"{URL}/api/dci/v3/server/1"
SERVER_JSON = {"id": 1, "name": "srv1", "configuration": "cfg"}


def token_for(n: int) -> str:
    return f"6-{n:032x}"


@pytest.fixture
def panel() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def add_login(panel: responses.RequestsMock, n: int = 1) -> None:
    panel.post(LOGIN, status=201, json={"id": "6", "token": token_for(n), "expires_at": None,
                                        "confirmed": True},
               match=[matchers.json_params_matcher({"email": EMAIL, "password": PASSWORD})])


def make_client(tmp_path: Path | None = None, **kwargs: object) -> DciClient:
    options: dict[str, object] = {"backoff": 0.0}
    options.update(kwargs)
    cache = tmp_path / "tokens" if tmp_path is not None else None
    return DciClient(URL, EMAIL, PASSWORD, token_cache_dir=cache, **options)  # type: ignore[arg-type]


def sent_kwargs(panel: responses.RequestsMock, index: int) -> dict[str, object]:
    """What the client passed to requests for the index-th call (responses records it)."""
    kwargs: dict[str, object] = getattr(panel.calls[index].request, "req_kwargs")  # noqa: B009
    return kwargs


def error(code: int, msg: str) -> dict[str, object]:
    return {"error": {"code": code, "msg": msg, "value": {}}}


def test_login_then_call_carries_the_auth_headers(panel: responses.RequestsMock) -> None:
    add_login(panel)
    panel.get(SERVER_1, json=SERVER_JSON)
    server = make_client().server(1)
    assert server.id == 1 and server.configuration == "cfg"
    sent = panel.calls[1].request
    assert sent.headers["x-xsrf-token"] == token_for(1)
    assert sent.headers["Cookie"] == f"ses6={token_for(1)}"
    assert sent.headers["isp-box-instance"] == "true"
    assert "x-xsrf-token" not in panel.calls[0].request.headers


def test_401_logs_in_again_once_and_repeats_the_call(panel: responses.RequestsMock) -> None:
    add_login(panel, 1)
    panel.get(SERVER_1, status=401, json=error(1001, "Unauthorized"))
    panel.get(SERVER_1, json=SERVER_JSON)
    client = make_client()
    assert client.server(1).id == 1
    assert client.request_counts == {"auth.token": 2, "server.get": 2}


def test_401_twice_is_bad_credentials(panel: responses.RequestsMock) -> None:
    add_login(panel)
    panel.get(SERVER_1, status=401, json=error(1001, "Unauthorized"))
    client = make_client()
    with pytest.raises(DciAuthError) as caught:
        client.server(1)
    assert caught.value.type is ErrorType.bad_credentials
    assert caught.value.http_status == 401
    assert client.request_counts == {"auth.token": 2, "server.get": 2}


def test_401_on_login_is_bad_credentials_without_a_loop(panel: responses.RequestsMock) -> None:
    panel.post(LOGIN, status=401, json=error(1002, "Invalid email or password"))
    client = make_client()
    with pytest.raises(DciAuthError) as caught:
        client.server(1)
    assert caught.value.value == "Invalid email or password"
    assert caught.value.object == EMAIL
    assert client.request_counts == {"auth.token": 1}


def test_503_burst_then_success(panel: responses.RequestsMock) -> None:
    add_login(panel)
    for _ in range(3):
        panel.get(SERVER_1, status=503, json=error(503, "Service temporarily unavailable"))
    panel.get(SERVER_1, json=SERVER_JSON)
    client = make_client()
    assert client.server(1).id == 1
    assert client.request_counts["server.get"] == 4


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_503_forever_is_panel_busy_after_every_try(
    panel: responses.RequestsMock, method: str
) -> None:
    add_login(panel)
    busy = error(503, "Service temporarily unavailable")
    panel.get(SERVER_1, status=503, json=busy)
    panel.post(f"{SERVER_1}/power_reset", status=503, json=busy)
    panel.delete(f"{SERVER_1}/owner", status=503, json=busy)
    client = make_client(retries_503=4)
    calls: dict[str, Callable[[], object]] = {
        "GET": lambda: client.server(1),
        "POST": lambda: client.power(1, "reset"),
        "DELETE": lambda: client.remove_owner(1),
    }
    call = calls[method]
    with pytest.raises(DciBusy) as caught:
        call()
    assert caught.value.type is ErrorType.panel_busy
    route_name = {"GET": "server.get", "POST": "server.power_reset",
                  "DELETE": "server.owner.remove"}[method]
    assert client.request_counts[route_name] == 4


def test_503_backoff_grows_and_is_capped(
    panel: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    add_login(panel)
    panel.get(SERVER_1, status=503)
    client = make_client(retries_503=6, backoff=0.5)
    with pytest.raises(DciBusy):
        client.server(1)
    assert slept == [0.5, 1.0, 2.0, 2.0, 2.0]


def test_500_carries_the_panel_message(panel: responses.RequestsMock) -> None:
    add_login(panel)
    panel.get(SERVER_1, status=500, json=error(500, "Internal server error"))
    with pytest.raises(DciError) as caught:
        make_client().server(1)
    err = caught.value
    assert type(err) is PanelInternalError
    assert err.type is ErrorType.panel_error
    assert (err.http_status, err.code, err.value) == (500, 500, "Internal server error")


def test_500_without_json_body(panel: responses.RequestsMock) -> None:
    add_login(panel)
    panel.get(SERVER_1, status=502, body="<html>bad gateway</html>")
    with pytest.raises(DciError) as caught:
        make_client().server(1)
    assert caught.value.value == "HTTP 502" and caught.value.code is None


def test_404_is_not_found(panel: responses.RequestsMock) -> None:
    add_login(panel)
    panel.get(SERVER_1, status=404, json=error(1004, "Server not found"))
    with pytest.raises(DciNotFound) as caught:
        make_client().server(1)
    assert caught.value.type is ErrorType.not_found
    assert caught.value.object == "server 1"
    assert caught.value.panel_msg == "Server not found"


def test_non_json_success_is_a_panel_error(panel: responses.RequestsMock) -> None:
    add_login(panel)
    panel.get(SERVER_1, body="not json")
    with pytest.raises(DciError, match="not JSON"):
        make_client().server(1)


def test_timeout_is_unreachable_and_not_retried(panel: responses.RequestsMock) -> None:
    add_login(panel)
    panel.get(SERVER_1, body=requests.exceptions.ReadTimeout("read timed out"))
    client = make_client(timeout=1.5)
    with pytest.raises(DciUnreachable) as caught:
        client.server(1)
    assert caught.value.type is ErrorType.panel_unreachable
    assert "1.5 s" in caught.value.value
    assert client.request_counts["server.get"] == 1


def test_dropped_get_is_retried_then_succeeds(panel: responses.RequestsMock) -> None:
    add_login(panel)
    panel.get(SERVER_1, body=requests.exceptions.ConnectionError("Connection aborted"))
    panel.get(SERVER_1, json=SERVER_JSON)
    client = make_client()
    assert client.server(1).id == 1
    assert client.request_counts["server.get"] == 2


def test_connection_error_on_get_gives_up_after_retries(panel: responses.RequestsMock) -> None:
    add_login(panel)
    panel.get(SERVER_1, body=requests.exceptions.ConnectionError("Connection refused"))
    client = make_client()
    with pytest.raises(DciUnreachable) as caught:
        client.server(1)
    assert "Connection refused" in caught.value.value
    assert client.request_counts["server.get"] == 3


def test_dropped_post_is_not_retried(panel: responses.RequestsMock) -> None:
    add_login(panel)
    panel.post(f"{SERVER_1}/owner", body=requests.exceptions.ConnectionError("reset by peer"))
    client = make_client()
    with pytest.raises(DciUnreachable):
        client.set_owner(1, 7)
    assert client.request_counts["server.owner.set"] == 1


def test_unreachable_login(panel: responses.RequestsMock) -> None:
    panel.post(LOGIN, body=requests.exceptions.ConnectionError("Name or service not known"))
    with pytest.raises(DciUnreachable) as caught:
        make_client().login()
    assert caught.value.object == "dci.example"


def test_tls_error(panel: responses.RequestsMock) -> None:
    panel.post(LOGIN, body=requests.exceptions.SSLError("certificate verify failed"))
    with pytest.raises(DciTlsError) as caught:
        make_client().login()
    assert caught.value.type is ErrorType.tls_failed
    assert "certificate verify failed" in caught.value.value


def test_missing_ca_bundle_is_a_tls_error(tmp_path: Path) -> None:
    with pytest.raises(DciTlsError) as caught:
        make_client(verify=str(tmp_path / "nope.pem"))
    assert caught.value.object == "ca_bundle"


def test_ca_bundle_and_verification_reach_requests(
    panel: responses.RequestsMock, tmp_path: Path
) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    add_login(panel)
    make_client(verify=str(bundle)).login()
    assert sent_kwargs(panel, 0)["verify"] == str(bundle)
    make_client().login()
    # True, or the environment's CA bundle (REQUESTS_CA_BUNDLE): verification stays on
    assert sent_kwargs(panel, 1)["verify"] not in (False, str(bundle))
    assert sent_kwargs(panel, 1)["timeout"] == (10.0, 60.0)  # (connect, read)


def test_insecure_warns_once_per_panel(panel: responses.RequestsMock) -> None:
    session_module._warned_insecure.discard(URL)
    with capture_logs() as logs:
        make_client(verify=False)
        make_client(verify=False)
        make_client(verify=True)
    warnings = [e for e in logs if e["event"] == "dci.tls.verification_disabled"]
    assert len(warnings) == 1 and warnings[0]["log_level"] == "warning"


def test_token_is_reused_across_instances_and_cached_0600(
    panel: responses.RequestsMock, tmp_path: Path
) -> None:
    add_login(panel)
    panel.get(SERVER_1, json=SERVER_JSON)
    first = make_client(tmp_path)
    first.server(1)
    second = make_client(tmp_path)
    second.server(1)
    assert first.request_counts["auth.token"] == 1
    assert second.request_counts == {"server.get": 1}
    assert panel.calls[-1].request.headers["x-xsrf-token"] == token_for(1)
    cache_dir = tmp_path / "tokens"
    assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700
    cache_file = TokenCache(cache_dir, URL, EMAIL, PASSWORD).path
    key_file = cache_dir / TokenCache.KEY_FILE
    assert sorted(cache_dir.iterdir()) == sorted([cache_file, key_file])
    for path in (cache_file, key_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert PASSWORD.encode() not in path.read_bytes() and PASSWORD not in path.name
    assert json.loads(cache_file.read_text())["token"] == token_for(1)


def test_expired_cached_token_is_replaced(panel: responses.RequestsMock, tmp_path: Path) -> None:
    TokenCache(tmp_path / "tokens", URL, EMAIL, PASSWORD).store("6-stale")
    add_login(panel, 2)
    panel.get(SERVER_1, status=401, json=error(1001, "Unauthorized"),
              match=[matchers.header_matcher({"x-xsrf-token": "6-stale"})])
    panel.get(SERVER_1, json=SERVER_JSON,
              match=[matchers.header_matcher({"x-xsrf-token": token_for(2)})])
    client = make_client(tmp_path)
    assert client.server(1).id == 1
    assert TokenCache(tmp_path / "tokens", URL, EMAIL, PASSWORD).load() == token_for(2)


def test_a_world_readable_cache_is_not_trusted(tmp_path: Path) -> None:
    cache = TokenCache(tmp_path / "tokens", URL, EMAIL, PASSWORD)
    cache.store("6-abc")
    assert cache.load() == "6-abc"
    os.chmod(cache.path, 0o644)
    assert cache.load() is None
    assert not cache.path.exists()


def test_cache_is_keyed_by_url_and_email(tmp_path: Path) -> None:
    one = TokenCache(tmp_path, URL, EMAIL, PASSWORD)
    assert one.path != TokenCache(tmp_path, URL, "other@example.com", PASSWORD).path
    assert one.path != TokenCache(tmp_path, "https://other.example", EMAIL, PASSWORD).path


def test_unwritable_cache_does_not_fail_the_call(
    panel: responses.RequestsMock, tmp_path: Path
) -> None:
    blocker = tmp_path / "tokens"
    blocker.write_text("a file where the directory should be")
    add_login(panel)
    make_client(tmp_path).login()


def test_forget_keeps_a_token_renewed_by_another_process(tmp_path: Path) -> None:
    cache = TokenCache(tmp_path, URL, EMAIL, PASSWORD)
    cache.store("6-new")
    cache.forget("6-old")
    assert cache.load() == "6-new"
    cache.forget("6-new")
    assert cache.load() is None


def test_secrets_never_reach_errors_or_logs(panel: responses.RequestsMock) -> None:
    add_login(panel)
    panel.get(SERVER_1, status=400,
              json=error(1000, f"Bad request: token {token_for(1)} password {PASSWORD}"))
    with capture_logs() as logs, pytest.raises(DciError) as caught:
        make_client().server(1)
    assert token_for(1) not in caught.value.value and PASSWORD not in caught.value.value
    assert "***" in caught.value.value
    text = json.dumps(logs, default=str)
    assert PASSWORD not in text and token_for(1) not in text
