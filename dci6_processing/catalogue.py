"""Commands about the connection and what the panel offers: check_connection (here), and the
tune / get_server_config / check_param commands that fill BILLmanager's forms from the panel.

Each command is `def name(inv: Invocation) -> bytes | None` (None prints `<doc><ok/></doc>`),
registered in cli.DISPATCH. Imports that reach the network stay inside the functions.
"""

from __future__ import annotations

import structlog

from dci6_processing import protocol
from dci6_processing.invocation import Invocation
from dci6_processing.log import register_secret
from dci6_processing.settings import ModuleSettings, parse

log = structlog.get_logger(__name__)

# What check_connection takes from <processingmodule>: only what logging in depends on.
LOGIN_PARAMS = ("url", "username", "password", "verify_tls", "ca_bundle")


def check_connection(inv: Invocation) -> bytes | None:
    """Log in to DCImanager 6 with exactly the values typed into the connection form."""
    raw = protocol.processingmodule_params(protocol.parse_input(inv.stdin))
    register_secret(raw.get("password"))
    settings = parse(ModuleSettings, {name: raw[name] for name in LOGIN_PARAMS if name in raw})
    from dci6_processing.dci.client import DciClient

    client = DciClient(
        settings.url,
        settings.username,
        settings.password.get_secret_value(),
        verify=settings.tls_verify,
    )
    client.login()
    log.info("connection_checked", panel=settings.url, username=settings.username)
    return None
