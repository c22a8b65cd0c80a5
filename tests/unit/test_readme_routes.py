"""The README's route list ("Meeting your panel" → "Routes") is the route table of
dci/routes.py, both ways: every route, its mark, method, path, source and note."""

from __future__ import annotations

import re
from pathlib import Path

from dci6_processing.dci.routes import CONFIRMED, ROUTES, Route

README = Path(__file__).resolve().parents[2] / "README.md"
NONE_FOUND = "none found"
ROW = re.compile(r"\| `(?P<name>[a-z_.]+)` \| (?P<mark>[A-Z]+) \| (?P<method>[A-Z]+) "
                 r"\| `(?P<path>[^`]+)` \| (?P<source>[^|]+) \| (?P<note>[^|]*) \|")


def readme_routes() -> dict[str, tuple[str, str, str, str, str]]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Meeting your panel", 1)[1].split("\n## ", 1)[0]
    routes = section.split("### Routes", 1)[1]
    found: dict[str, tuple[str, str, str, str, str]] = {}
    for line in routes.splitlines():
        row = ROW.fullmatch(line.strip())
        if row:
            assert row["name"] not in found, f"{row['name']} is listed twice"
            found[row["name"]] = (row["mark"], row["method"], row["path"],
                                  row["source"].strip(), row["note"].strip())
    return found


def as_listed(route: Route) -> tuple[str, str, str, str, str]:
    source = f"<{route.source}>" if route.source else NONE_FOUND
    return (route.confirmation.value.upper(), route.method, route.pattern, source, route.note)


def test_the_readme_lists_every_route_as_routes_py_has_it() -> None:
    listed = readme_routes()
    assert listed, "no route rows under 'Meeting your panel' / 'Routes'"
    assert set(listed) == {r.name for r in ROUTES}  # none missing, none extra
    assert listed == {r.name: as_listed(r) for r in ROUTES}


def test_every_confirmed_route_names_where_it_was_found() -> None:
    assert all(r.source.startswith("https://") for r in ROUTES if r.confirmation is CONFIRMED)
    assert not [r.name for r in ROUTES if r.confirmation is not CONFIRMED and r.source]
