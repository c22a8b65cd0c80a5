"""The one table of the commands pmdci6 answers: BILLmanager's protocol commands and its own.

Everything that needs to know which commands exist reads `COMMANDS`: `features` (the list it
announces), the CLI's argument checks and stdin handling, BILLmanager's maintenance switch
(`billmgr.DoNothing`), `pmdci6 --help`, and the README's command table (tests/unit/test_cli.py
checks both ways). Adding a command is one row here plus its handler.

Kept free of heavy imports, and a handler is only named here ("module:function"), never
imported: `features` reads this table and must stay fast.
"""

from __future__ import annotations

from dataclasses import dataclass

# `features` is answered by the CLI itself, from this table, without a handler.
FEATURES = "features"

# BILLmanager commands pmdci6 does not run, which its maintenance switch still covers
# (BILLmanager's DoNothing list: open, resume, suspend, close, prolong, sync_item, sync, stat):
# while the flag exists they answer ok like the rest instead of unknown_command.
MAINTENANCE_ONLY = frozenset({"prolong", "stat"})


@dataclass(frozen=True)
class Command:
    name: str
    handler: str  # "module:function", imported only when the command runs
    help: str  # one line for `pmdci6 --help`
    is_feature: bool = True  # announced in `features`; False: run by our own cron entry only
    needs_item: bool = False  # refused with missing_option item without --item
    needs_module: bool = False  # refused with missing_option module without --module
    takes_stdin: bool = False  # BILLmanager sends an XML document on stdin
    do_nothing_applies: bool = False  # skipped (answers ok) while billmgr.DoNothing exists
    takes_service_lock: bool = False  # runs under lifecycle.common.service_lock(item)


_CATALOGUE = "dci6_processing.catalogue"
_LIFECYCLE = "dci6_processing.lifecycle"

COMMANDS: dict[str, Command] = {
    c.name: c
    for c in (
        Command("check_connection", f"{_CATALOGUE}:check_connection",
                "log in with the module form's URL, e-mail and password", takes_stdin=True),
        Command("tune_connection", f"{_CATALOGUE}:tune_connection",
                "fill the module form's select lists from the panel", takes_stdin=True),
        Command("pricelist_dynamic_settings_tune", f"{_CATALOGUE}:tune_pricelist",
                "fill the tariff form's select lists from the panel", takes_stdin=True),
        Command("get_server_config", f"{_CATALOGUE}:get_server_config",
                "publish the panel's configurations, OS templates and IP pools",
                needs_module=True),
        Command("checkparam", f"{_CATALOGUE}:check_param",
                "validate a service's or tariff's parameters", takes_stdin=True),
        Command("check_param", f"{_CATALOGUE}:check_param",
                "the same as checkparam (BILLmanager uses both names)", takes_stdin=True),
        Command("open", f"{_LIFECYCLE}.activate:open_service",
                "give the service a server, its owner, IPs and OS",
                needs_item=True, do_nothing_applies=True, takes_service_lock=True),
        Command("suspend", f"{_LIFECYCLE}.suspend:suspend_service",
                "switch the server's ports off",
                needs_item=True, do_nothing_applies=True, takes_service_lock=True),
        Command("resume", f"{_LIFECYCLE}.suspend:resume_service",
                "switch the server's ports on again",
                needs_item=True, do_nothing_applies=True, takes_service_lock=True),
        Command("close", f"{_LIFECYCLE}.terminate:close_service",
                "wipe the server and give it back to the free pool",
                needs_item=True, do_nothing_applies=True, takes_service_lock=True),
        Command("setparam", f"{_LIFECYCLE}.change:change_service",
                "apply what changed on the service (IP counts, OS, tariff)",
                needs_item=True, takes_service_lock=True),
        Command("sync_item", f"{_LIFECYCLE}.reconcile:sync_item",
                "reconcile one service with its server",
                needs_item=True, do_nothing_applies=True, takes_service_lock=True),
        # run from cron by our own entry (etc/cron.pmdci6), never by BILLmanager; it takes
        # each service's lock without waiting (a busy service is left to the next run)
        Command("sync", f"{_LIFECYCLE}.reconcile:sync_modules",
                "reconcile every service of every pmdci6 module (cron)",
                is_feature=False, do_nothing_applies=True),
        # the client's own buttons; they act on the server, so the maintenance switch applies
        Command("reboot", f"{_LIFECYCLE}.client_power:reboot_service",
                "the client's reboot: power_reset of the service's server",
                needs_item=True, do_nothing_applies=True, takes_service_lock=True),
        Command("start", f"{_LIFECYCLE}.client_power:start_service",
                "the client's power on (clears their stop)",
                needs_item=True, do_nothing_applies=True, takes_service_lock=True),
        Command("stop", f"{_LIFECYCLE}.client_power:stop_service",
                "the client's power off, kept by the sync and resume",
                needs_item=True, do_nothing_applies=True, takes_service_lock=True),
        # "Go to panel": the anchor "#id-Созданиемодулейобработки-transition_controlpanel" of
        # ISPsystem's "Creating processing modules" page, cited by ISPsystem's own module
        # github.com/ISPsystemLLC/billmanager processing/game_server/bill-pter-bridge/commands/
        # _transition_control_panel.py, which registers Feature.TRANSITION_CONTROL_PANEL (vendor
        # billmgr.modules.processing, not public) for `transition_control_panel(item, panelkey)`;
        # the C++ base has `TransitionControlPanel(const int iid, const string& panel_key)`
        # (processing/certificate/sslstore/module.h). So `--command transition_controlpanel
        # --item N [--panelkey K]` (the option's spelling is inferred; one panel needs no key).
        # This row is the one place the name lives. Read-only: no lock, no maintenance switch.
        Command("transition_controlpanel", f"{_LIFECYCLE}.panel_access:transition_control_panel",
                "\"Go to panel\": a one-time DCImanager login URL for the service's client",
                needs_item=True),
    )
}


def features() -> list[str]:
    """What `features` announces, in table order."""
    return [c.name for c in COMMANDS.values() if c.is_feature]


def do_nothing_applies(name: str) -> bool:
    command = COMMANDS.get(name)
    return name in MAINTENANCE_ONLY or (command is not None and command.do_nothing_applies)


def help_text() -> str:
    """The protocol commands for `pmdci6 --help`, one line each."""
    width = max(len(name) for name in COMMANDS)
    lines = [f"{c.name.ljust(width)}  {c.help}" for c in COMMANDS.values()]
    return "\n".join(lines)
