"""Malformed panel answers, generated (hypothesis): whatever a panel or a proxy in front of it
sends to the main read routes — wrong types, missing fields, unknown enum values, truncated
JSON, HTML, huge numbers, deep nesting, any status — the client ends either with a parsed
answer or with a `ModuleError` of a clear type, never another exception.

Runs derandomized (the same examples every run) and small, so CI is stable and quick.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dci6_processing.dci.client import Backoff, DciClient
from dci6_processing.dci.errors import BadAnswer, DciNotFound
from dci6_processing.errors import ErrorType, ModuleError

URL = "https://dci.example"
API = f"{URL}/api"
LOGIN = f"{API}/auth/v4/public/token"

FUZZ = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

OPERATION = {"id": 7, "status": "running", "status_info": None, "progress_info": "10%"}
SERVER = {"id": 1, "name": "srv1", "configuration": "cfg-a", "location_id": 1, "owner": None,
          "owner_email": None, "is_new": False, "state": "ok", "power_status": "on",
          "operation": OPERATION, "os_template": {"id": 3, "name": "Debian", "tags": []},
          "ip": [{"id": 11, "name": "203.0.113.7", "family": "ipv4", "gateway": "203.0.113.1"}],
          "switch_connection": [{"id": 5, "switch": {"id": 2}, "connection_id": 9,
                                 "admin_status": "up", "is_ipmi_connection": False}],
          "maintenance_mode": False}
POOL = {"id": 4, "name": "public-v4", "family": "ipv4"}
USER = {"id": 9, "email": "client@example.com", "roles": ["@user"], "server_count": 1}


@dataclass(frozen=True)
class Target:
    """One read the client makes: the route it asks, a well-formed answer, the call."""

    method: str
    url: str
    valid: Any
    call: Callable[[DciClient], object]


def _wait(client: DciClient) -> object:
    fake = [0.0]

    def sleep(seconds: float) -> None:
        fake[0] += seconds

    poll = Backoff(initial=1, factor=2, maximum=4, clock=lambda: fake[0], sleep=sleep)
    return client.wait_for_operation(1, timeout=6, operation_id=7, poll=poll)


TARGETS = {
    "auth": Target("POST", LOGIN, {"id": "6", "token": "6-abc", "confirmed": True},
                   lambda client: client.login()),
    "auth login key": Target("POST", f"{API}/auth/v4/user/9/key", {"id": 3, "key": "k-1a2b"},
                             lambda client: client.key_login_url(client.create_login_key(9))),
    "server.get": Target("GET", f"{API}/dci/v3/server/1", SERVER,
                         lambda client: client.server(1)),
    "server.list": Target("GET", f"{API}/dci/v3/server", {"list": [SERVER], "size": 1},
                          lambda client: list(client.iter_servers(page_size=1))),
    "free servers": Target("GET", f"{API}/dci/v3/server", {"list": [SERVER], "size": 1},
                           lambda client: list(client.free_servers("cfg-a", 1, page_size=1))),
    "operation (wait)": Target("GET", f"{API}/dci/v3/server/1", SERVER, _wait),
    "operation (install)": Target(
        "POST", f"{API}/dci/v3/server/1/operation/install", {"operation": OPERATION},
        lambda client: client.install_os(1, template_id=3, password="Root-pw-1",
                                         hostname="h1.example.com")),
    "ip pools": Target("GET", f"{API}/ip/v3/ippool", {"list": [POOL], "size": 1},
                       lambda client: client.ip_pools()),
    "ip add": Target("POST", f"{API}/dci/v3/server/1/ip", {"id": 12, "name": "203.0.113.8"},
                     lambda client: client.add_ip(1, "ipv4", 4)),
    "user lookup": Target("GET", f"{API}/dci/v3/user", {"list": [USER], "size": 1},
                          lambda client: client.user_by_email("client@example.com")),
}

# --- what a broken panel sends ---------------------------------------------------------------

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20), st.sampled_from(["", "running", "RUNNING", "ok", "weird-status",
                                           "ipv5", "@admin", "null", "[]", "0", "-1"]),
    st.integers(min_value=10**18, max_value=10**60),  # ids past any 64-bit column
)
json_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON document: dict keys and list indexes, depth first."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield (*prefix, key)
            yield from _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield (*prefix, index)
            yield from _paths(inner, (*prefix, index))


def _mutated(document: Any, path: tuple[Any, ...], replacement: Any, drop: bool) -> Any:
    """A deep copy of `document` with the value at `path` replaced, or removed."""
    copy = json.loads(json.dumps(document))
    holder = copy
    for part in path[:-1]:
        holder = holder[part]
    if drop:
        del holder[path[-1]]
    else:
        holder[path[-1]] = replacement
    return copy


@st.composite
def malformed_bodies(draw: st.DrawFn, valid: Any) -> tuple[int, bytes, str]:
    """(HTTP status, body, content type) of an answer that is wrong in some way."""
    text = json.dumps(valid)
    kind = draw(st.sampled_from(["field", "missing", "any json", "truncated", "html",
                                 "deep", "huge number", "garbage", "empty"]))
    if kind in ("field", "missing"):
        path = draw(st.sampled_from(list(_paths(valid))))
        body = json.dumps(_mutated(valid, path, draw(json_values), kind == "missing"))
    elif kind == "any json":
        body = json.dumps(draw(json_values))
    elif kind == "truncated":
        body = text[:draw(st.integers(min_value=1, max_value=len(text) - 1))]
    elif kind == "html":
        body = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    elif kind == "deep":
        depth = draw(st.sampled_from([500, 5_000, 100_000]))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        inner = opener * depth + "1" + closer * depth
        body = draw(st.sampled_from([inner, json.dumps(valid)[:-1] + ', "x": ' + inner + "}"]))
    elif kind == "huge number":
        digits = "9" * draw(st.sampled_from([19, 400, 5_000]))
        number = draw(st.sampled_from([digits, digits + ".5", "1e999", "-" + digits]))
        path = draw(st.sampled_from(list(_paths(valid))))
        body = json.dumps(_mutated(valid, path, "@@N@@", False)).replace('"@@N@@"', number)
    elif kind == "garbage":
        return (draw(st.sampled_from([200, 201])), draw(st.binary(max_size=64)),
                "application/json")
    else:
        body = ""
    status = draw(st.sampled_from([200, 200, 200, 201, 400, 404, 409, 422, 500, 502, 503]))
    content_type = "text/html" if kind == "html" else "application/json"
    return status, body.encode(), content_type


def _client() -> DciClient:
    return DciClient(URL, "admin@example.com", "Admin-pw-1", backoff=0.0, retries_503=1)


def _serve(mock: responses.RequestsMock, target: Target, status: int, body: bytes,
           content_type: str) -> None:
    if target.url != LOGIN:
        mock.post(LOGIN, json={"token": "6-abc"})
    mock.add(target.method, target.url, body=body, status=status, content_type=content_type)


@pytest.mark.parametrize("name", list(TARGETS))
def test_a_well_formed_answer_parses(name: str) -> None:
    """The baseline the fuzz departs from: each valid body really is accepted."""
    target = TARGETS[name]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        valid = target.valid
        if name == "operation (wait)":  # the wait ends when our operation is ok
            valid = {**SERVER, "operation": {**OPERATION, "status": "ok"}}
        _serve(mock, target, 200, json.dumps(valid).encode(), "application/json")
        target.call(_client())


@pytest.mark.parametrize("name", list(TARGETS))
def test_a_malformed_answer_ends_in_a_module_error(name: str) -> None:
    target = TARGETS[name]

    @FUZZ
    @given(answer=malformed_bodies(target.valid))
    def check(answer: tuple[int, bytes, str]) -> None:
        status, body, content_type = answer
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            _serve(mock, target, status, body, content_type)
            try:
                target.call(_client())
            except ModuleError as exc:
                assert exc.type is not ErrorType.internal
                assert str(exc)  # renders: the error XML can be built from it
            # any other exception fails the example: hypothesis shows the body

    check()


# --- what the fuzz found, pinned -------------------------------------------------------------


def _one_answer(target: Target, status: int, body: bytes) -> BaseException | None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        _serve(mock, target, status, body, "application/json")
        try:
            target.call(_client())
        except Exception as exc:
            return exc
    return None


@pytest.mark.parametrize("status", [200, 404])
def test_json_nested_past_the_parser_is_a_bad_answer_not_a_recursion_error(
        status: int) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    caught = _one_answer(TARGETS["server.get"], status, deep)
    if status == 200:
        assert isinstance(caught, BadAnswer)
        assert "nested too deep" in caught.detail
    else:  # an error answer whose body cannot be read is not the panel's error JSON
        assert isinstance(caught, ModuleError) and caught.type is ErrorType.route_mismatch


def test_roles_of_a_wrong_type_are_a_bad_answer_not_a_type_error() -> None:
    body = {"list": [{**USER, "roles": 12}], "size": 1}
    caught = _one_answer(TARGETS["user lookup"], 200, json.dumps(body).encode())
    assert isinstance(caught, BadAnswer)
    assert "roles" in caught.value


def test_a_panel_that_ignores_the_page_limit_is_a_bad_answer_not_an_endless_loop() -> None:
    body = json.dumps({"list": [SERVER], "size": 10**20})  # the same page at every offset
    calls = []

    def same_page(request: Any) -> tuple[int, dict[str, str], str]:
        calls.append(request)
        if len(calls) > 20:  # without the guard the client would page on forever
            return 418, {}, ""
        return 200, {}, body

    with responses.RequestsMock() as mock:
        mock.post(LOGIN, json={"token": "6-abc"})
        mock.add_callback(responses.GET, f"{API}/dci/v3/server", callback=same_page)
        with pytest.raises(BadAnswer, match="same page again at offset 1"):
            list(_client().iter_servers(page_size=1))
    assert len(calls) == 2


def test_pages_that_differ_are_all_read() -> None:
    pages = [{"list": [{**SERVER, "id": n}], "size": 3} for n in (1, 2, 3)]
    with responses.RequestsMock() as mock:
        mock.post(LOGIN, json={"token": "6-abc"})
        for page in pages:
            mock.get(f"{API}/dci/v3/server", json=page)
        assert [s.id for s in _client().iter_servers(page_size=1)] == [1, 2, 3]


def test_an_unknown_server_is_still_not_found() -> None:
    body = json.dumps({"error": {"code": 1004, "msg": "no such server"}}).encode()
    assert isinstance(_one_answer(TARGETS["server.get"], 404, body), DciNotFound)
