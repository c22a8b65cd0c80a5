"""The stand-in BILLmanager: its data (one sqlite file) and the API functions mgrctl runs.

BILLmanager keeps its data in MySQL; the sandbox keeps the same tables, trimmed to what a
processing module touches, in `<root>/var/billmgr-sandbox.sqlite`. Reads come straight from
here (the stand-in vendor library's `db.db_query`, like the real one reads MySQL); every
WRITE goes through `<root>/sbin/mgrctl`, which runs `run_mgrctl()` below, as the real
product does. Every mgrctl call is appended to `mgrctl_event` with secret arguments masked.

Crypted params: the real product RSA-encrypts `processingcryptedparam` / `itemcryptedparam`
values with the key at `etc/billmgr.pem` (PKCS#1 v1.5, base64). The stand-in keeps them in
plain text in those separate tables of this file, which is created 0600; nothing here
prints them.

IP rows follow BILLmanager's schema: an `ip` row points at the service's `ip` addon item (a
child item whose pricelist has itemtype `ip`), as the vendor library's `itemips` joins them
(github.com/ea0hw33/billmgr billmgr/misc.py). `ip_addon()` finds or creates that item.

Simplification (documented, deliberate): an addon that carries an ordered quantity is a child
item with its own `intname` and `value` (the real one goes through addon pricelists); the
`ip` addon item that holds the IP rows has no `intname`, so it is not one of those.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

# NOTE(stop16): every BILLmanager call of every e2e test starts a stand-in mgrctl that imports
# this module (thousands a run), so it imports only what a call needs: no pathlib (paths are
# os.path strings), no dataclasses, no typing at run time (only for the type checker). Those
# three were 17 of a call's 40 ms.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    StrPath = str | os.PathLike[str]

STORE_NAME = "billmgr-sandbox.sqlite"
BUSY_TIMEOUT_MS = 60_000
MODULE_TYPE = "pmdci6"

# the pricelist of every service's `ip` addon item (itemtype `ip`), created with the store;
# a number no test picks for a tariff
IP_ITEMTYPE = "ip"
IP_PRICELIST = 990_000
# addon items number from 1,000,000 so the service ids tests choose never collide with them
ADDON_ID = "(SELECT MAX(COALESCE(MAX(id), 0) + 1, 1000000) FROM item)"

# BILLmanager item status codes (see dci6_processing.settings.ServiceStatus)
ORDERED, ACTIVE, STOPPED, DELETED = 1, 2, 3, 4

SCHEMA = """
CREATE TABLE IF NOT EXISTS itemtype (
    id INTEGER PRIMARY KEY, intname TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS processingmodule (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL DEFAULT '', module TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS processingparam (
    processingmodule INTEGER NOT NULL REFERENCES processingmodule(id),
    intname TEXT NOT NULL, value TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (processingmodule, intname));
CREATE TABLE IF NOT EXISTS processingcryptedparam (
    processingmodule INTEGER NOT NULL REFERENCES processingmodule(id),
    intname TEXT NOT NULL, value TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (processingmodule, intname));
CREATE TABLE IF NOT EXISTS pricelist (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL DEFAULT '', intname TEXT,
    itemtype INTEGER NOT NULL REFERENCES itemtype(id), active TEXT NOT NULL DEFAULT 'on');
CREATE TABLE IF NOT EXISTS pricelistparam (
    pricelist INTEGER NOT NULL REFERENCES pricelist(id),
    intname TEXT NOT NULL, value TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (pricelist, intname));
CREATE TABLE IF NOT EXISTS account (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS user (
    id INTEGER PRIMARY KEY, account INTEGER NOT NULL REFERENCES account(id),
    name TEXT NOT NULL DEFAULT '', email TEXT NOT NULL,
    email_confirmed TEXT NOT NULL DEFAULT 'on');
CREATE TABLE IF NOT EXISTS item (
    id INTEGER PRIMARY KEY, parent INTEGER REFERENCES item(id),
    intname TEXT, value TEXT,
    status INTEGER NOT NULL DEFAULT 1,
    pricelist INTEGER NOT NULL REFERENCES pricelist(id), lastpricelist INTEGER,
    processingmodule INTEGER REFERENCES processingmodule(id),
    account INTEGER REFERENCES account(id),
    expiredate TEXT, opendate TEXT, status_message TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS item_parent ON item(parent);
CREATE INDEX IF NOT EXISTS item_module ON item(processingmodule, status);
CREATE TABLE IF NOT EXISTS itemparam (
    item INTEGER NOT NULL REFERENCES item(id), intname TEXT NOT NULL,
    value TEXT NOT NULL DEFAULT '', PRIMARY KEY (item, intname));
CREATE TABLE IF NOT EXISTS itemcryptedparam (
    item INTEGER NOT NULL REFERENCES item(id), intname TEXT NOT NULL,
    value TEXT NOT NULL DEFAULT '', PRIMARY KEY (item, intname));
CREATE TABLE IF NOT EXISTS ip (
    id INTEGER PRIMARY KEY, item INTEGER NOT NULL REFERENCES item(id),
    name TEXT NOT NULL DEFAULT '', mask TEXT NOT NULL DEFAULT '',
    gateway TEXT NOT NULL DEFAULT '', domain TEXT NOT NULL DEFAULT '',
    status INTEGER NOT NULL DEFAULT 1);
CREATE INDEX IF NOT EXISTS ip_item ON ip(item);
CREATE TABLE IF NOT EXISTS itemtypeparamvalue (
    id INTEGER PRIMARY KEY, processingmodule INTEGER NOT NULL, itemtype TEXT NOT NULL,
    param TEXT NOT NULL, intname TEXT NOT NULL, name TEXT NOT NULL DEFAULT '',
    active TEXT NOT NULL DEFAULT 'on',
    UNIQUE (processingmodule, itemtype, param, intname));
CREATE TABLE IF NOT EXISTS runningoperation (
    id INTEGER PRIMARY KEY, item INTEGER, errorxml TEXT NOT NULL DEFAULT '',
    manual TEXT NOT NULL DEFAULT 'off');
CREATE TABLE IF NOT EXISTS tasktype (
    operation TEXT PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS task (
    id INTEGER PRIMARY KEY, item INTEGER, runningoperation INTEGER,
    type TEXT NOT NULL, comment TEXT NOT NULL DEFAULT '', params TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS mgrctl_event (
    id INTEGER PRIMARY KEY, at TEXT NOT NULL, func TEXT NOT NULL, item INTEGER,
    args TEXT NOT NULL, exit_code INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS mgrctl_event_item ON mgrctl_event(item);
"""

# argument names whose values never reach the event log
SECRET_MARKERS = ("password", "passwd", "secret", "token", "cryptkey", "private")
# form control fields of service.saveparam; every other field of a crypted save is the secret
SAVEPARAM_CONTROL = frozenset({"sok", "elid", "crypted", "out", "name", "lang"})
MASK = "***"


def store_path(root: StrPath) -> str:
    return os.path.join(root, "var", STORE_NAME)


def connect(path: StrPath) -> sqlite3.Connection:
    """A connection in autocommit mode; writers open `BEGIN IMMEDIATE` via `write()`."""
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


@contextmanager
def write(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction; IMMEDIATE takes the write lock up front so concurrent
    writers queue on busy_timeout instead of failing on a lock upgrade."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def create_store(path: StrPath) -> None:
    """Create the store file 0600 in WAL mode with every table; idempotent."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if not os.path.exists(path):
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
    os.chmod(path, 0o600)
    conn = connect(path)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(SCHEMA)
        with write(conn):
            conn.execute("INSERT OR IGNORE INTO itemtype (intname) VALUES (?)", (IP_ITEMTYPE,))
            conn.execute(
                "INSERT OR IGNORE INTO pricelist (id, name, intname, itemtype) VALUES"
                " (?, 'IPv4 address', ?, (SELECT id FROM itemtype WHERE intname = ?))",
                (IP_PRICELIST, IP_ITEMTYPE, IP_ITEMTYPE),
            )
    finally:
        conn.close()


def ip_addon(conn: sqlite3.Connection, item: int) -> int:
    """The service's `ip` addon item, which BILLmanager's IP rows point at; created (like
    BILLmanager does when addresses are ordered) on first use. Call inside a write."""
    row = conn.execute(
        "SELECT id FROM item WHERE parent = ? AND pricelist = ?", (item, IP_PRICELIST)
    ).fetchone()
    if row is not None:
        return int(row[0])
    cursor = conn.execute(
        f"INSERT INTO item (id, parent, status, pricelist, processingmodule, account)"  # noqa: S608
        f" SELECT {ADDON_ID}, id, status, ?, processingmodule, account FROM item WHERE id = ?",
        (IP_PRICELIST, item),
    )
    if cursor.rowcount != 1:
        raise MgrctlError("missed", "elid", str(item))
    return int(cursor.lastrowid or 0)


# the service an IP row belongs to (the parent of its `ip` addon item)
IP_SERVICE_SQL = "SELECT addon.parent FROM ip JOIN item addon ON addon.id = ip.item WHERE ip.id = ?"


def is_secret_name(name: str) -> bool:
    lowered = name.lower()
    return any(marker in lowered for marker in SECRET_MARKERS)


def masked(func: str, args: Mapping[str, str]) -> dict[str, str]:
    """The call's arguments as the event log keeps them: secrets replaced by ***."""
    crypted_save = func == "service.saveparam" and args.get("crypted") == "on"
    result: dict[str, str] = {}
    for name, value in args.items():
        hidden = is_secret_name(name) or (crypted_save and name not in SAVEPARAM_CONTROL)
        result[name] = MASK if hidden else value
    return result


class MgrctlError(Exception):
    """An error mgrctl reports as `<error type=... object=...>`."""

    def __init__(self, type: str, object: str = "", value: str = "") -> None:
        super().__init__(f"{type} {object} {value}".strip())
        self.type = type
        self.object = object
        self.value = value


class MgrctlResult:
    """What one mgrctl call returns and prints."""

    __slots__ = ("exit_code", "stderr", "stdout")

    def __init__(self, exit_code: int, stdout: str, stderr: str) -> None:
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr

    def __repr__(self) -> str:
        return (f"MgrctlResult(exit_code={self.exit_code!r}, stdout={self.stdout!r}, "
                f"stderr={self.stderr!r})")


if TYPE_CHECKING:
    Reply = dict[str, Any]
    Function = Callable[["BillmgrApi", sqlite3.Connection, dict[str, str]], Reply]


class BillmgrApi:
    """The BILLmanager functions a processing module calls through mgrctl.

    Form functions change nothing unless called with `sok=ok`, like the real forms.
    """

    functions: dict[str, Function] = {}

    def __init__(self, root: StrPath) -> None:
        self.root = os.fspath(root)

    # dispatch ---------------------------------------------------------------------------

    def call(self, conn: sqlite3.Connection, func: str, args: dict[str, str]) -> Reply:
        handler = self.functions.get(func)
        if handler is None:
            raise MgrctlError("missed", "func", func)
        return handler(self, conn, args)

    def item_of(self, conn: sqlite3.Connection, func: str, args: Mapping[str, str]) -> int | None:
        """The service a call is about, for the per-service event view."""
        try:
            if func.startswith("service.ip."):
                if "plid" in args:
                    return int(args["plid"])
                row = conn.execute(IP_SERVICE_SQL, (args["elid"],)).fetchone()
                return int(row[0]) if row and row[0] is not None else None
            if func.startswith("runningoperation."):
                row = conn.execute(
                    "SELECT item FROM runningoperation WHERE id = ?", (args["elid"],)
                ).fetchone()
                return int(row["item"]) if row and row["item"] is not None else None
            if func.startswith("task."):
                return int(args["item"]) if args.get("item") else None
            if func.startswith(("service.", "vds.")):
                return int(args["elid"])
        except (KeyError, ValueError):
            return None
        return None


def _function(name: str) -> Callable[[Function], Function]:
    def register(handler: Function) -> Function:
        BillmgrApi.functions[name] = handler
        return handler

    return register


def _submitted(args: Mapping[str, str]) -> bool:
    return args.get("sok") == "ok"


def _int_arg(args: Mapping[str, str], name: str) -> int:
    raw = args.get(name, "")
    if not raw.strip().isdigit():
        raise MgrctlError("missed", name, raw)
    return int(raw)


def _service(conn: sqlite3.Connection, args: Mapping[str, str]) -> sqlite3.Row:
    item = _int_arg(args, "elid")
    row = conn.execute(
        "SELECT i.*, it.intname AS itemtype FROM item i JOIN pricelist p ON p.id = i.pricelist"
        " JOIN itemtype it ON it.id = p.itemtype WHERE i.id = ? AND i.parent IS NULL",
        (item,),
    ).fetchone()
    if row is None:
        raise MgrctlError("missed", "elid", str(item))
    service: sqlite3.Row = row
    return service


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _post(status: int | None) -> Function:
    """service.post<event>: the module reports success; the item leaves 'processing'."""

    def handler(api: BillmgrApi, conn: sqlite3.Connection, args: dict[str, str]) -> Reply:
        service = _service(conn, args)
        if not _submitted(args):
            return {}
        with write(conn):
            if status == ACTIVE and service["opendate"] is None:
                conn.execute(
                    "UPDATE item SET opendate = ? WHERE id = ?", (_now(), service["id"])
                )
            if status is not None:
                conn.execute(
                    "UPDATE item SET status = ? WHERE id = ? OR parent = ?",
                    (status, service["id"], service["id"]),
                )
        return {"ok": {}}

    return handler


for _event, _status in (
    ("open", ACTIVE),
    ("suspend", STOPPED),
    ("resume", ACTIVE),
    ("close", DELETED),
    ("setparam", None),
    ("prolong", None),
    # the client's power buttons: the status stays as it is (recorded in mgrctl_event)
    ("reboot", None),
    ("start", None),
    ("stop", None),
):
    _function(f"service.post{_event}")(_post(_status))


@_function("vds.open")
def _vds_open(api: BillmgrApi, conn: sqlite3.Connection, args: dict[str, str]) -> Reply:
    # the public vendor copy's postopen() calls vds.open; it is not for other item types
    service = _service(conn, args)
    if service["itemtype"] != "vds":
        raise MgrctlError("access", "itemtype", str(service["itemtype"]))
    return _post(ACTIVE)(api, conn, args)


@_function("service.saveparam")
def _saveparam(api: BillmgrApi, conn: sqlite3.Connection, args: dict[str, str]) -> Reply:
    service = _service(conn, args)
    if not _submitted(args):
        return {}
    if "name" in args:
        params = {args["name"]: args.get("value", "")}
    else:
        params = {k: v for k, v in args.items() if k not in SAVEPARAM_CONTROL}
    if not params:
        raise MgrctlError("missed", "name")
    crypted = args.get("crypted") == "on"
    keep, drop = ("itemcryptedparam", "itemparam") if crypted else ("itemparam", "itemcryptedparam")
    with write(conn):
        for name, value in params.items():
            conn.execute(
                f"INSERT INTO {keep} (item, intname, value) VALUES (?, ?, ?)"  # noqa: S608
                " ON CONFLICT (item, intname) DO UPDATE SET value = excluded.value",
                (service["id"], name, value),
            )
            conn.execute(
                f"DELETE FROM {drop} WHERE item = ? AND intname = ?",  # noqa: S608
                (service["id"], name),
            )
    return {"ok": {}}


@_function("service.dropparam")
def _dropparam(api: BillmgrApi, conn: sqlite3.Connection, args: dict[str, str]) -> Reply:
    service = _service(conn, args)
    if not _submitted(args):
        return {}
    with write(conn):
        for table in ("itemparam", "itemcryptedparam"):
            conn.execute(
                f"DELETE FROM {table} WHERE item = ? AND intname = ?",  # noqa: S608
                (service["id"], args.get("name", "")),
            )
    return {"ok": {}}


@_function("service.setstatus")
def _setstatus(api: BillmgrApi, conn: sqlite3.Connection, args: dict[str, str]) -> Reply:
    service = _service(conn, args)
    if not _submitted(args):
        return {}
    with write(conn):
        conn.execute(
            "UPDATE item SET status_message = ? WHERE id = ?",
            (args.get("service_status", ""), service["id"]),
        )
    return {"ok": {}}


@_function("service.setexpiredate")
def _setexpiredate(api: BillmgrApi, conn: sqlite3.Connection, args: dict[str, str]) -> Reply:
    service = _service(conn, args)
    if not _submitted(args):
        return {}
    with write(conn):
        conn.execute(
            "UPDATE item SET expiredate = ? WHERE id = ?",
            (args.get("expiredate", ""), service["id"]),
        )
    return {"ok": {}}


@_function("service.ip.add")
def _ip_add(api: BillmgrApi, conn: sqlite3.Connection, args: dict[str, str]) -> Reply:
    """elid=<ip row> fills that row (C); plid=<item> adds a new row (I)."""
    if not _submitted(args):
        return {}
    fields = (args.get("ip", ""), args.get("mask", ""), args.get("gateway", ""),
              args.get("domain", ""))
    if not fields[0]:
        raise MgrctlError("missed", "ip")
    with write(conn):
        if args.get("elid"):
            ip_id = _int_arg(args, "elid")
            updated = conn.execute(
                "UPDATE ip SET name = ?, mask = ?, gateway = ?, domain = ? WHERE id = ?",
                (*fields, ip_id),
            )
            if updated.rowcount == 0:
                raise MgrctlError("missed", "elid", str(ip_id))
        else:
            item = _service(conn, {"elid": args.get("plid", "")})["id"]
            ip_id = int(
                conn.execute(
                    "INSERT INTO ip (item, name, mask, gateway, domain) VALUES (?, ?, ?, ?, ?)",
                    (ip_addon(conn, item), *fields),
                ).lastrowid
                or 0
            )
    return {"model": {"ip.id": str(ip_id)}}


@_function("service.ip.add.commit")
def _ip_commit(api: BillmgrApi, conn: sqlite3.Connection, args: dict[str, str]) -> Reply:
    ip_id = _int_arg(args, "elid")
    if not _submitted(args):
        return {}
    with write(conn):
        row = conn.execute("SELECT name FROM ip WHERE id = ?", (ip_id,)).fetchone()
        if row is None:
            raise MgrctlError("missed", "elid", str(ip_id))
        if not row["name"]:
            raise MgrctlError("value", "ip", "empty")
        conn.execute("UPDATE ip SET status = 2 WHERE id = ?", (ip_id,))
    return {"ok": {}}


@_function("service.ip.del")
def _ip_del(api: BillmgrApi, conn: sqlite3.Connection, args: dict[str, str]) -> Reply:
    ip_id = _int_arg(args, "elid")
    if not _submitted(args):
        return {}
    with write(conn):
        if conn.execute("DELETE FROM ip WHERE id = ?", (ip_id,)).rowcount == 0:
            raise MgrctlError("missed", "elid", str(ip_id))
    return {"ok": {}}


@_function("service.changepricelist.rollback")
def _rollback(api: BillmgrApi, conn: sqlite3.Connection, args: dict[str, str]) -> Reply:
    service = _service(conn, args)
    if not _submitted(args):
        return {}
    if service["lastpricelist"] is None:
        raise MgrctlError("value", "lastpricelist")
    with write(conn):
        conn.execute(
            "UPDATE item SET pricelist = lastpricelist WHERE id = ?", (service["id"],)
        )
    return {"ok": {}}


def _operation(conn: sqlite3.Connection, args: Mapping[str, str]) -> int:
    """The running operation named by elid; the sandbox starts operations by running the
    binary rather than through BILLmanager's scheduler, so an unseen id is created."""
    operation = _int_arg(args, "elid")
    conn.execute("INSERT OR IGNORE INTO runningoperation (id) VALUES (?)", (operation,))
    return operation


@_function("runningoperation.edit")
def _operation_edit(api: BillmgrApi, conn: sqlite3.Connection, args: dict[str, str]) -> Reply:
    if not _submitted(args):
        return {}
    with write(conn):
        operation = _operation(conn, args)
        conn.execute(
            "UPDATE runningoperation SET errorxml = ? WHERE id = ?",
            (args.get("errorxml", ""), operation),
        )
    return {"ok": {}}


@_function("runningoperation.setmanual")
def _operation_manual(
    api: BillmgrApi, conn: sqlite3.Connection, args: dict[str, str]
) -> Reply:
    if not _submitted(args):
        return {}
    with write(conn):
        operation = _operation(conn, args)
        conn.execute("UPDATE runningoperation SET manual = 'on' WHERE id = ?", (operation,))
    return {"ok": {}}


@_function("task.gettype")
def _task_type(api: BillmgrApi, conn: sqlite3.Connection, args: dict[str, str]) -> Reply:
    row = conn.execute(
        "SELECT name FROM tasktype WHERE operation IN (?, '*')"
        " ORDER BY operation = '*' LIMIT 1",
        (args.get("operation", ""),),
    ).fetchone()
    return {"model": {"task_type": row["name"] if row else ""}}


@_function("task.edit")
def _task_edit(api: BillmgrApi, conn: sqlite3.Connection, args: dict[str, str]) -> Reply:
    if not _submitted(args):
        return {}
    if not args.get("type"):
        raise MgrctlError("missed", "type")
    known = {"sok", "out", "item", "runningoperation", "type", "comment"}
    extra = {k: v for k, v in args.items() if k not in known}
    with write(conn):
        task_id = conn.execute(
            "INSERT INTO task (item, runningoperation, type, comment, params)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                int(args["item"]) if args.get("item") else None,
                int(args["runningoperation"]) if args.get("runningoperation") else None,
                args["type"],
                args.get("comment", ""),
                dumps(extra),
            ),
        ).lastrowid
        if args.get("item"):
            # BILLmanager ties a task to the service's operation; the sandbox keeps it simple
            conn.execute(
                "UPDATE runningoperation SET item = COALESCE(item, ?) WHERE id = ?",
                (int(args["item"]), int(args.get("runningoperation") or 0)),
            )
    return {"model": {"id": str(task_id)}}


@_function("itemtype.param.value.sync")
def _param_value_sync(
    api: BillmgrApi, conn: sqlite3.Connection, args: dict[str, str]
) -> Reply:
    module = _int_arg(args, "module")
    for name in ("itemtype", "param", "value"):
        if not args.get(name):
            raise MgrctlError("missed", name)
    with write(conn):
        conn.execute(
            "INSERT INTO itemtypeparamvalue (processingmodule, itemtype, param, intname, name)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (processingmodule, itemtype, param, intname)"
            " DO UPDATE SET name = excluded.name, active = 'on'",
            (module, args["itemtype"], args["param"], args["value"], args.get("name", "")),
        )
    return {"ok": {}}


@_function("itemtype.param.value.processing.suspend")
def _param_value_suspend(
    api: BillmgrApi, conn: sqlite3.Connection, args: dict[str, str]
) -> Reply:
    module = _int_arg(args, "elid")
    value_id = _int_arg(args, "plid")
    with write(conn):
        conn.execute(
            "UPDATE itemtypeparamvalue SET active = 'off' WHERE id = ? AND processingmodule = ?",
            (value_id, module),
        )
    return {"ok": {}}


@_function("paramlist")
def _paramlist(api: BillmgrApi, conn: sqlite3.Connection, args: dict[str, str]) -> Reply:
    return {
        "DBHost": "localhost",
        "DBName": store_path(api.root),
        "DBUser": "",
        "DBSocket": "",
        "CryptKey": os.path.join(api.root, "etc", "billmgr.pem"),
    }


# mgrctl command line ----------------------------------------------------------------------

_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
                 "\b": "\\b", "\f": "\\f"}


def dumps(value: object) -> str:
    """JSON of what a call replies or logs (dicts with sorted keys, lists, strings, numbers,
    booleans, None), as `json.dumps(value, sort_keys=True, ensure_ascii=False)` writes it.
    NOTE(stop16): json's import pulls in re, enum and functools, a third of a stand-in mgrctl
    call's start-up; these shapes need no more than this."""
    if isinstance(value, str):
        if value.isprintable() and '"' not in value and "\\" not in value:
            return f'"{value}"'
        return '"' + "".join(_JSON_ESCAPES.get(c) or (f"\\u{ord(c):04x}" if ord(c) < 0x20 else c)
                             for c in value) + '"'
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{dumps(str(k))}: {dumps(v)}"
                               for k, v in sorted(value.items())) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(dumps(item) for item in value) + "]"
    raise TypeError(f"no JSON for {type(value).__name__}")


def _render(reply: Reply, fmt: str) -> str:
    if fmt in ("bjson", "json"):
        return dumps(reply)
    if "error" in reply:
        error = reply["error"]
        return (
            f"<doc><error type={quoteattr(error['type'])} object={quoteattr(error['object'])}>"
            f"<param name=\"value\">{_escape(error['value'])}</param></error></doc>"
        )
    if "model" in reply:
        fields = "".join(f"<{k}>{_escape(str(v))}</{k}>" for k, v in reply["model"].items())
        return f"<doc>{fields}</doc>"
    return "<doc><ok/></doc>"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def quoteattr(text: str) -> str:
    """An XML attribute value in double quotes, as xml.sax.saxutils.quoteattr escapes it,
    without the import of urllib.request that made every mgrctl call slower."""
    escaped = _escape(text).replace('"', "&quot;")
    return '"' + escaped.replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#9;") + '"'


def _from_environment(word: str, environ: Mapping[str, str]) -> tuple[str, str] | str:
    """`-e '<param>=$<ENV_NAME>'`: the param and the variable's value, or why it is refused."""
    name, _, reference = word.partition("=")
    variable = reference[1:]
    # an ASCII identifier: [A-Za-z_][A-Za-z0-9_]*
    if not name or not reference.startswith("$") or not (variable.isascii()
                                                         and variable.isidentifier()):
        return f"mgrctl: -e wants <param>=$<ENV_NAME>, got {word!r}\n"
    if variable not in environ:
        return f"mgrctl: environment variable {variable} is not set\n"
    return name, environ[variable]


def run_mgrctl(root: StrPath, argv: Sequence[str],
               environ: Mapping[str, str] | None = None) -> MgrctlResult:
    """`mgrctl -m billmgr [-o xml|json] [-R] <func> k=v ... [out=bjson] [-e 'k=$ENV' ...]`
    against the store.

    `-e` takes a parameter's value from the environment (`environ`, default os.environ), as
    https://www.ispsystem.com/docs/b6c/developer-section/mgrctl-utility documents it
    (syntax `[[-e <param>=$<ENV_NAME>] ...]`): how a secret reaches mgrctl without its argv.
    """
    environ = os.environ if environ is None else environ
    manager, fmt, restart = "", "xml", False
    func = ""
    args: dict[str, str] = {}
    rest = list(argv)
    while rest:
        word = rest.pop(0)
        if word == "-m" and rest:
            manager = rest.pop(0)
        elif word == "-o" and rest:
            fmt = rest.pop(0)
        elif word == "-R":
            restart = True
        elif word == "-e" and rest and func:
            taken = _from_environment(rest.pop(0), environ)
            if isinstance(taken, str):
                return MgrctlResult(2, "", taken)
            args[taken[0]] = taken[1]
        elif "=" in word:
            name, _, value = word.partition("=")
            args[name] = value
        elif not func and not word.startswith("-"):
            func = word
        else:
            return MgrctlResult(2, "", f"mgrctl: unexpected argument {word!r}\n")
    fmt = args.pop("out", fmt)
    if manager != "billmgr":
        return MgrctlResult(2, "", f"mgrctl: unknown manager {manager!r}\n")
    if restart:
        func = "-R"
    elif not func:
        return MgrctlResult(2, "", "mgrctl: no function given\n")

    conn = connect(store_path(root))
    try:
        api = BillmgrApi(root)
        exit_code: int = 0
        reply: Reply = {"ok": {}}
        item = api.item_of(conn, func, args)  # before the call: service.ip.del drops the row
        try:
            if not restart:
                reply = api.call(conn, func, args)
        except MgrctlError as err:
            exit_code = 1
            reply = {"error": {"type": err.type, "object": err.object, "value": err.value}}
        except sqlite3.IntegrityError as err:
            exit_code = 1
            reply = {"error": {"type": "value", "object": func, "value": str(err)}}
        with write(conn):
            conn.execute(
                "INSERT INTO mgrctl_event (at, func, item, args, exit_code) VALUES (?, ?, ?, ?, ?)",
                (_now(), func, item, dumps(masked(func, args)), exit_code),
            )
    finally:
        conn.close()
    output = _render(reply, fmt) + "\n"
    return MgrctlResult(exit_code, output, output if exit_code else "")


def mgrctl_main(argv: Sequence[str], root: StrPath) -> int:
    result = run_mgrctl(root, argv)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.exit_code
