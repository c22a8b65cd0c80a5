"""Checks of values an admin or a client types, made before anything is sent anywhere.

- `panel_url`: the module's DCImanager address must be `https://host[:port]` (or `http://`,
  which the session accepts with a warning in the log); a trailing `/` is fine. Anything else
  (a path, a query, a fragment, user info, another scheme) is `msg_error_bad_url` saying what
  is wrong: a path used to end as bad_credentials, a `file:` URL as an odd transport error.
- `hostname`: a name from the order, RFC 1123 (section 2.1, on RFC 952's labels): labels of
  letters, digits and hyphens, 1-63 characters, not starting or ending with a hyphen, the whole
  name at most 253 characters. A bad one is `msg_error_bad_hostname` before the panel is touched.

Kept free of heavy imports: settings.py and the DCI session both use it.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from dci6_processing.errors import ErrorType, ModuleError

SCHEMES = ("https", "http")
_HAS_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# `file:/x`, `mailto:a@b`: a scheme without `//` (a bare `host:8443` is a host and a port)
_BARE_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):(?![0-9]+(?:/|$))")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
MAX_HOSTNAME = 253
MAX_SHOWN = 80


def _bad_url(why: str, url: str) -> ModuleError:
    shown = url if len(url) <= MAX_SHOWN else url[: MAX_SHOWN - 1] + "…"
    return ModuleError(ErrorType.bad_url, object=shown, value=why)


def panel_url(raw: str) -> str:
    """`scheme://host[:port]` of the panel, or ModuleError(bad_url) naming the problem.

    No scheme means https (as the README promises). The address is returned without a
    trailing slash and with the scheme in lower case.
    """
    text = (raw or "").strip()
    if not text:
        raise _bad_url("the URL is empty", text)
    if any(ch.isspace() for ch in text):
        raise _bad_url("the URL contains a space", text)
    if not _HAS_SCHEME.match(text):
        bare = _BARE_SCHEME.match(text)
        if bare:
            raise _bad_url(f"the scheme {bare.group(1)}: is not supported, use https://", text)
        text = "https://" + text
    try:
        parts = urlsplit(text)
    except ValueError:  # e.g. brackets around something that is not an IPv6 address
        raise _bad_url("the host is not a host name or an IP address", text) from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise _bad_url(f"the scheme {parts.scheme}:// is not supported, use https://", text)
    if "@" in parts.netloc:
        raise _bad_url("user info (user@ or user:password@) is not allowed in the URL; "
                       "the e-mail and password have their own fields", _without_userinfo(text))
    if parts.path not in ("", "/"):
        raise _bad_url(f"a path ({parts.path}) is not allowed: give only {scheme}://host[:port]",
                       text)
    if parts.query or "?" in text:
        raise _bad_url("a query (?...) is not allowed in the URL", text)
    if parts.fragment or "#" in text:
        raise _bad_url("a fragment (#...) is not allowed in the URL", text)
    host = parts.hostname or ""
    if not host:
        raise _bad_url("the URL has no host name", text)
    try:
        port = parts.port
    except ValueError:
        raise _bad_url("the port is not a number from 1 to 65535", text) from None
    if port == 0 or (parts.netloc.endswith(":") and port is None):
        raise _bad_url("the port is not a number from 1 to 65535", text)
    if not _valid_host(host, bracketed=parts.netloc.startswith("[")):
        raise _bad_url(f"{host} is not a host name or an IP address", text)
    return f"{scheme}://{parts.netloc}"


def _without_userinfo(text: str) -> str:
    scheme, _, rest = text.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}"


def _valid_host(host: str, *, bracketed: bool) -> bool:
    if bracketed:
        try:
            return isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address)
        except ValueError:
            return False
    return is_hostname(host.removesuffix("."))


def is_hostname(name: str) -> bool:
    """RFC 1123 host name (a dotted IPv4 address is one too)."""
    if not name or len(name) > MAX_HOSTNAME:
        return False
    return all(_LABEL.fullmatch(label) for label in name.split("."))


def hostname(raw: str, *, param: str = "hostname") -> str:
    """The order's host name as the panel will get it, or ModuleError(bad_hostname)."""
    name = (raw or "").strip()
    if not is_hostname(name):
        shown = name if len(name) <= MAX_SHOWN else name[: MAX_SHOWN - 1] + "…"
        raise ModuleError(ErrorType.bad_hostname, object=param, value=shown,
                          detail="RFC 1123: labels of letters, digits and hyphens, 1-63 "
                                 "characters, no leading or trailing hyphen, 253 in all")
    return name
