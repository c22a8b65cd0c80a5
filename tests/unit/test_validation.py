"""The panel URL and the order's host name are checked before anything is sent: a clear
msg_error_bad_url / msg_error_bad_hostname saying what is wrong, never a confusing later error."""

from __future__ import annotations

import pytest
import responses
from structlog.testing import capture_logs

from dci6_processing.dci.session import DciSession
from dci6_processing.errors import ErrorType, ModuleError
from dci6_processing.settings import module_settings
from dci6_processing.validation import hostname, panel_url


@pytest.mark.parametrize(("raw", "expected"), [
    ("https://dci.example.com", "https://dci.example.com"),
    ("https://dci.example.com/", "https://dci.example.com"),
    ("  HTTPS://dci.example.com:8443/ ", "https://dci.example.com:8443"),
    ("http://10.0.0.5:1500", "http://10.0.0.5:1500"),
    ("dci.example.com", "https://dci.example.com"),
    ("dci.example.com:8443", "https://dci.example.com:8443"),
    ("dci.example.com:8443/", "https://dci.example.com:8443"),
    ("https://[2001:db8::1]:8443", "https://[2001:db8::1]:8443"),
    ("https://localhost", "https://localhost"),
])
def test_good_urls(raw: str, expected: str) -> None:
    assert panel_url(raw) == expected


@pytest.mark.parametrize(("raw", "why"), [
    ("https://dci.example.com/some/path", "a path (/some/path)"),
    ("https://dci.example.com/dcimgr/", "a path (/dcimgr/)"),
    ("https://dci.example.com?x=1", "a query"),
    ("https://dci.example.com/?", "a query"),
    ("https://dci.example.com#top", "a fragment"),
    ("https://admin:secret@dci.example.com", "user info"),
    ("https://admin@dci.example.com", "user info"),
    ("file:/etc/passwd", "the scheme file:"),
    ("file:///etc/passwd", "the scheme file://"),
    ("ftp://dci.example.com", "the scheme ftp://"),
    ("javascript:alert(1)", "the scheme javascript:"),
    ("https://", "no host"),
    ("", "empty"),
    ("https://dci.example.com:99999", "port"),
    ("https://dci.example.com:0", "port"),
    ("https://dci.example.com:", "port"),
    ("https://dci example.com", "space"),
    ("https://dci_example!.com", "not a host name"),
    ("https://[not-ipv6]", "not a host name"),
])
def test_bad_urls_say_what_is_wrong(raw: str, why: str) -> None:
    with pytest.raises(ModuleError) as caught:
        panel_url(raw)
    assert caught.value.type is ErrorType.bad_url
    assert why in caught.value.value


def test_user_info_never_reaches_the_error() -> None:
    with pytest.raises(ModuleError) as caught:
        panel_url("https://admin:hunter2@dci.example.com")
    assert "hunter2" not in caught.value.object + caught.value.value


def test_every_reader_of_the_module_settings_gets_bad_url() -> None:
    with pytest.raises(ModuleError) as caught:
        module_settings({"url": "https://dci.example.com/some/path", "username": "a@b.c",
                         "password": "p"})
    assert caught.value.type is ErrorType.bad_url


def test_the_session_refuses_a_bad_url_before_any_request() -> None:
    with responses.RequestsMock() as panel, pytest.raises(ModuleError) as caught:
        DciSession("https://dci.example.com/api", "a@b.c", "p")
    assert caught.value.type is ErrorType.bad_url
    assert len(panel.calls) == 0


def test_plain_http_is_accepted_with_a_warning() -> None:
    with capture_logs() as logs:
        session = DciSession("http://plain.example", "a@b.c", "p")
    assert session.base_url == "http://plain.example"
    assert any(entry["event"] == "dci.plain_http" for entry in logs)


@pytest.mark.parametrize("name", [
    "srv1", "srv-1.example.com", "1srv", "a" * 63, ".".join(["a" * 63] * 3) + "." + "b" * 61,
    "10.0.0.1", "xn--80ak6aa92e.com",
])
def test_good_hostnames(name: str) -> None:
    assert hostname(name) == name


@pytest.mark.parametrize("name", [
    "", "-srv", "srv-", "srv_1", "srv 1", "a" * 64, "srv..example", ".srv", "srv.",
    ".".join(["a" * 63] * 4), "srv;reboot", "сервер", "srv\n1", "$(id)",
])
def test_bad_hostnames(name: str) -> None:
    with pytest.raises(ModuleError) as caught:
        hostname(name)
    assert caught.value.type is ErrorType.bad_hostname
