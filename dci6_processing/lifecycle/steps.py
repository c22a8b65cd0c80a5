"""Every named step of the lifecycle, and each operation's steps as one ordered list.

After the way Ironic's `common/states.py` names every provisioning state in one table: the
step lists are data an admin (and the README, and the crash tests) can read. An operation
declares its list next to its code (`activate.OPEN_STEPS`, `terminate.CLOSE_STEPS`, ...) and
`common.run_on_service` runs it under that list; `common.step()` refuses a step the running
operation did not declare, so no step exists in code without being in a list, and
`tests/e2e/test_crash_safety.py` kills the binary after each listed step.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    """A point in an operation after which a crash leaves a state a rerun finishes from."""

    name: str  # in the log (`step.done`) and in PMDCI6_FAILPOINT=crash-after:<name>
    done: str  # what holds once the step is done


@dataclass(frozen=True)
class OperationSteps:
    """One operation's steps, in the order a full run passes them."""

    command: str
    steps: tuple[Step, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.steps)

    def __post_init__(self) -> None:
        # NOTE(13c): a name twice would make crash-after:<name> ambiguous within one operation
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"{self.command}: a step is listed twice: {self.names}")


class UndeclaredStep(RuntimeError):
    """A step reached that the running operation does not list: a programming error."""


USER_READY = Step("user_ready", "the client's DCImanager user exists (created when missing)")
SERVER_RECORDED = Step("server_recorded",
                       "a candidate's id is saved on the service, before its owner is set")
SERVER_CLAIMED = Step("server_claimed", "the server is the client's, re-read and verified")
PORTS_ON = Step("ports_on", "the server's data ports are up (or it has none)")
PORTS_OFF = Step("ports_off", "the server's data ports are down (or left as the tariff says)")
POWERED_ON = Step("powered_on", "the server is powered on")
POWERED_OFF = Step("powered_off", "the server is powered off (or left on as the tariff says)")
OPERATION_STOPPED = Step("operation_stopped",
                         "no operation this service did not start runs on the server")
# NOTE(13c): passed once per address added; a crash between the panel and BILLmanager leaves
# an address the rerun sees as foreign and replaces
IP_ADDED_TO_SERVER = Step("ip_added_to_server",
                          "an address is on the server, not yet recorded in BILLmanager")
IPS_ASSIGNED = Step("ips_assigned", "the server's addresses are the ordered ones, recorded")
IPS_RELEASED = Step("ips_released", "no permanent address is left on the server or service")
INSTALL_STARTED = Step("install_started", "the OS install runs and its id is recorded")
INSTALL_DONE = Step("install_done", "the OS install finished ok (temporary IPs removed)")
PARAMS_SAVED = Step("params_saved", "hostname, username and OS are saved on the service")
OPEN_REPORTED = Step("open_reported", "BILLmanager was told: service.postopen")
DIAGNOSTICS_STARTED = Step("diagnostics_started",
                           "diagnostics with disk cleaning run and their id is recorded")
DIAGNOSTICS_DONE = Step("diagnostics_done", "the wipe finished ok")
OWNER_RELEASED = Step("owner_released",
                      "the server has no owner (or the tariff's handover owner)")
CLOSE_REPORTED = Step("close_reported", "BILLmanager was told: service.postclose")
CHANGES_APPLIED = Step("changes_applied", "addresses and OS are what the service now says")
SETPARAM_REPORTED = Step("setparam_reported", "BILLmanager was told: service.postsetparam")
SUSPEND_REPORTED = Step("suspend_reported", "BILLmanager was told: service.postsuspend")
RESUME_REPORTED = Step("resume_reported", "BILLmanager was told: service.postresume")
# the client's power buttons (lifecycle.client_power): the wish saved first, the panel's
# acceptance recorded, then the report; POWERED_ON / POWERED_OFF are the panel steps of start
# and stop
REBOOT_WISH_CLEARED = Step("reboot_wish_cleared", "no power wish is recorded on the service")
START_WISH_CLEARED = Step("start_wish_cleared", "no power wish is recorded on the service")
STOP_WISH_RECORDED = Step("stop_wish_recorded",
                          "the client's wish (off) is recorded before the server is stopped")
POWER_RESET = Step("power_reset", "the panel accepted the reset, recorded on the service")
REBOOT_REPORTED = Step("reboot_reported", "BILLmanager was told: service.postreboot")
START_REPORTED = Step("start_reported", "BILLmanager was told: service.poststart")
STOP_REPORTED = Step("stop_reported", "BILLmanager was told: service.poststop")
