"""What a real panel does to an order — waking up (503), expired tokens, 500s, dropped
connections — through the real binary: the order either finishes or fails visibly, and a
rerun finishes it with the same server."""

from __future__ import annotations

from tests.e2e.conftest import CLIENT_EMAIL, Sandbox
from tests.e2e.test_lifecycle import ACTIVE, DELETED, error_type, ok


def client_servers(sandbox: Sandbox) -> list[int]:
    return [int(s["id"]) for s in sandbox.sim.servers() if s["owner_email"] == CLIENT_EMAIL]


def test_a_waking_panel_and_an_expired_token_do_not_stop_an_order(sandbox: Sandbox) -> None:
    item = sandbox.order(501)
    ok(sandbox.run("check_connection", None, stdin=_connection(sandbox)))  # caches nothing
    sandbox.sim.faults.expire_tokens()
    sandbox.sim.faults.burst_503(4)
    ok(sandbox.run("open", item))
    assert sandbox.host.service(item).status == ACTIVE
    assert sum(1 for r in sandbox.sim.requests if r.status == 503) == 4


def _connection(sandbox: Sandbox) -> bytes:
    return (f"<doc><processingmodule><url>{sandbox.sim.url}</url>"
            f"<username>{sandbox.sim.admin_email}</username>"
            f"<password>{sandbox.sim.admin_password}</password></processingmodule></doc>"
            ).encode()


def test_a_500_mid_order_fails_visibly_and_the_rerun_keeps_the_server(sandbox: Sandbox) -> None:
    item = sandbox.order(502)
    sandbox.sim.faults.error_500(1, path_contains="operation/install")
    assert error_type(sandbox.run("open", item)) == "panel_error"
    assert sandbox.host.service(item).status != ACTIVE
    first = client_servers(sandbox)
    assert len(first) == 1  # claimed and recorded, not lost
    ok(sandbox.run("open", item))
    assert client_servers(sandbox) == first
    assert sandbox.host.service(item).status == ACTIVE


def test_a_dropped_connection_on_an_action_is_not_guessed(sandbox: Sandbox) -> None:
    item = sandbox.order(503)
    ok(sandbox.run("open", item))
    server_id = sandbox.server_of(item)["id"]
    sandbox.sim.faults.drop(1, path_contains="operation/diag")
    assert error_type(sandbox.run("close", item)) == "panel_unreachable"
    assert sandbox.sim.server(server_id)["owner_email"] == CLIENT_EMAIL
    assert sandbox.host.service(item).status != DELETED
    ok(sandbox.run("close", item))
    server = sandbox.sim.server(server_id)
    assert server["owner"] is None and server["os_template"] is None
