"""The real DCI client against the real simulator over HTTP: every route of the table, then
faults. Both sides follow /work/shared/spec/dcimanager6-api.md; a failure here means one
of them drifted from it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from dci6_processing.dci.client import Backoff, DciClient
from dci6_processing.dci.errors import (
    DciAuthError,
    DciBusy,
    DciConflict,
    DciError,
    DciNotFound,
    DciUnreachable,
    OperationFailed,
    OperationTimedOut,
    PoolExhausted,
    PowerActionRejected,
)
from dci6_processing.dci.models import IpFamily
from dci6_processing.dci.query import Where
from dci6_processing.errors import ErrorType
from pmdci6_sandbox.dcisim import DciSimulator, is_free

I9 = "i9-9900K-64Gb-2x1024NVMe"
NO_SWITCH_SERVER = 38  # the default inventory's server without any switch connection


def first_free(sim: DciSimulator, configuration: str = I9) -> int:
    for server in sim.servers():
        if is_free(server) and server["configuration"] == configuration:
            return int(server["id"])
    raise AssertionError("the default inventory has free servers")


def routes_hit(sim: DciSimulator) -> list[str]:
    return [r.route for r in sim.requests]


# --- every route ----------------------------------------------------------------------


def test_login_and_token_reuse_across_clients(sim: DciSimulator, tmp_path: Path) -> None:
    def new_client() -> DciClient:
        return DciClient(sim.url, sim.admin_email, sim.admin_password, timeout=5.0,
                         token_cache_dir=tmp_path / "tokens")

    new_client().server(1)
    new_client().server(2)
    assert routes_hit(sim) == ["auth.token", "server.get", "server.get"]
    assert all(r.status == 200 for r in sim.requests[1:])


def test_wrong_password_is_bad_credentials(sim: DciSimulator) -> None:
    client = DciClient(sim.url, sim.admin_email, "not-the-password", timeout=5.0)
    with pytest.raises(DciAuthError) as caught:
        client.login()
    assert caught.value.type is ErrorType.bad_credentials
    assert caught.value.code == 1002
    assert routes_hit(sim) == ["auth.token"]


def test_server_reads_match_the_panel(sim: DciSimulator, client: DciClient) -> None:
    server = client.server(1)
    raw = sim.server(1)
    assert (server.id, server.name, server.configuration, server.location_id) == (
        raw["id"], raw["name"], raw["configuration"], raw["location_id"])
    assert [c.id for c in server.switch_connection] == [c["id"] for c in raw["switch_connection"]]
    with pytest.raises(DciNotFound) as caught:
        client.server(99999)
    assert caught.value.code == 1004


@pytest.mark.parametrize("page_size", [1, 5, 41, 42, 43, 500])
def test_iter_servers_pages_through_everything(
    sim: DciSimulator, client: DciClient, page_size: int
) -> None:
    ids = [s.id for s in client.iter_servers(page_size=page_size)]
    assert ids == sorted(int(s["id"]) for s in sim.servers())
    total = len(ids)
    expected_pages = max(1, -(-total // page_size))
    assert client.request_counts["server.list"] == expected_pages
    limits = [r.query["limit"] for r in sim.requests if r.route == "server.list"]
    assert limits == [f"{n * page_size},{page_size}" for n in range(expected_pages)]


def test_where_filters_on_the_panel(sim: DciSimulator, client: DciClient) -> None:
    where = Where.eq("location_id", 3) & (Where.eq("configuration", I9) | Where.is_null("owner"))
    got = {s.id for s in client.iter_servers(where)}
    expected = {int(s["id"]) for s in sim.servers() if s["location_id"] == 3
                and (s["configuration"] == I9 or s["owner"] is None)}
    assert got == expected and got


@pytest.mark.parametrize("hostile", [
    "x' OR name CP '%",
    "') OR (name CP '%",
    "%",
    "' OR 1 EQ 1 OR name EQ '",
    "ams-i9-01' OR 'a' EQ 'a",
])
def test_hostile_values_never_widen_a_panel_filter(
    client: DciClient, hostile: str
) -> None:
    assert list(client.iter_servers(Where.eq("name", hostile))) == []
    assert client.user_by_email(hostile) is None


def test_free_servers_agree_with_the_panels_rule(sim: DciSimulator, client: DciClient) -> None:
    sim.update_server(first_free(sim), maintenance_mode=True)
    got = [s.id for s in client.free_servers(I9, 1, page_size=4)]
    expected = [int(s["id"]) for s in sim.servers()
                if is_free(s) and s["configuration"] == I9 and s["location_id"] == 1]
    assert got == expected and got
    where = sim.requests[-1].query["where"]
    assert where == f"(owner_email IS null) AND is_new EQ false AND configuration EQ '{I9}' " \
                    "AND location_id EQ 1"


def test_configurations_count_free_servers(sim: DciSimulator, client: DciClient) -> None:
    counts = {c.name: c.free_server_count for c in client.configurations()}
    for name, count in counts.items():
        assert count == sum(1 for s in sim.servers()
                            if is_free(s) and s["configuration"] == name), name
    assert counts[I9] > 0


def test_catalogue(client: DciClient) -> None:
    pools = {p.id: (p.name, p.family) for p in client.ip_pools()}
    assert pools[1] == ("public-v4", IpFamily.V4) and pools[10] == ("public-v6", IpFamily.V6)
    templates = {t.id: (t.name, t.os_family) for t in client.os_templates()}
    assert templates[3] == ("Windows Server 2022", "windows")
    assert {loc.id for loc in client.locations()} >= {1, 2}


def test_users(sim: DciSimulator, client: DciClient) -> None:
    admin = client.user_by_email(sim.admin_email.upper())
    assert admin is not None and admin.is_admin
    assert client.user_by_email("nobody@sandbox.example") is None
    created = client.create_user("o'neil+test@example.com", "Pa55-word-1")
    found = client.user_by_email("O'Neil+test@example.com")
    assert found is not None and found.id == created.id and not found.is_admin
    assert sim.user_by_email("o'neil+test@example.com") is not None
    with pytest.raises(DciConflict) as caught:
        client.create_user("o'neil+test@example.com", "Pa55-word-1")
    assert caught.value.code == 2005 and "Pa55-word-1" not in str(caught.value)


def test_roles_in_both_forms(sim: DciSimulator, client: DciClient) -> None:
    for n in range(1, 5):
        client.create_user(f"role{n}@example.com", "Pa55-word-1")
        user = client.user_by_email(f"role{n}@example.com")
        assert user is not None and user.roles == ["@user"]


def test_owner(sim: DciSimulator, client: DciClient) -> None:
    server_id = first_free(sim)
    user = client.create_user("owner@example.com", "Pa55-word-1")
    client.set_owner(server_id, user.id)
    server = client.server(server_id)
    assert (server.owner, server.owner_email) == (user.id, "owner@example.com")
    with pytest.raises(DciConflict) as caught:
        client.set_owner(server_id, user.id)
    assert caught.value.type is ErrorType.server_in_use
    assert caught.value.object == str(server_id)
    client.remove_owner(server_id)
    assert not client.server(server_id).has_owner


def test_switch_ports(sim: DciSimulator, client: DciClient) -> None:
    client.set_switch_ports(1, False)
    assert [c.admin_status for c in client.server(1).data_ports] == ["down"]
    client.set_switch_ports(1, True)
    assert [c.admin_status for c in client.server(1).data_ports] == ["up"]
    with pytest.raises(DciConflict) as caught:
        client.set_switch_ports(NO_SWITCH_SERVER, False)
    assert caught.value.type is ErrorType.no_switch_connection
    assert caught.value.object == str(NO_SWITCH_SERVER)


def test_power_rules(sim: DciSimulator, client: DciClient) -> None:
    sim.update_server(1, power_status="off")
    client.power(1, "on")
    assert client.server(1).is_powered_on
    with pytest.raises(PowerActionRejected) as caught:
        client.power(1, "on")
    assert caught.value.code == 2003
    client.power(1, "off")
    assert client.server(1).power_status == "off"
    client.power(1, "reset")
    assert client.server(1).is_powered_on


def test_accepted_power_requests_are_recorded(sim: DciSimulator, client: DciClient) -> None:
    sim.update_server(1, power_status="off")
    client.power(1, "on")
    with pytest.raises(PowerActionRejected):
        client.power(1, "on")  # refused: not recorded
    client.power(1, "reset")
    assert sim.power_actions(1) == ["power_on", "power_reset"]
    assert sim.power_actions() == ["1:power_on", "1:power_reset"]


def _open(url: str) -> requests.Response:
    return requests.get(url, allow_redirects=False, timeout=10)


def test_a_login_key_opens_one_session_of_its_user(sim: DciSimulator, client: DciClient) -> None:
    sim.add_user("client@example.com", password="Client-Pass-1")
    user = client.user_by_email("client@example.com")
    assert user is not None
    url = client.key_login_url(client.create_login_key(user.id))
    assert url.startswith(sim.url + "/auth/key-v4/")
    opened = _open(url)
    assert (opened.status_code, opened.headers["Location"]) == (302, "/")
    session = sim.session_user(opened.cookies["ses6"])
    assert session is not None and session["email"] == "client@example.com"
    assert _open(url).status_code == 403  # single use
    assert [r.route for r in sim.requests][-2:] == ["page.key_login", "page.key_login"]
    assert "/auth/key-v4/***" in {r.path for r in sim.requests}  # the key is not logged

    late = client.key_login_url(client.create_login_key(user.id))
    sim.expire_login_keys()
    assert _open(late).status_code == 403
    assert _open(sim.url + "/auth/key-v4/never-issued").status_code == 403
    assert _open(client.login_page_url).status_code == 200


def test_only_an_administrator_may_make_keys(sim: DciSimulator, client: DciClient,
                                             tmp_path: Path) -> None:
    sim.add_user("client@example.com", password="Client-Pass-1")
    user = client.user_by_email("client@example.com")
    assert user is not None
    as_client = DciClient(sim.url, "client@example.com", "Client-Pass-1", timeout=5.0,
                          token_cache_dir=tmp_path / "client-tokens", backoff=0.01)
    with pytest.raises(DciError) as caught:
        as_client.create_login_key(user.id)
    assert caught.value.http_status == 403
    sim.refuse_login_keys()
    with pytest.raises(DciError):
        client.create_login_key(user.id)
    sim.refuse_login_keys(False)
    with pytest.raises(DciNotFound):
        client.create_login_key(9999)


def test_ips(sim: DciSimulator, client: DciClient) -> None:
    v4 = client.add_ip(1, IpFamily.V4, 1)
    v6_net = client.add_ip(1, IpFamily.V6, 10, 64)
    v6_one = client.add_ip(1, IpFamily.V6, 10)
    assert v4.address.startswith("203.0.113.")
    assert v6_net.address.endswith("/64") and v6_net.family == IpFamily.V6
    server = client.server(1)
    assert {ip.id for ip in server.ip} == {v4.id, v6_net.id, v6_one.id}
    client.remove_ip(v4.id)
    assert {ip.id for ip in client.server(1).ip} == {v6_net.id, v6_one.id}
    with pytest.raises(DciNotFound):
        client.remove_ip(v4.id)


def test_exhausted_pools(sim: DciSimulator, client: DciClient) -> None:
    client.add_ip(1, IpFamily.V4, 3)
    client.add_ip(2, IpFamily.V4, 3)
    with pytest.raises(PoolExhausted) as caught:
        client.add_ip(4, IpFamily.V4, 3)
    assert (caught.value.object, caught.value.code) == ("3", 3001)
    sim.exhaust_pool(1)
    with pytest.raises(PoolExhausted):
        client.add_ip(4, IpFamily.V4, 1)


def test_install_and_wait(sim: DciSimulator, client: DciClient, quick_poll: Backoff) -> None:
    operation = client.install_os(1, template_id=2, password="Root-pw-123",
                                  hostname="srv1.example.com", ssh_keys=["ssh-ed25519 AAAA"])
    assert operation.is_running and operation.id is not None
    server = client.wait_for_operation(1, timeout=10, operation_id=operation.id,
                                       poll=quick_poll)
    assert server.os_template is not None and server.os_template.id == 2
    assert "Root-pw-123" not in str(sim.server(1))


def test_a_second_operation_while_one_runs(sim: DciSimulator, client: DciClient) -> None:
    sim.hang_operations("install")
    client.install_os(1, template_id=1, password="Root-pw-123", hostname="a.example")
    with pytest.raises(DciConflict) as caught:
        client.run_diagnostics(1, template="Diag6", clear_disks=False, pool_id=None)
    assert (caught.value.type, caught.value.code) == (ErrorType.server_busy, 2004)


def test_install_with_a_temporary_address(
    sim: DciSimulator, client: DciClient, quick_poll: Backoff
) -> None:
    operation = client.install_os(1, template_id=1, password="Root-pw-123",
                                  hostname="srv1.example.com", temporary_ipv4=True)
    server = client.wait_for_operation(1, timeout=10, operation_id=operation.id, poll=quick_poll)
    assert [ip.status for ip in server.ip] == ["temporary"]


def test_diagnostics_wipe(sim: DciSimulator, client: DciClient, quick_poll: Backoff) -> None:
    install = client.install_os(1, template_id=1, password="Root-pw-123", hostname="a.example")
    client.wait_for_operation(1, timeout=10, operation_id=install.id, poll=quick_poll)
    diag = client.run_diagnostics(1, template="Diag6", clear_disks=True, pool_id=2)
    assert diag.id != install.id
    server = client.wait_for_operation(1, timeout=10, operation_id=diag.id, poll=quick_poll)
    assert server.os_template is None and server.ip == []


def test_stop_operation_cancels(sim: DciSimulator, client: DciClient, quick_poll: Backoff) -> None:
    sim.hang_operations("install")
    operation = client.install_os(1, template_id=1, password="Root-pw-123", hostname="a.example")
    client.stop_operation(1)
    with pytest.raises(OperationFailed, match="canceled"):
        client.wait_for_operation(1, timeout=10, operation_id=operation.id, poll=quick_poll)


# --- faults ---------------------------------------------------------------------------


def test_503_burst_is_ridden_out(sim: DciSimulator, client: DciClient) -> None:
    client.login()
    sim.faults.burst_503(3, path_contains="/server/1")
    assert client.server(1).id == 1
    assert [r.status for r in sim.requests if r.route == "server.get"] == [503, 503, 503, 200]


def test_503_on_a_post_is_retried_too(sim: DciSimulator, client: DciClient) -> None:
    client.login()
    sim.faults.burst_503(2, path_contains="/power_reset")
    client.power(1, "reset")
    assert client.request_counts["server.power_reset"] == 3


def test_endless_503_is_panel_busy(sim: DciSimulator, tmp_path: Path) -> None:
    client = DciClient(sim.url, sim.admin_email, sim.admin_password, timeout=5.0,
                       retries_503=4, backoff=0.01)
    client.login()
    sim.faults.burst_503(100, path_contains="/server")
    with pytest.raises(DciBusy) as caught:
        client.server(1)
    assert caught.value.type is ErrorType.panel_busy
    assert [r.status for r in sim.requests if r.route == "server.get"] == [503] * 4


def test_expired_tokens_mean_one_fresh_login(sim: DciSimulator, client: DciClient) -> None:
    client.server(1)
    sim.faults.expire_tokens()
    client.server(1)
    assert routes_hit(sim) == ["auth.token", "server.get", "server.get", "auth.token",
                               "server.get"]
    assert [r.status for r in sim.requests] == [201, 200, 401, 201, 200]


def test_expired_token_in_another_processes_cache(sim: DciSimulator, tmp_path: Path) -> None:
    def new_client() -> DciClient:
        return DciClient(sim.url, sim.admin_email, sim.admin_password, timeout=5.0,
                         token_cache_dir=tmp_path / "tokens")

    new_client().server(1)
    sim.faults.expire_tokens()
    new_client().server(1)
    new_client().server(1)
    assert routes_hit(sim).count("auth.token") == 2


def test_500(sim: DciSimulator, client: DciClient) -> None:
    client.login()
    sim.faults.error_500(1, path_contains="/server/1")
    with pytest.raises(DciError) as caught:
        client.server(1)
    assert (caught.value.type, caught.value.http_status) == (ErrorType.panel_error, 500)
    assert caught.value.value == "Internal server error"
    assert client.server(1).id == 1


def test_slow_answer_beyond_the_timeout(sim: DciSimulator) -> None:
    client = DciClient(sim.url, sim.admin_email, sim.admin_password, timeout=0.5)
    client.login()
    sim.faults.slow(2.0, 1, path_contains="/server/1")
    started = time.monotonic()
    with pytest.raises(DciUnreachable) as caught:
        client.server(1)
    assert time.monotonic() - started < 1.8
    assert "within 0.5 s" in caught.value.value
    assert client.request_counts["server.get"] == 1


def test_dropped_get_is_retried(sim: DciSimulator, client: DciClient) -> None:
    client.login()
    sim.faults.drop(2, path_contains="/server/1")
    assert client.server(1).id == 1
    assert [r.status for r in sim.requests if r.route == "server.get"] == [0, 0, 200]


def test_dropped_forever_is_unreachable(sim: DciSimulator, client: DciClient) -> None:
    client.login()
    sim.faults.drop(10, path_contains="/server/1")
    with pytest.raises(DciUnreachable):
        client.server(1)
    assert client.request_counts["server.get"] == 3


def test_dropped_post_is_not_repeated(sim: DciSimulator, client: DciClient) -> None:
    client.login()
    sim.faults.drop(1, path_contains="/owner")
    with pytest.raises(DciUnreachable):
        client.set_owner(1, 2)
    assert [r.status for r in sim.requests if r.route == "server.owner.set"] == [0]
    assert not client.server(1).has_owner


def test_failed_operation_carries_the_panels_reason(
    sim: DciSimulator, client: DciClient, quick_poll: Backoff
) -> None:
    sim.fail_operations("install", reason="No boot device found")
    operation = client.install_os(1, template_id=1, password="Root-pw-123", hostname="a.example")
    with pytest.raises(OperationFailed) as caught:
        client.wait_for_operation(1, timeout=10, operation_id=operation.id, poll=quick_poll)
    assert caught.value.value == "No boot device found"
    assert caught.value.type is ErrorType.operation_failed


def test_endless_operation_times_out(
    sim: DciSimulator, client: DciClient, quick_poll: Backoff
) -> None:
    sim.hang_operations("diag")
    operation = client.run_diagnostics(1, template="Diag6", clear_disks=True, pool_id=2)
    started = time.monotonic()
    with pytest.raises(OperationTimedOut) as caught:
        client.wait_for_operation(1, timeout=0.5, operation_id=operation.id, poll=quick_poll)
    assert 0.4 < time.monotonic() - started < 3.0
    assert caught.value.value.startswith(f"operation {operation.id} still running")


def test_operation_on_a_positive_time_scale(tmp_path: Path) -> None:
    from pmdci6_sandbox.dcisim import Inventory

    with DciSimulator(Inventory.default(), time_scale=0.0005) as sim:  # 600 s -> 0.3 s
        client = DciClient(sim.url, sim.admin_email, sim.admin_password, timeout=5.0)
        operation = client.install_os(1, template_id=1, password="Root-pw-123",
                                      hostname="a.example")
        assert client.server(1).operation is not None
        assert client.server(1).operation.is_running  # type: ignore[union-attr]
        server = client.wait_for_operation(1, timeout=10, operation_id=operation.id,
                                           poll=Backoff(initial=0.05, factor=1.5, maximum=0.2))
        assert server.operation is not None and server.operation.is_ok
        polls = [r for r in sim.requests if r.route == "server.get"]
        assert len(polls) >= 3
