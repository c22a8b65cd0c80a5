"""`doctor`'s route probing, pinned with `responses`: which routes a panel answers, told
apart from objects it lacks, and never a call that changes state."""

from __future__ import annotations

import responses

from dci6_processing.dci.client import DciClient
from dci6_processing.dci.routes import ROUTES
from dci6_processing.doctor import probe_routes
from tests.unit.test_dci_client import API, client, panel, server_json

__all__ = ["client", "panel"]  # the client tests' fixtures: a logged-in mock panel


def test_probe_routes(panel: responses.RequestsMock, client: DciClient) -> None:
    panel.get(f"{API}/dci/v3/server", json={"list": [server_json(4)], "size": 9})
    panel.get(f"{API}/dci/v3/server/4", json=server_json(4))
    panel.get(f"{API}/dci/v3/server/configuration", json={"list": []})
    panel.get(f"{API}/dci/v3/user", json={"list": [], "size": 0})
    panel.get(f"{API}/ip/v3/ippool", status=404, body="<html>no route</html>")
    panel.get(f"{API}/dci/v3/os_template", status=500,
              json={"error": {"code": 500, "msg": "Internal server error"}})
    panel.get(f"{API}/dci/v3/location", status=405,
              json={"error": {"code": 1000, "msg": "Bad request: method not allowed"}})
    probes = {p.route.name: p for p in probe_routes(client)}
    assert set(probes) == {r.name for r in ROUTES}
    assert probes["auth.token"].outcome == "answers"
    for name in ("server.list", "server.get", "server.configuration", "user.list"):
        assert probes[name].outcome == "answers", name
    # a gateway's 404 page and a 405 both say: the route table differs here
    assert probes["ippool.list"].outcome == "missing"
    assert probes["ippool.list"].detail == "HTTP 404: GET /api/ip/v3/ippool"
    assert probes["location.list"].outcome == "missing"
    assert probes["location.list"].detail == "HTTP 405: GET /api/dci/v3/location"
    assert probes["os_template.list"].outcome == "error"
    assert "Internal server error" in probes["os_template.list"].detail
    for r in ROUTES:
        if r.changes_state and r.name != "auth.token":
            assert probes[r.name].outcome == "not probed"
            assert probes[r.name].detail == "would change state"
    assert not [c for c in panel.calls if c.request.method != "GET"
                and "auth" not in (c.request.url or "")]


def test_a_list_route_answering_not_found_is_missing(
    panel: responses.RequestsMock, client: DciClient
) -> None:
    # the simulator (and maybe a panel) answers an unknown path with its own 404 JSON
    panel.get(f"{API}/dci/v3/server", json={"list": [], "size": 0})
    panel.get(f"{API}/dci/v3/location", status=404,
              json={"error": {"code": 1004, "msg": "Not found"}})
    probes = {p.route.name: p for p in probe_routes(client)}
    assert (probes["location.list"].outcome, probes["location.list"].detail) == (
        "missing", "HTTP 404: Not found")
    assert probes["server.get"].outcome == "not probed"  # no server listed to read


def test_probe_stops_when_login_fails(panel: responses.RequestsMock, client: DciClient) -> None:
    panel.replace(responses.POST, f"{API}/auth/v4/public/token", status=401,
                  json={"error": {"code": 1002, "msg": "Invalid email or password"}})
    probes = probe_routes(client)
    assert probes[0].outcome == "error"
    assert all(p.outcome == "not probed" for p in probes[1:])
