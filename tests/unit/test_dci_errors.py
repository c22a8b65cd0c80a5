"""The error funnel: every panel condition -> one class -> one BILLmanager ErrorType.

The table below pins, for each condition, what the panel answers (HTTP status and body), the
class `raise_from_response` picks and the `msg_error_*` type it is reported as; it runs both
on the mapping function alone and through the client over `responses`. Errors are sealed:
`str()` of a raised error is what its fields say.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import responses

from dci6_processing.dci import errors as dci_errors
from dci6_processing.dci.client import DciClient
from dci6_processing.dci.errors import (
    AnswerTooLarge,
    BadAnswer,
    DciAuthError,
    DciBusy,
    DciConflict,
    DciError,
    DciNotFound,
    DciTlsError,
    DciUnreachable,
    DeadlineExceeded,
    NoSwitchConnection,
    OperationFailed,
    OperationRunning,
    OperationTimedOut,
    PanelInternalError,
    PoolExhausted,
    PowerActionRejected,
    RouteMismatch,
    ServerOwned,
    UserExists,
    raise_from_response,
)
from dci6_processing.errors import ErrorType, LockBusy, ModuleError

URL = "https://dci.example"
EMAIL = "admin@example.com"
PASSWORD = "S3cret-pa55"
LOGIN = f"{URL}/api/auth/v4/public/token"
SERVER_1 = f"{URL}/api/dci/v3/server/1"


def panel_error(code: int, msg: str) -> dict[str, Any]:
    return {"error": {"code": code, "msg": msg, "value": {}}}


HTML = "<html><body>404 page not found</html>"

# (id, HTTP status, JSON body or text, class, ErrorType)
TABLE: list[tuple[str, int, dict[str, Any] | str | None, type[DciError], ErrorType]] = [
    ("not-found", 404, panel_error(1004, "Server not found"), DciNotFound, ErrorType.not_found),
    ("unknown-route-page", 404, HTML, RouteMismatch, ErrorType.route_mismatch),
    ("unknown-route-empty", 404, None, RouteMismatch, ErrorType.route_mismatch),
    ("unknown-route-other-json", 404, {"detail": "Not Found"}, RouteMismatch,
     ErrorType.route_mismatch),
    ("wrong-method", 405, panel_error(1000, "Bad request: method not allowed"), RouteMismatch,
     ErrorType.route_mismatch),
    ("owned", 409, panel_error(2001, "Server already has an owner"), ServerOwned,
     ErrorType.server_in_use),
    ("no-switch", 400, panel_error(2002, "Server has no switch connection"),
     NoSwitchConnection, ErrorType.no_switch_connection),
    ("power-rule", 400, panel_error(2003, "Power action not allowed in current state"),
     PowerActionRejected, ErrorType.panel_error),
    ("operation-running", 409, panel_error(2004, "Server has a running operation"),
     OperationRunning, ErrorType.server_busy),
    ("user-exists", 409, panel_error(2005, "User already exists"), UserExists,
     ErrorType.panel_error),
    ("pool-exhausted", 409, panel_error(3001, "No free addresses in pool"), PoolExhausted,
     ErrorType.pool_exhausted),
    ("other-conflict", 409, panel_error(9999, "Something else"), DciConflict,
     ErrorType.panel_error),
    ("code-as-string", 409, {"error": {"code": "2001", "msg": "owned"}}, ServerOwned,
     ErrorType.server_in_use),
    ("bad-request", 400, panel_error(1000, "Bad request: where"), DciError,
     ErrorType.panel_error),
    ("forbidden", 403, panel_error(1001, "Access denied"), DciError, ErrorType.panel_error),
    ("unauthorized", 401, panel_error(1001, "Unauthorized"), DciAuthError,
     ErrorType.bad_credentials),
    ("busy", 503, panel_error(503, "Service temporarily unavailable"), DciBusy,
     ErrorType.panel_busy),
    ("internal", 500, panel_error(500, "Internal server error"), PanelInternalError,
     ErrorType.panel_error),
    ("bad-gateway-page", 502, "<html>bad gateway</html>", PanelInternalError,
     ErrorType.panel_error),
]


EVERY_CONDITION = pytest.mark.parametrize(("status", "body", "cls", "error_type"),
                                          [row[1:] for row in TABLE],
                                          ids=[row[0] for row in TABLE])


def parsed(body: dict[str, Any] | str | None) -> Any:
    return body if isinstance(body, dict) else None  # what session.py hands over


@EVERY_CONDITION
def test_the_mapping_function(status: int, body: dict[str, Any] | str | None,
                              cls: type[DciError], error_type: ErrorType) -> None:
    with pytest.raises(DciError) as caught:
        raise_from_response(status, parsed(body), route="server.get", method="GET",
                            path="/api/dci/v3/server/1", subject="server 1")
    assert type(caught.value) is cls
    assert caught.value.type is error_type is cls.error_type
    assert caught.value.http_status == status


@pytest.fixture
def panel() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(LOGIN, status=201, json={"id": "6", "token": "6-" + "a" * 32,
                                           "expires_at": None, "confirmed": True})
        yield mock


def client() -> DciClient:
    return DciClient(URL, EMAIL, PASSWORD, backoff=0.0, retries_503=2)


@EVERY_CONDITION
def test_through_the_client(panel: responses.RequestsMock, status: int,
                            body: dict[str, Any] | str | None, cls: type[DciError],
                            error_type: ErrorType) -> None:
    if isinstance(body, dict):
        panel.get(SERVER_1, status=status, json=body)
    else:
        panel.get(SERVER_1, status=status, body=body or "")
    with pytest.raises(DciError) as caught:
        client().server(1)
    assert type(caught.value) is cls
    assert caught.value.type is error_type
    # the object is what the call was about: the server, the login, or the panel itself
    expected_object = {DciAuthError: EMAIL, DciBusy: "dci.example",
                       RouteMismatch: "server.get"}.get(cls, "server 1")
    assert caught.value.object == expected_object


def test_a_route_mismatch_names_the_call_and_the_way_out(panel: responses.RequestsMock) -> None:
    panel.get(SERVER_1, status=404, body=HTML)
    with pytest.raises(RouteMismatch) as caught:
        client().server(1)
    err = caught.value
    assert (err.route, err.method, err.path) == ("server.get", "GET", "/api/dci/v3/server/1")
    assert err.value == "GET /api/dci/v3/server/1 answered HTTP 404; run pmdci6 doctor"
    assert str(err) == f"route_mismatch: object='server.get' value={err.value!r}"


def test_login_refused_with_403_is_bad_credentials(panel: responses.RequestsMock) -> None:
    panel.replace(responses.POST, LOGIN, status=403, json=panel_error(1002, "Forbidden"))
    with pytest.raises(DciAuthError) as caught:
        client().login()
    assert (caught.value.object, caught.value.http_status) == (EMAIL, 403)


def test_an_unknown_login_route_is_a_route_mismatch(panel: responses.RequestsMock) -> None:
    panel.replace(responses.POST, LOGIN, status=404, body=HTML)
    with pytest.raises(RouteMismatch) as caught:
        client().login()
    assert caught.value.path == "/api/auth/v4/public/token"


@pytest.mark.parametrize(
    ("answer", "match"),
    [("not json at all", "not JSON"), ({"list": "nope"}, r"unexpected answer")],
    ids=["not-json", "wrong-shape"],
)
def test_a_malformed_answer_is_bad_answer(panel: responses.RequestsMock,
                                          answer: dict[str, Any] | str, match: str) -> None:
    if isinstance(answer, dict):
        panel.get(SERVER_1, json={"id": "not-an-id", **answer})
    else:
        panel.get(SERVER_1, body=answer)
    with pytest.raises(BadAnswer, match=match) as caught:
        client().server(1)
    assert caught.value.type is ErrorType.panel_error


@pytest.mark.parametrize(
    ("failure", "cls", "error_type"),
    [
        (requests.exceptions.ConnectionError("refused"), DciUnreachable,
         ErrorType.panel_unreachable),
        (requests.exceptions.ReadTimeout("read timed out"), DciUnreachable,
         ErrorType.panel_unreachable),
        (requests.exceptions.SSLError("certificate verify failed"), DciTlsError,
         ErrorType.tls_failed),
    ],
    ids=["unreachable", "timeout", "tls"],
)
def test_transport_failures(panel: responses.RequestsMock, failure: Exception,
                            cls: type[DciError], error_type: ErrorType) -> None:
    panel.get(SERVER_1, body=failure)
    with pytest.raises(DciError) as caught:
        client().server(1)
    assert type(caught.value) is cls and caught.value.type is error_type


def test_every_class_names_its_error_type() -> None:
    """The one class -> ErrorType table, in full (raised by the client or by helpers that
    watch operations, sizes and deadlines)."""
    expected = {
        DciError: ErrorType.panel_error,
        DciUnreachable: ErrorType.panel_unreachable,
        DciTlsError: ErrorType.tls_failed,
        DciAuthError: ErrorType.bad_credentials,
        DciBusy: ErrorType.panel_busy,
        PanelInternalError: ErrorType.panel_error,
        DciNotFound: ErrorType.not_found,
        DciConflict: ErrorType.panel_error,
        ServerOwned: ErrorType.server_in_use,
        NoSwitchConnection: ErrorType.no_switch_connection,
        PowerActionRejected: ErrorType.panel_error,
        OperationRunning: ErrorType.server_busy,
        UserExists: ErrorType.panel_error,
        PoolExhausted: ErrorType.pool_exhausted,
        BadAnswer: ErrorType.panel_error,
        OperationFailed: ErrorType.operation_failed,
        OperationTimedOut: ErrorType.operation_timeout,
        RouteMismatch: ErrorType.route_mismatch,
        AnswerTooLarge: ErrorType.panel_answer_too_large,
        DeadlineExceeded: ErrorType.panel_timeout,
    }
    defined = {obj for obj in vars(dci_errors).values()
               if isinstance(obj, type) and issubclass(obj, DciError)}
    assert defined == set(expected)
    assert {cls: cls.error_type for cls in defined} == expected


def test_the_errors_helpers_raise_name_route_limit_and_deadline() -> None:
    too_large = AnswerTooLarge(route="server.list", limit=8_000_000)
    assert str(too_large) == (
        "panel_answer_too_large: object='server.list' value='more than 8000000 bytes'")
    late = DeadlineExceeded(route="server.get", seconds=90)
    assert str(late) == "panel_timeout: object='server.get' value='no complete answer within 90 s'"
    assert (late.route, late.seconds, too_large.limit) == ("server.get", 90, 8_000_000)


def test_errors_are_sealed_once_built() -> None:
    err = PoolExhausted("No free addresses in pool", object="server 1", http_status=409)
    with pytest.raises(AttributeError, match="sealed"):
        err.object = "3"  # type: ignore[misc]
    with pytest.raises(AttributeError, match="sealed"):
        err.http_status = 500
    with pytest.raises(AttributeError, match="sealed"):
        LockBusy("item 5").type = ErrorType.internal
    err.add_note("dunders stay Python's")  # tracebacks, causes and notes still work
    assert str(err) == "pool_exhausted: object='server 1' value='No free addresses in pool'"


def test_recast_builds_a_new_error_about_another_object() -> None:
    first = DciConflict("Owner is set", object="server 2", http_status=409, code=4242,
                        panel_msg="Owner is set", detail="POST server.owner.set")
    second = ServerOwned.recast(first, object="2")
    assert type(second) is ServerOwned and second is not first
    assert (second.object, second.value, second.http_status, second.code, second.detail) == (
        "2", "Owner is set", 409, 4242, "POST server.owner.set")
    assert str(second) == "server_in_use: object='2' value='Owner is set'"
    assert first.object == "server 2"


# --- guards: the funnel stays one funnel ------------------------------------------------

PRODUCT = Path(__file__).resolve().parents[2] / "dci6_processing"
FUNNEL = PRODUCT / "dci" / "errors.py"
PANEL_TYPES = {cls.error_type.name for cls in (
    DciAuthError, DciBusy, DciNotFound, DciTlsError, DciUnreachable, NoSwitchConnection,
    OperationRunning, PoolExhausted, RouteMismatch, ServerOwned, AnswerTooLarge,
    DeadlineExceeded, OperationFailed, OperationTimedOut)} | {"panel_error"}


def _product_trees() -> Iterator[tuple[Path, ast.AST]]:
    for path in sorted(PRODUCT.rglob("*.py")):
        yield path, ast.parse(path.read_text(encoding="utf-8"))


def _names(node: ast.AST) -> set[str]:
    return {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}


def test_no_code_reads_an_errors_fields_to_decide_what_happened() -> None:
    """`exc.http_status == 409`, `exc.code == 2001`, `exc.type is ErrorType.server_in_use`:
    the class says it (`except ServerOwned`); only the funnel reads statuses and codes."""
    offenders = []
    for path, tree in _product_trees():
        if path == FUNNEL:
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Compare):
                continue
            sides = [node.left, *node.comparators]
            read = {n.attr for n in sides if isinstance(n, ast.Attribute)}
            if read & {"http_status", "code", "panel_msg"} or (
                "type" in read and _names(node) & PANEL_TYPES
            ):
                offenders.append(f"{path.relative_to(PRODUCT)}:{node.lineno}")
    assert offenders == []


def test_no_code_changes_an_error_after_it_was_built() -> None:
    offenders = []
    for path, tree in _product_trees():
        for node in ast.walk(tree):
            targets = node.targets if isinstance(node, ast.Assign) else (
                [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else [])
            for target in targets:
                if (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                        and target.value.id in ("exc", "err", "error", "problem", "failure")):
                    offenders.append(f"{path.relative_to(PRODUCT)}:{node.lineno}")
    assert offenders == []


def test_module_error_is_still_the_root() -> None:
    assert issubclass(DciError, ModuleError) and issubclass(LockBusy, ModuleError)
    assert LockBusy("sync").type is ErrorType.server_busy
