"""The DCI client's calls, pinned with `responses`: request shapes, pagination, free-server
filtering, users, IPs, operations and waiting on them with a fake clock."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from responses import matchers

from dci6_processing.dci.client import Backoff, DciClient
from dci6_processing.dci.errors import (
    DciConflict,
    DciError,
    DciNotFound,
    DeadlineExceeded,
    NoSwitchConnection,
    OperationFailed,
    OperationTimedOut,
    PoolExhausted,
    RouteMismatch,
    ServerOwned,
)
from dci6_processing.dci.query import Where
from dci6_processing.dci.routes import ROUTES, route
from dci6_processing.errors import ErrorType
from dci6_processing.log import redact

URL = "https://dci.example"
API = f"{URL}/api"
EMAIL = "admin@example.com"
PASSWORD = "S3cret-pa55"


@pytest.fixture
def panel() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(f"{API}/auth/v4/public/token", status=201,
                  json={"id": "6", "token": "6-abcdef", "expires_at": None, "confirmed": True})
        yield mock


@pytest.fixture
def client() -> DciClient:
    return DciClient(URL, EMAIL, PASSWORD, backoff=0.0)


def query_of(call: Any) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(call.request.url).query).items()}


def calls_to(panel: responses.RequestsMock, path: str) -> list[Any]:
    return [c for c in panel.calls if urlsplit(c.request.url).path == f"/api/{path}"]


def server_json(server_id: int, **fields: Any) -> dict[str, Any]:
    return {"id": server_id, "name": f"srv{server_id}", "configuration": "cfg-a",
            "location_id": 1, "owner": None, "owner_email": None, "is_new": False,
            "operation": None, "maintenance_mode": False, **fields}


class FakeTime:
    """A clock that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def backoff(self, initial: float = 1.0, factor: float = 2.0, maximum: float = 8.0) -> Backoff:
        return Backoff(initial=initial, factor=factor, maximum=maximum, clock=self.clock,
                       sleep=self.sleep)


# --- pagination ------------------------------------------------------------------------


def paged_servers(panel: responses.RequestsMock, total: int, *, send_size: bool = True) -> None:
    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        offset, count = (int(x) for x in query_of_url(request.url)["limit"].split(","))
        page = [server_json(i) for i in range(offset + 1, min(offset + count, total) + 1)]
        body: dict[str, Any] = {"list": page}
        if send_size:
            body["size"] = total
        return 200, {}, json.dumps(body)

    panel.add_callback(responses.GET, f"{API}/dci/v3/server", callback=answer)


def query_of_url(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@pytest.mark.parametrize(
    ("total", "page_size", "requests_made"),
    [(0, 10, 1), (1, 10, 1), (10, 10, 1), (11, 10, 2), (20, 10, 2), (21, 10, 3), (5, 1, 5)],
)
def test_pagination_boundaries(
    panel: responses.RequestsMock, client: DciClient, total: int, page_size: int,
    requests_made: int,
) -> None:
    paged_servers(panel, total)
    ids = [s.id for s in client.iter_servers(page_size=page_size)]
    assert ids == list(range(1, total + 1))
    assert client.request_counts["server.list"] == requests_made
    limits = [query_of(c)["limit"] for c in calls_to(panel, "dci/v3/server")]
    assert limits == [f"{n * page_size},{page_size}" for n in range(requests_made)]


@pytest.mark.parametrize(("total", "requests_made"), [(0, 1), (9, 1), (10, 2), (25, 3)])
def test_pagination_without_size_stops_on_a_short_page(
    panel: responses.RequestsMock, client: DciClient, total: int, requests_made: int
) -> None:
    paged_servers(panel, total, send_size=False)
    assert len(list(client.iter_servers(page_size=10))) == total
    assert client.request_counts["server.list"] == requests_made


def test_listing_is_lazy_one_page_at_a_time(
    panel: responses.RequestsMock, client: DciClient
) -> None:
    paged_servers(panel, 100)
    servers = client.iter_servers(page_size=10)
    assert client.request_counts["server.list"] == 0
    first = [next(servers) for _ in range(10)]
    assert [s.id for s in first] == list(range(1, 11))
    assert client.request_counts["server.list"] == 1
    next(servers)
    assert client.request_counts["server.list"] == 2


def test_where_and_orderby_are_sent(panel: responses.RequestsMock, client: DciClient) -> None:
    paged_servers(panel, 0)
    list(client.iter_servers(Where.eq("location_id", 2), orderby="name desc"))
    sent = query_of(calls_to(panel, "dci/v3/server")[0])
    assert sent["where"] == "location_id EQ 2" and sent["orderby"] == "name desc"


@pytest.mark.parametrize("bad", ["id; drop", "id asc, name", "id ASC ", ""])
def test_orderby_is_validated(client: DciClient, bad: str) -> None:
    with pytest.raises(ValueError):
        list(client.iter_servers(orderby=bad))


def test_a_bad_envelope_is_a_panel_error(panel: responses.RequestsMock, client: DciClient) -> None:
    panel.get(f"{API}/dci/v3/server", json={"items": []})
    with pytest.raises(DciError, match="no 'list'"):
        list(client.iter_servers())


# --- models from answers ---------------------------------------------------------------


def test_unknown_fields_are_ignored_and_enums_stay_open(
    panel: responses.RequestsMock, client: DciClient
) -> None:
    panel.get(f"{API}/dci/v3/server/5", json=server_json(
        5, brand_new_field={"x": 1}, power_status="Rebooting", ip=None, switch_connection=None,
        operation={"id": 3, "status": "ok", "status_info": None, "extra": True},
    ))
    server = client.server(5)
    assert server.power_status == "Rebooting" and server.ip == [] and server.is_free


def test_an_invalid_server_answer_is_a_panel_error(
    panel: responses.RequestsMock, client: DciClient
) -> None:
    panel.get(f"{API}/dci/v3/server/5", json={"name": "no id"})
    with pytest.raises(DciError, match="unexpected answer") as caught:
        client.server(5)
    assert caught.value.type is ErrorType.panel_error


@pytest.mark.parametrize(("roles", "parsed", "admin"), [
    (["@user"], ["@user"], False),
    ("[@user]", ["@user"], False),
    ("[@admin, @user]", ["@admin", "@user"], True),
    (["@admin"], ["@admin"], True),
    (None, [], False),
])
def test_roles_as_array_or_string(
    panel: responses.RequestsMock, client: DciClient, roles: Any, parsed: list[str], admin: bool
) -> None:
    panel.get(f"{API}/dci/v3/user", json={"list": [
        {"id": 4, "email": "c@example.com", "roles": roles, "server_count": 1, "new": "x"}
    ], "size": 1})
    user = client.user_by_email("c@example.com")
    assert user is not None
    assert (user.roles, user.is_admin) == (parsed, admin)


def test_user_by_email_escapes_and_matches_exactly(
    panel: responses.RequestsMock, client: DciClient
) -> None:
    panel.get(f"{API}/dci/v3/user", json={"list": [
        {"id": 1, "email": "o'brien@example.com.evil", "roles": ["@user"]},
        {"id": 2, "email": "O'Brien@Example.com", "roles": ["@user"]},
    ], "size": 2})
    user = client.user_by_email("o'brien@example.com")
    assert user is not None and user.id == 2
    sent = query_of(calls_to(panel, "dci/v3/user")[0])
    assert sent["where"] == "email EQ 'o''brien@example.com'"


def test_user_by_email_none_when_absent(panel: responses.RequestsMock, client: DciClient) -> None:
    panel.get(f"{API}/dci/v3/user", json={"list": [], "size": 0})
    assert client.user_by_email("nobody@example.com") is None


def test_create_user(panel: responses.RequestsMock, client: DciClient) -> None:
    panel.post(f"{API}/dci/v3/user", json={"id": 17}, match=[matchers.json_params_matcher(
        {"email": "new@example.com", "password": "pw-123456", "role": "@user"})])
    user = client.create_user("new@example.com", "pw-123456")
    assert (user.id, user.email, user.roles) == (17, "new@example.com", ["@user"])


def test_create_user_conflict(panel: responses.RequestsMock, client: DciClient) -> None:
    panel.post(f"{API}/dci/v3/user", status=409,
               json={"error": {"code": 2005, "msg": "User already exists"}})
    with pytest.raises(DciConflict) as caught:
        client.create_user("dup@example.com", "pw-123456")
    assert caught.value.code == 2005 and "pw-123456" not in str(caught.value)


def test_catalogue_lists(panel: responses.RequestsMock, client: DciClient) -> None:
    panel.get(f"{API}/dci/v3/server/configuration", json={"list": [
        {"configuration": "cfg-a", "free_server_count": 3}, {"configuration": "cfg-b"}]})
    panel.get(f"{API}/ip/v3/ippool", json={"list": [
        {"id": 1, "name": "public-v4", "family": "ipv4"},
        {"id": 10, "name": "public-v6", "family": "ipv6"}], "size": 2})
    panel.get(f"{API}/dci/v3/os_template", json={"list": [
        {"id": 3, "name": "Windows", "tags": ["win"], "os_family": "windows"}], "size": 1})
    panel.get(f"{API}/dci/v3/location", json={"list": [{"id": 1, "name": "DC1"}], "size": 1})
    assert [(c.name, c.free_server_count) for c in client.configurations()] == [
        ("cfg-a", 3), ("cfg-b", 0)]
    assert [(p.id, p.family) for p in client.ip_pools()] == [(1, "ipv4"), (10, "ipv6")]
    assert [(t.id, t.os_family) for t in client.os_templates()] == [(3, "windows")]
    assert [(loc.id, loc.name) for loc in client.locations()] == [(1, "DC1")]


# --- free servers ----------------------------------------------------------------------


def test_free_servers_filter_on_the_panel_and_recheck_here(
    panel: responses.RequestsMock, client: DciClient
) -> None:
    panel.get(f"{API}/dci/v3/server", json={"list": [
        server_json(1),
        server_json(2, maintenance_mode=True),
        server_json(3, operation={"id": 9, "status": "running"}),
        server_json(4, operation={"id": 8, "status": "canceled"}),
        server_json(5, configuration="cfg-other"),
        server_json(6, owner=3),
        server_json(7, operation={"id": 7, "status": "failed"}),
    ], "size": 7})
    free = [s.id for s in client.free_servers("cfg-a", 1)]
    assert free == [1, 4]
    sent = query_of(calls_to(panel, "dci/v3/server")[0])
    assert sent["where"] == ("(owner_email IS null) AND is_new EQ false AND "
                             "configuration EQ 'cfg-a' AND location_id EQ 1")
    assert sent["limit"] == "0,100"


def test_free_servers_without_configuration_or_location(
    panel: responses.RequestsMock, client: DciClient
) -> None:
    panel.get(f"{API}/dci/v3/server", json={"list": [server_json(1, location_id=3)], "size": 1})
    assert [s.id for s in client.free_servers(None, None)] == [1]
    sent = query_of(calls_to(panel, "dci/v3/server")[0])
    assert sent["where"] == "(owner_email IS null) AND is_new EQ false"


# --- actions ---------------------------------------------------------------------------


def test_set_owner_and_conflict(panel: responses.RequestsMock, client: DciClient) -> None:
    panel.post(f"{API}/dci/v3/server/1/owner", json={"id": 1},
               match=[matchers.json_params_matcher({"owner": 7})])
    client.set_owner(1, 7)
    panel.post(f"{API}/dci/v3/server/2/owner", status=409,
               json={"error": {"code": 4242, "msg": "Owner is set"}})
    with pytest.raises(ServerOwned) as caught:
        client.set_owner(2, 7)
    assert caught.value.type is ErrorType.server_in_use
    assert (caught.value.object, caught.value.value) == ("2", "Owner is set")
    assert str(caught.value) == "server_in_use: object='2' value='Owner is set'"
    assert isinstance(caught.value.__cause__, DciConflict)  # the panel's answer, kept


def test_remove_owner(panel: responses.RequestsMock, client: DciClient) -> None:
    panel.delete(f"{API}/dci/v3/server/1/owner", json={})
    client.remove_owner(1)
    assert client.request_counts["server.owner.remove"] == 1


def test_switch_ports(panel: responses.RequestsMock, client: DciClient) -> None:
    panel.post(f"{API}/dci/v3/server/1/switch_port/enable", json={})
    panel.post(f"{API}/dci/v3/server/1/switch_port/disable", json={})
    client.set_switch_ports(1, True)
    client.set_switch_ports(1, False)
    assert client.request_counts["server.switch_port.enable"] == 1
    assert client.request_counts["server.switch_port.disable"] == 1
    panel.post(f"{API}/dci/v3/server/2/switch_port/disable", status=400,
               json={"error": {"code": 2002, "msg": "Server has no switch connection"}})
    with pytest.raises(NoSwitchConnection) as caught:
        client.set_switch_ports(2, False)
    assert caught.value.type is ErrorType.no_switch_connection
    assert caught.value.object == "2"
    assert str(caught.value) == (
        "no_switch_connection: object='2' value='Server has no switch connection'")


@pytest.mark.parametrize("action", ["on", "off", "reset"])
def test_power(panel: responses.RequestsMock, client: DciClient, action: str) -> None:
    panel.post(f"{API}/dci/v3/server/1/power_{action}", json={},
               match=[matchers.json_params_matcher({})])
    client.power(1, action)  # type: ignore[arg-type]
    assert client.request_counts[f"server.power_{action}"] == 1


def test_a_login_key_for_a_user_and_its_url(panel: responses.RequestsMock,
                                            client: DciClient) -> None:
    panel.post(f"{API}/auth/v4/user/42/key", status=201, json={"id": 3, "key": "k3y-Abc_1"},
               match=[matchers.json_params_matcher({})])
    key = client.create_login_key(42)
    assert key == "k3y-Abc_1"
    assert client.key_login_url(key) == f"{URL}/auth/key-v4/k3y-Abc_1"
    assert client.login_page_url == f"{URL}/auth/login"
    assert client.request_counts["auth.user.key.create"] == 1
    assert redact("use k3y-Abc_1 now") == "use *** now"  # a credential from here on


@pytest.mark.parametrize("answer", [{}, {"id": 3}, {"id": 3, "key": ""}, []])
def test_a_key_answer_without_a_key_is_an_error(panel: responses.RequestsMock,
                                                client: DciClient, answer: Any) -> None:
    panel.post(f"{API}/auth/v4/user/42/key", status=201, json=answer)
    with pytest.raises(DciError, match="without a key"):
        client.create_login_key(42)


@pytest.mark.parametrize("key", ["../admin", "a/b", "k?x=1", "k#f", "", "k e y"])
def test_a_key_that_would_change_the_url_is_refused(client: DciClient, key: str) -> None:
    with pytest.raises(DciError):
        client.key_login_url(key)


def test_a_refused_key_keeps_the_panels_status(panel: responses.RequestsMock,
                                               client: DciClient) -> None:
    panel.post(f"{API}/auth/v4/user/42/key", status=403,
               json={"error": {"code": 1006, "msg": "Access denied"}})
    with pytest.raises(DciError) as caught:
        client.create_login_key(42)
    assert caught.value.http_status == 403 and caught.value.value == "Access denied"


def test_unknown_power_action(client: DciClient) -> None:
    with pytest.raises(ValueError):
        client.power(1, "cycle")  # type: ignore[arg-type]


def test_stop_operation(panel: responses.RequestsMock, client: DciClient) -> None:
    panel.post(f"{API}/dci/v3/server/1/operation/stop", json={})
    client.stop_operation(1)
    assert client.request_counts["server.operation.stop"] == 1


def test_add_ip_v4_and_v6(panel: responses.RequestsMock, client: DciClient) -> None:
    panel.post(f"{API}/dci/v3/server/1/ip", json={"id": 51, "name": "203.0.113.9"},
               match=[matchers.json_params_matcher({"family": "ipv4", "ippool": 1})])
    panel.post(f"{API}/dci/v3/server/1/ip",
               json={"id": 52, "name": "2001:db8:0:1::/64", "family": "ipv6"},
               match=[matchers.json_params_matcher({"family": "ipv6", "ippool": 10,
                                                    "prefix": 64})])
    v4 = client.add_ip(1, "ipv4", 1)
    v6 = client.add_ip(1, "ipv6", 10, 64)
    assert (v4.id, v4.address, v4.family) == (51, "203.0.113.9", "ipv4")
    assert (v6.id, v6.address, v6.family) == (52, "2001:db8:0:1::/64", "ipv6")


def test_add_ip_from_an_exhausted_pool(panel: responses.RequestsMock, client: DciClient) -> None:
    panel.post(f"{API}/dci/v3/server/1/ip", status=409,
               json={"error": {"code": 3001, "msg": "No free addresses in pool"}})
    with pytest.raises(PoolExhausted) as caught:
        client.add_ip(1, "ipv4", 3)
    assert caught.value.type is ErrorType.pool_exhausted
    assert caught.value.object == "3"
    # built about the pool, not patched after the fact: str() says what the fields say
    assert str(caught.value) == "pool_exhausted: object='3' value='No free addresses in pool'"


def test_remove_ip(panel: responses.RequestsMock, client: DciClient) -> None:
    panel.delete(f"{API}/dci/v3/ip/51", json={})
    client.remove_ip(51)
    assert client.request_counts["ip.remove"] == 1


def test_install_os_sends_the_spec_body(panel: responses.RequestsMock, client: DciClient) -> None:
    panel.post(f"{API}/dci/v3/server/1/operation/install",
               json={"operation": {"id": 99, "status": "running"}},
               match=[matchers.json_params_matcher({
                   "os_template": 2, "password": "root-pw-1", "ssh_keys": ["ssh-ed25519 AAA"],
                   "hostname": "srv1.example.com", "efi": True, "temporary_ipv4": True})])
    operation = client.install_os(1, template_id=2, password="root-pw-1",
                                  hostname="srv1.example.com", temporary_ipv4=True,
                                  ssh_keys=["ssh-ed25519 AAA"], efi=True)
    assert (operation.id, operation.is_running) == (99, True)


def test_run_diagnostics(panel: responses.RequestsMock, client: DciClient) -> None:
    panel.post(f"{API}/dci/v3/server/1/operation/diag",
               json={"operation": {"id": 5, "status": "running"}},
               match=[matchers.json_params_matcher(
                   {"diag_template": "Diag6", "clear_disks": True, "ippool": 2})])
    panel.post(f"{API}/dci/v3/server/2/operation/diag",
               json={"operation": {"id": 6, "status": "running"}},
               match=[matchers.json_params_matcher(
                   {"diag_template": "Diag6", "clear_disks": False})])
    assert client.run_diagnostics(1, template="Diag6", clear_disks=True, pool_id=2).id == 5
    assert client.run_diagnostics(2, template="Diag6", clear_disks=False, pool_id=None).id == 6


def test_operation_already_running(panel: responses.RequestsMock, client: DciClient) -> None:
    panel.post(f"{API}/dci/v3/server/1/operation/diag", status=409,
               json={"error": {"code": 2004, "msg": "Server has a running operation"}})
    with pytest.raises(DciConflict) as caught:
        client.run_diagnostics(1, template="Diag6", clear_disks=True, pool_id=None)
    assert caught.value.type is ErrorType.server_busy


# --- waiting on operations -------------------------------------------------------------


def poll_answers(panel: responses.RequestsMock, *answers: dict[str, Any] | int) -> None:
    """Successive answers of GET server/1: an operation dict, or an HTTP status."""
    for answer in answers:
        if isinstance(answer, int):
            panel.get(f"{API}/dci/v3/server/1", status=answer)
        else:
            panel.get(f"{API}/dci/v3/server/1", json=server_json(1, operation=answer))


def test_wait_ok(panel: responses.RequestsMock, client: DciClient) -> None:
    fake = FakeTime()
    poll_answers(panel, {"id": 7, "status": "running"}, {"id": 7, "status": "running"},
                 {"id": 7, "status": "ok"})
    server = client.wait_for_operation(1, timeout=600, operation_id=7, poll=fake.backoff())
    assert server.operation is not None and server.operation.is_ok
    assert fake.sleeps == [1.0, 2.0]


def test_wait_failed_carries_the_panel_reason(
    panel: responses.RequestsMock, client: DciClient
) -> None:
    fake = FakeTime()
    poll_answers(panel, {"id": 7, "status": "running"},
                 {"id": 7, "status": "failed", "status_info": "disk /dev/sda failed SMART"})
    with pytest.raises(OperationFailed) as caught:
        client.wait_for_operation(1, timeout=600, operation_id=7, poll=fake.backoff())
    assert caught.value.type is ErrorType.operation_failed
    assert caught.value.value == "disk /dev/sda failed SMART"
    assert caught.value.object == "1"


@pytest.mark.parametrize(("status_info", "reason"), [
    ({}, "failed"),  # ISPsystem's sample answer shows status_info as an empty object
    ({"msg": "disk /dev/sda failed SMART"}, "disk /dev/sda failed SMART"),
    ({"code": 7, "step": "partitioning"}, '{"code": 7, "step": "partitioning"}'),
    ("", "failed"),
])
def test_wait_failed_reads_status_info_as_text_or_object(
    panel: responses.RequestsMock, client: DciClient, status_info: Any, reason: str
) -> None:
    poll_answers(panel, {"id": 7, "status": "running", "status_info": {}},
                 {"id": 7, "status": "failed", "status_info": status_info})
    with pytest.raises(OperationFailed) as caught:
        client.wait_for_operation(1, timeout=600, operation_id=7, poll=FakeTime().backoff())
    assert caught.value.value == reason


def test_wait_canceled_is_failed(panel: responses.RequestsMock, client: DciClient) -> None:
    poll_answers(panel, {"id": 7, "status": "canceled"})
    with pytest.raises(OperationFailed, match="canceled"):
        client.wait_for_operation(1, timeout=60, poll=FakeTime().backoff())


def test_wait_timeout_says_what_still_runs(
    panel: responses.RequestsMock, client: DciClient
) -> None:
    fake = FakeTime()
    poll_answers(panel, {"id": 7, "status": "running", "progress_info": "40%"})
    with pytest.raises(OperationTimedOut) as caught:
        client.wait_for_operation(1, timeout=20, operation_id=7, poll=fake.backoff())
    assert caught.value.type is ErrorType.operation_timeout
    assert caught.value.value == "operation 7 still running, progress 40%"
    assert sum(fake.sleeps) == pytest.approx(20.0)
    assert fake.sleeps == [1.0, 2.0, 4.0, 8.0, 5.0]
    assert client.request_counts["server.get"] == 6


def test_wait_for_a_not_yet_visible_operation(
    panel: responses.RequestsMock, client: DciClient
) -> None:
    poll_answers(panel, {"id": 6, "status": "ok"}, {"id": 7, "status": "ok"})
    server = client.wait_for_operation(1, timeout=60, operation_id=7, poll=FakeTime().backoff())
    assert server.operation is not None and server.operation.id == 7


def test_wait_when_a_newer_operation_replaced_ours(
    panel: responses.RequestsMock, client: DciClient
) -> None:
    poll_answers(panel, {"id": 8, "status": "running"})
    with pytest.raises(OperationFailed, match="replaced by operation 8"):
        client.wait_for_operation(1, timeout=60, operation_id=7, poll=FakeTime().backoff())


def test_wait_rides_out_a_busy_panel(panel: responses.RequestsMock) -> None:
    client = DciClient(URL, EMAIL, PASSWORD, backoff=0.0, retries_503=1)
    poll_answers(panel, 503, {"id": 7, "status": "ok"})
    server = client.wait_for_operation(1, timeout=60, operation_id=7, poll=FakeTime().backoff())
    assert server.id == 1


def test_wait_timeout_while_the_panel_is_busy(panel: responses.RequestsMock) -> None:
    client = DciClient(URL, EMAIL, PASSWORD, backoff=0.0, retries_503=1)
    poll_answers(panel, 503)
    with pytest.raises(OperationTimedOut, match="unreachable while waiting"):
        client.wait_for_operation(1, timeout=3, operation_id=7, poll=FakeTime().backoff())


def test_wait_ends_at_a_request_deadline_instead_of_polling_again(
    panel: responses.RequestsMock, client: DciClient
) -> None:
    """A poll whose answer trickles past the request deadline is not transient: polling
    again would only spend another deadline on the same panel."""
    fake = FakeTime()
    client._session._clock = fake.clock

    def trickling(request: Any) -> tuple[int, dict[str, str], str]:
        fake.now += 500  # the answer took longer than the whole 120 s deadline
        return 200, {}, json.dumps(server_json(1, operation={"id": 7, "status": "running"}))

    panel.add_callback(responses.GET, f"{API}/dci/v3/server/1", callback=trickling)
    with pytest.raises(DeadlineExceeded) as caught:
        client.wait_for_operation(1, timeout=3600, operation_id=7, poll=fake.backoff())
    assert caught.value.type is ErrorType.panel_timeout
    assert client.request_counts["server.get"] == 1
    assert fake.sleeps == []


def test_wait_does_not_swallow_other_errors(panel: responses.RequestsMock,
                                            client: DciClient) -> None:
    panel.get(f"{API}/dci/v3/server/1", status=404,
              json={"error": {"code": 1004, "msg": "Server not found"}})
    with pytest.raises(DciNotFound) as caught:
        client.wait_for_operation(1, timeout=3, poll=FakeTime().backoff())
    assert caught.value.type is ErrorType.not_found


def test_wait_ends_at_a_route_mismatch(panel: responses.RequestsMock,
                                       client: DciClient) -> None:
    poll_answers(panel, 404)  # no body: a gateway, not the panel
    with pytest.raises(RouteMismatch) as caught:
        client.wait_for_operation(1, timeout=3, poll=FakeTime().backoff())
    assert caught.value.type is ErrorType.route_mismatch


def test_backoff_intervals() -> None:
    intervals = Backoff(initial=0.5, factor=3, maximum=5).intervals()
    assert [next(intervals) for _ in range(5)] == [0.5, 1.5, 4.5, 5, 5]


# --- the route table ---------------------------------------------------------------


def test_route_table_is_unique_and_builds_integer_paths() -> None:
    assert len({r.name for r in ROUTES}) == len(ROUTES)
    assert len({(r.method, r.pattern) for r in ROUTES}) == len(ROUTES)
    assert route("server.get").path(server_id=5) == "/api/dci/v3/server/5"
    assert route("ip.remove").path(ip_id=3) == "/api/dci/v3/ip/3"
    with pytest.raises(TypeError):
        route("server.get").path(server_id="5/../../x")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        route("server.get").path(server_id=True)
    with pytest.raises(ValueError):
        route("server.get").path()


def test_a_client_password_echoed_by_the_panel_is_masked(
    panel: responses.RequestsMock, client: DciClient
) -> None:
    panel.post(f"{API}/dci/v3/server/1/operation/install", status=400,
               json={"error": {"code": 1000, "msg": "Bad request: password Xy-77-root too weak"}})
    with pytest.raises(DciError) as caught:
        client.install_os(1, template_id=1, password="Xy-77-root", hostname="h.example")
    assert caught.value.value == "Bad request: password *** too weak"
    assert "Xy-77-root" not in str(caught.value)
