"""The client's own actions through the real binary: reboot, start, stop, "Go to panel", the
panel login saved at activation, and the power wish across stop -> sync -> resume -> start."""

from __future__ import annotations

import subprocess
from urllib.parse import urlsplit

import pytest
import requests
from lxml import etree

from dci6_processing.lifecycle.client_power import ACTIONS
from dci6_processing.lifecycle.common import FAILPOINT_EXIT_CODE
from tests.e2e.conftest import CLIENT_EMAIL, MODULE, Prepared, Sandbox
from tests.e2e.test_lifecycle import ACTIVE, STOPPED, error_type, ok
from tests.e2e.test_sync import run_sync, summary

POWER_POSTS = ("service.postreboot", "service.poststart", "service.poststop")


def server_id_of(sandbox: Sandbox, item: int) -> int:
    return int(sandbox.host.service(item).params["dci_server_id"])


def opened(sandbox: Sandbox, item: int) -> int:
    sandbox.order(item)
    ok(sandbox.run("open", item))
    return server_id_of(sandbox, item)


def _opened_311(sandbox: Sandbox) -> int:
    opened(sandbox, 311)
    return 311


def opened_311(prepared: Prepared) -> tuple[Sandbox, int, int]:
    """A sandbox with item 311 opened (prepared once per worker): it, the item, its server."""
    sandbox, item = prepared(_opened_311)
    return sandbox, item, server_id_of(sandbox, item)


def posts(sandbox: Sandbox, item: int) -> list[str]:
    return [f for f, _ in sandbox.host.service(item).events if f in POWER_POSTS]


def power_of(sandbox: Sandbox, server_id: int) -> str:
    return str(sandbox.sim.server(server_id)["power_status"])


def test_features_lists_the_client_actions(sandbox: Sandbox) -> None:
    result = ok_features(sandbox)
    names = [f.get("name") for f in etree.fromstring(result.stdout).iter("feature")]
    assert {"reboot", "start", "stop", "transition_controlpanel"} <= set(names)


def ok_features(sandbox: Sandbox) -> subprocess.CompletedProcess[bytes]:
    result = sandbox.run("features")
    assert isinstance(result, subprocess.CompletedProcess) and result.returncode == 0
    return result


def test_reboot_resets_the_server_and_reports_once(prepared: Prepared) -> None:
    sandbox, item, server_id = opened_311(prepared)
    before = sandbox.sim.power_actions(server_id)
    ok(sandbox.run("reboot", item, "--runningoperation", "11"))
    assert sandbox.sim.power_actions(server_id)[len(before):] == ["power_reset"]
    assert posts(sandbox, item) == ["service.postreboot"]
    assert power_of(sandbox, server_id) == "on"
    assert sandbox.host.service(item).status == ACTIVE


def test_power_rules_start_of_a_running_server_is_success_without_a_call(
    prepared: Prepared,
) -> None:
    sandbox, item, server_id = opened_311(prepared)
    before = sandbox.sim.power_actions(server_id)
    ok(sandbox.run("start", item))
    assert sandbox.sim.power_actions(server_id) == before
    assert posts(sandbox, item) == ["service.poststart"]
    ok(sandbox.run("stop", item))
    ok(sandbox.run("stop", item))  # already off: nothing more to ask
    assert sandbox.sim.power_actions(server_id)[len(before):] == ["power_off"]
    assert posts(sandbox, item) == ["service.poststart", "service.poststop", "service.poststop"]


def test_the_power_wish_survives_sync_and_resume(prepared: Prepared) -> None:
    sandbox, item, server_id = opened_311(prepared)
    ok(sandbox.run("stop", item))
    assert power_of(sandbox, server_id) == "off"
    assert sandbox.host.service(item).params["dci_power_wish"] == "off"

    result = run_sync(sandbox, "--module", str(MODULE))  # cron
    assert result.returncode == 0, result.stdout
    figures = summary(result)
    assert (figures["client_stopped"], figures["corrected"]) == ("1", "0")
    ok(sandbox.run("sync_item", item))
    assert power_of(sandbox, server_id) == "off"

    ok(sandbox.run("suspend", item))
    assert sandbox.host.service(item).status == STOPPED
    ok(sandbox.run("resume", item))
    server = sandbox.sim.server(server_id)
    assert server["power_status"] == "off"  # resume turned the ports on, not the power
    assert {c["admin_status"] for c in server["switch_connection"]
            if not c.get("is_ipmi_connection")} == {"up"}

    ok(sandbox.run("start", item))
    assert power_of(sandbox, server_id) == "on"
    assert sandbox.host.service(item).params["dci_power_wish"] == ""
    # a server that goes off for any other reason is powered on by the sync again
    sandbox.sim.update_server(server_id, power_status="off")
    figures = summary(run_sync(sandbox, "--module", str(MODULE)))
    assert (figures["corrected"], figures["client_stopped"]) == ("1", "0")
    assert power_of(sandbox, server_id) == "on"


def test_reboot_clears_the_wish(prepared: Prepared) -> None:
    sandbox, item, server_id = opened_311(prepared)
    ok(sandbox.run("stop", item))
    ok(sandbox.run("reboot", item))
    assert sandbox.host.service(item).params["dci_power_wish"] == ""
    assert power_of(sandbox, server_id) == "on"  # power_reset ends on


def _refused(sandbox: Sandbox, item: int, server_id: int, command: str, expected: str) -> None:
    before = sandbox.sim.power_actions(server_id)
    events = len(sandbox.host.service(item).events)
    assert error_type(sandbox.run(command, item, "--runningoperation", "21")) == expected
    assert sandbox.sim.power_actions(server_id) == before  # nothing touched
    assert not [f for f, _ in sandbox.host.service(item).events[events:]
                if f in POWER_POSTS or f == "service.saveparam"]


def _suspended_305(sandbox: Sandbox) -> int:
    opened(sandbox, 305)
    ok(sandbox.run("suspend", 305))
    return 305


@pytest.mark.parametrize("command", ["reboot", "start", "stop"])
def test_a_suspended_service_is_refused(prepared: Prepared, command: str) -> None:
    sandbox, item = prepared(_suspended_305)
    server_id = server_id_of(sandbox, item)
    _refused(sandbox, item, server_id, command, "service_not_active")


def test_a_server_owned_by_someone_else_is_refused(prepared: Prepared) -> None:
    sandbox, item, server_id = opened_311(prepared)
    sandbox.sim.add_user("intruder@example.com")
    intruder = sandbox.sim.user_by_email("intruder@example.com")
    assert intruder is not None
    sandbox.sim.update_server(server_id, owner=intruder["id"], owner_email="intruder@example.com")
    for command in ("reboot", "stop", "transition_controlpanel"):
        _refused(sandbox, item, server_id, command, "owner_mismatch")


def test_maintenance_and_a_running_install_are_refused_with_try_later(prepared: Prepared) -> None:
    sandbox, item, server_id = opened_311(prepared)
    sandbox.sim.update_server(server_id, maintenance_mode=True)
    _refused(sandbox, item, server_id, "reboot", "server_in_maintenance")
    sandbox.sim.update_server(server_id, maintenance_mode=False)

    sandbox.order_on_tariff(308, 20, no_wait_install="on")
    sandbox.sim.hang_operations(kind="install", count=1)
    ok(sandbox.run("open", 308))
    busy = server_id_of(sandbox, 308)
    _refused(sandbox, 308, busy, "stop", "server_operation_running")


def test_an_administrator_account_is_refused(prepared: Prepared) -> None:
    sandbox, item, server_id = opened_311(prepared)
    user = sandbox.sim.user_by_email(CLIENT_EMAIL)
    assert user is not None
    sandbox.sim.state.users[int(user["id"])].roles = ["@admin"]
    for command in ("reboot", "transition_controlpanel"):
        _refused(sandbox, item, server_id, command, "user_is_admin")


def test_do_nothing_and_manual_handling_are_honoured(prepared: Prepared) -> None:
    sandbox, item, server_id = opened_311(prepared)
    before = sandbox.sim.power_actions(server_id)
    sandbox.host.maintenance(True)
    ok(sandbox.run("stop", item))
    sandbox.host.maintenance(False)
    sandbox.host.set_param(item, "dci_manual", "on")
    ok(sandbox.run("reboot", item, "--runningoperation", "31"))
    assert sandbox.sim.power_actions(server_id) == before
    assert posts(sandbox, item) == []
    assert [t for t in sandbox.host.tasks() if t.item == item and t.runningoperation == 31]


def _stopped_311(sandbox: Sandbox) -> int:
    ok(sandbox.run("stop", _opened_311(sandbox)))
    return 311


@pytest.mark.parametrize(("command", "step"), [
    (action.command, step) for action in ACTIONS.values() for step in action.steps.names
])
def test_killed_after_any_step_the_rerun_finishes_and_reports_once(
    prepared: Prepared, command: str, step: str
) -> None:
    sandbox, _ = prepared(_stopped_311 if command == "start" else _opened_311)
    server_id = server_id_of(sandbox, 311)
    before = sandbox.sim.power_actions(server_id)
    argv = ("--runningoperation", "41")
    crashed = sandbox.run(command, 311, *argv, env={"PMDCI6_FAILPOINT": f"crash-after:{step}"})
    assert isinstance(crashed, subprocess.CompletedProcess)
    assert crashed.returncode == FAILPOINT_EXIT_CODE, (step, crashed.stdout, crashed.stderr)
    ok(sandbox.run(command, 311, *argv))
    expected = {"reboot": ("power_reset", "on"), "start": ("power_on", "on"),
                "stop": ("power_off", "off")}[command]
    assert sandbox.sim.power_actions(server_id)[len(before):] == [expected[0]]  # asked once
    assert power_of(sandbox, server_id) == expected[1]
    assert posts(sandbox, 311).count(f"service.post{command}") == 1
    wish = sandbox.host.service(311).params.get("dci_power_wish", "")
    assert wish == ("off" if command == "stop" else "")


def _panel_url(sandbox: Sandbox, item: int) -> str:
    result = sandbox.run("transition_controlpanel", item, "--panelkey", "dci")
    assert isinstance(result, subprocess.CompletedProcess)
    assert result.returncode == 0, result.stdout
    doc = etree.fromstring(result.stdout)
    assert doc.findtext("panelcount") == "1"
    panel = doc.find("panelname")
    assert panel is not None and panel.get("keyname") == "dci"
    assert panel.text == "DCImanager 6"
    return str(doc.findtext("url"))


def test_go_to_panel_opens_a_session_of_the_client_only_once(prepared: Prepared) -> None:
    sandbox, item, _ = opened_311(prepared)
    url = _panel_url(sandbox, item)
    assert url.startswith(sandbox.sim.url + "/auth/key-v4/")
    key = urlsplit(url).path.rsplit("/", 1)[1]
    log = (sandbox.host.root / "var" / "pmdci6.log").read_text()
    assert key not in log  # the key is a credential

    answer = requests.get(url, allow_redirects=False, timeout=10)
    assert answer.status_code == 302
    token = answer.cookies["ses6"]
    user = sandbox.sim.session_user(token)
    assert user is not None and user["email"] == CLIENT_EMAIL
    assert requests.get(url, allow_redirects=False, timeout=10).status_code == 403  # single use

    sandbox.sim.expire_login_keys()
    stale = _panel_url(sandbox, item)
    sandbox.sim.expire_login_keys()
    assert requests.get(stale, allow_redirects=False, timeout=10).status_code == 403


def test_go_to_panel_falls_back_to_the_login_page_when_no_key_is_made(
    prepared: Prepared,
) -> None:
    sandbox, item, _ = opened_311(prepared)
    sandbox.sim.refuse_login_keys()
    assert _panel_url(sandbox, item) == sandbox.sim.url + "/auth/login"
    log = (sandbox.host.root / "var" / "pmdci6.log").read_text()
    assert '"event": "panel.key_refused"' in log and "http_status" in log


def test_go_to_panel_refused_for_a_suspended_service(sandbox: Sandbox) -> None:
    opened(sandbox, 314)
    ok(sandbox.run("suspend", 314))
    assert error_type(sandbox.run("transition_controlpanel", 314)) == "service_not_active"


def _login(sandbox: Sandbox, email: str, password: str) -> int:
    return requests.post(f"{sandbox.sim.url}/api/auth/v4/public/token",
                         json={"email": email, "password": password}, timeout=10).status_code


def test_activation_saves_the_new_panel_users_login(prepared: Prepared) -> None:
    sandbox, item, _ = opened_311(prepared)
    record = sandbox.host.service(item)
    assert record.params["panel_url"] == sandbox.sim.url
    assert record.params["panel_login"] == CLIENT_EMAIL
    assert record.params["panel_account"] == "created"
    assert "panel_password" in record.crypted_params
    assert _login(sandbox, CLIENT_EMAIL, record.params["panel_password"]) in (200, 201)
    log = (sandbox.host.root / "var" / "pmdci6.log").read_text()
    assert record.params["panel_password"] not in log


def test_an_existing_panel_user_keeps_their_password(sandbox: Sandbox) -> None:
    sandbox.sim.add_user(CLIENT_EMAIL, password="Clients-Own-Pass-1")
    opened(sandbox, 316)
    record = sandbox.host.service(316)
    assert record.params["panel_account"] == "existing"
    assert not record.params.get("panel_password")
    assert record.params["panel_login"] == CLIENT_EMAIL
    assert _login(sandbox, CLIENT_EMAIL, "Clients-Own-Pass-1") in (200, 201)


def test_open_killed_after_creating_the_user_still_hands_over_its_password(
    sandbox: Sandbox,
) -> None:
    sandbox.order(317)
    crashed = sandbox.run("open", 317, env={"PMDCI6_FAILPOINT": "crash-after:user_ready"})
    assert isinstance(crashed, subprocess.CompletedProcess)
    assert crashed.returncode == FAILPOINT_EXIT_CODE
    ok(sandbox.run("open", 317))
    record = sandbox.host.service(317)
    assert record.params["panel_account"] == "created"
    assert _login(sandbox, CLIENT_EMAIL, record.params["panel_password"]) in (200, 201)
