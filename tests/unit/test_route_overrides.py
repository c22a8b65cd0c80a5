"""routes.toml: validated whole before any request, applied per panel, body renamed on the wire."""

from __future__ import annotations

from pathlib import Path

import pytest

from dci6_processing.dci import overrides
from dci6_processing.dci.routes import DEFAULT_TABLE
from dci6_processing.errors import ErrorType, ModuleError

GOOD = '''
[route."server.owner.set"]
method = "post"
path = "/api/dci/v3/server/{server_id}/user"
body = { owner = "user" }

[panel."dci2.example.com".route."server.owner.set"]
path = "/api/dci/v3/server/{server_id}/owner2"

[route."server.switch_port.disable"]
path = "/api/dci/v3/switch/{switch_id}/port/{port_id}/disable"
'''


def load(tmp_path: Path, text: str) -> overrides.RouteOverrides:
    path = tmp_path / "routes.toml"
    path.write_text(text)
    return overrides.load(path)


def test_no_file_is_the_shipped_table(tmp_path: Path) -> None:
    assert overrides.load(tmp_path / "absent.toml").table("https://x") == DEFAULT_TABLE


def test_overrides_apply_file_wide_and_per_panel(tmp_path: Path) -> None:
    loaded = load(tmp_path, GOOD)
    here = loaded.table("https://dci.example.com")["server.owner.set"]
    assert (here.method, here.pattern, here.overridden) == (
        "POST", "/api/dci/v3/server/{server_id}/user", True)
    assert here.panel_body({"owner": 7}) == {"user": 7}
    there = loaded.table("https://DCI2.example.com:443")["server.owner.set"]
    assert there.pattern.endswith("/owner2") and there.renames == (("owner", "user"),)
    port = loaded.table(None)["server.switch_port.disable"]
    assert port.per_port and port.path(switch_id=1, port_id=2).endswith("/switch/1/port/2/disable")
    assert not loaded.table(None)["server.get"].overridden
    with pytest.raises(ValueError, match="does not declare"):
        here.panel_body({"owners": 7})


@pytest.mark.parametrize(("text", "where", "reason"), [
    ('[route."nope"]\nmethod = "GET"\n', "nope", "unknown route name"),
    ('[route."server.get"]\npath = "/api/dci/v3/server/{id}"\n', "server.get", "has slots"),
    ('[route."server.get"]\npath = "/dci/v3/server/{server_id}"\n', "server.get", "/api/"),
    ('[route."server.owner.set"]\nmethod = "PUT"\n', "server.owner.set", "not GET, POST"),
    ('[route."server.owner.set"]\nverb = "POST"\n', "server.owner.set", "unknown key"),
    ('[route."server.owner.set"]\nbody = { user = "x" }\n', "server.owner.set", "not one we send"),
    ('[route."server.get"]\npath = "/api/dci/v3/switch/{switch_id}/port/{port_id}"\n',
     "server.get", "has slots"),
    ('[routes."server.get"]\n', "routes", "unknown key"),
    ('[panel."h".rout."server.get"]\n', 'panel."h".rout', "unknown key"),
    ('[route."server.get"\n', "", "not valid TOML"),
])
def test_every_mistake_is_bad_routes_naming_file_route_and_reason(
    tmp_path: Path, text: str, where: str, reason: str
) -> None:
    with pytest.raises(ModuleError) as caught:
        load(tmp_path, text)
    error = caught.value
    assert error.type is ErrorType.bad_routes
    expected = f"{tmp_path / 'routes.toml'}: {where}" if where else str(tmp_path / "routes.toml")
    assert error.object == expected
    assert reason in error.value
