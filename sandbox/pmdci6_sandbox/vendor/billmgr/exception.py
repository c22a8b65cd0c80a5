"""XmlException as in the public vendor copy (billmgr/exception.py)."""

import traceback
import xml.etree.ElementTree as ET

import billmgr.logger

logger = billmgr.logger.get_logger("billmgr_exception")


def _backtrace():
    return traceback.format_exc()


def log_backtrace():
    logger.extinfo("%s", _backtrace())


class XmlException(Exception):
    """An error BILLmanager shows as <error type=... object=...>."""

    def __init__(self, err_type: str, err_object="", err_value=""):
        self.params = {}
        self.err_type = err_type
        self.err_object = err_object
        self.err_value = err_value
        self.add_param("value", err_value)
        message = f"Type: '{self.err_type}' Object: '{self.err_object}' Value: '{self.err_value}'"
        super().__init__(message)
        logger.error("%s", message)

    def add_param(self, name: str, value: str):
        self.params[name] = value

    def as_xml(self):
        doc = ET.Element("doc")
        error = ET.SubElement(doc, "error")
        error.set("type", self.err_type)
        error.set("object", str(self.err_object))
        for name, value in self.params.items():
            param_node = ET.SubElement(error, "param")
            param_node.text = str(value)
            param_node.set("name", name)
        return ET.tostring(doc, encoding="unicode")

    def as_module_error(self):
        doc = ET.Element("doc")
        error = ET.SubElement(doc, "error")
        error.set("type", self.err_type)
        error.set("object", str(self.err_object))
        error.set("value", str(self.err_value))
        ET.SubElement(error, "backtrace").text = _backtrace()
        return ET.tostring(doc, encoding="unicode")
