"""What pmdci6 keeps on a BILLmanager service for itself: one typed record, read once from the
service's params, written through one billing-port call (`BillingPort.save_bookkeeping`).

The param names live here and nowhere else; the billing adapter's SQL reads them from `Param`.
A new piece of bookkeeping is one `Param` member, one field of `ServiceBookkeeping` (parsed in
`from_params`) and, when pmdci6 writes it, one key of `BookkeepingChanges`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypedDict

from dci6_processing.errors import ErrorType, ModuleError


class Param(StrEnum):
    """The service params (`itemparam.intname`) that hold pmdci6's bookkeeping."""

    SERVER_ID = "dci_server_id"  # the claimed (or admin-preset) DCImanager server
    # the last install / diagnostics this service started, kept apart: one is never taken
    # for the other
    INSTALL_OPERATION = "dci_install_operation"
    DIAG_OPERATION = "dci_diag_operation"
    DRIFT = "dci_drift"  # the drift a sync last reported (so only news is re-reported)
    MANUAL = "dci_manual"  # an admin's switch: "on" hands the service to people
    ROOT_PASSWORD = "password"  # noqa: S105 -- the param's name; generated once, saved crypted
    # the client's power wish: "off" once they stopped the server (the sync and resume leave
    # it off), cleared by start and reboot
    POWER_WISH = "dci_power_wish"
    # how far the client's last power action got: "<command> <runningoperation> <stage>"
    CLIENT_ACTION = "dci_client_action"
    # how the client logs in to DCImanager 6, saved at activation for the service instruction
    PANEL_URL = "panel_url"
    PANEL_LOGIN = "panel_login"
    PANEL_ACCOUNT = "panel_account"  # "created" (the password below is theirs) or "existing"
    PANEL_PASSWORD = "panel_password"  # noqa: S105 -- the param's name; saved crypted


POWER_WISH_OFF = "off"  # the one value of Param.POWER_WISH

# NOTE(13c): secrets are saved with crypted=on and never echoed in a log line
CRYPTED: frozenset[Param] = frozenset({Param.ROOT_PASSWORD, Param.PANEL_PASSWORD})


def _operation_id(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() else None


@dataclass(frozen=True)
class ServiceBookkeeping:
    """pmdci6's record on one service, as typed values."""

    server_id: int | None = None  # None when nothing (or no number) is recorded
    server_id_text: str = ""  # as saved, stripped: what a drift report or an error quotes
    install_operation: int | None = None
    diag_operation: int | None = None
    drift: str = ""
    manual: bool = False
    root_password: str = field(default="", repr=False)
    power_wish: str = ""
    client_action: str = ""
    panel_url: str = ""
    panel_login: str = ""
    panel_account: str = ""
    panel_password: str = field(default="", repr=False)

    @classmethod
    def from_params(cls, params: Mapping[str, str | None]) -> ServiceBookkeeping:
        def text(param: Param) -> str:
            return params.get(param) or ""

        server_text = text(Param.SERVER_ID).strip()
        return cls(
            server_id=int(server_text) if server_text.isdigit() else None,
            server_id_text=server_text,
            install_operation=_operation_id(text(Param.INSTALL_OPERATION)),
            diag_operation=_operation_id(text(Param.DIAG_OPERATION)),
            drift=text(Param.DRIFT),
            # NOTE(13c): exactly "on" (any case), as the sync's SQL filter reads the switch
            manual=text(Param.MANUAL).strip().lower() == "on",
            root_password=text(Param.ROOT_PASSWORD),
            power_wish=text(Param.POWER_WISH).strip(),
            client_action=text(Param.CLIENT_ACTION).strip(),
            panel_url=text(Param.PANEL_URL),
            panel_login=text(Param.PANEL_LOGIN),
            panel_account=text(Param.PANEL_ACCOUNT),
            panel_password=text(Param.PANEL_PASSWORD),
        )

    @property
    def client_stopped(self) -> bool:
        """Whether the client powered the server off (and has not started it since)."""
        return self.power_wish == POWER_WISH_OFF

    def recorded_server(self) -> int | None:
        """The recorded server for a lifecycle command; a saved text that is no server id is
        the admin's typo, refused rather than ignored (msg_error_invalid_param)."""
        if self.server_id is None and self.server_id_text:
            raise ModuleError(ErrorType.invalid_param, object=Param.SERVER_ID.value,
                              value=self.server_id_text)
        return self.server_id


class BookkeepingChanges(TypedDict, total=False):
    """What pmdci6 writes: the fields of `ServiceBookkeeping` it owns (None clears one)."""

    server_id: int | None
    install_operation: int | None
    diag_operation: int | None
    drift: str
    root_password: str
    power_wish: str
    client_action: str
    panel_url: str
    panel_login: str
    panel_account: str
    panel_password: str


_PARAM_OF: dict[str, Param] = {
    "server_id": Param.SERVER_ID,
    "install_operation": Param.INSTALL_OPERATION,
    "diag_operation": Param.DIAG_OPERATION,
    "drift": Param.DRIFT,
    "root_password": Param.ROOT_PASSWORD,
    "power_wish": Param.POWER_WISH,
    "client_action": Param.CLIENT_ACTION,
    "panel_url": Param.PANEL_URL,
    "panel_login": Param.PANEL_LOGIN,
    "panel_account": Param.PANEL_ACCOUNT,
    "panel_password": Param.PANEL_PASSWORD,
}


def encode(changes: BookkeepingChanges) -> dict[Param, str]:
    """The service params to save for `changes`, as BILLmanager stores them (text)."""
    encoded: dict[Param, str] = {}
    for name, value in changes.items():
        encoded[_PARAM_OF[name]] = "" if value is None else str(value)
    return encoded
