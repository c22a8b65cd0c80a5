"""A command for an item BILLmanager does not have leaves no state behind (issue 10 point 6):
the item is looked up before its lock file is created, and the answer is clean error XML."""

from __future__ import annotations

import pytest

from dci6_processing import commands
from tests.e2e.conftest import MODULE, Sandbox
from tests.e2e.test_lifecycle import error_type

LOCKED = sorted(name for name, command in commands.COMMANDS.items()
                if command.takes_service_lock)
UNKNOWN_ITEM = 999


@pytest.mark.parametrize("command", LOCKED)
def test_a_command_for_an_unknown_item_creates_no_lock_file(sandbox: Sandbox,
                                                             command: str) -> None:
    state_dir = sandbox.host.paths.state_dir
    assert not state_dir.exists()
    result = sandbox.run(command, UNKNOWN_ITEM, "--module", str(MODULE))
    assert error_type(result) == "service_not_found"
    assert str(UNKNOWN_ITEM).encode() in result.stdout
    assert not state_dir.exists()  # neither locks/item-999.lock nor the directory
    assert sandbox.sim.requests == []  # the panel was not asked anything either
