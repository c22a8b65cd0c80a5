"""The whole order lifecycle through the real binary, as BILLmanager runs it."""

from __future__ import annotations

import subprocess

from tests.e2e.conftest import CLIENT_EMAIL, CONFIGURATION, TARIFF, Sandbox, tariff_params

ACTIVE, STOPPED, DELETED = 2, 3, 4


def ok(result: object) -> subprocess.CompletedProcess[bytes]:
    assert isinstance(result, subprocess.CompletedProcess)
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert b"<ok" in result.stdout or result.stdout.strip() in (b"", b"<doc/>"), result.stdout
    return result


def error_type(result: object) -> str:
    from lxml import etree

    assert isinstance(result, subprocess.CompletedProcess)
    assert result.returncode != 0, result.stdout
    assert b"Traceback" not in result.stdout
    doc = etree.fromstring(result.stdout)
    err = doc.find("error")
    assert err is not None, result.stdout
    return str(err.get("type"))


def permanent_ips(server: dict[str, object], family: str) -> list[str]:
    ips = server["ip"]
    assert isinstance(ips, list)
    return [ip["name"] for ip in ips if ip["family"] == family and ip.get("status") != "temporary"]


def test_open_hands_the_client_a_ready_server(sandbox: Sandbox) -> None:
    item = sandbox.order(101, addons={"ip": "2", "ip6": "1", "ip6_prefix": "64"})
    ok(sandbox.run("open", item))
    record = sandbox.host.service(item)
    assert record.status == ACTIVE
    server = sandbox.server_of(item)
    assert server["owner_email"] == CLIENT_EMAIL
    assert server["configuration"] == CONFIGURATION
    assert server["power_status"] == "on"
    assert all(c["admin_status"] == "up" for c in server["switch_connection"]
               if not c.get("is_ipmi_connection"))
    assert server["operation"]["status"] == "ok"
    assert server["os_template"]["id"] == 2  # the order's choice wins over the tariff's default
    v4 = permanent_ips(server, "ipv4")
    v6 = permanent_ips(server, "ipv6")
    assert len(v4) == 2 and len(v6) == 1 and v6[0].endswith("/64")
    assert sorted(addr for _, addr in record.ips) == sorted(v4 + v6)
    assert record.params["username"] == "root"
    assert len(record.params["password"]) >= 16
    assert "password" in record.crypted_params
    events = [func for func, _ in record.events]
    assert events.count("service.postopen") == 1


def test_preset_server_is_used_and_an_owned_one_refused(sandbox: Sandbox) -> None:
    free = next(s for s in _servers(sandbox) if s["owner"] is None and not s["is_new"]
                and s["configuration"] == CONFIGURATION and not s.get("maintenance_mode"))
    item = sandbox.order(102, params={"ostempl": "1", "dci_server_id": str(free["id"])})
    ok(sandbox.run("open", item))
    assert sandbox.server_of(item)["id"] == free["id"]

    taken = sandbox.order(103, params={"ostempl": "1", "dci_server_id": str(free["id"])})
    assert error_type(sandbox.run("open", taken)) == "server_in_use"
    assert sandbox.host.service(taken).status != ACTIVE


def _servers(sandbox: Sandbox) -> list[dict[str, object]]:
    return sandbox.sim.servers()


def test_suspend_resume_and_close_return_a_wiped_server(sandbox: Sandbox) -> None:
    item = sandbox.order(104)
    ok(sandbox.run("open", item))
    server_id = sandbox.server_of(item)["id"]
    ok(sandbox.run("suspend", item))
    assert sandbox.host.service(item).status == STOPPED
    ports = [c for c in sandbox.sim.server(server_id)["switch_connection"]
             if not c.get("is_ipmi_connection")]
    assert ports and all(c["admin_status"] == "down" for c in ports)
    ok(sandbox.run("suspend", item))  # harmless when repeated
    sandbox.sim.update_server(server_id, power_status="off")  # as the status sync leaves it
    ok(sandbox.run("resume", item))
    assert sandbox.host.service(item).status == ACTIVE
    assert sandbox.sim.server(server_id)["power_status"] == "on"
    ok(sandbox.run("close", item))
    record = sandbox.host.service(item)
    assert record.status == DELETED
    server = sandbox.sim.server(server_id)
    assert server["owner"] is None and not server["owner_email"]
    assert server["os_template"] is None  # disks wiped by diagnostics
    assert server["power_status"] == "off"
    assert permanent_ips(server, "ipv4") == [] and record.ips == []
    assert all(c["admin_status"] == "down" for c in server["switch_connection"]
               if not c.get("is_ipmi_connection"))


def test_changed_ip_count_adds_and_removes_addresses(sandbox: Sandbox) -> None:
    item = sandbox.order(105, addons={"ip": "1"})
    ok(sandbox.run("open", item))
    sandbox.host.set_addon(item, "ip", "3")
    ok(sandbox.run("setparam", item))
    assert len(permanent_ips(sandbox.server_of(item), "ipv4")) == 3
    assert len(sandbox.host.service(item).ips) == 3
    sandbox.host.set_addon(item, "ip", "1")
    ok(sandbox.run("setparam", item))
    assert len(permanent_ips(sandbox.server_of(item), "ipv4")) == 1
    assert len(sandbox.host.service(item).ips) == 1


def test_changed_os_reinstalls(sandbox: Sandbox) -> None:
    item = sandbox.order(106, params={"ostempl": "1"})
    ok(sandbox.run("open", item))
    sandbox.host.set_param(item, "ostempl", "4")
    ok(sandbox.run("setparam", item))
    assert sandbox.server_of(item)["os_template"]["id"] == 4


def test_suspend_refused_without_switch_connection(sandbox: Sandbox) -> None:
    item = sandbox.order(107)
    ok(sandbox.run("open", item))
    server_id = sandbox.server_of(item)["id"]
    sandbox.sim.update_server(server_id, switch_connection=[])
    assert error_type(sandbox.run("suspend", item)) == "no_switch_connection"
    assert sandbox.host.service(item).status == ACTIVE


def test_owner_drift_touches_nothing(sandbox: Sandbox) -> None:
    item = sandbox.order(108)
    ok(sandbox.run("open", item))
    server_id = sandbox.server_of(item)["id"]
    other = sandbox.sim.add_user("someone-else@example.com")
    sandbox.sim.update_server(server_id, owner=other["id"], owner_email=other["email"])
    sandbox.sim.clear_requests()
    assert error_type(sandbox.run("close", item)) == "owner_mismatch"
    assert all(r.method == "GET" or "token" in r.path for r in sandbox.sim.requests)
    assert sandbox.sim.server(server_id)["owner_email"] == "someone-else@example.com"


def test_failed_install_is_reported_and_a_rerun_finishes(sandbox: Sandbox) -> None:
    item = sandbox.order(109)
    sandbox.sim.fail_operations(kind="install", count=1, reason="PXE boot failed")
    result = sandbox.run("open", item, "--runningoperation", "55")
    assert error_type(result) == "operation_failed"
    assert b"PXE boot failed" in result.stdout
    assert sandbox.host.service(item).status != ACTIVE
    assert any("PXE boot failed" in str(e) for e in sandbox.host.operation_errors())
    server_id = sandbox.server_of(item)["id"]
    ok(sandbox.run("open", item))
    assert sandbox.host.service(item).status == ACTIVE
    assert sandbox.server_of(item)["id"] == server_id  # the same server, not a second one


def test_failed_wipe_keeps_the_server_owned(sandbox: Sandbox) -> None:
    item = sandbox.order(110)
    ok(sandbox.run("open", item))
    server_id = sandbox.server_of(item)["id"]
    sandbox.sim.fail_operations(kind="diag", count=1, reason="disk sdb did not answer")
    assert error_type(sandbox.run("close", item)) == "operation_failed"
    assert sandbox.sim.server(server_id)["owner_email"] == CLIENT_EMAIL  # never silently free
    assert sandbox.host.service(item).status != DELETED
    ok(sandbox.run("close", item))
    assert sandbox.sim.server(server_id)["owner"] is None
    assert sandbox.sim.server(server_id)["os_template"] is None


def test_no_free_server_with_by_server_type_on(sandbox: Sandbox) -> None:
    sandbox.host.add_tariff(2, configuration="no-such-config", os_template="1", ipv4_pool="1")
    sandbox.host.add_service(111, module=1, pricelist=2, account_id=7, params={}, addons={})
    assert error_type(sandbox.run("open", 111)) == "no_free_server"


def test_admin_client_refused(sandbox: Sandbox) -> None:
    sandbox.host.add_client(8, sandbox.sim.admin_email)
    item = sandbox.order(112, account=8)
    assert error_type(sandbox.run("open", item)) == "user_is_admin"
    assert "dci_server_id" not in sandbox.host.service(item).params or \
        not sandbox.host.service(item).params["dci_server_id"]


def test_exhausted_pool_fails_cleanly(sandbox: Sandbox) -> None:
    item = sandbox.order(113)
    sandbox.sim.exhaust_pool(1)
    assert error_type(sandbox.run("open", item)) == "pool_exhausted"
    assert sandbox.host.service(item).status != ACTIVE


def test_a_service_exempted_by_the_admin_becomes_a_task(sandbox: Sandbox) -> None:
    item = sandbox.order(114, params={"ostempl": "1", "dci_manual": "on"})
    sandbox.sim.clear_requests()
    ok(sandbox.run("open", item, "--runningoperation", "77"))
    assert sandbox.sim.requests == []  # the panel was not touched
    record = sandbox.host.service(item)
    assert record.status != ACTIVE and not record.params.get("dci_server_id")
    assert any(task.item == item for task in sandbox.host.tasks())
    ok(sandbox.run("sync_item", item))
    assert sandbox.sim.requests == []


def test_tariff_change_to_another_configuration_is_rolled_back(sandbox: Sandbox) -> None:
    item = sandbox.order(115)
    ok(sandbox.run("open", item))
    server_id = sandbox.server_of(item)["id"]
    sandbox.host.add_tariff(5, **tariff_params(configuration="E5-2690v4-128Gb-2x480SSD"))
    sandbox.host.change_tariff(item, 5)
    assert error_type(sandbox.run("setparam", item)) == "tariff_change_unsupported"
    record = sandbox.host.service(item)
    assert record.pricelist == TARIFF  # rolled back in BILLmanager
    assert "service.changepricelist.rollback" in [f for f, _ in record.events]
    assert sandbox.server_of(item)["id"] == server_id


def test_most_similar_configuration_with_by_server_type_off(sandbox: Sandbox) -> None:
    sandbox.host.add_module(2, url=sandbox.sim.url, username=sandbox.sim.admin_email,
                            password=sandbox.sim.admin_password, by_server_type="off")
    sandbox.host.add_tariff(6, **tariff_params(configuration="i9-9900K-128Gb-2x1024NVMe"))
    sandbox.host.add_service(116, module=2, pricelist=6, account_id=7,
                             params={"ostempl": "1"}, addons={"ip": "1"})
    ok(sandbox.run("open", 116))
    server = sandbox.server_of(116)
    assert server["configuration"] == "i9-9900K-64Gb-2x1024NVMe"  # same CPU: the closest
    tasks = [t for t in sandbox.host.tasks() if t.item == 116]
    assert tasks and "i9-9900K-128Gb-2x1024NVMe" in tasks[0].comment


def test_unverified_email_refused_when_the_tariff_asks(sandbox: Sandbox) -> None:
    sandbox.host.add_client(9, "unverified@example.com", email_verified=False)
    sandbox.order_on_tariff(117, 7, account=9, check_email_verified="on")
    sandbox.sim.clear_requests()
    assert error_type(sandbox.run("open", 117)) == "email_not_verified"
    assert sandbox.sim.requests == []  # refused before touching the panel


def test_temporary_ipv4_removed_after_install_when_asked(sandbox: Sandbox) -> None:
    sandbox.order_on_tariff(118, 8, temp_ipv4="on", remove_temp_ip="on")
    ok(sandbox.run("open", 118))
    server = sandbox.server_of(118)
    assert not [ip for ip in server["ip"] if ip.get("status") == "temporary"]
    assert len(permanent_ips(server, "ipv4")) == 1


def test_temporary_ipv4_kept_without_remove_option(sandbox: Sandbox) -> None:
    sandbox.order_on_tariff(119, 9, temp_ipv4="on")
    ok(sandbox.run("open", 119))
    server = sandbox.server_of(119)
    assert [ip for ip in server["ip"] if ip.get("status") == "temporary"]
    # the temporary address is the panel's, not the client's: not recorded in BILLmanager
    assert [a for _, a in sandbox.host.service(119).ips] == permanent_ips(server, "ipv4")


def test_no_wait_install_reports_open_while_installing(sandbox: Sandbox) -> None:
    sandbox.order_on_tariff(120, 10, no_wait_install="on")
    sandbox.sim.hang_operations(kind="install", count=1)
    ok(sandbox.run("open", 120))
    assert sandbox.host.service(120).status == ACTIVE
    assert sandbox.server_of(120)["operation"]["status"] == "running"


def test_dont_manage_ips_keeps_the_servers_addresses(sandbox: Sandbox) -> None:
    sandbox.order_on_tariff(121, 11, addons={"ip": "3"}, dont_manage_ips="on")
    ok(sandbox.run("open", 121))
    server = sandbox.server_of(121)
    # none on the server: exactly one is added, whatever the order said
    assert len(permanent_ips(server, "ipv4")) == 1
    ok(sandbox.run("close", 121))
    assert sandbox.host.service(121).ips == []


def test_a_tariff_without_a_pool_fails_before_any_server_is_touched(sandbox: Sandbox) -> None:
    sandbox.order_on_tariff(122, 12, ipv4_pool="")
    result = sandbox.run("open", 122)
    assert error_type(result) == "invalid_param" and b"ipv4_pool" in result.stdout
    assert not sandbox.host.service(122).params.get("dci_server_id")
    assert not [s for s in sandbox.sim.servers() if s["owner_email"] == CLIENT_EMAIL]


def test_close_right_after_a_no_wait_open_stops_the_install_and_wipes(sandbox: Sandbox) -> None:
    """Issue 10 point 4: the install open started (and recorded as the service's own) is
    stopped by close; only close's own diagnostics count as ours, so the wipe runs."""
    from pmdci6_sandbox.dcisim.state import is_free

    sandbox.order_on_tariff(123, 13, no_wait_install="on")
    sandbox.sim.hang_operations(kind="install", count=1)
    ok(sandbox.run("open", 123))
    install = sandbox.server_of(123)["operation"]
    assert isinstance(install, dict) and install["status"] == "running"
    assert sandbox.host.service(123).params["dci_install_operation"] == str(install["id"])
    sandbox.sim.clear_requests()

    ok(sandbox.run("close", 123))
    routes = [request.route for request in sandbox.sim.requests]
    assert routes.index("server.operation.stop") < routes.index("server.operation.diag")
    server = sandbox.server_of(123)
    operation = server["operation"]
    assert isinstance(operation, dict)
    assert operation["id"] != install["id"] and operation["status"] == "ok"  # the wipe
    assert server["os_template"] is None  # disks cleaned
    assert server["owner"] is None and not server["owner_email"]
    assert permanent_ips(server, "ipv4") == []
    assert is_free(server)
    assert sandbox.host.service(123).status == DELETED


def _panel_changes(sandbox: Sandbox) -> list[str]:
    return [r.route for r in sandbox.sim.requests if r.method != "GET" and r.route != "auth.token"]


def test_a_bad_hostname_fails_open_before_the_panel_is_touched(sandbox: Sandbox) -> None:
    item = sandbox.order(124, params={"ostempl": "2", "hostname": "web_01.example.com"})
    before = sandbox.sim.servers()
    sandbox.sim.clear_requests()
    result = sandbox.run("open", item)
    assert error_type(result) == "bad_hostname" and b"web_01.example.com" in result.stdout
    assert sandbox.sim.servers() == before
    assert _panel_changes(sandbox) == []
    record = sandbox.host.service(item)
    assert record.status != ACTIVE and "dci_server_id" not in record.params
    assert record.events == []  # nothing written in BILLmanager either


def test_a_bad_hostname_fails_setparam_before_anything_changes(sandbox: Sandbox) -> None:
    item = sandbox.order(125, params={"ostempl": "1", "hostname": "srv125.example.com"})
    ok(sandbox.run("open", item))
    sandbox.host.set_addon(item, "ip", "2")
    sandbox.host.set_param(item, "ostempl", "4")
    sandbox.host.set_param(item, "hostname", "-bad-.example.com")
    before, events = sandbox.sim.servers(), sandbox.host.service(item).events
    sandbox.sim.clear_requests()
    assert error_type(sandbox.run("setparam", item)) == "bad_hostname"
    assert sandbox.sim.servers() == before
    assert _panel_changes(sandbox) == []
    assert sandbox.host.service(item).events == events
