"""Every lifecycle operation's step list, by command.

The crash tests, the step-visit test and the README check iterate over this table: an
operation added here (its list declared next to its code) is crash-tested and documented, or
those tests say what is missing.
"""

from __future__ import annotations

from dci6_processing.lifecycle.activate import OPEN_STEPS
from dci6_processing.lifecycle.change import SETPARAM_STEPS
from dci6_processing.lifecycle.client_power import REBOOT_STEPS, START_STEPS, STOP_STEPS
from dci6_processing.lifecycle.steps import OperationSteps
from dci6_processing.lifecycle.suspend import RESUME_STEPS, SUSPEND_STEPS
from dci6_processing.lifecycle.terminate import CLOSE_STEPS

STEP_LISTS: dict[str, OperationSteps] = {
    steps.command: steps
    for steps in (OPEN_STEPS, SUSPEND_STEPS, RESUME_STEPS, SETPARAM_STEPS, CLOSE_STEPS,
                  REBOOT_STEPS, START_STEPS, STOP_STEPS)
}
