"""Each operation's steps as data: the lists, the guard in `step()`, and the README's copy."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dci6_processing.lifecycle import steps as steps_module
from dci6_processing.lifecycle.common import running as running_operation
from dci6_processing.lifecycle.common import step
from dci6_processing.lifecycle.operations import STEP_LISTS
from dci6_processing.lifecycle.steps import (
    PORTS_OFF,
    PORTS_ON,
    OperationSteps,
    Step,
    UndeclaredStep,
)

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_step_lists() -> dict[str, tuple[str, ...]]:
    text = README.read_text(encoding="utf-8")
    section = text.split("### Steps of each operation", 1)[1].split("\n#", 1)[0]
    lists: dict[str, tuple[str, ...]] = {}
    for line in section.splitlines():
        found = re.fullmatch(r"- `(\w+)`: (.+)", line.strip())
        if found:
            lists[found[1]] = tuple(re.findall(r"`(\w+)`", found[2]))
    return lists


def test_the_readme_lists_each_operations_steps_as_the_code_does() -> None:
    assert readme_step_lists() == {command: s.names for command, s in STEP_LISTS.items()}


def test_each_list_is_keyed_by_its_command() -> None:
    assert all(command == s.command for command, s in STEP_LISTS.items())


def test_every_named_step_is_in_some_operations_list() -> None:
    named = {value for value in vars(steps_module).values() if isinstance(value, Step)}
    listed = {s for operation in STEP_LISTS.values() for s in operation.steps}
    assert named == listed


def test_a_step_is_listed_once_per_operation() -> None:
    with pytest.raises(ValueError, match="twice"):
        OperationSteps("x", (PORTS_ON, PORTS_OFF, PORTS_ON))


def test_a_step_the_running_operation_does_not_list_is_refused() -> None:
    suspend = OperationSteps("suspend", (PORTS_OFF,))
    with running_operation(suspend):
        step(PORTS_OFF)
        with pytest.raises(UndeclaredStep, match=r"ports_on.*suspend"):
            step(PORTS_ON)
    with pytest.raises(UndeclaredStep, match="any running operation"):
        step(PORTS_OFF)  # the operation ended with its block
