"""The `prepared` fixture the crash tests start from: the preparation runs once, by the real
binary, and each start is a copy that nothing a test does can change."""

from __future__ import annotations

from tests.e2e.conftest import Prepared, Sandbox
from tests.e2e.test_lifecycle import ACTIVE, DELETED, ok

_PREPARATIONS: list[int] = []


def _opened_401(sandbox: Sandbox) -> int:
    _PREPARATIONS.append(401)
    sandbox.order(401)
    ok(sandbox.run("open", 401))
    return 401


def test_a_prepared_start_is_a_copy_no_test_can_change(prepared: Prepared) -> None:
    first, item = prepared(_opened_401)
    opened_server = first.server_of(item)
    assert first.host.service(item).status == ACTIVE
    ok(first.run("close", item))
    assert first.host.service(item).status == DELETED
    assert first.server_of(item)["owner"] is None

    second, again = prepared(_opened_401)
    assert again == item and second.host.root != first.host.root
    assert _PREPARATIONS == [401]  # prepared once, started from twice
    assert second.host.service(item).status == ACTIVE
    assert second.server_of(item) == opened_server  # the panel as open left it, not close
    ok(second.run("suspend", item))  # the binary runs on the copy: its url, token, locks
    assert second.host.service(item).status != ACTIVE
