"""The part of `pmdci6 doctor` that holds the route table against the panel's API description.

Documents come from the panel's Swagger UI page (`openapi.discover`) or from the admin
(`--openapi FILE_OR_URL`, repeatable: files saved from a browser, or URLs). One row per route:
its CONFIRMED/INFERRED mark (and whether routes.toml overrides it), the verdict, the closest
candidates and the override to paste; then a summary line. Every route that does not match
is a problem, so doctor exits 1 until the table (with its overrides) matches the panel.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from dci6_processing.dci.routes import RouteTable
from dci6_processing.openapi import (
    ApiDocument,
    DescriptionError,
    Fetch,
    RouteCheck,
    check_routes,
    discover,
    load_document,
)

HINT = ("open the panel's /swagger/ page in a browser logged in to the panel, save the "
        "document of each definition it offers (DCI back, Auth v4, IPmanager) as a file, and "
        "give them with --openapi FILE (repeatable)")


class Output(Protocol):
    def line(self, text: str = "") -> None: ...

    def problem(self, text: str, *, indent: int = 2) -> None: ...

    def count_problem(self, text: str) -> None: ...


@dataclass
class ApiCheck:
    sources: list[str] = field(default_factory=list)
    documents: list[ApiDocument] = field(default_factory=list)
    checks: list[RouteCheck] = field(default_factory=list)
    error: str = ""

    def as_json(self) -> dict[str, Any]:
        counts = {verdict: sum(1 for c in self.checks if c.verdict == verdict)
                  for verdict in ("matches", "differs", "absent")}
        return {
            "documents": [{"title": d.title, "source": d.source, "format": d.version,
                           "operations": len(d.operations)} for d in self.documents],
            "error": self.error or None,
            "routes": [check.as_json() for check in self.checks],
            "summary": {"routes": len(self.checks), **counts,
                        "overridden": sum(1 for c in self.checks if c.route.overridden)},
        }


def load_sources(sources: Sequence[str], fetch_url: Callable[[str], tuple[int, str, bytes]]
                 ) -> list[ApiDocument]:
    """The admin's documents: files, or http(s) URLs fetched with `fetch_url`."""
    documents = []
    for source in sources:
        if urlsplit(source).scheme in ("http", "https"):
            status, _, body = fetch_url(source)
            if status != 200:
                raise DescriptionError(f"{source} answered HTTP {status}")
            documents.append(load_document(body, source))
            continue
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise DescriptionError(f"cannot read {source}: {exc.strerror or exc}") from None
        documents.append(load_document(data, source))
    return documents


def run(
    out: Output,
    table: RouteTable,
    *,
    sources: Sequence[str],
    panel_url: str | None,
    fetch: Fetch | None,
    routes_file: Path,
) -> ApiCheck:
    """Find the documents, check every route of `table`, print the table."""
    result = ApiCheck(sources=list(sources))
    out.line()
    try:
        if sources:
            if fetch is None:
                fetch = plain_fetch
            result.documents = load_sources(sources, fetch)
            where = ", ".join(sources)
        elif panel_url is not None and fetch is not None:
            found = discover(panel_url, fetch)
            result.documents = found.documents
            where = f"{panel_url.rstrip('/')}/swagger/"
            for problem in found.problems:
                out.problem(f"API description: {problem}")
        else:
            raise DescriptionError("no panel and no --openapi document")
    except DescriptionError as exc:
        result.error = f"{exc}; {HINT}"
        out.problem(f"cannot read the panel's API description: {exc}")
        out.line(f"  hint: {HINT}")
        return result
    titles = ", ".join(f"{d.title} ({d.version})" for d in result.documents)
    out.line(f"API description: {titles} from {where}")
    result.checks = check_routes(table, result.documents)
    _print(out, result.checks, routes_file)
    return result


def _print(out: Output, checks: Sequence[RouteCheck], routes_file: Path) -> None:
    name_width = max(len(c.route.name) for c in checks)
    path_width = max(len(c.route.pattern) for c in checks)
    out.line(f"  {'route':<{name_width}}  {'mark':<9} {'override':<8} {'method':<6} "
             f"{'path':<{path_width}}  verdict")
    for check in checks:
        route = check.route
        out.line(f"  {route.name:<{name_width}}  {route.confirmation.value.upper():<9} "
                 f"{'yes' if route.overridden else '':<8} {route.method:<6} "
                 f"{route.pattern:<{path_width}}  {check.summary}")
        if check.verdict == "matches":
            continue
        out.count_problem(f"route {route.name}: {check.summary}")
        for candidate in check.candidates:
            out.line(f"      closest: {candidate}")
        if check.override:
            # a second [route."name"] table would be invalid TOML: an overridden route's
            # entry is replaced
            where = "replace the route's entry in" if route.overridden else "add to"
            out.line(f"      override ({where} {routes_file}):")
            for text in check.override.splitlines():
                out.line(f"        {text}")
        elif check.verdict == "absent" and not check.candidates:
            out.line("      no similar operation in the documents")
    counts = {verdict: sum(1 for c in checks if c.verdict == verdict)
              for verdict in ("matches", "differs", "absent")}
    overridden = sum(1 for c in checks if c.route.overridden)
    out.line(f"Routes: {len(checks)} checked, {counts['matches']} match, {counts['differs']} "
             f"differ, {counts['absent']} absent; {overridden} overridden by {routes_file}")


def plain_fetch(url: str) -> tuple[int, str, bytes]:
    """A document URL off the panel (or with no panel): fetched without any credential."""
    import requests

    try:
        response = requests.get(url, timeout=30, allow_redirects=False)
    except requests.exceptions.RequestException as exc:
        raise DescriptionError(f"cannot fetch {url}: {type(exc).__name__}") from None
    return response.status_code, response.headers.get("Content-Type", ""), response.content
