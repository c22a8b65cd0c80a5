"""Commands about the connection and what the panel offers: check_connection (here), and the
tune / get_server_config / check_param commands that fill BILLmanager's forms from the panel.

Each command is `def name(inv: Invocation) -> bytes | None` (None prints `<doc><ok/></doc>`),
registered in commands.COMMANDS. Imports that reach the network stay inside the functions.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from dci6_processing import protocol
from dci6_processing.dci.models import Configuration, IpFamily, IpPool, Location, OsTemplate
from dci6_processing.errors import ErrorType, ModuleError
from dci6_processing.invocation import Invocation, dci_client
from dci6_processing.log import register_secret
from dci6_processing.settings import (
    ModuleSettings,
    OrderAddons,
    Service,
    ServiceStatus,
    TariffOptions,
    module_settings,
    parse,
)

if TYPE_CHECKING:
    from dci6_processing.dci.client import DciClient

log = structlog.get_logger(__name__)

# What check_connection takes from <processingmodule>: only what logging in depends on.
LOGIN_PARAMS = ("url", "username", "password", "verify_tls", "ca_bundle",
                "connect_timeout", "read_timeout", "request_deadline", "max_answer_mb")


def check_connection(inv: Invocation) -> bytes | None:
    """Log in to DCImanager 6 with exactly the values typed into the connection form."""
    raw = protocol.processingmodule_params(protocol.parse_input(inv.stdin))
    register_secret(raw.get("password"))
    settings = module_settings({name: raw[name] for name in LOGIN_PARAMS if name in raw})
    dci_client(settings).login()
    log.info("connection_checked", panel=settings.url, username=settings.username)
    return None


# --- what the panel offers -------------------------------------------------------------------

# Select lists published to BILLmanager by get_server_config (the tariff form's select names,
# plus `location` for the data center's Location ID).
CATALOGUE_PARAMS = ("configuration", "os_template", "ipv4_pool", "ipv6_pool", "diag_pool",
                    "location")
# Tariff form selects an admin may leave empty (configuration is required).
OPTIONAL_SELECTS = frozenset({"os_template", "ipv4_pool", "ipv6_pool", "diag_pool"})
# Where a tariff form may carry its processing module when --module is not given (I).
FORM_MODULE_FIELDS = ("processingmodule", "module")
# BILLmanager's own `check="email"` is looser than what a DCImanager user e-mail needs.
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
MAX_NAMES_IN_ERROR = 8

_LABELS: dict[str, dict[str, str]] = {
    "en": {"free": "{name} ({count} free)", "none": "(none)", "any_location": "Any location",
           "missing": "{value} (not in DCImanager 6)"},
    "ru": {"free": "{name} (свободно: {count})", "none": "(нет)",
           "any_location": "Любая локация", "missing": "{value} (нет в DCImanager 6)"},
}


def _labels(lang: str | None) -> dict[str, str]:
    return _LABELS.get((lang or "en").lower()[:2], _LABELS["en"])


@dataclass(frozen=True)
class Catalogue:
    """Everything the panel offers that BILLmanager's forms choose from, read in one go so a
    failure midway publishes nothing (a transient error must never empty a list)."""

    configurations: list[Configuration]
    os_templates: list[OsTemplate]
    ip_pools: list[IpPool]
    locations: list[Location]

    @classmethod
    def read(cls, dci: DciClient) -> Catalogue:
        return cls(configurations=dci.configurations(), os_templates=dci.os_templates(),
                   ip_pools=dci.ip_pools(), locations=dci.locations())

    def pools(self, family: str) -> list[IpPool]:
        return [pool for pool in self.ip_pools if pool.family == family]

    def select_lists(self, lang: str | None = None) -> dict[str, list[tuple[str, str]]]:
        """(value, label) per select: names for configurations (labelled with free counts),
        DCImanager ids for the rest, as the lifecycle resolves them."""
        labels = _labels(lang)
        return {
            "configuration": [
                (c.name, labels["free"].format(name=c.name, count=c.free_server_count))
                for c in sorted(self.configurations, key=lambda c: c.name)
            ],
            "os_template": [(str(t.id), f"{t.name} ({t.os_family})")
                            for t in sorted(self.os_templates, key=lambda t: t.name)],
            "ipv4_pool": _pool_options(self.pools(IpFamily.V4)),
            "ipv6_pool": _pool_options(self.pools(IpFamily.V6)),
            "diag_pool": _pool_options(self.pools(IpFamily.V4)),
            "location": [(str(loc.id), loc.name) for loc in sorted(self.locations,
                                                                     key=lambda loc: loc.id)],
        }


def _pool_options(pools: list[IpPool]) -> list[tuple[str, str]]:
    return [(str(pool.id), pool.name) for pool in sorted(pools, key=lambda pool: pool.name)]


def get_server_config(inv: Invocation) -> bytes | None:
    """Publish the panel's configurations (with free counts), OS templates, IP pools and
    locations as the module's select values, so admins pick instead of typing names."""
    module = inv.require_module()
    billing = inv.billing()
    catalogue = Catalogue.read(inv.dci(billing.module_settings(module)))
    lists = catalogue.select_lists()
    for param in CATALOGUE_PARAMS:
        billing.sync_catalogue(module, param, lists[param])
    log.info("catalogue_published", **{param: len(lists[param]) for param in CATALOGUE_PARAMS})
    return None


def tune_connection(inv: Invocation) -> bytes | None:
    """The connection form back with the panel's locations for the Location ID.

    The form carries the connection being typed; an unsaved password may be blank, so the
    module's stored one is used, but only for the same panel URL and administrator. When the
    panel cannot be asked, the form comes back as it was: the admin can still type an id.
    """
    doc = protocol.parse_input(inv.stdin)
    raw = protocol.processingmodule_params(doc)
    register_secret(raw.get("password"))
    try:
        client = _form_client(inv, raw)
        if client is None:
            return protocol.to_bytes(doc)
        locations = client.locations()
    except ModuleError as exc:
        log.warning("tune_connection.panel_unavailable", error=str(exc.type), value=exc.value)
        return protocol.to_bytes(doc)
    labels = _labels(inv.lang)
    options = [("", labels["any_location"])] + [
        (str(loc.id), f"{loc.name} (id {loc.id})") for loc in sorted(locations,
                                                                      key=lambda loc: loc.id)
    ]
    current = (raw.get("location_id") or "").strip()
    protocol.fill_select(doc, "location_id", _keeping(current, options, labels))
    return protocol.to_bytes(doc)


def _form_client(inv: Invocation, raw: dict[str, str]) -> DciClient | None:
    """A client for the connection typed into the form, or None when it is incomplete."""
    values = {name: raw[name] for name in LOGIN_PARAMS if raw.get(name)}
    if "password" not in values and inv.module is not None and values.get("url"):
        stored = inv.billing().module_settings(inv.module)
        typed = parse(ModuleSettings, {**values, "password": "unused"})
        if (typed.url, typed.username.lower()) == (stored.url, stored.username.lower()):
            values["password"] = stored.password.get_secret_value()
    if not all(values.get(name) for name in ("url", "username", "password")):
        log.info("tune_connection.incomplete", missing=[
            name for name in ("url", "username", "password") if not values.get(name)])
        return None
    return dci_client(module_settings(values))


def tune_pricelist(inv: Invocation) -> bytes | None:
    """The tariff form back with its select lists filled from the module's panel."""
    doc = protocol.parse_input(inv.stdin)
    values = protocol.form_values(doc)
    module = inv.module if inv.module is not None else _form_module(values)
    if module is None:
        log.warning("tune_pricelist.no_module", fields=sorted(values))
        return protocol.to_bytes(doc)
    labels = _labels(inv.lang)
    try:
        lists = Catalogue.read(inv.dci(inv.billing().module_settings(module))).select_lists(
            inv.lang)
    except ModuleError as exc:
        # the form stays usable with what it holds; the reason is in the log
        log.warning("tune_pricelist.panel_unavailable", error=str(exc.type), value=exc.value)
        lists = {param: [] for param in CATALOGUE_PARAMS}
    for param in ("configuration", "os_template", "ipv4_pool", "ipv6_pool", "diag_pool"):
        options = lists[param]
        if param in OPTIONAL_SELECTS:
            options = [("", labels["none"]), *options]
        current = (values.get(param) or "").strip()
        protocol.fill_select(doc, param, _keeping(current, options, labels))
    return protocol.to_bytes(doc)


def _form_module(values: dict[str, str]) -> int | None:
    for name in FORM_MODULE_FIELDS:
        raw = (values.get(name) or "").strip()
        if raw.isdigit():
            return int(raw)
    return None


def _keeping(current: str, options: list[tuple[str, str]],
             labels: dict[str, str]) -> list[tuple[str, str]]:
    """The options plus the value the form holds now, so opening a form never changes it."""
    if current and all(key != current for key, _ in options):
        return [*options, (current, labels["missing"].format(value=current))]
    return options


# --- checkparam --------------------------------------------------------------------------------


def check_param(inv: Invocation) -> bytes | None:
    """Validate a service (`--item`, with `--param/--value` as the change being made) or a
    tariff form on stdin against the panel; the first problem is the error an admin sees."""
    billing = inv.billing()
    if inv.item is not None:
        service = billing.service(inv.item)
        params = dict(service.params)
        if inv.param:
            params[inv.param] = inv.value or ""
        settings = billing.module_settings(service.module)
        tariff = parse(TariffOptions, service.tariff_raw)
        order = OrderAddons.from_billing(params, service.addons)
        checker = TariffCheck(inv.dci(settings), settings.location_id)
        checker.check_service(service.model_copy(update={"params": params}), tariff, order)
        log.info("service_checked", param=inv.param)
        return None
    values = protocol.form_values(protocol.parse_input(inv.stdin))
    module = inv.module if inv.module is not None else _form_module(values)
    if module is None:
        raise ModuleError(ErrorType.missing_option, object="module", value=inv.command)
    tariff = parse(TariffOptions, {name: values[name] for name in TariffOptions.model_fields
                                   if name in values})
    settings = billing.module_settings(module)
    TariffCheck(inv.dci(settings), settings.location_id).check_tariff(tariff, need_stock=True)
    log.info("tariff_checked", configuration=tariff.configuration)
    return None


class TariffCheck:
    """A tariff's and an order's references checked against one panel, resolved as the
    lifecycle resolves them at order time (lifecycle.resolve). `checkparam` stops at the first
    problem; `doctor` lists them all (`tariff_problems`)."""

    def __init__(self, dci: DciClient, location_id: int | None) -> None:
        self.dci = dci
        self.location_id = location_id
        self._configurations: list[Configuration] | None = None

    def check_tariff(self, tariff: TariffOptions, *, need_stock: bool) -> None:
        for check in self._tariff_checks(tariff, need_stock=need_stock):
            check()
        # DCImanager's pool list carries no free count: room shows only when an address is taken
        log.info("pool_room_unknown", detail="the panel's IP pool list has no free count")

    def tariff_problems(self, tariff: TariffOptions, *, need_stock: bool) -> list[ModuleError]:
        """Every way the tariff does not fit the panel, in the order checkparam checks."""
        problems: list[ModuleError] = []
        for check in self._tariff_checks(tariff, need_stock=need_stock):
            try:
                check()
            except ModuleError as problem:
                problems.append(problem)
        return problems

    def _tariff_checks(self, tariff: TariffOptions, *,
                       need_stock: bool) -> list[Callable[[], object]]:
        from dci6_processing.lifecycle.resolve import resolve_os_template, resolve_pool

        checks: list[Callable[[], object]] = [
            lambda: self._check_owner_on_close(tariff),
            self.check_location,
            lambda: self.check_configuration(tariff.configuration, need_stock=need_stock),
        ]
        if tariff.os_template:
            checks.append(lambda: resolve_os_template(self.dci, tariff.os_template or "",
                                                      param="os_template"))
        if not tariff.dont_manage_ips and not tariff.ipv4_pool:
            checks.append(lambda: _raise(ModuleError(
                ErrorType.invalid_param, object="ipv4_pool", value="",
                detail="addresses are managed and no IPv4 pool is set")))
        for param, ref, family in (("ipv4_pool", tariff.ipv4_pool, IpFamily.V4),
                                   ("ipv6_pool", tariff.ipv6_pool, IpFamily.V6),
                                   ("diag_pool", tariff.diag_pool, IpFamily.V4)):
            if ref:
                checks.append(functools.partial(resolve_pool, self.dci, ref, family=family,
                                                param=param))
        return checks

    @staticmethod
    def _check_owner_on_close(tariff: TariffOptions) -> None:
        if tariff.owner_on_close is not None and not EMAIL.fullmatch(tariff.owner_on_close):
            raise ModuleError(ErrorType.invalid_param, object="owner_on_close",
                              value=tariff.owner_on_close)

    def check_service(self, service: Service, tariff: TariffOptions, order: OrderAddons) -> None:
        from dci6_processing.lifecycle.common import owned_by
        from dci6_processing.lifecycle.resolve import resolve_os_template

        server_id = service.bookkeeping.recorded_server()
        self.check_tariff(tariff, need_stock=server_id is None
                          and service.status == ServiceStatus.ordered)
        if order.os_template:
            resolve_os_template(self.dci, order.os_template, param="ostempl")
        elif not tariff.os_template:
            raise ModuleError(ErrorType.invalid_param, object="os_template", value="",
                              detail="neither the order nor the tariff names an OS")
        if order.ipv6_count and not tariff.ipv6_pool and not tariff.dont_manage_ips:
            raise ModuleError(ErrorType.invalid_param, object="ipv6_pool", value="",
                              detail="IPv6 is ordered and the tariff names no IPv6 pool")
        if server_id is not None:
            from dci6_processing.dci.errors import DciNotFound

            try:
                server = self.dci.server(server_id)
            except DciNotFound:
                raise ModuleError(ErrorType.server_not_found, object=f"service {service.id}",
                                  value=str(server_id)) from None
            if server.has_owner and not owned_by(server, None, service.client_email):
                raise ModuleError(ErrorType.server_in_use, object=str(server_id))

    def check_location(self) -> None:
        location = self.location_id
        if location is not None and all(loc.id != location for loc in self.dci.locations()):
            raise ModuleError(ErrorType.location_not_found, object="location_id",
                              value=str(location))

    def check_configuration(self, name: str, *, need_stock: bool) -> None:
        if self._configurations is None:
            self._configurations = self.dci.configurations()
        known = {c.name: c for c in self._configurations}
        configuration = known.get(name)
        if configuration is None:
            shown = ", ".join(sorted(known)[:MAX_NAMES_IN_ERROR]) or "none"
            raise ModuleError(ErrorType.configuration_not_found, object=name,
                              value=f"available: {shown}")
        if not need_stock:
            return
        location = self.location_id
        if location is None:
            in_stock = configuration.free_server_count > 0
        else:
            # the panel's counts are for every location; the module serves one
            in_stock = next(iter(self.dci.free_servers(name, location, page_size=1)),
                            None) is not None
        if not in_stock:
            raise ModuleError(ErrorType.no_free_server, object=name,
                              value=str(location or ""))


def _raise(error: ModuleError) -> None:
    raise error
