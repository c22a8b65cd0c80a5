"""The client's actions (lifecycle.client_power, lifecycle.panel_access) against fakes of both
ports: what is refused before anything is touched, the power rules, the record that keeps a
retried operation from acting or reporting twice, and where "Go to panel" sends a browser."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Unpack, cast

import pytest
from lxml import etree

from dci6_processing.billing.port import BillingPort
from dci6_processing.bookkeeping import CRYPTED, BookkeepingChanges, encode
from dci6_processing.dci.client import DciClient
from dci6_processing.dci.errors import (
    DciBusy,
    DciError,
    DciNotFound,
    PanelInternalError,
    PowerActionRejected,
)
from dci6_processing.dci.models import Server, User
from dci6_processing.errors import ErrorType, ModuleError
from dci6_processing.invocation import Invocation
from dci6_processing.lifecycle import client_power, panel_access
from dci6_processing.lifecycle.client_power import ACTIONS, ClientPowerAction, client_stopped
from dci6_processing.lifecycle.common import ServiceContext, running
from dci6_processing.paths import MgrPaths
from dci6_processing.settings import Service, ServiceStatus, module_settings

CLIENT = "client@example.com"


def perform(ctx: ServiceContext, action: ClientPowerAction) -> None:
    with running(action.steps):  # as run_on_service runs it
        client_power.perform(ctx, action)

USER_ID = 5
SERVER_ID = 10


def server(*, power: str = "on", owner: int | None = USER_ID, owner_email: str | None = CLIENT,
           maintenance: bool = False, running: bool = False) -> Server:
    return Server.model_validate({
        "id": SERVER_ID, "owner": owner, "owner_email": owner_email, "power_status": power,
        "maintenance_mode": maintenance,
        "operation": {"id": 77, "status": "running" if running else "ok"},
    })


class FakeDci:
    url = "https://dci.example"
    login_page_url = "https://dci.example/auth/login"

    def __init__(self, srv: Server, user: User | None) -> None:
        self.srv = srv
        self.user = user
        self.calls: list[tuple[str, Any]] = []
        self.power_error: Exception | None = None
        self.after_power: str | None = None  # power_status the panel shows after a refusal
        self.key_error: Exception | None = None

    def server(self, server_id: int) -> Server:
        self.calls.append(("server.get", server_id))
        if self.after_power is not None:
            self.srv = self.srv.model_copy(update={"power_status": self.after_power})
        return self.srv

    def user_by_email(self, email: str) -> User | None:
        self.calls.append(("user.list", email))
        return self.user

    def create_user(self, email: str, password: str) -> User:
        self.calls.append(("user.create", password))
        self.user = User(id=USER_ID, email=email, roles=["@user"])
        return self.user

    def power(self, server_id: int, action: str) -> None:
        self.calls.append(("power", action))
        if self.power_error is not None:
            raise self.power_error

    def create_login_key(self, user_id: int) -> str:
        self.calls.append(("key", user_id))
        if self.key_error is not None:
            raise self.key_error
        return "Key-1"

    def key_login_url(self, key: str) -> str:
        return f"{self.url}/auth/key-v4/{key}"

    @property
    def actions(self) -> list[tuple[str, Any]]:
        return [c for c in self.calls if c[0] in ("power", "key", "user.create")]


class FakeBilling:
    def __init__(self) -> None:
        self.saved: list[tuple[str, str, bool]] = []
        self.posted: list[str] = []

    def save_param(self, item: int, name: str, value: str, *, crypted: bool = False) -> None:
        self.saved.append((name, value, crypted))

    def save_bookkeeping(self, item: int, **changes: Unpack[BookkeepingChanges]) -> None:
        for param, value in encode(changes).items():
            self.save_param(item, param.value, value, crypted=param in CRYPTED)

    def post(self, item: int, event: str, **fields: str) -> None:
        self.posted.append(event)


def context(tmp_path: Path, dci: FakeDci, *, status: int = ServiceStatus.active,
            params: dict[str, str] | None = None, runningoperation: int | None = None,
            billing: FakeBilling | None = None) -> ServiceContext:
    inv = Invocation(command="reboot", paths=MgrPaths(tmp_path), item=1,
                     runningoperation=runningoperation)
    service = Service(id=1, module=1, status=status, pricelist=1, account_id=7,
                      client_email=CLIENT, params={"dci_server_id": str(SERVER_ID),
                                                   **(params or {})})
    settings = module_settings({"url": "https://dci.example", "username": "a@example.com",
                                "password": "x"})
    return ServiceContext(inv=inv, billing=cast(BillingPort, billing or FakeBilling()),
                          service=service, settings=settings, dci=cast(DciClient, dci))


def client_user(*roles: str) -> User:
    return User(id=USER_ID, email=CLIENT, roles=list(roles or ["@user"]))


@pytest.mark.parametrize(("setup", "expected"), [
    ({"status": ServiceStatus.stopped}, ErrorType.service_not_active),
    ({"status": ServiceStatus.processing}, ErrorType.service_not_active),
    ({"server": server(owner=99, owner_email="x@example.org")}, ErrorType.owner_mismatch),
    ({"server": server(owner=99)}, ErrorType.owner_mismatch),  # same e-mail, another user id
    ({"user": None}, ErrorType.owner_mismatch),
    ({"user": client_user("@admin")}, ErrorType.user_is_admin),
    ({"server": server(maintenance=True)}, ErrorType.server_in_maintenance),
    ({"server": server(running=True)}, ErrorType.server_operation_running),
])
@pytest.mark.parametrize("command", ["reboot", "start", "stop"])
def test_refusals_touch_nothing(tmp_path: Path, command: str, setup: dict[str, Any],
                                expected: ErrorType) -> None:
    dci = FakeDci(setup.get("server", server(power="off" if command == "start" else "on")),
                  setup.get("user", client_user()))
    billing = FakeBilling()
    ctx = context(tmp_path, dci, status=setup.get("status", ServiceStatus.active),
                  billing=billing)
    with pytest.raises(ModuleError) as caught:
        perform(ctx, ACTIONS[command])
    assert caught.value.type is expected
    assert dci.actions == [] and billing.saved == [] and billing.posted == []


def test_a_refusal_says_why_and_when_to_try(tmp_path: Path) -> None:
    ctx = context(tmp_path, FakeDci(server(running=True), client_user()))
    with pytest.raises(ModuleError) as caught:
        perform(ctx, ACTIONS["reboot"])
    assert (caught.value.object, caught.value.value) == (str(SERVER_ID), "operation 77")


@pytest.mark.parametrize(("command", "power", "calls"), [
    ("start", "on", []), ("start", "off", [("power", "on")]),
    ("start", "unknown", [("power", "on")]),
    ("stop", "off", []), ("stop", "on", [("power", "off")]),
    ("reboot", "on", [("power", "reset")]), ("reboot", "off", [("power", "reset")]),
])
def test_the_power_rules(tmp_path: Path, command: str, power: str,
                         calls: list[tuple[str, str]]) -> None:
    dci = FakeDci(server(power=power), client_user())
    billing = FakeBilling()
    perform(context(tmp_path, dci, billing=billing), ACTIONS[command])
    assert dci.actions == calls
    assert billing.posted == [command]  # reported, whether or not a call was needed


def test_a_power_refusal_is_success_only_if_the_server_got_there(tmp_path: Path) -> None:
    dci = FakeDci(server(power="unknown"), client_user())
    dci.power_error = PowerActionRejected("Power action not allowed", http_status=400)
    dci.after_power = "off"
    billing = FakeBilling()
    perform(context(tmp_path, dci, billing=billing), ACTIONS["stop"])
    assert billing.posted == ["stop"]

    dci = FakeDci(server(power="unknown"), client_user())
    dci.power_error = PowerActionRejected("Power action not allowed", http_status=400)
    billing = FakeBilling()
    with pytest.raises(ModuleError) as caught:
        perform(context(tmp_path, dci, billing=billing), ACTIONS["stop"])
    assert caught.value.type is ErrorType.power_refused
    assert caught.value.value == "Power action not allowed"
    assert billing.posted == []  # never reported unless the panel accepted


def test_stop_records_the_wish_before_acting_and_start_clears_it(tmp_path: Path) -> None:
    billing = FakeBilling()
    ctx = context(tmp_path, FakeDci(server(power="on"), client_user()), billing=billing)
    perform(ctx, ACTIONS["stop"])
    assert billing.saved == [("dci_power_wish", "off", False)]
    assert client_stopped(ctx.service)
    perform(ctx, ACTIONS["start"])
    assert billing.saved[-1] == ("dci_power_wish", "", False)
    assert not client_stopped(ctx.service)


def test_a_retried_operation_neither_acts_nor_reports_twice(tmp_path: Path) -> None:
    dci = FakeDci(server(), client_user())
    billing = FakeBilling()
    accepted = {"dci_client_action": "reboot 41 accepted"}
    perform(context(tmp_path, dci, params=accepted, runningoperation=41, billing=billing),
            ACTIONS["reboot"])
    assert dci.actions == [] and billing.posted == ["reboot"]  # accepted before: report only
    assert billing.saved[-1] == ("dci_client_action", "reboot 41 reported", False)

    dci, billing = FakeDci(server(), client_user()), FakeBilling()
    reported = {"dci_client_action": "reboot 41 reported"}
    perform(context(tmp_path, dci, params=reported, runningoperation=41, billing=billing),
            ACTIONS["reboot"])
    assert dci.calls == [] and billing.posted == [] and billing.saved == []

    # another operation, or another command, is a new request
    for params, ro in ((reported, 42), ({"dci_client_action": "stop 41 reported"}, 41)):
        dci, billing = FakeDci(server(), client_user()), FakeBilling()
        perform(context(tmp_path, dci, params=params, runningoperation=ro, billing=billing),
                ACTIONS["reboot"])
        assert dci.actions == [("power", "reset")] and billing.posted == ["reboot"]


def test_without_an_operation_id_nothing_is_recorded(tmp_path: Path) -> None:
    billing = FakeBilling()
    perform(context(tmp_path, FakeDci(server(), client_user()), billing=billing),
            ACTIONS["reboot"])
    assert billing.saved == []


# --- panel access -------------------------------------------------------------------------


def _go(ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch) -> etree._Element:
    monkeypatch.setattr(panel_access, "load_service", lambda inv: ctx)
    return etree.fromstring(panel_access.transition_control_panel(ctx.inv))


def test_go_to_panel_answers_a_key_url_for_the_client(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    dci = FakeDci(server(), client_user())
    doc = _go(context(tmp_path, dci), monkeypatch)
    assert doc.findtext("url") == "https://dci.example/auth/key-v4/Key-1"
    assert dci.actions == [("key", USER_ID)]


@pytest.mark.parametrize("refusal", [
    DciError("Access denied", http_status=403, code=1006),
    DciNotFound("Not found", http_status=404),  # no such route on this panel
    DciError("the panel answered a key request without a key"),
])
def test_a_refused_key_sends_the_client_to_the_login_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refusal: DciError
) -> None:
    dci = FakeDci(server(), client_user())
    dci.key_error = refusal
    assert _go(context(tmp_path, dci), monkeypatch).findtext("url") == dci.login_page_url


@pytest.mark.parametrize("failure", [
    DciBusy("Service temporarily unavailable", http_status=503),
    PanelInternalError("Internal server error", http_status=500),
])
def test_an_unavailable_panel_is_an_error_not_a_login_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: DciError
) -> None:
    dci = FakeDci(server(), client_user())
    dci.key_error = failure
    with pytest.raises(DciError):
        _go(context(tmp_path, dci), monkeypatch)


def test_go_to_panel_never_for_an_admin_or_another_owner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for dci, expected in ((FakeDci(server(), client_user("@admin")), ErrorType.user_is_admin),
                          (FakeDci(server(owner=99), client_user()), ErrorType.owner_mismatch)):
        with pytest.raises(ModuleError) as caught:
            _go(context(tmp_path, dci), monkeypatch)
        assert caught.value.type is expected
        assert ("key", USER_ID) not in dci.calls


def test_a_new_panel_user_gets_a_password_saved_before_it_is_created(tmp_path: Path) -> None:
    dci = FakeDci(server(), None)
    billing = FakeBilling()
    ctx = context(tmp_path, dci, billing=billing)
    panel_access.ensure_panel_user(ctx)
    [(name, password, crypted), *rest] = billing.saved
    assert (name, crypted) == ("panel_password", True) and len(password) >= 20
    assert dci.actions == [("user.create", password)]
    assert {(n, v) for n, v, _ in rest} == {("panel_url", "https://dci.example"),
                                            ("panel_login", CLIENT), ("panel_account", "created")}


def test_a_rerun_reuses_the_saved_password_and_still_calls_the_user_ours(tmp_path: Path) -> None:
    saved = {"panel_password": "Saved-Before-Crash-123"}
    dci = FakeDci(server(), None)  # the crash came before the user was created
    panel_access.ensure_panel_user(context(tmp_path, dci, params=saved))
    assert dci.actions == [("user.create", "Saved-Before-Crash-123")]
    billing = FakeBilling()  # ... or after: the user exists, the password is ours
    panel_access.ensure_panel_user(context(tmp_path, FakeDci(server(), client_user()),
                                           params=saved, billing=billing))
    assert ("panel_account", "created", False) in billing.saved
    assert not [s for s in billing.saved if s[0] == "panel_password"]


def test_an_existing_panel_user_keeps_their_password(tmp_path: Path) -> None:
    dci = FakeDci(server(), client_user())
    billing = FakeBilling()
    panel_access.ensure_panel_user(context(tmp_path, dci, billing=billing))
    assert dci.actions == []
    assert ("panel_account", "existing", False) in billing.saved
    assert not [s for s in billing.saved if s[0] == "panel_password"]


def test_an_administrators_email_is_refused_before_anything_is_saved(tmp_path: Path) -> None:
    billing = FakeBilling()
    with pytest.raises(ModuleError) as caught:
        panel_access.ensure_panel_user(context(tmp_path, FakeDci(server(),
                                                                 client_user("@admin")),
                                               billing=billing))
    assert caught.value.type is ErrorType.user_is_admin
    assert billing.saved == []
