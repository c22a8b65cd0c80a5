"""xml/billmgr_mod_pmdci6.xml: the forms and messages BILLmanager shows for this module.

The descriptor, the code and the tests agree on names: every connection param, every tariff
param, the service params, and a msg_error_<type> in English and Russian for every ErrorType.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lxml import etree

from dci6_processing import protocol
from dci6_processing.bookkeeping import Param
from dci6_processing.errors import ErrorType
from dci6_processing.lifecycle.panel_access import CREATED, EXISTING
from dci6_processing.settings import ModuleSettings, TariffOptions

LANGS = ("en", "ru")
CONNECTION_FORM = "processing.edit.pmdci6"
TARIFF_FORM = "pricelist.pmdci6"
SERVICE_FORM = "dedic.pmdci6"
SERVICE_PARAMS = ("dci_server_id", "hostname", "username", "password", "dci_manual",
                  "panel_url", "panel_login", "panel_password", "panel_account")
TIMEOUTS = ("diagtimeout", "installtimeout_linux", "installtimeout_windows")
CATALOGUE_SELECTS = ("configuration", "os_template", "ipv4_pool", "ipv6_pool", "diag_pool")
CYRILLIC = re.compile("[\u0400-\u04ff]")


@pytest.fixture(scope="module")
def descriptor(repo_root: Path) -> etree._ElementTree:
    return etree.parse(str(repo_root / "xml" / "billmgr_mod_pmdci6.xml"))


def form_inputs(descriptor: etree._ElementTree, form: str) -> dict[str, etree._Element]:
    """field name -> its input/select element."""
    fields = descriptor.getroot().findall(f"metadata[@name='{form}']//field")
    assert fields, f"form {form} missing"
    found: dict[str, etree._Element] = {}
    for field in fields:
        [control] = list(field)
        assert control.get("name") == field.get("name")
        found[field.get("name") or ""] = control
    return found


def messages(descriptor: etree._ElementTree, lang: str, group: str) -> dict[str, str]:
    msgs = descriptor.getroot().findall(f"lang[@name='{lang}']/messages[@name='{group}']/msg")
    names = [m.get("name") for m in msgs]
    assert len(names) == len(set(names)), f"duplicate messages in {lang}/{group}"
    return {m.get("name") or "": (m.text or "").strip() for m in msgs}


def test_plugin_block(descriptor: etree._ElementTree) -> None:
    [plugin] = descriptor.getroot().findall("plugin[@name='pmdci6']")
    assert plugin.findtext("group") == "processing_module"
    assert [t.get("name") for t in plugin.findall("params/type")] == [protocol.ITEMTYPE]
    for lang in LANGS:
        plugin_msgs = messages(descriptor, lang, "plugin")
        assert {"desc_short_pmdci6", "desc_full_pmdci6", "price_pmdci6"} <= set(plugin_msgs)
        assert messages(descriptor, lang, "label_processing_modules")["pmdci6"]


def test_connection_form_has_every_connection_param(descriptor: etree._ElementTree) -> None:
    inputs = form_inputs(descriptor, CONNECTION_FORM)
    assert list(inputs) == [name for name, _ in protocol.CONNECTION_PARAMS]
    assert set(inputs) == set(ModuleSettings.model_fields)
    assert inputs["password"].get("type") == "password"
    assert inputs["url"].get("required") == "yes"
    assert inputs["location_id"].tag == "select"  # tune_connection fills it from the panel
    for switch in ("by_server_type", "verify_tls"):
        assert inputs[switch].get("type") == "checkbox"
    for timeout in TIMEOUTS:
        assert (inputs[timeout].get("check"), inputs[timeout].get("checkargs")) == ("int", "1,720")


def test_tariff_form_has_every_tariff_param(descriptor: etree._ElementTree) -> None:
    inputs = form_inputs(descriptor, TARIFF_FORM)
    assert set(inputs) == set(TariffOptions.model_fields)
    for name in CATALOGUE_SELECTS:
        assert inputs[name].tag == "select", name
    assert inputs["configuration"].get("required") == "yes"
    switches = {
        name for name, field in TariffOptions.model_fields.items() if field.annotation is bool
    }
    assert switches == {
        "no_wait_install",
        "check_email_verified",
        "dont_manage_ips",
        "shutdown_on_close",
        "ports_off_on_close",
        "skip_disk_clean",
        "temp_ipv4",
        "remove_temp_ip",
    }
    for name in switches:
        assert inputs[name].get("type") == "checkbox", name


def test_service_form(descriptor: etree._ElementTree) -> None:
    inputs = form_inputs(descriptor, SERVICE_FORM)
    assert tuple(inputs) == SERVICE_PARAMS
    assert inputs["password"].get("type") == "password"
    assert messages(descriptor, "en", SERVICE_FORM)["dci_server_id"] == "DCImanager server ID"
    # the client's panel login, as activation saves it (lifecycle.panel_access)
    assert inputs["panel_password"].get("type") == "password"
    assert all(inputs[name].get("readonly") == "yes" for name in SERVICE_PARAMS[5:])
    assert (Param.PANEL_URL, Param.PANEL_LOGIN, Param.PANEL_PASSWORD, Param.PANEL_ACCOUNT) \
        == SERVICE_PARAMS[5:]
    [slist] = descriptor.getroot().findall(f"metadata[@name='{SERVICE_FORM}']/slist")
    assert slist.get("name") == Param.PANEL_ACCOUNT
    assert [m.text for m in slist.findall("msg")] == [CREATED, EXISTING]
    for lang in LANGS:
        assert all(messages(descriptor, lang, SERVICE_FORM).get(v) for v in (CREATED, EXISTING))


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("form", [CONNECTION_FORM, TARIFF_FORM, SERVICE_FORM])
def test_every_field_has_a_label_and_a_hint(
    descriptor: etree._ElementTree, lang: str, form: str
) -> None:
    msgs = messages(descriptor, lang, form)
    for name in form_inputs(descriptor, form):
        assert msgs.get(name), f"{lang}: no label for {form}/{name}"
        assert msgs.get(f"hint_{name}"), f"{lang}: no hint for {form}/{name}"


@pytest.mark.parametrize("lang", LANGS)
def test_every_error_type_has_a_message(descriptor: etree._ElementTree, lang: str) -> None:
    msgs = messages(descriptor, lang, "msgerror")
    expected = {f"msg_error_{member}" for member in ErrorType}
    assert set(msgs) == expected
    assert all(msgs.values())


def test_russian_messages_are_translations(descriptor: etree._ElementTree) -> None:
    for group in ("msgerror", CONNECTION_FORM, TARIFF_FORM, SERVICE_FORM):
        english = messages(descriptor, "en", group)
        russian = messages(descriptor, "ru", group)
        assert set(english) == set(russian), group
        for name, text in russian.items():
            if name.startswith("placeholder_") or text in ("URL",):
                continue
            assert CYRILLIC.search(text), f"ru {group}/{name} is not Russian: {text!r}"
            assert text != english[name]


def test_error_placeholders_are_ones_the_error_xml_sends(descriptor: etree._ElementTree) -> None:
    sent = {"__object__", "__value__"}
    for lang in LANGS:
        for name, text in messages(descriptor, lang, "msgerror").items():
            used = set(re.findall(r"__\w+?__", text))
            assert used <= sent, f"{lang}/{name} uses {used - sent}"
    english = messages(descriptor, "en", "msgerror")
    russian = messages(descriptor, "ru", "msgerror")
    for name, text in english.items():
        assert set(re.findall(r"__\w+?__", text)) == set(re.findall(r"__\w+?__", russian[name]))
