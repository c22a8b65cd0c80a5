"""Typed views of what BILLmanager hands us: connection, module parameters, tariff options,
order addons and the service itself.

Raw values arrive as strings from the vendor library (`on`/`off` switches, numbers as text,
empty string for unset). Validation failures become `ModuleError(invalid_param)` here, once,
via `parse()`; nothing else in the project catches pydantic errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)

from dci6_processing.billmanager import ServiceStatus as ServiceStatus  # re-exported
from dci6_processing.bookkeeping import ServiceBookkeeping
from dci6_processing.errors import ErrorType, ModuleError
from dci6_processing.validation import panel_url


def _switch(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value or "").strip().lower()
    if text in ("on", "yes", "true", "1"):
        return True
    if text in ("off", "no", "false", "0", ""):
        return False
    raise ValueError(f"expected on/off, got {value!r}")


def _blank_to_none(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str) and not value.strip():
        return None
    return value.strip() if isinstance(value, str) else value


Switch = Annotated[bool, BeforeValidator(_switch)]
OptionalText = Annotated[str | None, BeforeValidator(_blank_to_none)]
OptionalInt = Annotated[int | None, BeforeValidator(_blank_to_none)]
Minutes = Annotated[int, Field(ge=1, le=720)]
Seconds = Annotated[int, Field(ge=1, le=3600)]
# the cron sync's concurrent requests per panel (lifecycle/reconcile.py, dci/pool.py)
SYNC_WORKERS_MIN, SYNC_WORKERS_MAX, SYNC_WORKERS_DEFAULT = 1, 32, 8
SyncWorkers = Annotated[int, Field(ge=SYNC_WORKERS_MIN, le=SYNC_WORKERS_MAX)]

_Model = TypeVar("_Model", bound=BaseModel)


class _Settings(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


def parse(model: type[_Model], raw: Mapping[str, Any]) -> _Model:
    """Validate raw BILLmanager values; the first problem becomes msg_error_invalid_param.

    The offending value is echoed only for fields that are not secrets.
    """
    try:
        return model.model_validate(dict(raw))
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(part) for part in first["loc"]) or model.__name__
        secret = "password" in name or "token" in name
        value = "" if secret else str(raw.get(name, ""))
        raise ModuleError(
            ErrorType.invalid_param, object=name, value=value, detail=first["msg"]
        ) from None


class ModuleSettings(_Settings):
    """The processing module's connection form and parameters (`get_module_params`)."""

    url: str
    username: str  # the DCImanager administrator's e-mail
    password: SecretStr
    by_server_type: Switch = True
    verify_tls: Switch = True
    ca_bundle: OptionalText = None
    location_id: OptionalInt = None  # the data center's DCImanager Location ID
    diagtimeout: Minutes = 60
    installtimeout_linux: Minutes = 60
    installtimeout_windows: Minutes = 120
    # transport limits (dci.session.Limits): seconds, and MiB for one answer
    connect_timeout: Seconds = 10
    read_timeout: Seconds = 60
    request_deadline: Seconds = 120
    max_answer_mb: Annotated[int, Field(ge=1, le=4096)] = 64
    sync_workers: SyncWorkers = SYNC_WORKERS_DEFAULT  # concurrent requests the cron sync makes

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        # ModuleError(bad_url) passes through pydantic as it is: the message says what is wrong
        return panel_url(value)

    @field_validator("username")
    @classmethod
    def _email(cls, value: str) -> str:
        value = value.strip()
        if "@" not in value:
            raise ValueError("the DCImanager administrator is named by e-mail")
        return value

    @property
    def tls_verify(self) -> bool | str:
        """What requests' `verify=` gets: the CA bundle path, True, or False when switched off."""
        if not self.verify_tls:
            return False
        return self.ca_bundle or True

    def timeout_for(self, os_family: str) -> int:
        """Install timeout in minutes for a template family (linux/windows)."""
        if os_family == "windows":
            return self.installtimeout_windows
        return self.installtimeout_linux


class TariffOptions(_Settings):
    """The tariff (pricelist) form: every setting of the WHMCS guide."""

    configuration: str  # DCImanager server configuration name
    os_template: OptionalText = None  # default OS when the order names none (id or name)
    no_wait_install: Switch = False
    ipv4_pool: OptionalText = None  # id or name
    ipv6_pool: OptionalText = None
    check_email_verified: Switch = False
    diag_template: str = "Diag6"
    diag_pool: OptionalText = None
    dont_manage_ips: Switch = False
    shutdown_on_close: Switch = True
    ports_off_on_close: Switch = True
    skip_disk_clean: Switch = False
    owner_on_close: OptionalText = None  # e-mail of the DCImanager user that gets the server
    temp_ipv4: Switch = False
    remove_temp_ip: Switch = False

    @field_validator("configuration")
    @classmethod
    def _configuration(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("no server configuration set on the tariff")
        return value

    @field_validator("diag_template", mode="before")
    @classmethod
    def _diag_template(cls, value: Any) -> Any:
        return "Diag6" if value in (None, "") else value

    @field_validator("owner_on_close")
    @classmethod
    def _owner_email(cls, value: str | None) -> str | None:
        if value is not None and "@" not in value:
            raise ValueError("owner after termination must be an e-mail (user@domain.com)")
        return value


IPV4_ADDON_NAMES = ("ip", "IP", "ipv4", "IPv4")
IPV6_ADDON_NAMES = ("ip6", "IP6", "ipv6", "IPv6")
IPV6_PREFIX_ADDON_NAMES = ("ip6_prefix", "IP6_prefix", "ipv6_prefix", "IPv6_prefix")
OS_ADDON_NAMES = ("os", "OS", "ostemplate")


class OrderAddons(_Settings):
    """What the client ordered on top of the tariff."""

    os_template: OptionalText = None  # `ostempl` param or an os/OS/ostemplate addon
    hostname: OptionalText = None  # the `hostname` param the client typed (or we saved)
    ipv4_count: int = Field(default=1, ge=1, le=256)
    ipv6_count: int = Field(default=0, ge=0, le=256)
    ipv6_prefix: int = Field(default=128, ge=64, le=128)

    @classmethod
    def from_billing(
        cls, params: Mapping[str, str], addons: Mapping[str, str]
    ) -> OrderAddons:
        """Build from service params and {addon intname: value}, accepting every spelling."""

        def first(names: tuple[str, ...]) -> str | None:
            for name in names:
                value = addons.get(name)
                if value not in (None, ""):
                    return str(value)
            return None

        raw: dict[str, Any] = {"hostname": params.get("hostname")}
        os_choice = params.get("ostempl") or first(OS_ADDON_NAMES)
        if os_choice:
            raw["os_template"] = os_choice
        for key, names in (
            ("ipv4_count", IPV4_ADDON_NAMES),
            ("ipv6_count", IPV6_ADDON_NAMES),
            ("ipv6_prefix", IPV6_PREFIX_ADDON_NAMES),
        ):
            value = first(names)
            if value is not None:
                raw[key] = _whole_number(value)
        return parse(cls, raw)


def _whole_number(value: str) -> Any:
    try:
        return int(float(value))
    except ValueError:
        return value  # pydantic reports it


class Service(BaseModel):
    """One BILLmanager service (item) as the lifecycle sees it."""

    model_config = ConfigDict(extra="ignore")

    id: int
    module: int
    status: int
    pricelist: int
    account_id: int
    client_email: str
    client_email_verified: bool = True
    userid: int | None = None  # the BILLmanager user, for tariff-change rollback
    params: dict[str, str] = Field(default_factory=dict)  # itemparams, crypted ones decrypted
    addons: dict[str, str] = Field(default_factory=dict)  # addon intname -> value
    tariff_raw: dict[str, str] = Field(default_factory=dict)  # get_pricelist_params
    previous_pricelist: int | None = None  # lastpricelist, when a tariff change is pending

    # NOTE(13c): validated on first use, then kept: a service read only for its bookkeeping
    # (the sync's) carries no tariff, and an invalid tariff must not stop a manual handover
    @cached_property
    def tariff(self) -> TariffOptions:
        return parse(TariffOptions, self.tariff_raw)

    @cached_property
    def order(self) -> OrderAddons:
        return OrderAddons.from_billing(self.params, self.addons)

    @cached_property
    def bookkeeping(self) -> ServiceBookkeeping:
        return ServiceBookkeeping.from_params(self.params)


# module params an admin may leave empty to get the default
DEFAULTED_WHEN_BLANK = frozenset({
    "diagtimeout", "installtimeout_linux", "installtimeout_windows",
    "connect_timeout", "read_timeout", "request_deadline", "max_answer_mb", "sync_workers",
})


def module_settings(raw: Mapping[str, Any]) -> ModuleSettings:
    """Module params with blank timeouts meaning their defaults."""
    cleaned = {k: v for k, v in raw.items() if k not in DEFAULTED_WHEN_BLANK
               or v not in (None, "")}
    return parse(ModuleSettings, cleaned)
