"""log.py: one JSON line per event in <root>/var/pmdci6.log (0600), secrets never written."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import structlog

from dci6_processing import log
from dci6_processing.paths import MgrPaths

pytestmark = pytest.mark.usefixtures("isolated_logging")


def events(paths: MgrPaths) -> list[dict[str, Any]]:
    return [json.loads(line) for line in paths.log_file.read_text().splitlines()]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # closed again on leaving the block: connections are refused


# --- redaction ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "Password",
        "db_passwd",
        "token",
        "x-xsrf-token",
        "client_secret",
        "Cookie",
        "Authorization",
        "Proxy-Authorization",
        "Set-Cookie",
        "root_password",
        "userpassword",
        "ses",
        "ses6",
        "billmgrses5",
        "auth",
        "pwd",
        "CryptKey",
        "encryption_key",
        "api-key",
        "private_key",
    ],
)
def test_secret_keys_are_masked(key: str) -> None:
    assert log.redact({key: "value-1", "url": "https://dci.example"}) == {
        key: log.MASK,
        "url": "https://dci.example",
    }


@pytest.mark.parametrize(
    "key",
    ["crypted", "Crypted", "crypted_params", "encrypted", "uses", "addresses", "licenses",
     "session_count", "auth_method", "key", "ses_total"],
)
def test_innocent_keys_stay_readable(key: str) -> None:
    assert log.redact({key: "yes"}) == {key: "yes"}


def test_empty_secret_values_stay_visible() -> None:
    assert log.redact({"password": "", "token": None}) == {"password": "", "token": None}


def test_registered_secrets_are_masked_everywhere_recursively() -> None:
    log.register_secret("Pa55-w0rd/with space")
    event = {
        "detail": "login as a@b.c with Pa55-w0rd/with space failed",
        "args": ("--value", "Pa55-w0rd/with space"),
        "nested": {"list": ["x", "prefix-Pa55-w0rd/with space-suffix"], "count": 3},
        "encoded": "body=Pa55-w0rd%2Fwith%20space",
        "names": {"Pa55-w0rd/with space"},
    }
    assert log.redact(event) == {
        "detail": "login as a@b.c with *** failed",
        "args": ("--value", "***"),
        "nested": {"list": ["x", "prefix-***-suffix"], "count": 3},
        "encoded": "body=***",
        "names": {"***"},
    }


def test_blank_secrets_are_not_registered() -> None:
    log.register_secret("")
    log.register_secret("   ")
    log.register_secret(None)
    assert log.redact("a b  c") == "a b  c"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("boom token=abc123 more", "boom token=*** more"),
        ("GET /x?password=abc&y=1", "GET /x?password=***&y=1"),
        ('{"password": "two words"}', '{"password": ***}'),
        ("x-xsrf-token: 7-abcdef", "x-xsrf-token: ***"),
        ("Cookie: ses6=7-abcdef; a=b", "Cookie: ***; a=b"),
        ("plain words about a token", "plain words about a token"),
        ('<param name="password" crypted="yes"/>', '<param name="password" crypted="yes"/>'),
        ("saveparam password=abc crypted=on", "saveparam password=*** crypted=on"),
        ("ses6=7-abcdef; lang=en", "ses6=***; lang=en"),
        ("GET /billmgr?auth=1a2b3c&out=xml", "GET /billmgr?auth=***&out=xml"),
        ("Set-Cookie: billmgrses5=1a2b", "Set-Cookie: ***"),
        ("billmgrses5=1a2b", "billmgrses5=***"),
        ("addresses=3 uses=2 x-ses6=7", "addresses=3 uses=2 x-ses6=7"),
        ("api_key: k-123", "api_key: ***"),
        ('cut off: {"password": "abc', 'cut off: {"password": ***'),
    ],
)
def test_secret_assignments_inside_text_are_masked(text: str, masked: str) -> None:
    assert log.redact(text) == masked


def test_a_secret_after_an_innocent_assignment_is_still_masked() -> None:
    assert log.redact("a=password=x b=1 q=\"token: t-1\"") == "a=password=*** b=1 q=\"token: ***\""


def test_redaction_time_grows_linearly_with_the_text() -> None:
    # the old key pattern backtracked quadratically over a long word: 10 kB took 16 s, 20 kB 62 s
    started = time.monotonic()
    for text in ("x" * 20_000, "ab.cd-ef " * 50_000, 'a="' * 50_000, "k=v " * 50_000):
        log.redact(text)
    assert time.monotonic() - started < 5


def test_redact_leaves_other_values_untouched() -> None:
    marker = object()
    assert log.redact({"n": 1, "f": 1.5, "b": True, "o": marker})["o"] is marker


# --- level ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "level"),
    [
        (None, log.INFO),
        ("", log.INFO),
        ("pmdci6 9\n", log.DEBUG),
        ("pmdci6 6\n", log.DEBUG),
        ("pmdci6 5\n", log.INFO),
        ("pmdci6 4\n", log.WARNING),
        ("pmdci6 3\n", log.ERROR),
        ("* 4\nbillmgr 9\n", log.WARNING),
        ("* 9\npmdci6 3\n", log.ERROR),
        ("pmdci6 loud\nother 9\n", log.INFO),
    ],
)
def test_level_from_debug_conf(tmp_path: Path, content: str | None, level: int) -> None:
    conf = tmp_path / "debug.conf"
    if content is not None:
        conf.write_text(content)
    assert log.level_from_debug_conf(conf) == level


# --- the log file ---------------------------------------------------------------------------


def test_configure_writes_json_lines_bound_to_the_call(mgr_root: MgrPaths) -> None:
    log.configure(mgr_root, command="open", item=42, module=3)
    logger = structlog.get_logger("dci6_processing.test")
    logger.info("step_done", step="claim", server=17, where=Path("/x"))
    logger.debug("not_written_at_info")
    [event] = events(mgr_root)
    assert event["event"] == "step_done"
    assert (event["command"], event["item"], event["module"]) == ("open", 42, 3)
    assert event["pid"] == os.getpid()
    assert (event["level"], event["logger"]) == ("info", "dci6_processing.test")
    assert (event["step"], event["server"], event["where"]) == ("claim", 17, "/x")
    assert "timestamp" in event
    assert mgr_root.log_file.stat().st_mode & 0o777 == 0o600


def test_debug_conf_enables_debug_events(mgr_root: MgrPaths) -> None:
    mgr_root.debug_conf.parent.mkdir(parents=True)
    mgr_root.debug_conf.write_text("pmdci6 9\n")
    log.configure(mgr_root, command="sync")
    structlog.get_logger(__name__).debug("detail_event")
    assert [e["event"] for e in events(mgr_root)] == ["detail_event"]


def test_existing_log_file_is_appended_and_tightened(mgr_root: MgrPaths) -> None:
    mgr_root.log_file.parent.mkdir(parents=True)
    mgr_root.log_file.write_text('{"event": "earlier"}\n')
    os.chmod(mgr_root.log_file, 0o644)
    log.configure(mgr_root, command="open")
    structlog.get_logger(__name__).warning("later")
    assert [e["event"] for e in events(mgr_root)] == ["earlier", "later"]
    assert mgr_root.log_file.stat().st_mode & 0o777 == 0o600


def test_events_and_tracebacks_are_redacted_in_the_file(mgr_root: MgrPaths) -> None:
    log.configure(mgr_root, command="open")
    log.register_secret("client-root-pw-991")
    logger = structlog.get_logger(__name__)
    logger.info("saving", password="admin-pw-123", params={"password": "client-root-pw-991"})
    try:
        raise ValueError("install with client-root-pw-991 failed")
    except ValueError:
        logger.exception("install_crashed", args=["--password", "client-root-pw-991"])
    text = mgr_root.log_file.read_text()
    assert "admin-pw-123" not in text
    assert "client-root-pw-991" not in text
    saved, crashed = events(mgr_root)
    assert saved["password"] == log.MASK
    assert saved["params"] == {"password": log.MASK}
    assert "ValueError: install with *** failed" in crashed["exception"]


def test_unwritable_log_falls_back_to_stderr_never_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("")
    paths = MgrPaths(blocker)  # <root>/var cannot be created under a file
    log.configure(paths, command="open")
    structlog.get_logger(__name__).error("still_reported")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "still_reported" in captured.err


# --- end to end: check_connection with a known password -------------------------------------


def test_check_connection_never_logs_the_password(pmdci6_bin: Path, mgr_root: MgrPaths) -> None:
    password = "Kn0wn-Pa55word-for-this-test"
    mgr_root.debug_conf.parent.mkdir(parents=True)
    mgr_root.debug_conf.write_text("pmdci6 9\n")  # the most talkative level
    url = f"http://127.0.0.1:{closed_port()}"
    stdin = (
        f"<doc><processingmodule><url>{url}</url><username>admin@sandbox.example</username>"
        f"<password>{password}</password><verify_tls>on</verify_tls></processingmodule></doc>"
    ).encode()
    done = subprocess.run(
        [str(pmdci6_bin), "--command", "check_connection", "--module", "1"],
        input=stdin,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert b'type="panel_unreachable"' in done.stdout
    assert password.encode() not in done.stdout + done.stderr
    text = mgr_root.log_file.read_text()
    assert "panel_unreachable" in text
    assert password not in text
    assert mgr_root.log_file.stat().st_mode & 0o777 == 0o600


def test_a_crypted_flag_is_written_as_it_is(mgr_root: MgrPaths) -> None:
    log.configure(mgr_root, command="open")
    # what billing/vendor.py logs when it saves a param: the flag, never the value
    structlog.get_logger(__name__).info("billing.param_saved", item=7, param="password",
                                        crypted=True)
    [saved] = events(mgr_root)
    assert (saved["param"], saved["crypted"]) == ("password", True)
