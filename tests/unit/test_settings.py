from __future__ import annotations

import pytest

from dci6_processing.errors import ErrorType, ModuleError
from dci6_processing.settings import OrderAddons, Service, TariffOptions, module_settings, parse

CONNECTION = {"url": "dci.example.com/", "username": "admin@example.com", "password": "s3cret"}


def test_module_settings_defaults_and_url_normalised() -> None:
    settings = module_settings({**CONNECTION, "diagtimeout": "", "by_server_type": "off"})
    assert settings.url == "https://dci.example.com"
    assert settings.diagtimeout == 60 and settings.installtimeout_windows == 120
    assert settings.by_server_type is False and settings.verify_tls is True
    assert settings.timeout_for("windows") == 120 and settings.timeout_for("linux") == 60


@pytest.mark.parametrize("name", ["diagtimeout", "installtimeout_linux", "installtimeout_windows"])
@pytest.mark.parametrize("value", ["0", "721", "ten"])
def test_timeouts_outside_1_to_720_are_refused(name: str, value: str) -> None:
    with pytest.raises(ModuleError) as err:
        module_settings({**CONNECTION, name: value})
    assert err.value.type is ErrorType.invalid_param
    assert err.value.object == name and err.value.value == value


def test_a_bad_password_value_is_never_echoed() -> None:
    with pytest.raises(ModuleError) as err:
        module_settings({"url": "x", "username": "a@b", "password": None})
    assert err.value.object == "password" and err.value.value == ""


def test_switches_and_blank_values() -> None:
    tariff = parse(TariffOptions, {"configuration": " c1 ", "no_wait_install": "on",
                                   "ipv4_pool": "", "diag_template": ""})
    assert tariff.configuration == "c1" and tariff.no_wait_install
    assert tariff.ipv4_pool is None and tariff.diag_template == "Diag6"
    assert tariff.shutdown_on_close and tariff.ports_off_on_close and not tariff.skip_disk_clean
    with pytest.raises(ModuleError):
        parse(TariffOptions, {"configuration": "c1", "temp_ipv4": "maybe"})
    with pytest.raises(ModuleError) as err:
        parse(TariffOptions, {"configuration": "c1", "owner_on_close": "stock"})
    assert err.value.object == "owner_on_close"


@pytest.mark.parametrize("v4", ["ip", "IP", "ipv4", "IPv4"])
@pytest.mark.parametrize("v6", ["ip6", "IP6", "ipv6", "IPv6"])
def test_every_addon_spelling_of_the_guide(v4: str, v6: str) -> None:
    order = OrderAddons.from_billing({}, {v4: "3", v6: "2", "IPv6_prefix": "64"})
    assert (order.ipv4_count, order.ipv6_count, order.ipv6_prefix) == (3, 2, 64)


def test_addon_limits() -> None:
    assert OrderAddons.from_billing({}, {}).ipv4_count == 1
    assert OrderAddons.from_billing({"ostempl": "7"}, {"os": "3"}).os_template == "7"
    assert OrderAddons.from_billing({}, {"OS": "Debian 12"}).os_template == "Debian 12"
    for addons in ({"ip": "0"}, {"ip6_prefix": "63"}, {"ip6_prefix": "129"}):
        with pytest.raises(ModuleError) as err:
            OrderAddons.from_billing({}, addons)
        assert err.value.type is ErrorType.invalid_param


def test_service_server_id() -> None:
    base = {"id": 1, "module": 1, "status": 1, "pricelist": 1, "account_id": 1,
            "client_email": "c@example.com"}
    assert Service(**base).bookkeeping.recorded_server() is None
    assert Service(**base, params={"dci_server_id": " 42 "}).bookkeeping.recorded_server() == 42
    with pytest.raises(ModuleError):
        Service(**base, params={"dci_server_id": "42; drop"}).bookkeeping.recorded_server()
