"""The panel's catalogue brought into BILLmanager, through the real binary: get_server_config,
the tariff and connection form tunes, and checkparam."""

from __future__ import annotations

import subprocess

from lxml import etree

from tests.e2e.conftest import CONFIGURATION, MODULE, Sandbox

TARIFF_FORM = {"configuration": CONFIGURATION, "os_template": "1", "ipv4_pool": "1",
               "ipv6_pool": "10", "diag_pool": "2"}


def form(**fields: str) -> bytes:
    doc = etree.Element("doc")
    for name, text in fields.items():
        etree.SubElement(doc, name).text = text
    return etree.tostring(doc)


def reply(result: object) -> etree._Element:
    assert isinstance(result, subprocess.CompletedProcess)
    assert b"Traceback" not in result.stdout + result.stderr
    return etree.fromstring(result.stdout)


def error(result: object) -> tuple[str, str, str]:
    doc = reply(result)
    assert isinstance(result, subprocess.CompletedProcess) and result.returncode != 0
    err = doc.find("error")
    assert err is not None, etree.tostring(doc)
    return str(err.get("type")), str(err.get("object")), str(err.get("value"))


def ok(result: object) -> None:
    doc = reply(result)
    assert isinstance(result, subprocess.CompletedProcess)
    assert result.returncode == 0, result.stdout
    assert doc.find("ok") is not None


def test_get_server_config_publishes_the_catalogue(sandbox: Sandbox) -> None:
    ok(sandbox.run("get_server_config", None, "--module", str(MODULE)))

    configurations = dict(sandbox.host.catalogue(MODULE, "configuration"))
    assert CONFIGURATION in configurations
    assert configurations[CONFIGURATION].startswith(f"{CONFIGURATION} (")
    assert configurations[CONFIGURATION].endswith(" free)")
    assert ("2", "Debian 12 (linux)") in sandbox.host.catalogue(MODULE, "os_template")
    assert dict(sandbox.host.catalogue(MODULE, "ipv4_pool"))["1"] == "public-v4"
    assert [value for value, _ in sandbox.host.catalogue(MODULE, "ipv6_pool")] == ["10"]
    assert "2" in dict(sandbox.host.catalogue(MODULE, "diag_pool"))
    assert len(sandbox.host.catalogue(MODULE, "location")) >= 2


def test_a_refresh_follows_the_panels_configurations(sandbox: Sandbox) -> None:
    ok(sandbox.run("get_server_config", None, "--module", str(MODULE)))
    assert "Custom-Build-1" not in dict(sandbox.host.catalogue(MODULE, "configuration"))
    spare = next(s for s in sandbox.sim.servers() if s["configuration"] == CONFIGURATION
                 and s["owner"] is None and not s["is_new"])
    sandbox.sim.update_server(int(spare["id"]), configuration="Custom-Build-1")

    ok(sandbox.run("get_server_config", None, "--module", str(MODULE)))

    published = dict(sandbox.host.catalogue(MODULE, "configuration"))
    assert published["Custom-Build-1"] == "Custom-Build-1 (1 free)"
    assert CONFIGURATION in published


def test_the_tariff_form_gets_its_lists(sandbox: Sandbox) -> None:
    doc = reply(sandbox.run("pricelist_dynamic_settings_tune", None, "--module", str(MODULE),
                            stdin=form(**TARIFF_FORM)))
    lists = {s.get("name"): [v.get("key") for v in s.findall("val")] for s in doc.findall("slist")}
    assert CONFIGURATION in lists["configuration"]
    assert {"1", "2", "3", "4"} <= set(lists["os_template"])
    assert "10" in lists["ipv6_pool"] and "10" not in lists["ipv4_pool"]
    assert doc.findtext("configuration") == CONFIGURATION


def test_the_connection_form_gets_the_locations(sandbox: Sandbox) -> None:
    connection = form(url=sandbox.sim.url, username=sandbox.sim.admin_email,
                      password=sandbox.sim.admin_password)
    result = sandbox.run("tune_connection", None, stdin=connection)
    doc = reply(result)
    keys = [v.get("key") for v in doc.findall("slist[@name='location_id']/val")]
    assert keys[0] == "" and "1" in keys
    assert sandbox.sim.admin_password.encode() not in sandbox.host.paths.log_file.read_bytes()


def test_checkparam_accepts_a_good_tariff(sandbox: Sandbox) -> None:
    ok(sandbox.run("checkparam", None, "--module", str(MODULE), stdin=form(**TARIFF_FORM)))


def test_checkparam_names_what_to_fix(sandbox: Sandbox) -> None:
    cases = [
        ({"configuration": "Pentium-II-64Mb"}, ("configuration_not_found", "Pentium-II-64Mb")),
        ({"os_template": "Plan 9"}, ("os_template_not_found", "os_template")),
        ({"ipv4_pool": "10"}, ("ip_pool_not_found", "ipv4_pool")),
        ({"diag_pool": "diag-v6"}, ("ip_pool_not_found", "diag_pool")),
        ({"owner_on_close": "reseller@localhost"}, ("invalid_param", "owner_on_close")),
    ]
    for fields, (kind, obj) in cases:
        result = sandbox.run("checkparam", None, "--module", str(MODULE),
                             stdin=form(**{**TARIFF_FORM, **fields}))
        assert error(result)[:2] == (kind, obj), fields


def test_checkparam_reports_a_configuration_out_of_stock(sandbox: Sandbox) -> None:
    for server in sandbox.sim.servers():
        if server["configuration"] == CONFIGURATION:
            sandbox.sim.update_server(int(server["id"]), is_new=True)  # awaiting diagnostics

    result = sandbox.run("checkparam", None, "--module", str(MODULE), stdin=form(**TARIFF_FORM))

    assert error(result)[:2] == ("no_free_server", CONFIGURATION)


def test_check_param_on_a_service_checks_the_change(sandbox: Sandbox) -> None:
    item = sandbox.order(302)
    ok(sandbox.run("check_param", item, "--param", "ostempl", "--value", "4"))
    kind, obj, value = error(sandbox.run("check_param", item, "--param", "ostempl",
                                         "--value", "99"))
    assert (kind, obj, value) == ("os_template_not_found", "ostempl", "99")
    kind, _, value = error(sandbox.run("check_param", item, "--param", "dci_server_id",
                                       "--value", "999999"))
    assert (kind, value) == ("server_not_found", "999999")
