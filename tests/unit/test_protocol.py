"""protocol.py: the XML BILLmanager reads from us and the XML it hands us."""

from __future__ import annotations

import pytest
from lxml import etree

from dci6_processing import protocol
from dci6_processing.errors import ErrorType, ModuleError


def test_features_lists_itemtype_params_and_features_in_order() -> None:
    doc = etree.fromstring(protocol.features_xml(["check_connection", "open", "open", "close"]))
    assert [e.get("name") for e in doc.findall("itemtypes/itemtype")] == ["dedic"]
    params = {e.get("name"): e.get("crypted") for e in doc.findall("params/param")}
    assert list(params) == [name for name, _ in protocol.CONNECTION_PARAMS]
    assert params["password"] == "yes"
    assert [name for name, crypted in params.items() if crypted] == ["password"]
    assert [e.get("name") for e in doc.findall("features/feature")] == [
        "check_connection",
        "open",
        "close",
    ]


def test_connection_params_match_the_settings_model() -> None:
    from dci6_processing.settings import ModuleSettings

    assert [name for name, _ in protocol.CONNECTION_PARAMS] == list(ModuleSettings.model_fields)


def test_ok_xml() -> None:
    doc = etree.fromstring(protocol.ok_xml())
    assert doc.tag == "doc"
    assert [child.tag for child in doc] == ["ok"]


def test_error_xml_has_the_c_shape() -> None:
    err = ModuleError(ErrorType.no_free_server, object="i9-9900K", value="2", detail="log only")
    doc = etree.fromstring(protocol.error_xml(err))
    error = doc.find("error")
    assert error is not None
    assert error.get("type") == "no_free_server"
    assert error.get("object") == "i9-9900K"
    obj = error.find("param[@name='object']")
    assert obj is not None
    assert (obj.get("type"), obj.get("msg"), obj.text) == ("msg", "i9-9900K", "i9-9900K")
    assert error.findtext("param[@name='value']") == "2"
    assert b"log only" not in protocol.error_xml(err)


def test_error_xml_escapes_markup_and_drops_control_characters() -> None:
    err = ModuleError(ErrorType.panel_error, object='a"<b>&', value="bad\x00\x07 </error>")
    raw = protocol.error_xml(err)
    doc = etree.fromstring(raw)
    error = doc.find("error")
    assert error is not None
    assert error.get("object") == 'a"<b>&'
    assert error.findtext("param[@name='value']") == "bad </error>"
    assert len(doc) == 1


@pytest.mark.parametrize("stdin", [b"", b"   \n", b"<doc>", b"not xml", b"<doc></dok>"])
def test_parse_input_rejects_empty_and_malformed(stdin: bytes) -> None:
    with pytest.raises(ModuleError) as caught:
        protocol.parse_input(stdin)
    assert caught.value.type is ErrorType.bad_input


def test_parse_input_never_echoes_the_input() -> None:
    with pytest.raises(ModuleError) as caught:
        protocol.parse_input(b"<doc><password>hunter2-secret</password>")
    assert "hunter2" not in caught.value.value
    assert "hunter2" not in caught.value.object


@pytest.mark.parametrize(
    "stdin",
    [
        b'<!DOCTYPE doc [<!ENTITY e SYSTEM "file:///etc/passwd">]><doc>&e;</doc>',
        b'<!DOCTYPE doc [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><doc>&b;</doc>',
        b'<!DOCTYPE doc SYSTEM "http://127.0.0.1:9/evil.dtd"><doc/>',
        b"<!DOCTYPE doc><doc/>",
    ],
)
def test_parse_input_refuses_any_doctype(stdin: bytes) -> None:
    with pytest.raises(ModuleError) as caught:
        protocol.parse_input(stdin)
    assert caught.value.type is ErrorType.bad_input
    assert "DOCTYPE" in caught.value.value


def test_processingmodule_params_from_check_connection_input() -> None:
    doc = protocol.parse_input(
        b"<?xml version='1.0' encoding='UTF-8'?>"
        b"<doc><processingmodule><url>https://dci.example</url><username>a@b.c</username>"
        b"<password>p&amp;w</password><verify_tls/></processingmodule><url>ignored</url></doc>"
    )
    assert protocol.processingmodule_params(doc) == {
        "url": "https://dci.example",
        "username": "a@b.c",
        "password": "p&w",
        "verify_tls": "",
    }


def test_processingmodule_params_from_a_flat_form() -> None:
    doc = protocol.parse_input(
        b"<doc><url>https://dci.example</url><location_id>2</location_id><elid>7</elid>"
        b'<slist name="location_id"><val key="1">one</val></slist><!-- c --></doc>'
    )
    assert protocol.processingmodule_params(doc) == {
        "url": "https://dci.example",
        "location_id": "2",
    }


def test_fill_select_replaces_the_list_of_that_field_only() -> None:
    doc = protocol.parse_input(
        b'<doc><configuration>b</configuration><slist name="configuration"><val key="old">x'
        b'</val></slist><slist name="os_template"><val key="1">Ubuntu</val></slist></doc>'
    )
    protocol.fill_select(doc, "configuration", [("a", "A <1>"), ("b", "B & co")])
    reparsed = etree.fromstring(protocol.to_bytes(doc))
    assert protocol.select_options(reparsed, "configuration") == [("a", "A <1>"), ("b", "B & co")]
    assert protocol.select_options(reparsed, "os_template") == [("1", "Ubuntu")]
    assert len(reparsed.findall("slist[@name='configuration']")) == 1
    assert reparsed.findtext("configuration") == "b"
    assert protocol.select_options(reparsed, "ipv4_pool") == []


def test_form_values_skip_structure() -> None:
    doc = protocol.parse_input(
        b"<doc><configuration>x</configuration><tparams><a>1</a></tparams><sok>ok</sok></doc>"
    )
    assert protocol.form_values(doc) == {"configuration": "x"}


def test_control_panel_xml_has_the_shape_billmanager_reads() -> None:
    reply = protocol.control_panel_xml("https://dci.example/auth/key-v4/k-1?a=1&b=<2>",
                                       keyname="dci", name="DCImanager 6")
    doc = etree.fromstring(reply)
    assert [child.tag for child in doc] == ["url", "panelcount", "panelname"]
    assert doc.findtext("url") == "https://dci.example/auth/key-v4/k-1?a=1&b=<2>"
    assert doc.findtext("panelcount") == "1"
    panel = doc.find("panelname")
    assert panel is not None and (panel.get("keyname"), panel.text) == ("dci", "DCImanager 6")
    assert b"&amp;" in reply and b"<2>" not in reply  # escaped, never raw markup
