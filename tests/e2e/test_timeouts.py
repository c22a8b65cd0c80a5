"""Operations that never finish: the install and diagnostics timeouts (minutes in real life)
run on a fake clock, in-process, through the production adapter and client."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from dci6_processing.dci.client import Backoff
from dci6_processing.errors import ErrorType, ModuleError
from dci6_processing.invocation import Invocation
from dci6_processing.lifecycle import power
from dci6_processing.lifecycle.activate import open_service
from dci6_processing.lifecycle.terminate import close_service
from dci6_processing.paths import MgrPaths
from tests.e2e.conftest import CLIENT_EMAIL, Sandbox
from tests.e2e.test_lifecycle import ACTIVE, DELETED


@pytest.fixture
def fast_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every poll advances a fake clock by a minute: a 60-minute wait is 60 polls."""
    ticks = itertools.count()

    def clock() -> float:
        return 60.0 * next(ticks)

    monkeypatch.setattr(power, "poll_backoff",
                        lambda: Backoff(initial=0.0, factor=1.0, maximum=0.0, clock=clock,
                                        sleep=lambda _: None))
    yield


def call(handler: object, sandbox: Sandbox, command: str, item: int) -> None:
    assert callable(handler)
    handler(Invocation(command=command, paths=MgrPaths(sandbox.host.root), item=item))


def test_endless_diagnostics_time_out_are_stopped_and_keep_the_server(
        sandbox: Sandbox, fast_clock: None) -> None:
    item = sandbox.order(401)
    call(open_service, sandbox, "open", item)
    server_id = sandbox.server_of(item)["id"]
    sandbox.sim.hang_operations(kind="diag", count=1)
    with pytest.raises(ModuleError) as err:
        call(close_service, sandbox, "close", item)
    assert err.value.type is ErrorType.operation_timeout
    server = sandbox.sim.server(server_id)
    assert server["operation"]["status"] == "canceled"  # forcibly completed, as the guide says
    assert server["owner_email"] == CLIENT_EMAIL  # not wiped: never free
    assert sandbox.host.service(item).status != DELETED
    call(close_service, sandbox, "close", item)  # the rerun starts a new wipe and finishes
    assert sandbox.host.service(item).status == DELETED
    assert sandbox.sim.server(server_id)["os_template"] is None


def test_endless_install_times_out_and_a_rerun_after_the_admin_stops_it_finishes(
        sandbox: Sandbox, fast_clock: None) -> None:
    item = sandbox.order(402)
    sandbox.sim.hang_operations(kind="install", count=1)
    with pytest.raises(ModuleError) as err:
        call(open_service, sandbox, "open", item)
    assert err.value.type is ErrorType.operation_timeout
    assert sandbox.host.service(item).status != ACTIVE
    server_id = sandbox.server_of(item)["id"]
    running = sandbox.sim.server(server_id)["operation"]
    sandbox.sim.update_server(server_id, operation={**running, "status": "canceled"})
    call(open_service, sandbox, "open", item)
    assert sandbox.host.service(item).status == ACTIVE
    assert sandbox.server_of(item)["id"] == server_id
