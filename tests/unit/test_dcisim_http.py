"""The simulator over real HTTP, checked against the spec with plain `requests`."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from pmdci6_sandbox.dcisim import ROUTES, DciSimulator, Inventory

I9 = "i9-9900K-64Gb-2x1024NVMe"


class Panel:
    """A bare HTTP caller that logs in the way the spec says, and nothing more."""

    def __init__(self, sim: DciSimulator, *, login: bool = True) -> None:
        self.sim = sim
        self.http = requests.Session()
        self.token = ""
        if login:
            self.login(sim.admin_email, sim.admin_password)

    def login(self, email: str, password: str) -> requests.Response:
        response = self.http.post(
            f"{self.sim.url}/api/auth/v4/public/token",
            json={"email": email, "password": password},
            timeout=10,
        )
        if response.status_code == 201:
            self.token = response.json()["token"]
            self.http.headers.update({"x-xsrf-token": self.token, "isp-box-instance": "true"})
            self.http.cookies.set("ses6", self.token)
        return response

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        return self.http.request(method, f"{self.sim.url}/api{path}", **kwargs)

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.call("GET", path, params=params)

    def post(self, path: str, body: Any = None) -> requests.Response:
        return self.call("POST", path, json={} if body is None else body)

    def delete(self, path: str) -> requests.Response:
        return self.call("DELETE", path)


def error_of(response: requests.Response) -> tuple[int, int, str]:
    error = response.json()["error"]
    assert set(error) == {"code", "msg", "value"}
    return response.status_code, error["code"], error["msg"]


@pytest.fixture
def sim() -> Iterator[DciSimulator]:
    with DciSimulator(Inventory.default(), time_scale=0.0) as simulator:
        yield simulator


@pytest.fixture
def panel(sim: DciSimulator) -> Panel:
    return Panel(sim)


# --- login and auth ---------------------------------------------------------------------------


def test_login_answers_the_spec_shape(sim: DciSimulator) -> None:
    response = Panel(sim, login=False).login(sim.admin_email, sim.admin_password)
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "token", "expires_at", "confirmed"}
    assert body["id"] == "1" and body["expires_at"] is None and body["confirmed"] is True
    user_id, _, secret = body["token"].partition("-")
    assert user_id == "1" and len(secret) == 32 and int(secret, 16) >= 0


@pytest.mark.parametrize(
    ("email", "password"),
    [("admin@sandbox.example", "wrong"), ("nobody@sandbox.example", "x"),
     ("alice@client.example", "anything")],  # a user without a password cannot log in
)  # fmt: skip
def test_login_with_bad_credentials(sim: DciSimulator, email: str, password: str) -> None:
    response = Panel(sim, login=False).login(email, password)
    assert error_of(response) == (401, 1002, "Invalid email or password")


def test_login_is_case_insensitive_on_email(sim: DciSimulator) -> None:
    assert Panel(sim, login=False).login("ADMIN@Sandbox.Example", sim.admin_password).ok


@pytest.mark.parametrize("body", [b"{not json", b'{"email": "a@b.c"}', b"[1, 2]"])
def test_login_with_malformed_body(sim: DciSimulator, body: bytes) -> None:
    response = requests.post(f"{sim.url}/api/auth/v4/public/token", data=body, timeout=10)
    status, code, msg = error_of(response)
    assert (status, code) == (400, 1000) and msg.startswith("Bad request")


def _sample_path(route_path: str) -> str:
    return re.sub(r"\(\?P<\w+>\[0-9\]\+\)", "1", route_path).removesuffix("/?")


@pytest.mark.parametrize("route", [r for r in ROUTES if not r.public], ids=lambda r: r.name)
def test_every_route_but_login_requires_a_token(sim: DciSimulator, route: Any) -> None:
    url = sim.url + _sample_path(route.pattern.pattern)
    anonymous = requests.request(route.method, url, json={}, timeout=10)
    assert error_of(anonymous) == (401, 1001, "Unauthorized")
    forged = requests.request(
        route.method, url, json={}, headers={"x-xsrf-token": "1-" + "0" * 32}, timeout=10
    )
    assert error_of(forged) == (401, 1001, "Unauthorized")
    assert {(r.route, r.status) for r in sim.requests} == {(route.name, 401)}


def test_header_or_cookie_alone_authenticates(sim: DciSimulator, panel: Panel) -> None:
    url = f"{sim.url}/api/dci/v3/server/1"
    header_only = requests.get(url, headers={"x-xsrf-token": panel.token}, timeout=10)
    cookie_only = requests.get(url, cookies={"ses6": panel.token}, timeout=10)
    assert header_only.status_code == cookie_only.status_code == 200


def test_unknown_path_and_wrong_method(panel: Panel) -> None:
    # no service has the path: the gateway answers with its own page, not the panel's JSON
    # (how pmdci6 tells a wrong route from a missing object), token or not
    for response in (panel.get("/dci/v3/nothing"),
                     requests.get(f"{panel.sim.url}/api/dci/v3/nothing", timeout=10)):
        assert response.status_code == 404
        assert response.headers["Content-Type"] == "text/html"
        assert "404 Not Found" in response.text
    assert error_of(panel.delete("/dci/v3/server"))[:2] == (405, 1000)
    assert panel.get("/dci/v3/server/1/").status_code == 200  # trailing slash tolerated


# --- servers ----------------------------------------------------------------------------------


SERVER_KEYS = {
    "id", "name", "domain", "configuration", "location_id", "owner", "owner_email", "is_new",
    "state", "power_status", "operation", "os_template", "ip", "switch_connection",
    "pdu_connection", "maintenance_mode",
}  # fmt: skip


def test_server_get(panel: Panel) -> None:
    server = panel.get("/dci/v3/server/17").json()
    assert set(server) == SERVER_KEYS
    assert server["owner"] == 2 and server["owner_email"] == "alice@client.example"
    assert server["os_template"]["name"] == "Ubuntu 22.04"
    ipv4 = [ip for ip in server["ip"] if ip["family"] == "ipv4"]
    assert ipv4[0]["name"] == "203.0.113.10" and ipv4[0]["gateway"] == "203.0.113.1"
    assert {p["is_ipmi_connection"] for p in server["switch_connection"]} == {True, False}
    assert error_of(panel.get("/dci/v3/server/9999")) == (404, 1004, "Server not found")


def test_server_list_envelope_pagination_and_order(panel: Panel) -> None:
    everything = panel.get("/dci/v3/server").json()
    assert set(everything) == {"list", "size"}
    assert everything["size"] == len(everything["list"]) == 42
    assert [s["id"] for s in everything["list"]] == list(range(1, 43))
    page = panel.get("/dci/v3/server", limit="10,5").json()
    assert page["size"] == 42 and [s["id"] for s in page["list"]] == [11, 12, 13, 14, 15]
    assert [s["id"] for s in panel.get("/dci/v3/server", limit="3").json()["list"]] == [1, 2, 3]
    assert panel.get("/dci/v3/server", limit="40,10").json()["list"][-1]["id"] == 42
    assert panel.get("/dci/v3/server", limit="100,10").json() == {"list": [], "size": 42}
    by_name = panel.get("/dci/v3/server", orderby="name desc", limit="0,2").json()["list"]
    assert [s["name"] for s in by_name] == ["xeon-e-01", "msk-new-01"]
    by_id_desc = panel.get("/dci/v3/server", orderby="id desc", limit="0,1").json()["list"]
    assert by_id_desc[0]["id"] == 42


def test_server_list_where(panel: Panel) -> None:
    where = "(owner_email IS null) AND is_new EQ false AND location_id EQ 3"
    found = panel.get("/dci/v3/server", where=where).json()
    assert found["size"] == len(found["list"]) == 8
    assert all(s["location_id"] == 3 and s["owner_email"] is None for s in found["list"])
    paged = panel.get("/dci/v3/server", where=where, limit="2,2", orderby="id desc").json()
    assert paged["size"] == 8 and [s["id"] for s in paged["list"]] == [30, 29]
    owned = panel.get("/dci/v3/server", where="owner_email EQ 'BOB@client.example'").json()
    assert [s["id"] for s in owned["list"]] == [19, 28]
    by_ip = panel.get("/dci/v3/server", where="ip.name EQ '203.0.113.11'").json()
    assert [s["id"] for s in by_ip["list"]] == [18]
    quoted = panel.get("/dci/v3/server", where="owner_email EQ 'x'' OR ''a'' EQ ''a'").json()
    assert quoted == {"list": [], "size": 0}


@pytest.mark.parametrize(
    "params",
    [{"where": "owner_email IS"}, {"where": "password EQ 'x'"}, {"where": "id EQ 1)"},
     {"limit": "a"}, {"limit": "-5"}, {"orderby": "id up"}, {"orderby": "secret asc"}],
)  # fmt: skip
def test_malformed_list_queries_are_400(panel: Panel, params: dict[str, str]) -> None:
    status, code, msg = error_of(panel.get("/dci/v3/server", **params))
    assert (status, code) == (400, 1000) and msg.startswith("Bad request")


def test_configuration_counts_follow_the_free_rule(sim: DciSimulator, panel: Panel) -> None:
    def counts(**params: str) -> dict[str, int]:
        body = panel.get("/dci/v3/server/configuration", **params).json()
        return {item["configuration"]: item["free_server_count"] for item in body["list"]}

    assert counts() == {
        I9: 18,  # 21 in total: 3 owned; maintenance (37) and failed (40) are not free
        "E5-2690v4-128Gb-2x480SSD": 9,
        "EPYC-7302-256Gb-4x960SSD": 5,  # 36 is new
        "Xeon-E-2388G-32Gb-2x480SSD": 1,
    }
    assert counts(where="location_id EQ 3")[I9] == 2
    assert panel.post("/dci/v3/server/1/owner", {"owner": 3}).ok
    sim.update_server(2, is_new=True)
    sim.update_server(4, maintenance_mode=True)
    sim.update_server(6, operation={"id": 1, "status": "running"})
    sim.update_server(8, operation={"id": 2, "status": "failed", "status_info": "x"})
    sim.update_server(40, operation={"id": 3, "status": "ok"})  # failed -> ok: free again
    assert counts()[I9] == 18 - 5 + 1


# --- owner, switch ports ----------------------------------------------------------------------


def test_owner_set_twice_conflicts_and_remove_frees(sim: DciSimulator, panel: Panel) -> None:
    response = panel.post("/dci/v3/server/1/owner", {"owner": 3})
    assert response.status_code == 200 and response.json() == {"id": 1}
    server = sim.server(1)
    assert (server["owner"], server["owner_email"]) == (3, "bob@client.example")
    again = panel.post("/dci/v3/server/1/owner", {"owner": 2})
    assert error_of(again) == (409, 2001, "Server already has an owner")
    assert sim.server(1)["owner"] == 3
    bob = panel.get("/dci/v3/user", where="email EQ 'bob@client.example'").json()["list"][0]
    assert bob["server_count"] == 3
    assert panel.delete("/dci/v3/server/1/owner").json() == {}
    assert sim.server(1)["owner"] is None and sim.server(1)["owner_email"] is None
    assert panel.delete("/dci/v3/server/1/owner").status_code == 200  # idempotent
    assert error_of(panel.post("/dci/v3/server/1/owner", {"owner": 99}))[:2] == (404, 1004)
    for body in ({}, {"owner": "3"}, {"owner": True}):
        assert error_of(panel.post("/dci/v3/server/1/owner", body))[:2] == (400, 1000)
    assert error_of(panel.post("/dci/v3/server/999/owner", {"owner": 3}))[:2] == (404, 1004)


def test_switch_ports(sim: DciSimulator, panel: Panel) -> None:
    assert panel.post("/dci/v3/server/1/switch_port/disable").json() == {}
    ports = {p["is_ipmi_connection"]: p for p in sim.server(1)["switch_connection"]}
    assert ports[False]["admin_status"] == "down"
    assert ports[True]["admin_status"] == "up"  # the IPMI link is never touched
    assert panel.post("/dci/v3/server/1/switch_port/enable").json() == {}
    assert sim.server(1)["switch_connection"][0]["admin_status"] == "up"
    for server_id in (38, 39):  # no connection at all; IPMI only
        for action in ("enable", "disable"):
            response = panel.post(f"/dci/v3/server/{server_id}/switch_port/{action}")
            assert error_of(response) == (400, 2002, "Server has no switch connection")


# --- addresses ----------------------------------------------------------------------------------


def test_add_and_remove_ipv4(sim: DciSimulator, panel: Panel) -> None:
    added = panel.post("/dci/v3/server/1/ip", {"family": "ipv4", "ippool": 1}).json()
    assert {"id", "name", "family"} <= set(added)
    assert added["family"] == "ipv4" and added["name"] == "203.0.113.14"  # .10-.13 in use
    entry = sim.server(1)["ip"][0]
    assert entry["id"] == added["id"] and entry["status"] == "assigned"
    assert panel.delete(f"/dci/v3/ip/{added['id']}").json() == {}
    assert sim.server(1)["ip"] == []
    assert error_of(panel.delete(f"/dci/v3/ip/{added['id']}"))[:2] == (404, 1004)
    again = panel.post("/dci/v3/server/2/ip", {"family": "ipv4", "ippool": 1}).json()
    assert again["name"] == "203.0.113.15" and again["id"] != added["id"]


def test_add_ipv6_subnet_and_single_address(sim: DciSimulator, panel: Panel) -> None:
    subnet = panel.post("/dci/v3/server/1/ip", {"family": "ipv6", "ippool": 10, "prefix": 64})
    assert subnet.json()["name"] == "2001:db8:0:2::/64"  # :1::/64 belongs to server 17
    single = panel.post("/dci/v3/server/1/ip", {"family": "ipv6", "ippool": 10}).json()
    assert single["name"] == "2001:db8::2" and single["family"] == "ipv6"
    assert [ip["name"] for ip in sim.server(1)["ip"]] == ["2001:db8:0:2::/64", "2001:db8::2"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [({"family": "ipv6", "ippool": 1}, (400, 1000)),
     ({"family": "ipv4", "ippool": 77}, (404, 1004)),
     ({"family": "ipx", "ippool": 1}, (400, 1000)),
     ({"family": "ipv4", "ippool": 1, "prefix": 30}, (400, 1000)),
     ({"family": "ipv6", "ippool": 10, "prefix": 40}, (400, 1000)),
     ({"ippool": 1}, (400, 1000))],
)  # fmt: skip
def test_add_ip_refusals(panel: Panel, body: dict[str, Any], expected: tuple[int, int]) -> None:
    assert error_of(panel.post("/dci/v3/server/1/ip", body))[:2] == expected


def test_pool_exhaustion(sim: DciSimulator, panel: Panel) -> None:
    names = [panel.post(f"/dci/v3/server/{i}/ip", {"family": "ipv4", "ippool": 3}).json()["name"]
             for i in (1, 2)]  # fmt: skip
    assert names == ["192.0.2.10", "192.0.2.11"]
    refused = panel.post("/dci/v3/server/3/ip", {"family": "ipv4", "ippool": 3})
    assert error_of(refused) == (409, 3001, "No free addresses in pool")
    assert refused.json()["error"]["value"] == {"ippool": 3}
    assert sim.server(3)["ip"] == []
    sim.exhaust_pool(1)
    assert error_of(panel.post("/dci/v3/server/3/ip", {"family": "ipv4", "ippool": 1}))[1] == 3001
    with pytest.raises(KeyError):
        sim.exhaust_pool(99)


# --- users and catalogue ------------------------------------------------------------------------


def test_users(sim: DciSimulator, panel: Panel) -> None:
    users = panel.get("/dci/v3/user").json()
    assert users["size"] == 4
    roles = {user["email"]: user["roles"] for user in users["list"]}
    assert roles["alice@client.example"] == "[@user]"  # a string, as some panels send
    assert roles["bob@client.example"] == ["@user"]  # an array, as others do
    alice = panel.get("/dci/v3/user", where="(email EQ 'Alice@Client.Example')").json()
    assert alice["size"] == 1
    assert set(alice["list"][0]) == {"id", "email", "roles", "server_count"}
    assert alice["list"][0]["server_count"] == 2
    admins = panel.get("/dci/v3/user", where="roles CP '%@admin%'").json()
    assert {u["email"] for u in admins["list"]} == {sim.admin_email, "support@sandbox.example"}


def test_create_user(sim: DciSimulator, panel: Panel) -> None:
    body = {"email": "carol@client.example", "password": "carol-pass", "role": "@user"}
    created = panel.post("/dci/v3/user", body)
    assert created.status_code == 200 and set(created.json()) == {"id"}
    assert created.json()["id"] == 5
    user = sim.user_by_email("CAROL@client.example")
    assert user is not None and user["id"] == 5 and user["server_count"] == 0
    assert Panel(sim, login=False).login("carol@client.example", "carol-pass").status_code == 201
    duplicate = panel.post("/dci/v3/user", {**body, "email": "Carol@Client.Example"})
    assert error_of(duplicate) == (409, 2005, "User already exists")
    for bad in ({**body, "email": "not-an-email"}, {**body, "password": ""},
                {**body, "role": 5}):  # fmt: skip
        assert error_of(panel.post("/dci/v3/user", bad))[:2] == (400, 1000)
    added = sim.add_user("dave@client.example")
    assert added["roles"] == "[@user]" and added["id"] == 6
    assert isinstance(sim.add_user("erin@client.example")["roles"], list)
    with pytest.raises(ValueError, match="exists"):
        sim.add_user("dave@client.example")


def test_catalogue_lists(panel: Panel) -> None:
    templates = panel.get("/dci/v3/os_template").json()
    assert templates["size"] == 4
    assert {"id", "name", "tags", "os_family"} <= set(templates["list"][0])
    windows = panel.get("/dci/v3/os_template", where="os_family EQ 'windows'").json()["list"]
    assert [t["name"] for t in windows] == ["Windows Server 2022"]
    locations = panel.get("/dci/v3/location").json()
    assert [loc["id"] for loc in locations["list"]] == [1, 2, 3] and locations["size"] == 3
    pools = panel.get("/ip/v3/ippool").json()["list"]
    assert [(p["id"], p["name"], p["family"]) for p in pools] == [
        (1, "public-v4", "ipv4"), (2, "diag-v4", "ipv4"), (3, "tiny-v4", "ipv4"),
        (10, "public-v6", "ipv6"),
    ]  # fmt: skip
    assert panel.get("/ip/v3/ippool", where="family EQ 'ipv6'").json()["size"] == 1


# --- request log ----------------------------------------------------------------------------------


def test_request_log(sim: DciSimulator, panel: Panel) -> None:
    panel.get("/dci/v3/server", limit="0,5", where="id EQ 1")
    panel.post("/dci/v3/server/1/power_on")
    panel.get("/dci/v3/server/9999")
    logged = sim.requests
    assert [(r.method, r.route, r.status) for r in logged] == [
        ("POST", "auth.token", 201),
        ("GET", "server.list", 200),
        ("POST", "server.power_on", 200),
        ("GET", "server.get", 404),
    ]
    assert logged[1].path == "/api/dci/v3/server"
    assert logged[1].query == {"limit": "0,5", "where": "id EQ 1"}
    sim.clear_requests()
    assert sim.requests == []


def test_every_route_has_a_distinct_name() -> None:
    from dci6_processing.dci.routes import ROUTES as PRODUCT_ROUTES

    names = [route.name for route in ROUTES]
    assert len(names) == len(set(names))
    # every route of pmdci6's table by its name, and the confirmed list of a switch's ports
    assert set(names) == {r.name for r in PRODUCT_ROUTES} | {"switch.port.list"}


def test_large_inventory_lists_in_pages() -> None:
    with DciSimulator(Inventory.generate(servers=10_000, seed=1)) as big:
        panel = Panel(big)
        seen: list[int] = []
        for offset in range(0, 10_000, 500):
            page = panel.get("/dci/v3/server", limit=f"{offset},500").json()
            assert page["size"] == 10_000
            seen.extend(server["id"] for server in page["list"])
        assert seen == list(range(1, 10_001))
        free = panel.get(
            "/dci/v3/server",
            where=f"owner_email IS null AND is_new EQ false AND configuration EQ '{I9}'",
            limit="0,100",
        ).json()
        assert len(free["list"]) == 100 and free["size"] > 4_000
        counts = panel.get("/dci/v3/server/configuration").json()["list"]
        assert sum(item["free_server_count"] for item in counts) > 8_000
        assert [r.route for r in big.requests].count("server.list") == 21


# --- loopback and TLS -----------------------------------------------------------------------------


def test_binds_to_loopback_only() -> None:
    with pytest.raises(ValueError, match="loopback"):
        DciSimulator(Inventory.default(), host="0.0.0.0")  # noqa: S104
    with DciSimulator(Inventory.default(), host="::1") as v6:
        assert v6.url.startswith("http://[::1]:")
        assert Panel(v6).get("/dci/v3/location").status_code == 200


@pytest.fixture
def certificate(tmp_path: Path) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    pem = tmp_path / "panel.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(pem), "-out", str(pem)],
        check=True, capture_output=True,
    )  # fmt: skip
    return pem


def test_https_with_a_self_signed_certificate(certificate: Path) -> None:
    with DciSimulator(Inventory.default(), certfile=certificate) as secure:
        assert secure.url.startswith("https://127.0.0.1:")
        login = f"{secure.url}/api/auth/v4/public/token"
        credentials = {"email": secure.admin_email, "password": secure.admin_password}
        with pytest.raises(requests.exceptions.SSLError):
            requests.post(login, json=credentials, timeout=10)
        trusted = requests.post(login, json=credentials, timeout=10, verify=str(certificate))
        assert trusted.status_code == 201
        # A failed handshake did not break the server.
        assert requests.post(login, json=credentials, timeout=10, verify=str(certificate)).ok
