"""A stand-in BILLmanager host in a temporary directory, shaped like /usr/local/mgr5.

`BillmgrHost.create(root)` lays out `lib/python/billmgr` (the stand-in vendor library),
`sbin/mgrctl`, `var/` with the 0600 sqlite store, `etc/xml/` with the descriptor, and
`processing/`. Seeding helpers play BILLmanager's admin (modules, tariffs, clients,
services); `run()` executes the real `pmdci6` binary with PMDCI6_MGR_ROOT pointing here, so
the production code path (adapter -> vendor library -> mgrctl -> store) runs in every test.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

from dci6_processing.paths import ROOT_ENV, MgrPaths
from pmdci6_sandbox import store
from pmdci6_sandbox.store import MODULE_TYPE

ITEMTYPE = "dedic"
# params BILLmanager keeps crypted because the descriptor marks them crypted="yes"
CRYPTED_MODULE_PARAMS = frozenset({"password"})
CRYPTED_SERVICE_PARAMS = frozenset({"password"})
DEFAULT_TASK_TYPE = "dedic_manual"
DESCRIPTOR_NAME = "billmgr_mod_pmdci6.xml"
INSERT_ADDON = (  # store.ADDON_ID is a constant
    "INSERT INTO item (id, parent, intname, value, status, pricelist, processingmodule, account)"  # noqa: S608
    f" VALUES ({store.ADDON_ID}, ?, ?, ?, ?, ?, ?, ?)"
)


class MgrctlCall(NamedTuple):
    func: str
    args: dict[str, str]  # secrets masked
    item: int | None
    exit_code: int


class Task(NamedTuple):
    id: int
    item: int | None
    runningoperation: int | None
    type: str
    comment: str


class OperationError(NamedTuple):
    runningoperation: int
    item: int | None
    errorxml: str
    manual: bool


@dataclass(frozen=True)
class ServiceRecord:
    item: int
    status: int
    pricelist: int
    lastpricelist: int | None
    params: dict[str, str]  # crypted ones decrypted
    crypted_params: frozenset[str]  # names of the params kept crypted
    addons: dict[str, str]
    ips: list[tuple[int, str]]  # (id, address); '' for an unfilled slot
    committed_ips: frozenset[int]
    status_message: str
    expiredate: str | None
    events: list[tuple[str, dict[str, str]]]  # mgrctl calls about this service


@dataclass(frozen=True)
class LiveService:
    """A service as `open` leaves it (active, its server recorded, its addresses committed),
    for seeding many at once with `add_live_services`."""

    item: int
    module: int
    pricelist: int
    account_id: int
    status: int = store.ACTIVE
    params: Mapping[str, str] = field(default_factory=dict)
    ips: tuple[str, ...] = ()


def _vendor_source() -> Path:
    return Path(str(resources.files("pmdci6_sandbox"))) / "vendor" / "billmgr"


def _mgrctl_source() -> Path:
    return Path(str(resources.files("pmdci6_sandbox"))) / "mgrctl"


def default_descriptor() -> Path | None:
    """xml/billmgr_mod_pmdci6.xml of this checkout, or as package data when installed."""
    package = Path(str(resources.files("dci6_processing")))
    for candidate in (package.parent / "xml" / DESCRIPTOR_NAME, package / "xml" / DESCRIPTOR_NAME):
        if candidate.is_file():
            return candidate
    return None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return "" if value is None else str(value)


class BillmgrHost:
    def __init__(self, root: Path) -> None:
        """Attach to a root laid out by `create()`."""
        self.root = Path(root)
        self.paths = MgrPaths(self.root)
        self.store_path = Path(store.store_path(self.root))
        if not self.store_path.is_file():
            raise FileNotFoundError(f"no sandbox store at {self.store_path}")

    @classmethod
    def create(cls, root: Path, *, descriptor: Path | None = None) -> BillmgrHost:
        root = Path(root).resolve()
        paths = MgrPaths(root)
        for directory in (root / "sbin", root / "var", paths.xml_dir, paths.processing_dir):
            directory.mkdir(parents=True, exist_ok=True)
        target = paths.vendor_lib / "billmgr"
        target.mkdir(parents=True, exist_ok=True)
        for source in sorted(_vendor_source().glob("*.py")):
            shutil.copyfile(source, target / source.name)
        # `-S`: no site import (the venv's .pth files and editable finders cost more than the
        # call itself); the package's own directory is put on sys.path instead. The store
        # needs only the standard library.
        script = _mgrctl_source().read_text().split("\n", 1)[1]
        home = Path(str(resources.files("pmdci6_sandbox"))).resolve().parent
        paths.mgrctl.write_text(f"#!{sys.executable} -S\nimport sys\n"
                                f"sys.path.insert(0, {str(home)!r})\n{script}")
        os.chmod(paths.mgrctl, 0o755)  # noqa: S103 -- an executable, like the real sbin/mgrctl
        descriptor = descriptor or default_descriptor()
        if descriptor is not None:
            shutil.copyfile(descriptor, paths.descriptor)
        store.create_store(store.store_path(root))
        host = cls(root)
        with host._write() as conn:
            conn.execute("INSERT OR IGNORE INTO itemtype (intname) VALUES (?)", (ITEMTYPE,))
            conn.execute(
                "INSERT OR IGNORE INTO tasktype (operation, name) VALUES ('*', ?)",
                (DEFAULT_TASK_TYPE,),
            )
        return host

    # store access -----------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        conn = store.connect(self.store_path)
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._read() as conn, store.write(conn):
            yield conn

    # seeding: what BILLmanager's admin and clients create ---------------------------------

    def add_module(self, module_id: int, *, name: str = "", **params: Any) -> None:
        """A processing module of type pmdci6 with its connection form and parameters."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO processingmodule (id, name, module) VALUES (?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET name = excluded.name",
                (module_id, name or f"DCImanager 6 #{module_id}", MODULE_TYPE),
            )
            for key, value in params.items():
                table = (
                    "processingcryptedparam" if key in CRYPTED_MODULE_PARAMS else "processingparam"
                )
                conn.execute(
                    f"INSERT INTO {table} (processingmodule, intname, value)"  # noqa: S608
                    " VALUES (?, ?, ?) ON CONFLICT (processingmodule, intname)"
                    " DO UPDATE SET value = excluded.value",
                    (module_id, key, _text(value)),
                )

    def add_foreign_module(self, module_id: int, module_type: str) -> None:
        """A processing module of another type (to check we list only ours)."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO processingmodule (id, name, module) VALUES (?, ?, ?)",
                (module_id, module_type, module_type),
            )

    def add_tariff(self, pricelist_id: int, *, name: str = "", **params: Any) -> None:
        """A dedicated-server tariff (pricelist) with its pmdci6 tariff options."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO pricelist (id, name, intname, itemtype)"
                " VALUES (?, ?, ?, (SELECT id FROM itemtype WHERE intname = ?))"
                " ON CONFLICT (id) DO UPDATE SET name = excluded.name",
                (pricelist_id, name or f"Tariff #{pricelist_id}", None, ITEMTYPE),
            )
            for key, value in params.items():
                conn.execute(
                    "INSERT INTO pricelistparam (pricelist, intname, value) VALUES (?, ?, ?)"
                    " ON CONFLICT (pricelist, intname) DO UPDATE SET value = excluded.value",
                    (pricelist_id, key, _text(value)),
                )

    def add_client(
        self,
        account_id: int,
        email: str,
        *,
        email_verified: bool = True,
        user_id: int | None = None,
    ) -> int:
        """A client account with its first user; returns the user id."""
        with self._write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO account (id, name) VALUES (?, ?)", (account_id, email)
            )
            cursor = conn.execute(
                "INSERT INTO user (id, account, name, email, email_confirmed)"
                " VALUES (?, ?, ?, ?, ?)",
                (user_id, account_id, email, email, _text(email_verified)),
            )
            return int(cursor.lastrowid or 0)

    def add_service(
        self,
        item: int,
        *,
        module: int,
        pricelist: int,
        account_id: int,
        params: Mapping[str, Any] | None = None,
        addons: Mapping[str, Any] | None = None,
        status: int = store.ORDERED,
        lastpricelist: int | None = None,
        ip_slots: int = 0,
    ) -> None:
        """A dedicated-server service, its params, its addons (child items) and the empty
        IP slots BILLmanager creates for the ordered addresses."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO item (id, status, pricelist, lastpricelist, processingmodule,"
                " account) VALUES (?, ?, ?, ?, ?, ?)",
                (item, status, pricelist, lastpricelist or pricelist, module, account_id),
            )
            for key, value in (params or {}).items():
                table = "itemcryptedparam" if key in CRYPTED_SERVICE_PARAMS else "itemparam"
                conn.execute(
                    f"INSERT INTO {table} (item, intname, value) VALUES (?, ?, ?)",  # noqa: S608
                    (item, key, _text(value)),
                )
            for key, value in (addons or {}).items():
                conn.execute(
                    INSERT_ADDON, (item, key, _text(value), status, pricelist, module, account_id)
                )
            if ip_slots:
                addon = store.ip_addon(conn, item)
                conn.executemany("INSERT INTO ip (item) VALUES (?)", [(addon,)] * ip_slots)

    def add_live_services(self, services: Iterable[LiveService]) -> None:
        """Many opened services in one transaction (the sync benchmark seeds 10,000)."""
        with self._write() as conn:
            for service in services:
                conn.execute(
                    "INSERT INTO item (id, status, pricelist, lastpricelist, processingmodule,"
                    " account) VALUES (?, ?, ?, ?, ?, ?)",
                    (service.item, service.status, service.pricelist, service.pricelist,
                     service.module, service.account_id),
                )
                for key, value in service.params.items():
                    table = "itemcryptedparam" if key in CRYPTED_SERVICE_PARAMS else "itemparam"
                    conn.execute(
                        f"INSERT INTO {table} (item, intname, value) VALUES (?, ?, ?)",  # noqa: S608
                        (service.item, key, _text(value)),
                    )
                if service.ips:
                    addon = store.ip_addon(conn, service.item)
                    conn.executemany(
                        "INSERT INTO ip (item, name, status) VALUES (?, ?, 2)",
                        [(addon, address) for address in service.ips],
                    )

    def set_param(self, item: int, name: str, value: Any) -> None:
        """A service param changed in BILLmanager (e.g. the client picks another OS)."""
        table, other = (
            ("itemcryptedparam", "itemparam")
            if name in CRYPTED_SERVICE_PARAMS
            else ("itemparam", "itemcryptedparam")
        )
        with self._write() as conn:
            conn.execute(
                f"INSERT INTO {table} (item, intname, value) VALUES (?, ?, ?)"  # noqa: S608
                " ON CONFLICT (item, intname) DO UPDATE SET value = excluded.value",
                (item, name, _text(value)),
            )
            conn.execute(
                f"DELETE FROM {other} WHERE item = ? AND intname = ?",  # noqa: S608
                (item, name),
            )

    def set_addon(self, item: int, intname: str, value: Any) -> None:
        """An addon changed in BILLmanager (e.g. the client orders more IPv4 addresses)."""
        with self._write() as conn:
            service = conn.execute(
                "SELECT status, pricelist, processingmodule, account FROM item"
                " WHERE id = ? AND parent IS NULL",
                (item,),
            ).fetchone()
            if service is None:
                raise KeyError(f"no service {item}")
            updated = conn.execute(
                "UPDATE item SET value = ? WHERE parent = ? AND intname = ?",
                (_text(value), item, intname),
            )
            if updated.rowcount == 0:
                conn.execute(INSERT_ADDON, (item, intname, _text(value), *tuple(service)))

    def change_tariff(self, item: int, pricelist: int) -> None:
        """The client moves the service to another tariff: BILLmanager keeps the old one as
        lastpricelist until the module applies the change (or rolls it back)."""
        with self._write() as conn:
            conn.execute(
                "UPDATE item SET lastpricelist = pricelist, pricelist = ? WHERE id = ?",
                (pricelist, item),
            )

    def set_task_type(self, operation: str, name: str) -> None:
        """The task type BILLmanager answers for an operation ('' = no department)."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO tasktype (operation, name) VALUES (?, ?)"
                " ON CONFLICT (operation) DO UPDATE SET name = excluded.name",
                (operation, name),
            )

    # reading back -------------------------------------------------------------------------

    def service(self, item: int) -> ServiceRecord:
        with self._read() as conn:
            row = conn.execute(
                "SELECT * FROM item WHERE id = ? AND parent IS NULL", (item,)
            ).fetchone()
            if row is None:
                raise KeyError(f"no service {item}")
            plain = conn.execute(
                "SELECT intname, value FROM itemparam WHERE item = ?", (item,)
            ).fetchall()
            crypted = conn.execute(
                "SELECT intname, value FROM itemcryptedparam WHERE item = ?", (item,)
            ).fetchall()
            addons = conn.execute(
                "SELECT intname, value FROM item WHERE parent = ? AND intname IS NOT NULL",
                (item,),
            ).fetchall()
            ips = conn.execute(
                "SELECT ip.id, ip.name, ip.status FROM ip JOIN item addon ON addon.id = ip.item"
                " WHERE addon.parent = ? ORDER BY ip.id",
                (item,),
            ).fetchall()
            events = conn.execute(
                "SELECT func, args FROM mgrctl_event WHERE item = ? ORDER BY id", (item,)
            ).fetchall()
        return ServiceRecord(
            item=item,
            status=int(row["status"]),
            pricelist=int(row["pricelist"]),
            lastpricelist=row["lastpricelist"],
            params={**{r["intname"]: r["value"] for r in plain},
                    **{r["intname"]: r["value"] for r in crypted}},
            crypted_params=frozenset(r["intname"] for r in crypted),
            addons={r["intname"]: r["value"] or "" for r in addons},
            ips=[(int(r["id"]), r["name"]) for r in ips],
            committed_ips=frozenset(int(r["id"]) for r in ips if r["status"] == 2),
            status_message=row["status_message"],
            expiredate=row["expiredate"],
            events=[(r["func"], json.loads(r["args"])) for r in events],
        )

    def tasks(self) -> list[Task]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT id, item, runningoperation, type, comment FROM task ORDER BY id"
            ).fetchall()
        return [Task(*tuple(row)) for row in rows]

    def operation_errors(self) -> list[OperationError]:
        """Running operations the module recorded an error on or handed to people."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT id, item, errorxml, manual FROM runningoperation"
                " WHERE errorxml != '' OR manual = 'on' ORDER BY id"
            ).fetchall()
        return [
            OperationError(row["id"], row["item"], row["errorxml"], row["manual"] == "on")
            for row in rows
        ]

    def mgrctl_log(self) -> list[MgrctlCall]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT func, args, item, exit_code FROM mgrctl_event ORDER BY id"
            ).fetchall()
        return [
            MgrctlCall(row["func"], json.loads(row["args"]), row["item"], row["exit_code"])
            for row in rows
        ]

    def catalogue(self, module: int, param: str) -> list[tuple[str, str]]:
        """Active select values (value, label) published for a module's itemtype param."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT intname, name FROM itemtypeparamvalue WHERE processingmodule = ?"
                " AND param = ? AND active = 'on' ORDER BY intname",
                (module, param),
            ).fetchall()
        return [(row["intname"], row["name"]) for row in rows]

    # running the module -------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        return {**os.environ, ROOT_ENV: str(self.root)}

    def command(self) -> list[str]:
        """The installed pmdci6 console script next to this interpreter, else `-m`."""
        script = Path(sys.executable).parent / "pmdci6"
        if script.is_file() and os.access(script, os.X_OK):
            return [str(script)]
        return [sys.executable, "-m", "dci6_processing"]

    def run(
        self,
        *argv: str,
        stdin: bytes | None = None,
        timeout: float = 120,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run pmdci6 as BILLmanager does: cwd at the root, the root in PMDCI6_MGR_ROOT;
        `env` adds or overrides variables."""
        return subprocess.run(
            [*self.command(), *argv],
            input=stdin or b"",
            capture_output=True,
            cwd=self.root,
            env={**self.env(), **(env or {})},
            timeout=timeout,
            check=False,
        )

    def maintenance(self, on: bool) -> None:
        """BILLmanager's DoNothing switch: lifecycle commands do nothing while it exists."""
        if on:
            self.paths.do_nothing_flag.parent.mkdir(parents=True, exist_ok=True)
            self.paths.do_nothing_flag.touch()
        else:
            self.paths.do_nothing_flag.unlink(missing_ok=True)
