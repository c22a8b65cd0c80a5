"""cli.py: BILLmanager's argv in, exactly one XML reply out, an exit code, a log line."""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner
from lxml import etree

from dci6_processing import cli, commands
from dci6_processing.errors import ErrorType, ModuleError
from dci6_processing.invocation import Invocation
from dci6_processing.paths import MgrPaths

HANDLERS_SOURCE = textwrap.dedent(
    """
    from dci6_processing.errors import ErrorType, ModuleError

    calls = []

    def record(inv):
        calls.append(inv)
        return None

    def reply(inv):
        calls.append(inv)
        return b"<doc><custom/></doc>"

    def explode(inv):
        calls.append(inv)
        raise RuntimeError("boom with token=tok-SECRET-123 inside")

    def refuse(inv):
        calls.append(inv)
        raise ModuleError(ErrorType.no_free_server, object="i9", value="1", detail="none left")
    """
)

_module_numbers = itertools.count()


pytestmark = pytest.mark.usefixtures("isolated_logging")


@pytest.fixture
def handlers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A throwaway handler module, importable under a fresh name for each test."""
    name = f"pmdci6_test_handlers_{next(_module_numbers)}"
    folder = tmp_path / "handlers"
    folder.mkdir()
    (folder / f"{name}.py").write_text(HANDLERS_SOURCE)
    monkeypatch.syspath_prepend(str(folder))
    import importlib

    module = importlib.import_module(name)
    return SimpleNamespace(name=name, calls=module.calls)


def route(monkeypatch: pytest.MonkeyPatch, command: str, target: str) -> None:
    """The registry's row for `command`, with its handler replaced by `target`."""
    row = dataclasses.replace(commands.COMMANDS[command], handler=target)
    monkeypatch.setitem(commands.COMMANDS, command, row)


def run(
    monkeypatch: pytest.MonkeyPatch, *argv: str, stdin: bytes = b""
) -> tuple[int, bytes, io.BytesIO]:
    """Run `pmdci6 argv...` in this process the way the console script does."""
    out = io.BytesIO()
    stdin_buffer = io.BytesIO(stdin)
    monkeypatch.setattr(sys, "argv", ["pmdci6", *argv])
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(stdin_buffer))
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(out))
    with pytest.raises(SystemExit) as exited:
        cli.main()
    code = exited.value.code
    assert isinstance(code, int)
    return code, out.getvalue(), stdin_buffer


def log_events(paths: MgrPaths) -> list[dict[str, Any]]:
    return [json.loads(line) for line in paths.log_file.read_text().splitlines()]


def error_of(reply: bytes) -> tuple[str, str, str]:
    doc = etree.fromstring(reply)
    error = doc.find("error")
    assert error is not None, reply
    assert len(doc) == 1
    return (
        error.get("type") or "",
        error.get("object") or "",
        error.findtext("param[@name='value']") or "",
    )


# --- argv -----------------------------------------------------------------------------------


def test_parse_options_accepts_both_spellings_and_tolerates_the_rest() -> None:
    options = cli.parse_options(
        ["stray", "--command", "open", "--item=5", "--flag", "--lang", "ru", "-x", "--", "--v="]
    )
    assert options == {"command": "open", "item": "5", "flag": "", "lang": "ru", "v": ""}


def test_protocol_mode_needs_command_option() -> None:
    assert cli.is_protocol_call(["--item", "1", "--command=open"])
    assert not cli.is_protocol_call(["doctor", "--commander"])


# --- features -------------------------------------------------------------------------------


def test_features_lists_the_registry_features_without_importing_them(
    monkeypatch: pytest.MonkeyPatch, mgr_root: MgrPaths
) -> None:
    monkeypatch.setattr(
        commands,
        "COMMANDS",
        {
            "open": commands.Command("open", "pmdci6_no_such_module:open", "x"),
            "close": commands.Command("close", "pmdci6_no_such_module:close", "x"),
            "sync": commands.Command("sync", "pmdci6_no_such_module:sync", "x", is_feature=False),
        },
    )
    code, reply, _ = run(monkeypatch, "--command", "features")
    assert code == 0
    doc = etree.fromstring(reply)
    assert [f.get("name") for f in doc.findall("features/feature")] == ["open", "close"]
    assert doc.find("itemtypes/itemtype[@name='dedic']") is not None
    assert "pmdci6_no_such_module" not in sys.modules
    assert not mgr_root.log_file.exists()  # features logs nothing and touches nothing


def test_features_real_table_lists_check_connection() -> None:
    assert "check_connection" in commands.features()
    assert "sync" not in commands.features()


@pytest.mark.parametrize("name", sorted(commands.COMMANDS))
def test_every_registry_handler_exists(name: str) -> None:
    """features announces the table without importing a handler: the table must be true."""
    import importlib

    command = commands.COMMANDS[name]
    assert command.name == name
    assert command.help and "\n" not in command.help
    module_name, _, function = command.handler.partition(":")
    assert callable(getattr(importlib.import_module(module_name), function))


def readme_commands(repo_root: Path) -> set[str]:
    """The backticked names in the first column of the README's "What it does" table."""
    text = (repo_root / "README.md").read_text()
    section = text.split("## What it does", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`([a-z_]+)`", line.split("|")[1]))
    return names


def test_readme_command_table_matches_the_registry(repo_root: Path) -> None:
    assert readme_commands(repo_root) == {commands.FEATURES, *commands.COMMANDS}


def test_do_nothing_covers_exactly_billmanagers_list() -> None:
    # BILLmanager's maintenance switch: open, resume, suspend, close, prolong, sync_item,
    # sync, stat (spec/billmanager-processing-module.md), and the client's power buttons,
    # which act on the server like the lifecycle commands (issue 11)
    covered = {name for name in [*commands.COMMANDS, "prolong", "stat", "setparam", "features"]
               if commands.do_nothing_applies(name)}
    assert covered == {"open", "resume", "suspend", "close", "prolong", "sync_item", "sync",
                       "stat", "reboot", "start", "stop"}


@pytest.mark.parametrize(
    "name", sorted(n for n, c in commands.COMMANDS.items() if c.takes_service_lock)
)
def test_commands_marked_with_the_service_lock_take_it(
    monkeypatch: pytest.MonkeyPatch, mgr_root: MgrPaths, name: str
) -> None:
    """With the service's lock held elsewhere, the command answers server_busy before it
    loads the service (only its existence is checked first): it really goes through
    lifecycle.common.service_lock."""
    import fcntl
    import os

    from dci6_processing.lifecycle import common

    # raising=True: if the setting moves, this fails instead of waiting 30 s per command
    monkeypatch.setattr(common, "SERVICE_LOCK_WAIT_SECONDS", 0.0)
    checked: list[int] = []
    existing = SimpleNamespace(check_service_exists=checked.append)
    monkeypatch.setattr(Invocation, "billing", lambda inv: existing)
    lock = common.item_lock_path(mgr_root, 5)
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        code, reply, _ = run(monkeypatch, "--command", name, "--item", "5", "--module", "1")
    finally:
        os.close(fd)
    assert code == 1
    assert error_of(reply)[:2] == ("server_busy", "service 5")
    assert checked == [5]


def test_help_lists_every_protocol_command_from_the_registry() -> None:
    listing = CliRunner().invoke(cli.people_group(), ["--help"])
    assert listing.exit_code == 0
    for command in commands.COMMANDS.values():
        assert f"{command.name}  " in listing.output
        assert command.help in " ".join(listing.output.split())


def test_features_subprocess_imports_nothing_heavy() -> None:
    probe = textwrap.dedent(
        """
        import io, sys
        sys.argv = ["pmdci6", "--command", "features"]
        sys.stdout = io.TextIOWrapper(io.BytesIO())
        from dci6_processing import cli
        try:
            cli.main()
        except SystemExit as exc:
            code = exc.code
        reply = sys.stdout.buffer.getvalue()
        heavy = ["requests", "pydantic", "structlog", "click"]
        from dci6_processing import commands
        handlers = [c.handler.partition(":")[0] for c in commands.COMMANDS.values()]
        loaded = sorted(name for name in heavy + handlers if name in sys.modules)
        sys.__stdout__.write(repr((code, loaded, b"<feature name=" in reply)))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout == repr((0, [], True))


def test_features_through_the_installed_binary(pmdci6_bin: Path, mgr_root: MgrPaths) -> None:
    done = subprocess.run(
        [str(pmdci6_bin), "--command", "features", "--lang", "ru"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    doc = etree.fromstring(done.stdout)
    names = [f.get("name") for f in doc.findall("features/feature")]
    assert "check_connection" in names
    assert doc.find("params/param[@name='password']").get("crypted") == "yes"  # type: ignore[union-attr]
    # the client's own actions (BILLmanager shows their buttons only when announced)
    assert {"reboot", "start", "stop", "transition_controlpanel"} <= set(names)


# --- dispatch and replies -------------------------------------------------------------------


def test_handler_gets_parsed_options_and_unknown_ones_are_ignored(
    monkeypatch: pytest.MonkeyPatch, mgr_root: MgrPaths, handlers: Any
) -> None:
    route(monkeypatch, "open", f"{handlers.name}:record")
    code, reply, stdin = run(
        monkeypatch,
        "--command",
        "open",
        "--item=42",
        "--runningoperation",
        "7",
        "--level",
        "30",
        "--addon",
        "--lang",
        "ru",
        "--userid",
        "3",
        "--intname=x",
        "stray",
        stdin=b"<doc>must not be read</doc>",
    )
    assert (code, reply) == (0, b"<doc><ok/></doc>")
    [inv] = handlers.calls
    assert isinstance(inv, Invocation)
    assert (inv.command, inv.item, inv.runningoperation, inv.userid, inv.lang) == (
        "open",
        42,
        7,
        3,
        "ru",
    )
    assert inv.module is None
    assert inv.paths == mgr_root
    assert inv.stdin == b""
    assert stdin.tell() == 0  # open takes no input: stdin is left alone
    events = log_events(mgr_root)
    assert events[-1]["event"] == "command_done"
    assert (events[-1]["command"], events[-1]["item"]) == ("open", 42)
    assert isinstance(events[-1]["pid"], int)


def test_bytes_from_a_handler_are_printed_as_they_are(
    monkeypatch: pytest.MonkeyPatch, mgr_root: MgrPaths, handlers: Any
) -> None:
    route(monkeypatch, "pricelist_dynamic_settings_tune", f"{handlers.name}:reply")
    code, reply, _ = run(
        monkeypatch,
        "--command",
        "pricelist_dynamic_settings_tune",
        stdin=b"<doc><configuration/></doc>",
    )
    assert (code, reply) == (0, b"<doc><custom/></doc>")
    assert handlers.calls[0].stdin == b"<doc><configuration/></doc>"


# --- failures -------------------------------------------------------------------------------


def test_malformed_stdin_is_bad_input(monkeypatch: pytest.MonkeyPatch, mgr_root: MgrPaths) -> None:
    code, reply, _ = run(monkeypatch, "--command", "check_connection", stdin=b"<doc><url>")
    assert code == 1
    assert error_of(reply)[0] == "bad_input"


def test_empty_stdin_is_bad_input(monkeypatch: pytest.MonkeyPatch, mgr_root: MgrPaths) -> None:
    code, reply, _ = run(monkeypatch, "--command", "check_connection")
    assert code == 1
    assert error_of(reply)[:2] == ("bad_input", "stdin")


@pytest.mark.parametrize(
    "command", sorted(n for n, c in commands.COMMANDS.items() if c.needs_item)
)
def test_missing_item_is_refused_before_any_handler_runs(
    monkeypatch: pytest.MonkeyPatch, mgr_root: MgrPaths, handlers: Any, command: str
) -> None:
    route(monkeypatch, command, f"{handlers.name}:record")
    code, reply, _ = run(monkeypatch, "--command", command, "--module", "1")
    assert code == 1
    assert error_of(reply) == ("missing_option", "item", command)
    assert handlers.calls == []


def test_missing_module_for_get_server_config(
    monkeypatch: pytest.MonkeyPatch, mgr_root: MgrPaths, handlers: Any
) -> None:
    route(monkeypatch, "get_server_config", f"{handlers.name}:record")
    code, reply, _ = run(monkeypatch, "--command", "get_server_config")
    assert code == 1
    assert error_of(reply)[:2] == ("missing_option", "module")


@pytest.mark.parametrize("option", ["item", "module", "runningoperation", "userid"])
@pytest.mark.parametrize("bad", ["abc", "-1", "1.5", "٣", "12x"])
def test_integer_options_must_be_integers(
    monkeypatch: pytest.MonkeyPatch, mgr_root: MgrPaths, handlers: Any, option: str, bad: str
) -> None:
    route(monkeypatch, "open", f"{handlers.name}:record")
    code, reply, _ = run(monkeypatch, "--command", "open", "--item", "1", f"--{option}={bad}")
    assert code == 1
    assert error_of(reply) == ("invalid_param", option, bad)
    assert handlers.calls == []


def test_unknown_command(monkeypatch: pytest.MonkeyPatch, mgr_root: MgrPaths) -> None:
    code, reply, _ = run(monkeypatch, "--command", "format_disks", "--item", "1")
    assert code == 1
    assert error_of(reply)[:2] == ("unknown_command", "format_disks")
    assert log_events(mgr_root)[-1]["error"] == "unknown_command"


def test_empty_command_is_unknown(monkeypatch: pytest.MonkeyPatch, mgr_root: MgrPaths) -> None:
    code, reply, _ = run(monkeypatch, "--command")
    assert code == 1
    assert error_of(reply)[0] == "unknown_command"


def test_module_error_from_a_handler_is_reported_as_is(
    monkeypatch: pytest.MonkeyPatch, mgr_root: MgrPaths, handlers: Any
) -> None:
    route(monkeypatch, "open", f"{handlers.name}:refuse")
    code, reply, _ = run(monkeypatch, "--command", "open", "--item", "9")
    assert code == 1
    assert error_of(reply) == ("no_free_server", "i9", "1")
    assert b"none left" not in reply
    failed = log_events(mgr_root)[-1]
    assert (failed["event"], failed["error"], failed["detail"]) == (
        "command_failed",
        "no_free_server",
        "none left",
    )


def test_unexpected_exception_is_internal_with_traceback_only_in_the_log(
    monkeypatch: pytest.MonkeyPatch, mgr_root: MgrPaths, handlers: Any
) -> None:
    route(monkeypatch, "open", f"{handlers.name}:explode")
    code, reply, _ = run(monkeypatch, "--command", "open", "--item", "9")
    assert code == 1
    assert error_of(reply) == ("internal", "open", "RuntimeError")
    assert b"Traceback" not in reply
    assert b"SECRET" not in reply
    crashed = log_events(mgr_root)[-1]
    assert crashed["event"] == "command_crashed"
    assert "Traceback" in crashed["exception"]
    assert "RuntimeError: boom" in crashed["exception"]
    assert "tok-SECRET-123" not in mgr_root.log_file.read_text()  # a token= value is masked


class RecordingBilling:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.recorded: list[tuple[int, ModuleError]] = []

    def record_operation_error(self, runningoperation: int, error: ModuleError) -> None:
        if self.fail:
            raise OSError("mgrctl is gone")
        self.recorded.append((runningoperation, error))


def use_billing(monkeypatch: pytest.MonkeyPatch, billing: RecordingBilling) -> None:
    fake: Callable[[Invocation], RecordingBilling] = lambda inv: billing  # noqa: E731
    monkeypatch.setattr(Invocation, "billing", fake)


@pytest.mark.parametrize(
    ("target", "expected"), [("refuse", "no_free_server"), ("explode", "internal")]
)
def test_failure_is_recorded_on_the_running_operation(
    monkeypatch: pytest.MonkeyPatch,
    mgr_root: MgrPaths,
    handlers: Any,
    target: str,
    expected: str,
) -> None:
    billing = RecordingBilling()
    use_billing(monkeypatch, billing)
    route(monkeypatch, "open", f"{handlers.name}:{target}")
    code, _, _ = run(monkeypatch, "--command", "open", "--item", "9", "--runningoperation", "77")
    assert code == 1
    assert [(ro, str(err.type)) for ro, err in billing.recorded] == [(77, expected)]


def test_failure_without_running_operation_records_nothing(
    monkeypatch: pytest.MonkeyPatch, mgr_root: MgrPaths, handlers: Any
) -> None:
    billing = RecordingBilling()
    use_billing(monkeypatch, billing)
    route(monkeypatch, "open", f"{handlers.name}:refuse")
    code, _, _ = run(monkeypatch, "--command", "open", "--item", "9")
    assert code == 1
    assert billing.recorded == []


def test_recording_failure_is_logged_not_raised(
    monkeypatch: pytest.MonkeyPatch, mgr_root: MgrPaths, handlers: Any
) -> None:
    use_billing(monkeypatch, RecordingBilling(fail=True))
    route(monkeypatch, "open", f"{handlers.name}:refuse")
    code, reply, _ = run(monkeypatch, "--command", "open", "--item", "9", "--runningoperation=5")
    assert code == 1
    assert error_of(reply)[0] == "no_free_server"
    last = log_events(mgr_root)[-1]
    assert (last["event"], last["runningoperation"], last["reason"]) == (
        "operation_error_not_recorded",
        5,
        "OSError",
    )


def test_every_reported_type_is_an_error_type() -> None:
    assert {str(t) for t in ErrorType} >= {"internal", "bad_input", "invalid_param"}


# --- BILLmanager's DoNothing switch ---------------------------------------------------------


@pytest.mark.parametrize("command", ["open", "resume", "suspend", "close", "prolong", "sync_item"])
def test_do_nothing_flag_skips_lifecycle_commands(
    monkeypatch: pytest.MonkeyPatch, mgr_root: MgrPaths, handlers: Any, command: str
) -> None:
    mgr_root.do_nothing_flag.parent.mkdir(parents=True, exist_ok=True)
    mgr_root.do_nothing_flag.touch()
    for name in ("open", "resume", "suspend", "close", "sync_item"):
        route(monkeypatch, name, f"{handlers.name}:explode")
    use_billing(monkeypatch, RecordingBilling(fail=True))
    code, reply, _ = run(monkeypatch, "--command", command, "--item", "3")
    assert (code, reply) == (0, b"<doc><ok/></doc>")
    assert handlers.calls == []
    assert log_events(mgr_root)[-1]["event"] == "maintenance_do_nothing"


def test_do_nothing_flag_leaves_other_commands_alone(
    monkeypatch: pytest.MonkeyPatch, mgr_root: MgrPaths, handlers: Any
) -> None:
    mgr_root.do_nothing_flag.parent.mkdir(parents=True, exist_ok=True)
    mgr_root.do_nothing_flag.touch()
    route(monkeypatch, "get_server_config", f"{handlers.name}:record")
    code, reply, _ = run(monkeypatch, "--command", "get_server_config", "--module", "2")
    assert (code, reply) == (0, b"<doc><ok/></doc>")
    assert [inv.module for inv in handlers.calls] == [2]


def test_without_the_flag_lifecycle_commands_run(
    monkeypatch: pytest.MonkeyPatch, mgr_root: MgrPaths, handlers: Any
) -> None:
    route(monkeypatch, "close", f"{handlers.name}:record")
    code, _, _ = run(monkeypatch, "--command", "close", "--item", "3")
    assert code == 0
    assert len(handlers.calls) == 1


# --- the installed binary -------------------------------------------------------------------


def test_binary_reports_a_bad_option_as_error_xml(pmdci6_bin: Path, mgr_root: MgrPaths) -> None:
    done = subprocess.run(
        [str(pmdci6_bin), "--command", "open", "--item", "abc", "--unknown=1"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert error_of(done.stdout) == ("invalid_param", "item", "abc")
    assert b"Traceback" not in done.stdout + done.stderr
    assert mgr_root.log_file.stat().st_mode & 0o777 == 0o600


# --- commands for people --------------------------------------------------------------------


def test_people_group_registers_only_importable_subcommands(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = tmp_path / "people"
    folder.mkdir()
    (folder / "pmdci6_test_people.py").write_text(
        "import click\n\n@click.command()\ndef hello():\n    click.echo('hello from hello')\n"
    )
    (folder / "pmdci6_test_broken.py").write_text("import pmdci6_no_such_dependency\n")
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setattr(
        cli,
        "SUBCOMMANDS",
        {
            "hello": "pmdci6_test_people:hello",
            "broken": "pmdci6_test_broken:command",
            "absent": "pmdci6_test_absent:command",
        },
    )
    runner = CliRunner()
    listing = runner.invoke(cli.people_group(), ["--help"])
    assert listing.exit_code == 0
    assert "hello" in listing.output
    assert "absent" not in listing.output
    ran = runner.invoke(cli.people_group(), ["hello"])
    assert (ran.exit_code, ran.output.strip()) == (0, "hello from hello")
    missing = runner.invoke(cli.people_group(), ["absent"])
    assert missing.exit_code != 0


def test_main_without_command_runs_the_people_group(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--help"])
    assert exited.value.code == 0
    assert "--command" in capsys.readouterr().out


# --- check_connection against the DCImanager 6 simulator ------------------------------------


@pytest.mark.parametrize(("right_password", "expected"), [(True, None), (False, "bad_credentials")])
def test_check_connection_logs_in_with_exactly_the_given_values(
    monkeypatch: pytest.MonkeyPatch, mgr_root: MgrPaths, right_password: bool, expected: str | None
) -> None:
    from pmdci6_sandbox.dcisim import DciSimulator, Inventory

    with DciSimulator(Inventory.default(), time_scale=0.0) as sim:
        password = sim.admin_password if right_password else "not-the-admin-password"
        stdin = (
            f"<doc><processingmodule><url>{sim.url}</url><username>{sim.admin_email}</username>"
            f"<password>{password}</password><verify_tls>on</verify_tls><ca_bundle/>"
            f"</processingmodule></doc>"
        ).encode()
        code, reply, _ = run(
            monkeypatch, "--command", "check_connection", "--module=4", stdin=stdin
        )
        logins = [r for r in sim.requests if r.method == "POST" and "token" in r.path]
    if expected is None:
        assert (code, reply) == (0, b"<doc><ok/></doc>")
    else:
        assert code == 1
        assert error_of(reply)[:2] == (expected, sim.admin_email)
    assert len(logins) == 1
    assert password not in mgr_root.log_file.read_text()
    assert not mgr_root.state_dir.exists()  # a check caches no token


def test_check_connection_refuses_an_invalid_url_before_any_request(
    monkeypatch: pytest.MonkeyPatch, mgr_root: MgrPaths
) -> None:
    stdin = (
        b"<doc><processingmodule><url>https://dci.example</url><username>no-at-sign</username>"
        b"<password>pw-123456</password></processingmodule></doc>"
    )
    code, reply, _ = run(monkeypatch, "--command", "check_connection", stdin=stdin)
    assert code == 1
    assert error_of(reply) == ("invalid_param", "username", "no-at-sign")
