"""The `pmdci6` executable.

With `--command` in argv it speaks BILLmanager's processing-module protocol: options in, one XML
reply on stdout, exit 0 on success and 1 on failure (error XML on stdout, details in the log).
Without it, it is a click group for people: `doctor`. Which protocol commands exist, and what
each needs, is the one table in `commands.py`. (The sandbox is its own distribution,
`pmdci6-sandbox`, never installed on a billing host.)

`features` must stay fast: it imports no handler, no requests, no pydantic, no structlog.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO

from dci6_processing import commands, protocol
from dci6_processing.errors import ErrorType, ModuleError
from dci6_processing.invocation import Invocation
from dci6_processing.paths import MgrPaths, mgr_paths

if TYPE_CHECKING:
    import click

Handler = Callable[[Invocation], bytes | None]

# Subcommands for people, registered only when their module is importable.
SUBCOMMANDS: dict[str, str] = {
    "doctor": "dci6_processing.doctor:doctor_command",
}

_DIGITS = re.compile(r"[0-9]+")


# --- argv -----------------------------------------------------------------------------------


def is_protocol_call(argv: Sequence[str]) -> bool:
    return any(arg == "--command" or arg.startswith("--command=") for arg in argv)


def parse_options(argv: Sequence[str]) -> dict[str, str]:
    """`--name value` and `--name=value` pairs; a `--name` followed by another option or
    nothing is an empty value. Anything else is ignored: BILLmanager passes more than we use."""
    options: dict[str, str] = {}
    index = 0
    while index < len(argv):
        arg = argv[index]
        index += 1
        if not arg.startswith("--") or arg == "--":
            continue
        name, equals, value = arg[2:].partition("=")
        if not equals and index < len(argv) and not argv[index].startswith("--"):
            value = argv[index]
            index += 1
        options[name] = value
    return options


def _integer_option(options: dict[str, str], name: str) -> int | None:
    raw = options.get(name, "").strip()
    if not raw:
        return None
    if not _DIGITS.fullmatch(raw):
        raise ModuleError(ErrorType.invalid_param, object=name, value=raw[:64])
    return int(raw)


def build_invocation(
    options: dict[str, str], paths: MgrPaths, stdin: BinaryIO | None
) -> Invocation:
    command = options.get("command", "")
    data = b""
    known = commands.COMMANDS.get(command)
    if known is not None and known.takes_stdin and stdin is not None and not stdin.isatty():
        data = stdin.read()
    return Invocation(
        command=command,
        paths=paths,
        item=_integer_option(options, "item"),
        module=_integer_option(options, "module"),
        runningoperation=_integer_option(options, "runningoperation"),
        userid=_integer_option(options, "userid"),
        workers=_integer_option(options, "workers"),
        param=options.get("param"),
        value=options.get("value"),
        subcommand=options.get("subcommand"),
        itemtype=options.get("itemtype"),
        lang=options.get("lang"),
        stdin=data,
    )


# --- dispatch -------------------------------------------------------------------------------


def load_handler(command: str) -> Handler:
    module_name, _, function = commands.COMMANDS[command].handler.partition(":")
    handler: Handler = getattr(importlib.import_module(module_name), function)
    return handler


# --- protocol mode --------------------------------------------------------------------------


def _write(stdout: BinaryIO, reply: bytes) -> None:
    stdout.write(reply)
    stdout.flush()


def _check_required(inv: Invocation) -> None:
    command = commands.COMMANDS[inv.command]
    if command.needs_item:
        inv.require_item()
    if command.needs_module:
        inv.require_module()


def _check_route_overrides(paths: MgrPaths) -> None:
    """A bad routes.toml fails every command before it makes any request."""
    from dci6_processing.dci.overrides import load

    load(paths.routes_file)


def _record_operation_error(inv: Invocation | None, err: ModuleError, log: Any) -> None:
    """Tell BILLmanager's running operation why it failed; our own failure here is only logged."""
    if inv is None or inv.runningoperation is None:
        return
    try:
        inv.billing().record_operation_error(inv.runningoperation, err)
    except Exception as exc:  # the command already failed; this report is best effort
        log.warning(
            "operation_error_not_recorded",
            runningoperation=inv.runningoperation,
            reason=type(exc).__name__,
            detail=str(exc),
        )


def run_protocol(argv: Sequence[str], stdin: BinaryIO | None, stdout: BinaryIO) -> int:
    """One BILLmanager call; returns the exit code. Every failure becomes error XML."""
    options = parse_options(argv)
    command = options.get("command", "")
    if command == commands.FEATURES:
        try:
            _write(stdout, protocol.features_xml(commands.features()))
            return 0
        except Exception as exc:
            return _crash(command, exc, stdout)

    log: Any = None
    inv: Invocation | None = None
    try:
        from dci6_processing import log as logging_setup

        paths = mgr_paths()
        if paths.root.is_dir():
            # as BILLmanager starts modules: the vendor library opens var/ relative to the cwd
            os.chdir(paths.root)
        logging_setup.configure(
            paths, command=command, item=options.get("item"), module=options.get("module")
        )
        import structlog

        log = structlog.get_logger(__name__)
        if commands.do_nothing_applies(command) and paths.do_nothing_flag.exists():
            log.info("maintenance_do_nothing", flag=str(paths.do_nothing_flag))
            _write(stdout, protocol.ok_xml())
            return 0
        inv = build_invocation(options, paths, stdin)
        logging_setup.bind(item=inv.item, module=inv.module)
        if command not in commands.COMMANDS:
            raise ModuleError(ErrorType.unknown_command, object=command)
        _check_required(inv)
        _check_route_overrides(paths)
        log.info("command_started", runningoperation=inv.runningoperation)
        reply = load_handler(command)(inv)
        _write(stdout, protocol.ok_xml() if reply is None else reply)
        log.info("command_done")
        return 0
    except ModuleError as err:
        if log is not None:
            log.error(
                "command_failed",
                error=str(err.type),
                object=err.object,
                value=err.value,
                detail=err.detail,
            )
        _write(stdout, protocol.error_xml(err))
        _record_operation_error(inv, err, log)
        return 1
    except Exception as exc:
        if log is None:
            return _crash(command, exc, stdout)
        failure = _internal(command, exc)
        log.exception("command_crashed", error=str(failure.type), reason=failure.value)
        _write(stdout, protocol.error_xml(failure))
        _record_operation_error(inv, failure, log)
        return 1


def _internal(command: str, exc: BaseException) -> ModuleError:
    # Only the exception class reaches BILLmanager: its message might carry a secret.
    return ModuleError(ErrorType.internal, object=command, value=type(exc).__name__)


def _crash(command: str, exc: BaseException, stdout: BinaryIO) -> int:
    """Last resort when logging itself is unavailable: error XML out, reason on stderr."""
    err = _internal(command, exc)
    print(f"pmdci6: {command or 'no command'} failed: {err.value}", file=sys.stderr)
    _write(stdout, protocol.error_xml(err))
    return 1


# --- commands for people --------------------------------------------------------------------


def _subcommand_available(name: str) -> bool:
    module_name = SUBCOMMANDS[name].partition(":")[0]
    try:
        return importlib.util.find_spec(module_name) is not None
    except (ImportError, ValueError):
        return False


def people_group() -> click.Group:
    """The click group used when argv has no --command; subcommands load on first use."""
    import click

    class LazyGroup(click.Group):
        def list_commands(self, ctx: click.Context) -> list[str]:
            return sorted(name for name in SUBCOMMANDS if _subcommand_available(name))

        def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
            if cmd_name not in SUBCOMMANDS or not _subcommand_available(cmd_name):
                return None
            module_name, _, attribute = SUBCOMMANDS[cmd_name].partition(":")
            try:
                command = getattr(importlib.import_module(module_name), attribute)
            except (ImportError, AttributeError) as exc:
                # A subcommand still being written must not take the others down with it.
                click.echo(f"pmdci6: {cmd_name} is unavailable: {exc}", err=True)
                return None
            return command if isinstance(command, click.Command) else None

    @click.group(
        cls=LazyGroup,
        help="BILLmanager 6 processing module for DCImanager 6 dedicated servers.\n\n"
        "BILLmanager runs it as `pmdci6 --command <name> ...`; the subcommands below are "
        "for people.",
        epilog=f"\b\nProtocol commands (--command <name>):\n{commands.help_text()}",
    )
    @click.version_option(package_name="pmdci6")
    def group() -> None:
        pass

    return group


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if is_protocol_call(args):
        stdin = getattr(sys.stdin, "buffer", None)
        code = run_protocol(args, stdin, sys.stdout.buffer)
        sys.exit(code)
    people_group()(args=args, prog_name="pmdci6")
