"""BILLmanager's side of the wire: the XML this module reads on stdin and prints on stdout.

Only lxml, the error catalogue and BILLmanager's names are imported here: `features` runs
through this module and must stay fast, and nothing here touches the network.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from lxml import etree

from dci6_processing.billmanager import ItemType
from dci6_processing.errors import ErrorType, ModuleError

ITEMTYPE = ItemType.DEDIC

# Connection params in the processing module form, in form order; True = stored encrypted.
CONNECTION_PARAMS: tuple[tuple[str, bool], ...] = (
    ("url", False),
    ("username", False),
    ("password", True),
    ("by_server_type", False),
    ("verify_tls", False),
    ("ca_bundle", False),
    ("location_id", False),
    ("diagtimeout", False),
    ("installtimeout_linux", False),
    ("installtimeout_windows", False),
    ("connect_timeout", False),
    ("read_timeout", False),
    ("request_deadline", False),
    ("max_answer_mb", False),
    ("sync_workers", False),
)

# Children of a form document that are not field values (tune_* commands echo whole forms).
_FORM_STRUCTURE_TAGS = frozenset(
    {"slist", "tparams", "metadata", "messages", "elid", "plid", "page", "func", "sok"}
)

# XML 1.0 forbids these characters even escaped; a panel message could carry them.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

_MAX_INPUT_BYTES = 16 * 1024 * 1024


def _clean(text: str) -> str:
    return _XML_ILLEGAL.sub("", text)


def to_bytes(doc: etree._Element) -> bytes:
    """Serialize a reply document as UTF-8 without an XML declaration (BILLmanager's own form)."""
    return etree.tostring(doc, encoding="UTF-8")


def features_xml(features: Iterable[str]) -> bytes:
    """The capabilities answer: item type, connection params (secrets crypted) and features."""
    doc = etree.Element("doc")
    itemtypes = etree.SubElement(doc, "itemtypes")
    etree.SubElement(itemtypes, "itemtype", name=ITEMTYPE)
    params = etree.SubElement(doc, "params")
    for name, crypted in CONNECTION_PARAMS:
        param = etree.SubElement(params, "param", name=name)
        if crypted:
            param.set("crypted", "yes")
    listed = etree.SubElement(doc, "features")
    for name in dict.fromkeys(features):
        etree.SubElement(listed, "feature", name=name)
    return to_bytes(doc)


def control_panel_xml(url: str, *, keyname: str, name: str) -> bytes:
    """transition_controlpanel's answer: BILLmanager sends the client's browser to `url`
    (shape of ISPsystem's own module, ISPsystemLLC/billmanager
    processing/game_server/bill-pter-bridge/commands/_transition_control_panel.py)."""
    doc = etree.Element("doc")
    etree.SubElement(doc, "url").text = _clean(url)
    etree.SubElement(doc, "panelcount").text = "1"
    etree.SubElement(doc, "panelname", keyname=_clean(keyname)).text = _clean(name)
    return to_bytes(doc)


def ok_xml() -> bytes:
    return b"<doc><ok/></doc>"


def error_xml(err: ModuleError) -> bytes:
    """`<doc><error type=T object=O value=V>` with the object and value params BILLmanager
    substitutes into the descriptor's msg_error_<type> as __object__ and __value__."""
    doc = etree.Element("doc")
    error = etree.SubElement(doc, "error")
    error.set("type", _clean(str(err.type)))
    error.set("object", _clean(err.object))
    error.set("value", _clean(err.value))
    obj = etree.SubElement(error, "param", name="object", type="msg", msg=_clean(err.object))
    obj.text = _clean(err.object)
    value = etree.SubElement(error, "param", name="value")
    value.text = _clean(err.value)
    return to_bytes(doc)


def _hardened_parser() -> etree.XMLParser:
    # No DTD, no entity expansion, no network: stdin is data, never instructions to the parser.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def parse_input(stdin: bytes) -> etree._Element:
    """Parse BILLmanager's stdin XML; anything but a plain well-formed document is bad_input.

    The input is never echoed into the error: it may hold the panel password.
    """
    if not stdin or not stdin.strip():
        raise ModuleError(ErrorType.bad_input, object="stdin", value="empty")
    if len(stdin) > _MAX_INPUT_BYTES:
        raise ModuleError(ErrorType.bad_input, object="stdin", value="too large")
    try:
        root = etree.fromstring(stdin, _hardened_parser())
    except etree.XMLSyntaxError as exc:
        line, column = exc.position
        raise ModuleError(
            ErrorType.bad_input,
            object="stdin",
            value=f"malformed XML at line {line}, column {column}",
            detail=str(exc.msg),
        ) from None
    if root.getroottree().docinfo.internalDTD is not None:
        raise ModuleError(ErrorType.bad_input, object="stdin", value="DOCTYPE not accepted")
    return root


def _leaf_values(parent: etree._Element) -> dict[str, str]:
    values: dict[str, str] = {}
    for child in parent:
        if not isinstance(child.tag, str) or len(child):
            continue
        values[child.tag] = child.text or ""
    return values


def processingmodule_params(doc: etree._Element) -> dict[str, str]:
    """Connection values from `<processingmodule>` (check_connection) or, when that element is
    absent, from the flat form fields of a connection form (tune_connection)."""
    module = doc.find("processingmodule")
    if module is not None:
        return _leaf_values(module)
    return form_values(doc)


def form_values(doc: etree._Element) -> dict[str, str]:
    """The flat field values of a form document (tariff or connection form)."""
    return {
        name: value for name, value in _leaf_values(doc).items() if name not in _FORM_STRUCTURE_TAGS
    }


def fill_select(doc: etree._Element, field: str, options: list[tuple[str, str]]) -> None:
    """Replace the select list of `field` with (key, label) options:
    `<slist name="field"><val key="k">label</val></slist>`."""
    for stale in doc.findall("slist"):
        if stale.get("name") == field:
            doc.remove(stale)
    slist = etree.SubElement(doc, "slist", name=field)
    for key, label in options:
        val = etree.SubElement(slist, "val", key=_clean(key))
        val.text = _clean(label)


def select_options(doc: etree._Element, field: str) -> list[tuple[str, str]]:
    """The (key, label) options of a field's select list, as fill_select wrote them."""
    for slist in doc.findall("slist"):
        if slist.get("name") == field:
            return [(val.get("key") or "", val.text or "") for val in slist.findall("val")]
    return []
