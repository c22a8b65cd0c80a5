"""get_server_config, the tune commands and checkparam against fakes of both ports."""

from __future__ import annotations

import collections
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from lxml import etree

from dci6_processing import catalogue, protocol
from dci6_processing.billing.port import BillingPort
from dci6_processing.catalogue import (
    CATALOGUE_PARAMS,
    Catalogue,
    check_param,
    get_server_config,
    tune_connection,
    tune_pricelist,
)
from dci6_processing.dci.client import DciClient
from dci6_processing.dci.errors import DciBusy, DciNotFound
from dci6_processing.dci.models import Configuration, IpPool, Location, OsTemplate, Server
from dci6_processing.errors import ErrorType, ModuleError
from dci6_processing.invocation import Invocation
from dci6_processing.paths import MgrPaths
from dci6_processing.settings import ModuleSettings, Service, ServiceStatus, module_settings

MODULE = 1
PANEL_URL = "https://dci.example.com"
ADMIN = "admin@example.com"
STORED_PASSWORD = "Stored-Panel-S3cret"
CONFIG = "i9-9900K-64Gb-2x1024NVMe"
TARIFF: dict[str, str] = {"configuration": CONFIG, "os_template": "1", "ipv4_pool": "1",
                          "ipv6_pool": "10", "diag_pool": "diag-v4"}


class FakePanel:
    def __init__(self) -> None:
        self.configurations_list = [Configuration(configuration=CONFIG, free_server_count=3),
                                    Configuration(configuration="E5-2690v4", free_server_count=0)]
        self.templates = [OsTemplate(id=1, name="Ubuntu 22.04"),
                          OsTemplate(id=3, name="Windows Server 2022", os_family="windows")]
        self.pools = [IpPool(id=1, name="public-v4"), IpPool(id=2, name="diag-v4"),
                      IpPool(id=10, name="public-v6", family="ipv6")]
        self.location_list = [Location(id=2, name="Frankfurt"), Location(id=1, name="Amsterdam")]
        self.free_in_location: dict[tuple[str, int], list[Server]] = {}
        self.servers: dict[int, Server] = {}
        self.failure: Exception | None = None
        self.request_counts: collections.Counter[str] = collections.Counter()

    def _read(self, name: str) -> None:
        self.request_counts[name] += 1
        if self.failure is not None:
            raise self.failure

    def configurations(self) -> list[Configuration]:
        self._read("server.configuration.list")
        return self.configurations_list

    def os_templates(self) -> list[OsTemplate]:
        self._read("os_template.list")
        return self.templates

    def ip_pools(self) -> list[IpPool]:
        self._read("ippool.list")
        return self.pools

    def locations(self) -> list[Location]:
        self._read("location.list")
        return self.location_list

    def free_servers(self, configuration: str | None, location_id: int | None,
                     *, page_size: int = 100) -> Iterator[Server]:
        self._read("server.list")
        assert configuration is not None and location_id is not None
        yield from self.free_in_location.get((configuration, location_id), [])

    def server(self, server_id: int) -> Server:
        self._read("server.get")
        if server_id not in self.servers:
            raise DciNotFound("Server not found", http_status=404)
        return self.servers[server_id]


class FakeBilling:
    def __init__(self, **settings: str) -> None:
        self.settings = {"url": PANEL_URL, "username": ADMIN, "password": STORED_PASSWORD,
                         **settings}
        self.published: dict[str, list[tuple[str, str]]] = {}
        self.services: dict[int, Service] = {}

    def module_settings(self, module: int) -> ModuleSettings:
        assert module == MODULE
        return module_settings(self.settings)

    def sync_catalogue(self, module: int, param: str, values: list[tuple[str, str]]) -> None:
        self.published[param] = values

    def service(self, item: int) -> Service:
        return self.services[item]


class FakeInvocation(Invocation):
    panel: FakePanel | None = None

    def dci(self, settings: ModuleSettings) -> DciClient:
        assert self.panel is not None
        return cast(DciClient, self.panel)


def invocation(tmp_path: Path, billing: FakeBilling, panel: FakePanel, command: str, *,
               stdin: bytes = b"", module: int | None = MODULE, item: int | None = None,
               param: str | None = None, value: str | None = None,
               lang: str | None = None) -> FakeInvocation:
    inv = FakeInvocation(command=command, paths=MgrPaths(tmp_path), module=module, item=item,
                         param=param, value=value, lang=lang, stdin=stdin,
                         _billing=cast(BillingPort, billing))
    inv.panel = panel
    return inv


def form(**fields: str) -> bytes:
    """A form as BILLmanager sends it, in the serialisation the module answers with."""
    doc = etree.Element("doc")
    for name, text in fields.items():
        etree.SubElement(doc, name).text = text or None
    return protocol.to_bytes(doc)


def selects(reply: bytes | None) -> dict[str, list[tuple[str, str]]]:
    assert reply is not None
    doc = protocol.parse_input(reply)
    return {str(s.get("name")): protocol.select_options(doc, str(s.get("name")))
            for s in doc.findall("slist")}


def error_of(call: Any) -> ModuleError:
    with pytest.raises(ModuleError) as caught:
        call()
    return caught.value


# --- get_server_config ----------------------------------------------------------------------


def test_get_server_config_publishes_every_list(tmp_path: Path) -> None:
    billing, panel = FakeBilling(), FakePanel()

    assert get_server_config(invocation(tmp_path, billing, panel, "get_server_config")) is None

    assert list(billing.published) == list(CATALOGUE_PARAMS)
    assert billing.published["configuration"] == [("E5-2690v4", "E5-2690v4 (0 free)"),
                                                  (CONFIG, f"{CONFIG} (3 free)")]
    assert billing.published["os_template"] == [("1", "Ubuntu 22.04 (linux)"),
                                                ("3", "Windows Server 2022 (windows)")]
    assert billing.published["ipv4_pool"] == [("2", "diag-v4"), ("1", "public-v4")]
    assert billing.published["ipv6_pool"] == [("10", "public-v6")]
    assert billing.published["diag_pool"] == billing.published["ipv4_pool"]
    assert billing.published["location"] == [("1", "Amsterdam"), ("2", "Frankfurt")]


def test_a_panel_failure_publishes_nothing(tmp_path: Path) -> None:
    """A transient error must never empty BILLmanager's lists (VirtFusion's lesson)."""
    billing, panel = FakeBilling(), FakePanel()
    panel.failure = DciBusy("Service temporarily unavailable", http_status=503)

    with pytest.raises(DciBusy):
        get_server_config(invocation(tmp_path, billing, panel, "get_server_config"))

    assert billing.published == {}


def test_russian_labels() -> None:
    lists = Catalogue([Configuration(configuration=CONFIG, free_server_count=2)], [], [],
                      []).select_lists("ru")
    assert lists["configuration"] == [(CONFIG, f"{CONFIG} (свободно: 2)")]


# --- tune_pricelist -------------------------------------------------------------------------


def test_tune_pricelist_fills_the_tariff_selects(tmp_path: Path) -> None:
    reply = tune_pricelist(invocation(tmp_path, FakeBilling(), FakePanel(), "tune",
                                      stdin=form(configuration=CONFIG, ipv6_pool="10")))
    lists = selects(reply)
    assert set(lists) == {"configuration", "os_template", "ipv4_pool", "ipv6_pool", "diag_pool"}
    assert [key for key, _ in lists["configuration"]] == ["E5-2690v4", CONFIG]  # required
    assert lists["os_template"][0] == ("", "(none)")  # optional
    assert ("10", "public-v6") in lists["ipv6_pool"]
    assert reply is not None and b"<configuration>" + CONFIG.encode() in reply  # values kept


def test_tune_pricelist_keeps_a_value_the_panel_lost(tmp_path: Path) -> None:
    reply = tune_pricelist(invocation(tmp_path, FakeBilling(), FakePanel(), "tune",
                                      stdin=form(configuration="retired-config")))
    assert selects(reply)["configuration"][-1] == ("retired-config",
                                                   "retired-config (not in DCImanager 6)")


def test_tune_pricelist_takes_the_module_from_the_form(tmp_path: Path) -> None:
    reply = tune_pricelist(invocation(tmp_path, FakeBilling(), FakePanel(), "tune", module=None,
                                      stdin=form(processingmodule="1", configuration=CONFIG)))
    assert len(selects(reply)["configuration"]) == 2


def test_tune_pricelist_without_a_module_or_panel_leaves_the_form_usable(tmp_path: Path) -> None:
    original = form(configuration=CONFIG)
    assert tune_pricelist(invocation(tmp_path, FakeBilling(), FakePanel(), "tune", module=None,
                                     stdin=original)) == original
    panel = FakePanel()
    panel.failure = DciBusy("Service temporarily unavailable", http_status=503)
    lists = selects(tune_pricelist(invocation(tmp_path, FakeBilling(), panel, "tune",
                                              stdin=original)))
    assert lists["configuration"] == [(CONFIG, f"{CONFIG} (not in DCImanager 6)")]
    assert lists["os_template"] == [("", "(none)")]


# --- tune_connection ------------------------------------------------------------------------


class RecordingClient:
    """Stands in for DciClient in tune_connection: records how it was built."""

    made: list[tuple[str, str, str]] = []

    def __init__(self, url: str, email: str, password: str, **_: object) -> None:
        RecordingClient.made.append((url, email, password))

    @classmethod
    def from_settings(cls, settings: ModuleSettings, paths: object) -> RecordingClient:
        return cls(settings.url, settings.username, settings.password.get_secret_value())

    def locations(self) -> list[Location]:
        return [Location(id=3, name="Moscow"), Location(id=1, name="Amsterdam")]


@pytest.fixture
def recording_client(monkeypatch: pytest.MonkeyPatch) -> type[RecordingClient]:
    RecordingClient.made = []
    monkeypatch.setattr("dci6_processing.dci.client.DciClient", RecordingClient)
    return RecordingClient


def test_tune_connection_lists_locations(tmp_path: Path,
                                         recording_client: type[RecordingClient]) -> None:
    stdin = form(url=PANEL_URL, username=ADMIN, password="Typed-S3cret", location_id="7")
    lists = selects(tune_connection(invocation(tmp_path, FakeBilling(), FakePanel(), "tune",
                                               stdin=stdin, module=None)))
    assert lists["location_id"] == [("", "Any location"), ("1", "Amsterdam (id 1)"),
                                    ("3", "Moscow (id 3)"), ("7", "7 (not in DCImanager 6)")]
    assert recording_client.made == [(PANEL_URL, ADMIN, "Typed-S3cret")]


def test_tune_connection_reuses_the_stored_password_for_the_same_panel_only(
        tmp_path: Path, recording_client: type[RecordingClient]) -> None:
    same = form(url=PANEL_URL + "/", username=ADMIN.upper(), password="")
    tune_connection(invocation(tmp_path, FakeBilling(), FakePanel(), "tune", stdin=same))
    assert recording_client.made == [(PANEL_URL, ADMIN.upper(), STORED_PASSWORD)]

    elsewhere = form(url="https://attacker.example", username=ADMIN, password="")
    reply = tune_connection(invocation(tmp_path, FakeBilling(), FakePanel(), "tune",
                                       stdin=elsewhere))
    assert len(recording_client.made) == 1  # the stored password never goes to another URL
    assert reply == elsewhere


def test_tune_connection_with_an_incomplete_form_returns_it_as_is(
        tmp_path: Path, recording_client: type[RecordingClient]) -> None:
    for stdin in (form(url="", username="", password=""), form(url="not a url", username="x")):
        assert tune_connection(invocation(tmp_path, FakeBilling(), FakePanel(), "tune",
                                          stdin=stdin, module=None)) == stdin
    assert recording_client.made == []


# --- checkparam: tariffs --------------------------------------------------------------------


def check_tariff(tmp_path: Path, panel: FakePanel | None = None, billing: FakeBilling | None = None,
                 /, **fields: str) -> None:
    stdin = form(**{**TARIFF, **fields})
    check_param(invocation(tmp_path, billing or FakeBilling(), panel or FakePanel(), "checkparam",
                           stdin=stdin))


def test_a_good_tariff_passes(tmp_path: Path) -> None:
    check_tariff(tmp_path)


@pytest.mark.parametrize(
    ("fields", "error", "obj"),
    [
        ({"configuration": "nope"}, ErrorType.configuration_not_found, "nope"),
        ({"configuration": "E5-2690v4"}, ErrorType.no_free_server, "E5-2690v4"),
        ({"os_template": "Plan 9"}, ErrorType.os_template_not_found, "os_template"),
        ({"ipv4_pool": "10"}, ErrorType.ip_pool_not_found, "ipv4_pool"),  # an IPv6 pool
        ({"ipv6_pool": "public-v4"}, ErrorType.ip_pool_not_found, "ipv6_pool"),
        ({"diag_pool": "77"}, ErrorType.ip_pool_not_found, "diag_pool"),
        ({"ipv4_pool": ""}, ErrorType.invalid_param, "ipv4_pool"),
        ({"owner_on_close": "admin@localhost"}, ErrorType.invalid_param, "owner_on_close"),
        ({"owner_on_close": "no-at-sign"}, ErrorType.invalid_param, "owner_on_close"),
        ({"configuration": ""}, ErrorType.invalid_param, "configuration"),
    ],
)
def test_tariff_problems_name_what_to_fix(tmp_path: Path, fields: dict[str, str],
                                          error: ErrorType, obj: str) -> None:
    problem = error_of(lambda: check_tariff(tmp_path, **fields))
    assert (problem.type, problem.object) == (error, obj)


def test_unknown_configuration_lists_the_known_ones(tmp_path: Path) -> None:
    problem = error_of(lambda: check_tariff(tmp_path, configuration="nope"))
    assert problem.value == f"available: E5-2690v4, {CONFIG}"


def test_without_managed_ips_no_ipv4_pool_is_needed(tmp_path: Path) -> None:
    check_tariff(tmp_path, ipv4_pool="", dont_manage_ips="on")


def test_stock_is_counted_in_the_modules_location(tmp_path: Path) -> None:
    panel = FakePanel()
    billing = FakeBilling(location_id="2")
    problem = error_of(lambda: check_tariff(tmp_path, panel, billing))
    assert (problem.type, problem.object, problem.value) == (ErrorType.no_free_server, CONFIG,
                                                             "2")
    panel.free_in_location[(CONFIG, 2)] = [Server(id=5)]
    check_tariff(tmp_path, panel, billing)


def test_an_unknown_module_location_is_reported(tmp_path: Path) -> None:
    problem = error_of(lambda: check_tariff(tmp_path, None, FakeBilling(location_id="9")))
    assert (problem.type, problem.value) == (ErrorType.location_not_found, "9")


def test_a_tariff_form_needs_its_module(tmp_path: Path) -> None:
    problem = error_of(lambda: check_param(invocation(
        tmp_path, FakeBilling(), FakePanel(), "checkparam", module=None, stdin=form(**TARIFF))))
    assert (problem.type, problem.object) == (ErrorType.missing_option, "module")


# --- checkparam: services -------------------------------------------------------------------


def service(status: int = ServiceStatus.ordered, **params: str) -> Service:
    return Service(id=42, module=MODULE, status=status, pricelist=3, account_id=7,
                   client_email="client@example.com", params=params, addons={"ip6": "1"},
                   tariff_raw=TARIFF)


def check_service(tmp_path: Path, svc: Service, panel: FakePanel | None = None,
                  param: str | None = None, value: str | None = None) -> None:
    billing = FakeBilling()
    billing.services[42] = svc
    check_param(invocation(tmp_path, billing, panel or FakePanel(), "check_param", item=42,
                           module=None, param=param, value=value))


def test_a_good_service_passes(tmp_path: Path) -> None:
    check_service(tmp_path, service(ostempl="3"))


def test_the_param_being_changed_is_checked(tmp_path: Path) -> None:
    problem = error_of(lambda: check_service(tmp_path, service(ostempl="3"), param="ostempl",
                                             value="999"))
    assert (problem.type, problem.object, problem.value) == (ErrorType.os_template_not_found,
                                                             "ostempl", "999")


def test_a_preset_server_must_exist_and_be_free_or_the_clients(tmp_path: Path) -> None:
    panel = FakePanel()
    problem = error_of(lambda: check_service(tmp_path, service(dci_server_id="17"), panel))
    assert (problem.type, problem.value) == (ErrorType.server_not_found, "17")
    panel.servers[17] = Server(id=17, owner=9, owner_email="other@example.org")
    problem = error_of(lambda: check_service(tmp_path, service(dci_server_id="17"), panel))
    assert problem.type is ErrorType.server_in_use
    panel.servers[17] = Server(id=17, owner=5, owner_email="client@example.com")
    check_service(tmp_path, service(dci_server_id="17"), panel)


def test_an_open_service_needs_no_stock(tmp_path: Path) -> None:
    panel = FakePanel()
    panel.configurations_list[0] = Configuration(configuration=CONFIG, free_server_count=0)
    panel.servers[17] = Server(id=17, owner=5, owner_email="client@example.com")
    check_service(tmp_path, service(ServiceStatus.active, dci_server_id="17"), panel)
    problem = error_of(lambda: check_service(tmp_path, service(), panel))
    assert problem.type is ErrorType.no_free_server


def test_ipv6_ordered_needs_a_pool(tmp_path: Path) -> None:
    svc = service().model_copy(update={"tariff_raw": {**TARIFF, "ipv6_pool": ""}})
    problem = error_of(lambda: check_service(tmp_path, svc))
    assert (problem.type, problem.object) == (ErrorType.invalid_param, "ipv6_pool")


def test_an_os_is_needed_from_the_order_or_the_tariff(tmp_path: Path) -> None:
    svc = service().model_copy(update={"tariff_raw": {**TARIFF, "os_template": ""}})
    problem = error_of(lambda: check_service(tmp_path, svc))
    assert (problem.type, problem.object) == (ErrorType.invalid_param, "os_template")


def test_the_configurations_are_read_once(tmp_path: Path) -> None:
    panel = FakePanel()
    check_service(tmp_path, service(ostempl="1"), panel)
    assert panel.request_counts["server.configuration.list"] == 1


def test_module_constants() -> None:
    assert catalogue.OPTIONAL_SELECTS < set(CATALOGUE_PARAMS)
