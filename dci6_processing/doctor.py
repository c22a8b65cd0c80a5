"""`pmdci6 doctor`: what does this DCImanager 6 instance answer, and does it have what the
tariffs name?

Logs in afresh, probes every GET route of the route table (routes that change state are
listed, never called), lists configurations with free counts, IP pools, OS templates and
locations, and checks tariff settings against them with the same resolution the lifecycle
uses at order time. Then it holds every route of the table (with the admin's routes.toml
overrides) against the panel's own API description (`api_check.py`). Human-readable output
or `--json`, no secrets. Exit 0 when all is well, 1 otherwise.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import click
import structlog

from dci6_processing import api_check
from dci6_processing import log as module_log
from dci6_processing.dci import overrides
from dci6_processing.dci.client import DciClient
from dci6_processing.dci.errors import DciError, DciNotFound, RouteMismatch
from dci6_processing.dci.models import IpFamily
from dci6_processing.dci.routes import Route, RouteTable
from dci6_processing.errors import ErrorType, ModuleError
from dci6_processing.invocation import dci_client
from dci6_processing.openapi import DescriptionError, Fetch
from dci6_processing.paths import mgr_paths
from dci6_processing.settings import ModuleSettings, TariffOptions, parse

ProbeOutcome = Literal["answers", "missing", "error", "not probed"]


@dataclass(frozen=True)
class RouteProbe:
    """What `doctor` learned about one route of the table."""

    route: Route
    outcome: ProbeOutcome
    detail: str = ""


@dataclass
class Connection:
    settings: ModuleSettings
    verify: bool | str

    @property
    def email(self) -> str:
        return self.settings.username

    @property
    def location_id(self) -> int | None:
        return self.settings.location_id


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    quiet: bool = False  # --json: the lines are not printed, one JSON document is

    def line(self, text: str = "") -> None:
        if not self.quiet:
            click.echo(text)

    def problem(self, text: str, *, indent: int = 2) -> None:
        self.problems.append(text)
        self.line(f"{' ' * indent}PROBLEM: {text}")

    def count_problem(self, text: str) -> None:
        """A problem already shown in a table row."""
        self.problems.append(text)


@click.command("doctor")
@click.option("--module", "module_id", type=int,
              help="Read the connection from this BILLmanager processing module.")
@click.option("--url", help="DCImanager 6 address, e.g. https://dci.example.com")
@click.option("--email", help="The DCImanager administrator's e-mail.")
@click.option("--password-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="File holding the administrator's password (first line).")
@click.option("--password-env", metavar="NAME",
              help="Environment variable holding the administrator's password.")
@click.option("--insecure", is_flag=True,
              help="Do not verify the panel's TLS certificate (self-signed test setups).")
@click.option("--ca-bundle", type=click.Path(exists=True, dir_okay=False),
              help="CA bundle to verify the panel's certificate with.")
@click.option("--tariff-params", "tariff_params", metavar="JSON",
              help='Tariffs to check: {"<tariff>": {"configuration": ..., "os_template": ...,'
                   ' "ipv4_pool": ..., "ipv6_pool": ..., "diag_pool": ...}} or a list of such'
                   ' objects; "@path" reads the JSON from a file.')
@click.option("--timeout", type=float, default=30.0, show_default=True,
              help="Seconds to wait for each answer.")
@click.option("--openapi", "openapi_sources", multiple=True, metavar="FILE_OR_URL",
              help="The panel's API description (OpenAPI 3 or Swagger 2, JSON or YAML), e.g. "
                   "saved from its /swagger/ page; repeatable. Without a panel (no --url or "
                   "--module) only the route table is checked.")
@click.option("--routes", "routes_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Route overrides to check instead of <root>/etc/pmdci6/routes.toml.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON document.")
def doctor_command(
    module_id: int | None,
    url: str | None,
    email: str | None,
    password_file: Path | None,
    password_env: str | None,
    insecure: bool,
    ca_bundle: str | None,
    tariff_params: str | None,
    timeout: float,
    openapi_sources: tuple[str, ...],
    routes_path: Path | None,
    as_json: bool,
) -> None:
    """Check the connection to DCImanager 6, what the panel offers, and the route table
    against the panel's own API description."""
    tariffs = _load_tariffs(tariff_params)
    report = Report(quiet=as_json)
    routes_file = routes_path or mgr_paths().routes_file
    if module_id is None and not url and not email and openapi_sources:
        _quiet_logging(None)
        table = _route_table(report, routes_file, None)
        offline = api_check.run(report, table, sources=openapi_sources, panel_url=None,
                                fetch=None, routes_file=routes_file)
        _finish(report, None, offline)
        return
    connection = _connection(module_id, url, email, password_file, password_env)
    if ca_bundle:
        connection.verify = ca_bundle
    if insecure:
        connection.verify = False
    _quiet_logging(module_id)
    table = _route_table(report, routes_file, connection.settings.url)
    try:
        client = dci_client(connection.settings, verify=connection.verify, timeout=timeout,
                            retries_503=3, routes=table)
    except ModuleError as exc:  # a bad URL (bad_url) or a missing CA bundle (tls_failed)
        raise click.ClickException(f"{exc.type.value}: {exc.object} {exc.value}") from None
    _header(report, client, connection)
    api: api_check.ApiCheck | None = None
    if _routes(report, probe_routes(client)):
        _catalogue(report, client, connection, tariffs)
        api = api_check.run(report, table, sources=openapi_sources, panel_url=client.url,
                            fetch=_panel_fetch(client), routes_file=routes_file)
    elif openapi_sources:
        api = api_check.run(report, table, sources=openapi_sources, panel_url=None,
                            fetch=None, routes_file=routes_file)
    _finish(report, client.url, api)


def _finish(report: Report, panel: str | None, api: api_check.ApiCheck | None) -> None:
    report.line()
    if report.quiet:
        click.echo(json.dumps({
            "panel": panel,
            "result": "problems" if report.problems else "all is well",
            "problems": report.problems,
            "api_description": api.as_json() if api is not None else None,
        }, indent=2))
    if report.problems:
        report.line(f"Result: {len(report.problems)} problem(s)")
        sys.exit(1)
    report.line("Result: all is well")


def _route_table(report: Report, routes_file: Path, panel_url: str | None) -> RouteTable:
    """The table every command would use; a bad routes.toml ends doctor at once."""
    try:
        return overrides.load(routes_file).table(panel_url)
    except ModuleError as exc:
        report.problem(f"{exc.object}: {exc.value}")
        _finish(report, panel_url, None)
        raise AssertionError("unreachable: _finish exits") from None


def _panel_fetch(client: DciClient) -> Fetch:
    """Documents on the panel go with the session's token; others with no credential."""
    def fetch(url: str) -> tuple[int, str, bytes]:
        if urlsplit(url)[:2] != urlsplit(client.url)[:2]:
            return api_check.plain_fetch(url)
        try:
            return client.get_document(url)
        except DciError as exc:
            raise DescriptionError(f"{url}: {exc.value}") from None

    return fetch


def _connection(
    module_id: int | None,
    url: str | None,
    email: str | None,
    password_file: Path | None,
    password_env: str | None,
) -> Connection:
    if module_id is not None:
        if url or email or password_file or password_env:
            raise click.UsageError("--module reads the connection; do not add --url/--email/"
                                   "--password-*")
        settings = _module_settings(module_id)
        return Connection(settings, settings.ca_bundle or settings.verify_tls)
    if not url or not email:
        raise click.UsageError("give --module N, or --url and --email with --password-file "
                               "or --password-env")
    if (password_file is None) == (password_env is None):
        raise click.UsageError("give exactly one of --password-file and --password-env")
    if password_file is not None:
        lines = password_file.read_text(encoding="utf-8").splitlines()
        password = lines[0] if lines else ""
    else:
        password = os.environ.get(password_env or "", "")
    if not password:
        raise click.UsageError("the password is empty")
    module_log.register_secret(password)
    try:
        settings = parse(ModuleSettings, {"url": url, "username": email, "password": password})
    except ModuleError as exc:
        raise click.UsageError(f"{exc.object}: {exc.detail or exc.value}") from None
    return Connection(settings, True)


def _module_settings(module_id: int) -> ModuleSettings:
    from dci6_processing.billing.vendor import VendorBilling

    try:
        return VendorBilling(mgr_paths()).module_settings(module_id)
    except ModuleError as exc:
        raise click.ClickException(
            f"cannot read module {module_id}: {exc.type.value} {exc.object} {exc.value}"
        ) from None


def _load_tariffs(raw: str | None) -> dict[str, Mapping[str, Any]]:
    if not raw:
        return {}
    if raw.startswith("@"):
        try:
            raw = Path(raw[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise click.BadParameter(str(exc), param_hint="--tariff-params") from None
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--tariff-params") from None
    if isinstance(data, list):
        data = {str(entry.get("name") or entry.get("id") or index + 1): entry
                for index, entry in enumerate(data) if isinstance(entry, dict)}
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise click.BadParameter("expected an object of tariff objects, or a list of them",
                                 param_hint="--tariff-params")
    return {str(name): params for name, params in data.items()}


def _quiet_logging(module_id: int | None) -> None:
    """Events go to the module log inside BILLmanager; otherwise warnings only, to stderr,
    so the report on stdout stays readable."""
    if module_id is not None:
        module_log.configure(mgr_paths(), command="doctor", module=module_id)
        return

    def redact(_: Any, __: str, event: MutableMapping[str, Any]) -> Mapping[str, Any]:
        redacted: Mapping[str, Any] = module_log.redact(dict(event))
        return redacted

    structlog.configure(
        processors=[structlog.processors.add_log_level, redact,
                    structlog.processors.KeyValueRenderer(key_order=["level", "event"])],
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )


def _header(report: Report, client: DciClient, connection: Connection) -> None:
    if client.url.startswith("http://"):
        tls = "none: plain HTTP, the password and token travel unencrypted"
    elif connection.verify is False:
        tls = "NOT VERIFIED (insecure: the panel's identity is not checked)"
    elif isinstance(connection.verify, str):
        tls = f"verified with CA bundle {connection.verify}"
    else:
        tls = "verified with the system CA store"
    report.line(f"DCImanager 6 at {client.url} as {connection.email}")
    report.line(f"TLS: {tls}")


def probe_routes(client: DciClient) -> list[RouteProbe]:
    """Which routes of the table this panel answers. GET routes are called for real;
    routes that change state are not."""
    probes: list[RouteProbe] = []
    some_server: int | None = None
    table = list(client.routes.values())  # with the admin's overrides
    for target in table:
        if target.name == "auth.token":
            try:
                client.login()
                probes.append(RouteProbe(target, "answers", "logged in"))
            except DciError as exc:
                probes.append(RouteProbe(target, "error", exc.value))
                return probes + [RouteProbe(r, "not probed", "login failed")
                                 for r in table if r is not target]
            continue
        if target.changes_state:
            probes.append(RouteProbe(target, "not probed", "would change state"))
            continue
        ids: dict[str, int] = {}
        if set(target.placeholders) - {"server_id"}:
            probes.append(RouteProbe(target, "not probed", "no object to read"))
            continue
        if "server_id" in target.placeholders:
            if some_server is None:
                probes.append(RouteProbe(target, "not probed", "no server to read"))
                continue
            ids["server_id"] = some_server
        params = {} if target.placeholders else {"limit": "0,1"}
        if target.name == "server.configuration":
            params = {}
        try:
            body = client.call(target, ids=ids, params=params)
        except RouteMismatch as exc:
            probes.append(RouteProbe(target, "missing",
                                     f"HTTP {exc.http_status}: {exc.method} {exc.path}"))
            continue
        except DciNotFound as exc:
            # a list has no object to miss, and the server was just listed: no such route
            probes.append(RouteProbe(target, "missing", f"HTTP 404: {exc.value}"))
            continue
        except DciError as exc:
            probes.append(RouteProbe(target, "error", f"{exc.type.value}: {exc.value}"))
            continue
        if target.name == "server.list":
            items = body.get("list") if isinstance(body, dict) else None
            first = items[0] if isinstance(items, list) and items else None
            if isinstance(first, dict) and isinstance(first.get("id"), int):
                some_server = first["id"]
        probes.append(RouteProbe(target, "answers"))
    return probes


def _routes(report: Report, probes: list[RouteProbe]) -> bool:
    """Print the route table's probe results; False when login failed."""
    report.line()
    report.line("Routes (confirmed = in ISPsystem's docs; inferred = may differ on your panel)")
    width = max(len(p.route.pattern) for p in probes)
    for probe in probes:
        detail = f"  {probe.detail}" if probe.detail else ""
        report.line(f"  {probe.outcome:<10}  {probe.route.method:<6} "
                    f"{probe.route.pattern:<{width}}  {probe.route.confirmation.value:<9}{detail}")
    logged_in = probes[0].route.name == "auth.token" and probes[0].outcome == "answers"
    if not logged_in:
        report.problem(f"cannot log in: {probes[0].detail}")
        return False
    for probe in probes[1:]:
        if probe.outcome in ("missing", "error"):
            report.problem(f"{probe.route.method} {probe.route.pattern} {probe.outcome}: "
                           f"{probe.detail}")
    return True


def _catalogue(
    report: Report,
    client: DciClient,
    connection: Connection,
    tariffs: Mapping[str, Mapping[str, Any]],
) -> None:
    try:
        configurations = client.configurations()
        pools = client.ip_pools()
        templates = client.os_templates()
        locations = client.locations()
    except DciError as exc:
        report.problem(f"cannot read the catalogue: {exc.type.value}: {exc.value}")
        return
    report.line()
    report.line("Configurations (free servers, name)")
    for configuration in configurations:
        report.line(f"  {configuration.free_server_count:>6}  {configuration.name}")
    if not configurations:
        report.line("  (none)")
    report.line("IP pools (id, family, name)")
    for pool in pools:
        report.line(f"  {pool.id:>6}  {pool.family:<5} {pool.name}")
    report.line("OS templates (id, family, name)")
    for template in templates:
        report.line(f"  {template.id:>6}  {template.os_family:<7} {template.name}")
    report.line("Locations (id, name)")
    for location in locations:
        report.line(f"  {location.id:>6}  {location.name}")
    if connection.location_id is not None and all(
        loc.id != connection.location_id for loc in locations
    ):
        report.problem(f"the module's Location ID {connection.location_id} is not on the panel")
    if tariffs:
        report.line()
        report.line("Tariffs")
        free = {c.name: c.free_server_count for c in configurations}
        for name, raw in tariffs.items():
            _check_tariff(report, client, name, raw, free)


def _check_tariff(
    report: Report,
    client: DciClient,
    name: str,
    raw: Mapping[str, Any],
    free: Mapping[str, int],
) -> None:
    """The checks `checkparam` makes, every problem listed (the module's Location ID is
    reported once, above)."""
    from dci6_processing.catalogue import TariffCheck

    def flag(text: str) -> None:
        report.problem(f"tariff {name}: {text}", indent=4)

    before = len(report.problems)
    report.line(f"  tariff {name}:")
    try:
        tariff = parse(TariffOptions, {k: "" if v is None else str(v) for k, v in raw.items()})
    except ModuleError as exc:
        flag(f"{exc.object}: {exc.detail or exc.value}")
        return
    if free.get(tariff.configuration) == 0:
        report.line(f"    note: no free server of {tariff.configuration} right now")
    for problem in TariffCheck(client, None).tariff_problems(tariff, need_stock=False):
        flag(_problem_text(problem))
    if len(report.problems) == before:
        report.line("    ok")


def _problem_text(problem: ModuleError) -> str:
    if isinstance(problem, DciError):
        return f"cannot check: {problem.type.value}: {problem.value}"
    if problem.type is ErrorType.configuration_not_found:
        return f"configuration {problem.object!r} is not on the panel"
    if problem.type is ErrorType.os_template_not_found:
        return f"{problem.object} {problem.value!r} names no OS template on the panel"
    if problem.type is ErrorType.ip_pool_not_found:
        family = IpFamily.V6 if problem.object == "ipv6_pool" else IpFamily.V4
        return f"{problem.object} {problem.value!r} names no {family} pool on the panel"
    return f"{problem.object}: {problem.detail or problem.value}"
