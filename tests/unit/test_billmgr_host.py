"""The stand-in BILLmanager host: layout, modes, the store, the stand-in mgrctl."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pmdci6_sandbox import store
from pmdci6_sandbox.billmgr_host import BillmgrHost

SECRET = "Sandbox-Only-S3cret!"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def mgrctl(host: BillmgrHost, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(host.paths.mgrctl), "-m", "billmgr", *args],
        cwd=host.root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def host(tmp_path: Path) -> BillmgrHost:
    host = BillmgrHost.create(tmp_path / "mgr5")
    host.add_module(1, url="https://dci.example", username="admin@example.com", password=SECRET)
    host.add_tariff(10, configuration="E5-2690v4-128Gb-2x480SSD")
    host.add_client(7, "client@example.com")
    host.add_service(42, module=1, pricelist=10, account_id=7, params={"ostempl": "2"},
                     addons={"ip": "2"}, ip_slots=2)
    return host


# layout and modes ---------------------------------------------------------------------------

def test_mgrctl_starts_without_site_and_imports_no_network_library(tmp_path: Path) -> None:
    """The stand-in runs for every BILLmanager call of every e2e test: it must stay cheap (no
    site, no urllib/http import, none of pathlib, dataclasses, typing, json or re, which were
    20 of its 40 ms) and still work outside the virtualenv's site-packages."""
    host = BillmgrHost.create(tmp_path / "mgr5")
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    result = subprocess.run([str(host.paths.mgrctl), "-m", "billmgr", "nosuchfunc"],
                            capture_output=True, text=True, check=False, env=env)
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")}
    assert "pmdci6_sandbox.store" in imported, result.stderr[-2000:]
    assert not imported & {"site", "urllib.request", "http.client", "email", "requests",
                           "pathlib", "dataclasses", "typing", "json", "re"}
    run = subprocess.run([str(host.paths.mgrctl), "-m", "billmgr", "nosuchfunc"],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 1 and 'type="missed"' in run.stdout, run


def test_create_lays_out_a_mgr5_tree(tmp_path: Path) -> None:
    descriptor = tmp_path / "descriptor.xml"
    descriptor.write_text("<mgrdata/>")
    host = BillmgrHost.create(tmp_path / "mgr5", descriptor=descriptor)
    root = host.root
    for name in ("__init__.py", "misc.py", "db.py", "exception.py", "logger.py"):
        assert (root / "lib" / "python" / "billmgr" / name).is_file()
    assert host.paths.descriptor.read_text() == "<mgrdata/>"
    assert (root / "var").is_dir() and host.paths.processing_dir.is_dir()
    first_line = host.paths.mgrctl.read_text().splitlines()[0]
    assert first_line == f"#!{sys.executable} -S"  # no site: the store needs only the stdlib
    assert mode(host.paths.mgrctl) == 0o755


def test_store_is_private_and_in_wal_mode(host: BillmgrHost) -> None:
    assert mode(host.store_path) == 0o600
    assert host.store_path == host.root / "var" / "billmgr-sandbox.sqlite"
    conn = sqlite3.connect(host.store_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()
    mgrctl(host, "service.postsetparam", "elid=42", "sok=ok")  # a write creates -wal/-shm
    for sidecar in host.root.glob("var/billmgr-sandbox.sqlite-*"):
        assert mode(sidecar) & 0o077 == 0, sidecar


def test_attaching_to_a_root_without_store_fails(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        BillmgrHost(tmp_path)


def test_create_twice_keeps_the_data(host: BillmgrHost) -> None:
    again = BillmgrHost.create(host.root)
    assert again.service(42).params == {"ostempl": "2"}


# seeding and reading back -------------------------------------------------------------------

def test_seeded_service_reads_back(host: BillmgrHost) -> None:
    record = host.service(42)
    assert record.status == 1
    assert record.pricelist == 10 and record.lastpricelist == 10
    assert record.addons == {"ip": "2"}
    assert [address for _, address in record.ips] == ["", ""]
    assert record.committed_ips == frozenset()
    assert record.events == []


def test_crypted_params_are_kept_apart(host: BillmgrHost) -> None:
    host.add_service(43, module=1, pricelist=10, account_id=7,
                     params={"password": "root-pw", "username": "root"})
    record = host.service(43)
    assert record.params == {"password": "root-pw", "username": "root"}
    assert record.crypted_params == frozenset({"password"})
    conn = sqlite3.connect(host.store_path)
    try:
        crypted = conn.execute("SELECT intname FROM itemcryptedparam WHERE item = 43").fetchall()
        module_crypted = conn.execute("SELECT intname FROM processingcryptedparam").fetchall()
    finally:
        conn.close()
    assert crypted == [("password",)]
    assert module_crypted == [("password",)]


def test_set_param_and_addon(host: BillmgrHost) -> None:
    host.set_param(42, "ostempl", "4")
    host.set_addon(42, "ip", "3")
    host.set_addon(42, "ip6", "1")
    record = host.service(42)
    assert record.params["ostempl"] == "4"
    assert record.addons == {"ip": "3", "ip6": "1"}


def test_unknown_service_raises_key_error(host: BillmgrHost) -> None:
    with pytest.raises(KeyError):
        host.service(999)


def test_maintenance_switch(host: BillmgrHost) -> None:
    flag = host.root / "etc" / "billmgr.DoNothing"
    host.maintenance(True)
    assert flag.exists() and host.paths.do_nothing_flag == flag
    host.maintenance(False)
    assert not flag.exists()
    host.maintenance(False)  # idempotent


def test_run_executes_pmdci6_with_the_root(host: BillmgrHost) -> None:
    script = Path(sys.executable).parent / "pmdci6"
    assert host.command() == [str(script)]
    result = host.run("--command", "features")
    assert result.returncode == 0, result.stderr
    assert b"<feature" in result.stdout
    env = host.env()
    assert env["PMDCI6_MGR_ROOT"] == str(host.root)


# the stand-in mgrctl ------------------------------------------------------------------------

def test_unknown_function_is_an_error_exit(host: BillmgrHost) -> None:
    result = mgrctl(host, "no.such.func", "elid=42", "out=bjson")
    assert result.returncode != 0
    assert json.loads(result.stdout)["error"] == {
        "type": "missed", "object": "func", "value": "no.such.func"}
    last = host.mgrctl_log()[-1]
    assert (last.func, last.exit_code) == ("no.such.func", 1)


def test_wrong_manager_or_no_function_is_rejected(host: BillmgrHost) -> None:
    assert subprocess.run([str(host.paths.mgrctl), "-m", "ispmgr", "paramlist"],
                          capture_output=True, check=False).returncode != 0
    assert mgrctl(host).returncode != 0


def test_forms_change_nothing_without_sok(host: BillmgrHost) -> None:
    assert mgrctl(host, "service.postopen", "elid=42", "out=bjson").returncode == 0
    assert host.service(42).status == 1
    assert mgrctl(host, "service.postopen", "elid=42", "sok=ok", "out=bjson").returncode == 0
    assert host.service(42).status == 2


@pytest.mark.parametrize(
    ("func", "status"),
    [("service.postsuspend", 3), ("service.postresume", 2), ("service.postclose", 4),
     ("service.postsetparam", 1)],
)
def test_post_functions_set_the_item_status(host: BillmgrHost, func: str, status: int) -> None:
    assert mgrctl(host, func, "elid=42", "sok=ok").returncode == 0
    assert host.service(42).status == status


def test_xml_output(host: BillmgrHost) -> None:
    ok = mgrctl(host, "-o", "xml", "service.postopen", "elid=42", "sok=ok")
    assert ok.stdout.strip() == "<doc><ok/></doc>"
    missing = mgrctl(host, "-o", "xml", "service.postopen", "elid=4242", "sok=ok")
    assert missing.returncode != 0
    assert '<error type="missed" object="elid">' in missing.stdout


def test_vds_open_is_refused_for_a_dedicated_server(host: BillmgrHost) -> None:
    result = mgrctl(host, "vds.open", "elid=42", "sok=ok", "out=bjson")
    assert result.returncode != 0
    assert host.service(42).status == 1


def test_saveparam_both_spellings(host: BillmgrHost) -> None:
    assert mgrctl(host, "service.saveparam", "elid=42", "sok=ok", "hostname=srv1",
                  "crypted=off").returncode == 0
    assert mgrctl(host, "service.saveparam", "elid=42", "sok=ok", "name=username",
                  "value=root").returncode == 0
    params = host.service(42).params
    assert params["hostname"] == "srv1" and params["username"] == "root"


def test_a_param_from_the_environment_as_mgrctl_documents_it(host: BillmgrHost) -> None:
    """`-e '<param>=$<ENV_NAME>'` (ispsystem.com/docs/b6c/developer-section/mgrctl-utility):
    the value comes from the variable, the argv holds only its name."""
    result = subprocess.run(
        [str(host.paths.mgrctl), "-m", "billmgr", "service.saveparam", "elid=42", "sok=ok",
         "crypted=on", "out=bjson", "-e", "password=$ROOT_SECRET"],
        cwd=host.root, capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "ROOT_SECRET": SECRET},
    )
    assert result.returncode == 0, result.stderr
    assert host.service(42).params["password"] == SECRET
    assert "password" in host.service(42).crypted_params


@pytest.mark.parametrize(("argv", "why"), [
    (["service.saveparam", "elid=42", "sok=ok", "-e", "password=$NOT_SET_ANYWHERE"],
     "environment variable NOT_SET_ANYWHERE is not set"),
    (["service.saveparam", "elid=42", "sok=ok", "-e", "password=plain"], "-e wants"),
    (["service.saveparam", "elid=42", "sok=ok", "-e", "password=$1BAD"], "-e wants"),
    (["-e", "password=$HOME", "service.saveparam", "elid=42"], "unexpected argument"),
])
def test_a_bad_environment_param_is_refused(host: BillmgrHost, argv: list[str],
                                            why: str) -> None:
    result = mgrctl(host, *argv)
    assert result.returncode == 2 and why in result.stderr
    assert "password" not in host.service(42).params


def test_secrets_are_masked_in_the_event_log(host: BillmgrHost) -> None:
    mgrctl(host, "service.saveparam", "elid=42", "sok=ok", f"password={SECRET}", "crypted=on")
    mgrctl(host, "service.saveparam", "elid=42", "sok=ok", f"rootkey={SECRET}", "crypted=on")
    mgrctl(host, "service.saveparam", "elid=42", "sok=ok", "name=admin_passwd",
           f"value={SECRET}", "crypted=on")
    mgrctl(host, "task.edit", "sok=ok", "item=42", "type=t", f"api_token={SECRET}")
    events = host.mgrctl_log()
    assert len(events) == 4
    assert all(SECRET not in json.dumps(event.args) for event in events)
    assert events[0].args["password"] == "***" and events[1].args["rootkey"] == "***"
    assert events[2].args["value"] == "***" and events[3].args["api_token"] == "***"
    assert events[0].args["elid"] == "42"  # only secrets are masked
    conn = sqlite3.connect(host.store_path)
    try:
        raw = conn.execute("SELECT group_concat(args) FROM mgrctl_event").fetchone()[0]
    finally:
        conn.close()
    assert SECRET not in raw
    record = host.service(42)
    assert record.params["rootkey"] == SECRET
    assert {"password", "rootkey", "admin_passwd"} <= record.crypted_params


def test_ip_slots_fill_commit_and_delete(host: BillmgrHost) -> None:
    slot = host.service(42).ips[0][0]
    filled = mgrctl(host, "service.ip.add", f"elid={slot}", "ip=203.0.113.7", "sok=ok",
                    "out=bjson")
    assert json.loads(filled.stdout) == {"model": {"ip.id": str(slot)}}
    added = mgrctl(host, "service.ip.add", "plid=42", "ip=203.0.113.8", "sok=ok", "out=bjson")
    new_id = int(json.loads(added.stdout)["model"]["ip.id"])
    for ip_id in (slot, new_id):
        assert mgrctl(host, "service.ip.add.commit", f"elid={ip_id}", "sok=ok").returncode == 0
    record = host.service(42)
    assert (slot, "203.0.113.7") in record.ips and (new_id, "203.0.113.8") in record.ips
    assert record.committed_ips == {slot, new_id}
    assert mgrctl(host, "service.ip.del", f"elid={new_id}", "sok=ok").returncode == 0
    assert new_id not in dict(host.service(42).ips)
    # the deleted row's call still belongs to the service's history
    assert ("service.ip.del", {"elid": str(new_id), "sok": "ok"}) in host.service(42).events


def test_committing_an_empty_slot_fails(host: BillmgrHost) -> None:
    slot = host.service(42).ips[0][0]
    assert mgrctl(host, "service.ip.add.commit", f"elid={slot}", "sok=ok").returncode != 0


def test_changepricelist_rollback(host: BillmgrHost) -> None:
    host.add_tariff(11, configuration="EPYC-7302-256Gb-4x960SSD")
    host.add_service(44, module=1, pricelist=11, lastpricelist=10, account_id=7)
    assert mgrctl(host, "service.changepricelist.rollback", "elid=44", "userid=1",
                  "sok=ok").returncode == 0
    assert host.service(44).pricelist == 10


def test_running_operation_and_tasks(host: BillmgrHost) -> None:
    assert mgrctl(host, "runningoperation.edit", "elid=5", "sok=ok",
                  "errorxml=<doc><error type='x'/></doc>").returncode == 0
    assert mgrctl(host, "runningoperation.setmanual", "elid=5", "sok=ok").returncode == 0
    task_type = mgrctl(host, "task.gettype", "operation=open", "item=42", "out=bjson")
    assert json.loads(task_type.stdout) == {"model": {"task_type": "dedic_manual"}}
    host.set_task_type("close", "")
    none = mgrctl(host, "task.gettype", "operation=close", "out=bjson")
    assert json.loads(none.stdout) == {"model": {"task_type": ""}}
    assert mgrctl(host, "task.edit", "sok=ok", "item=42", "runningoperation=5",
                  "type=dedic_manual", "comment=do it").returncode == 0
    (task,) = host.tasks()
    assert (task.item, task.runningoperation, task.type, task.comment) == (
        42, 5, "dedic_manual", "do it")
    (error,) = host.operation_errors()
    assert error.runningoperation == 5 and error.item == 42 and error.manual
    assert "type='x'" in error.errorxml


def test_setstatus_and_expiredate(host: BillmgrHost) -> None:
    mgrctl(host, "service.setstatus", "elid=42", "service_status=drift: owner changed", "sok=ok")
    mgrctl(host, "service.setexpiredate", "elid=42", "expiredate=2030-01-01", "sok=ok")
    record = host.service(42)
    assert record.status_message == "drift: owner changed"
    assert record.expiredate == "2030-01-01"


def test_restart_is_a_logged_no_op(host: BillmgrHost) -> None:
    assert mgrctl(host, "-R").returncode == 0
    assert host.mgrctl_log()[-1].func == "-R"


def test_paramlist_names_the_store(host: BillmgrHost) -> None:
    result = mgrctl(host, "paramlist", "out=bjson")
    params = json.loads(result.stdout)
    assert params["DBName"] == str(host.store_path)
    assert not any("password" in key.lower() for key in params)


# concurrency --------------------------------------------------------------------------------

def test_ten_processes_save_params_at_once(host: BillmgrHost) -> None:
    per_process = 5
    processes = [
        subprocess.Popen(
            [sys.executable, "-c",
             "import subprocess, sys\n"
             f"for n in range({per_process}):\n"
             "    r = subprocess.run(['sbin/mgrctl', '-m', 'billmgr', 'service.saveparam',\n"
             "        'elid=42', 'sok=ok', f'p{sys.argv[1]}_{n}=v{n}', 'out=bjson'])\n"
             "    sys.exit(r.returncode) if r.returncode else None\n",
             str(worker)],
            cwd=host.root,
        )
        for worker in range(10)
    ]
    assert [p.wait(timeout=120) for p in processes] == [0] * 10
    params = host.service(42).params
    for worker in range(10):
        for n in range(per_process):
            assert params[f"p{worker}_{n}"] == f"v{n}"
    assert len(host.mgrctl_log()) == 10 * per_process


def test_store_writer_waits_for_a_held_lock(host: BillmgrHost) -> None:
    blocker = store.connect(host.store_path)
    blocker.execute("BEGIN IMMEDIATE")
    waiting = subprocess.Popen(
        [str(host.paths.mgrctl), "-m", "billmgr", "service.postopen", "elid=42", "sok=ok"],
        cwd=host.root, stdout=subprocess.DEVNULL,
    )
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            waiting.wait(timeout=1.0)
    finally:
        blocker.execute("COMMIT")
        blocker.close()
    assert waiting.wait(timeout=60) == 0
    assert host.service(42).status == 2


def test_masked_keeps_control_fields() -> None:
    assert store.masked("service.saveparam", {"elid": "1", "sok": "ok", "crypted": "on",
                                              "hostname": "x"}) == {
        "elid": "1", "sok": "ok", "crypted": "on", "hostname": "***"}
    assert store.masked("service.saveparam", {"hostname": "x", "crypted": "off"}) == {
        "hostname": "x", "crypted": "off"}


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(_json_values)
def test_the_stand_ins_json_is_what_json_dumps_writes(value: object) -> None:
    """`store.dumps` (the stand-in mgrctl's replies and event log) writes what
    `json.dumps(sort_keys=True, ensure_ascii=False)` would, so every reader parses it back."""
    assert store.dumps(value) == json.dumps(value, sort_keys=True, ensure_ascii=False)
    assert json.loads(store.dumps(value)) == value
