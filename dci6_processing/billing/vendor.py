"""The ONE billing adapter: BillingPort over ISPsystem's vendor library and mgrctl.

The vendor library (`billmanager-plugin-python-libs`, `<root>/lib/python/billmgr`) is
imported from `paths.vendor_lib` on first use; the sandbox puts a stand-in with the same
names there, so tests run this very code.

What the public sources show (C = confirmed there, I = inferred):
- Function names and signatures: github.com/ea0hw33/billmgr `billmgr/misc.py` and
  `billmgr/db.py` (a public copy of the vendor library). `Mgrctl(func, **kw)` runs
  `sbin/mgrctl -m billmgr <func> k=v ... out=bjson` with cwd /usr/local/mgr5, raises
  `XmlException` on a non-zero exit or an `error` key (C). `iteminfo(iid)` keys include
  `intname` (itemtype), `processingmodule`, `pricelist`, `lastpricelist`, `status`,
  `account_id` and raise IndexError for an unknown item (`[0]` on the rows) (C).
  `itemaddons(iid)` -> {intname: Addon(value, measure)}; the copy spells the second field
  `measuere`, so the value is read by index (C). `save_param(iid, param, value, crypted)`
  sends `service.saveparam sok=ok elid=N <param>=<value> crypted=on|off` and LOGS THE
  VALUE at info level, so crypted values go through `Mgrctl` here instead (C, same file).
  `postopen(iid, **kw)` calls `vds.open` in that copy, so a dedic service reports with
  `service.postopen elid=N sok=ok` as ISPsystem's C++ base does (C).
- IP rows: `itemips(iid, where_statement=None, private_ip=False)` -> rows `id`, `name`
  (C, misc.py). BILLmanager creates the rows (slots) for the ordered addresses; a module
  fills one with `save_ip(ip_id, ip, netmask, gateway, domain)` = `service.ip.add elid=<ip
  row> ip= mask= gateway= domain= sok=ok` -> `model["ip.id"]`, then `commit_ip(id)` =
  `service.ip.add.commit elid=<id> sok=ok` (C: ISPsystemLLC/billmanager
  processing/game_server/bill-pter-bridge/commands/_open_comm.py fills
  `itemips(item, [("ip.status=%s", [1])])[0]`, and commands/_add_ip.py fills the row
  BILLmanager passes). Adding a row when no slot is left, `service.ip.add plid=<item>`,
  follows ISPsystem's elid/plid form convention (I).
- Client e-mail: `SELECT email FROM user WHERE account=%s ORDER BY id ASC`, first row (C:
  bill-pter-bridge/utils/misc.py `get_billaccount_email`). Whether that e-mail is
  confirmed: no public module reads it; this adapter reads `user.email_confirmed`
  ('on'/'off', BILLmanager's switch style) (I). When the column cannot be read the address
  counts as NOT verified and a warning is logged: the flag only matters for tariffs with
  `check_email_verified` on, and those must refuse rather than guess.
- Services holding a server: `itemparam` rows (item, intname, value) as `itemparams` reads
  them (C: misc.py), item status 4 = deleted (I).
- Services to sync, in bulk (two queries whatever their number): `item` columns `id`,
  `status`, `pricelist`, `account`, `processingmodule`, `parent` as iteminfo reads them (C),
  a service being an item without a parent (I: addons are child items), the client's
  e-mail as above, params from `itemparam` (C). IP rows: BILLmanager keeps them on the
  service's `ip` addon item, as `itemips` joins them (C: misc.py); the sandbox store follows
  that schema.
- Module and tariff params: `get_module_params(module)` (crypted ones decrypted) (C: misc.py,
  bill-pter-bridge/utils/misc.py); `get_pricelist_params(pricelist)` (C: bill-pter-bridge
  utils/misc.py `order_params`). Modules of this type: `processingmodule.module`
  (C: the column iteminfo joins as `pm.module`).
- Select lists: `sync_itemtype_param(module, itemtype, param, {value: {"name": label}})`
  (C: bill-pter-bridge/commands/_sync_server.py).
- Manual work: `create_manual_task(iid, runningoperation, command, **kw)` = setmanual,
  `task.gettype operation=<command>`, `task.edit` (C: misc.py). Operation errors:
  `save_runningoperation_error(runningoperation, errorxml)` (C: misc.py).
- Tariff change rollback: `service.changepricelist.rollback elid=N userid=U sok=ok` (C: spec).
- Threads (the cron sync's workers share one adapter): the copy's `db.py` opens ONE database
  connection per process (`lru_cache` on its connect function) and MySQL client connections
  are not safe to use from two threads at once (PEP 249 threadsafety 1: "threads may share
  the module, but not connections", https://peps.python.org/pep-0249/#threadsafety), so
  every database read here is serialized; mgrctl calls are separate processes and run side
  by side. `calls_made()` counts both: a read is one query, a write is one mgrctl process.
- The client's power buttons report with `service.postreboot` / `service.poststart` (C: the
  public copy's `misc.postreboot` / `misc.poststart`) and `service.poststop` (C: a third-party
  module, GAGroupLLC/billmgr-teamspeak; the public copy has no `poststop`, so it goes through
  Mgrctl), each `elid=N sok=ok`.
- Secrets never on mgrctl's command line (where any local user reads them with `ps`): mgrctl
  takes a parameter's value from an environment variable, `-e '<param>=$<ENV_NAME>'`, after
  the function's `<param>=<value>` pairs (C: "Syntax" on
  https://www.ispsystem.com/docs/b6c/developer-section/mgrctl-utility; the example
  `mgrctl -m ispmgr ftp.user.edit ... -e 'passwd=$SECRET_PASSWORD'` is on
  https://ispmanager.com/docs/ispmanager/mgrctl-utility). The quotes there are the shell's:
  the argument mgrctl gets is `passwd=$SECRET_PASSWORD`. A process's environment is readable
  only by its owner and root (/proc/<pid>/environ is 0400), its argv by everyone.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, Unpack

import structlog

from dci6_processing.billing.port import BillingIp, PostEvent, SyncEntry
from dci6_processing.billmanager import LIVE_STATUSES, ItemType, ServiceStatus
from dci6_processing.bookkeeping import (
    CRYPTED,
    BookkeepingChanges,
    Param,
    ServiceBookkeeping,
    encode,
)
from dci6_processing.errors import ErrorType, ModuleError
from dci6_processing.log import redact, register_secret
from dci6_processing.paths import MODULE_NAME, MgrPaths
from dci6_processing.settings import ModuleSettings, Service, module_settings

log = structlog.get_logger(__name__)

ITEMTYPE = ItemType.DEDIC
CLIENT_USERS_SQL = "SELECT id, email FROM user WHERE account = %s ORDER BY id ASC"
EMAIL_CONFIRMED_SQL = "SELECT email_confirmed FROM user WHERE id = %s"
MODULES_SQL = "SELECT id FROM processingmodule WHERE module = %s ORDER BY id"
MGRCTL_TIMEOUT = 120  # seconds; BILLmanager answers in well under one
SERVER_HOLDERS_SQL = (
    "SELECT i.id FROM item i"
    " JOIN itemparam ip ON ip.item = i.id AND ip.intname = %s"
    " JOIN processingmodule pm ON pm.id = i.processingmodule"
    " WHERE ip.value = %s AND i.status != %s AND pm.module = %s ORDER BY i.id"
)
# a live service: an item of the module without a parent (addons are child items), active or
# stopped (billmanager.LIVE_STATUSES, the two %s of `IN`); every query below repeats it
SYNC_SERVICES_SQL = (
    "SELECT i.id, i.status, i.pricelist, i.account,"
    " (SELECT u.email FROM user u WHERE u.account = i.account ORDER BY u.id LIMIT 1) AS email,"
    " (SELECT p.value FROM itemparam p WHERE p.item = i.id AND p.intname = %s) AS server_id,"
    " (SELECT p.value FROM itemparam p WHERE p.item = i.id AND p.intname = %s) AS drift_note,"
    " (SELECT p.value FROM itemparam p WHERE p.item = i.id AND p.intname = %s) AS power_wish"
    " FROM item i"
    " WHERE i.processingmodule = %s AND i.parent IS NULL AND i.status IN (%s, %s)"
    # a service an admin exempted from automation (param dci_manual=on) is not synced
    " AND NOT EXISTS (SELECT 1 FROM itemparam m WHERE m.item = i.id AND m.intname = %s"
    " AND m.value = 'on')"
)
SYNC_ADDON_IPS_SQL = (
    "SELECT addon.parent AS item, ip.name FROM ip"
    " JOIN item addon ON addon.id = ip.item"
    " JOIN pricelist pl ON pl.id = addon.pricelist"
    " JOIN itemtype t ON t.id = pl.itemtype AND t.intname = %s"
    " JOIN item i ON i.id = addon.parent"
    " WHERE i.processingmodule = %s AND i.parent IS NULL AND i.status IN (%s, %s)"
    " AND ip.name != ''"
)
_LIVE: tuple[int, ...] = tuple(int(status) for status in LIVE_STATUSES)
SYNC_ONE_ITEM = " AND i.id = %s"
# the bulk read goes by chunks of services in id order: memory holds one chunk of rows
SYNC_AFTER_ID = " AND i.id > %s"
SYNC_ID_RANGE = " AND i.id > %s AND i.id <= %s"
SYNC_CHUNK = 5000
# vendor functions that only read the database (every other one runs mgrctl)
_VENDOR_READS = frozenset({"iteminfo", "itemparams", "itemaddons", "itemips",
                           "get_module_params", "get_pricelist_params", "get_items_for_sync"})
# the vendor functions that report success without extra fields
_VENDOR_POST = {
    "suspend": "postsuspend",
    "resume": "postresume",
    "close": "postclose",
    "setparam": "postsetparam",
    "reboot": "postreboot",  # the public copy has postreboot and poststart, no poststop
    "start": "poststart",
}


SECRET_ENV_PREFIX = "PMDCI6_SECRET_"  # noqa: S105 -- a variable name prefix, no secret


def mgrctl_command(mgrctl: Path, func: str, params: dict[str, Any],
                   secrets: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """argv and the environment additions for `mgrctl -m billmgr <func> k=v ... out=bjson`
    with every value of `secrets` passed as `-e '<param>=$<ENV_NAME>'`, never in argv."""
    argv = [str(mgrctl), "-m", "billmgr", func,
            *[f"{key}={value}" for key, value in params.items()], "out=bjson"]
    env: dict[str, str] = {}
    for number, (name, value) in enumerate(secrets.items()):
        variable = f"{SECRET_ENV_PREFIX}{number}"
        env[variable] = value
        argv += ["-e", f"{name}=${variable}"]
    return argv, env


class _Vendor:
    """The imported vendor modules `billmgr.misc` and `billmgr.db`."""

    def __init__(self, misc: ModuleType, db: ModuleType) -> None:
        self.misc = misc
        self.db = db


def _loaded_from(module: ModuleType, lib: Path) -> bool:
    origin = getattr(module, "__file__", None)
    return origin is not None and Path(origin).resolve().is_relative_to(lib.resolve())


def _import_vendor(lib: Path) -> _Vendor:
    """Import `billmgr` from this root's library. One process serves one BILLmanager root: a
    `billmgr` already imported from elsewhere is refused, never replaced."""
    lib_text = str(lib)
    if lib_text not in sys.path:
        sys.path.insert(0, lib_text)
    try:
        misc = importlib.import_module("billmgr.misc")
        db = importlib.import_module("billmgr.db")
        if not _loaded_from(misc, lib):
            raise ImportError(f"billmgr found at {misc.__file__}")
    except Exception as exc:
        raise ModuleError(
            ErrorType.billing_failed,
            "vendor_library",
            lib_text,
            detail=f"{type(exc).__name__}: {exc}",
        ) from exc
    return _Vendor(misc, db)


def _reason(exc: BaseException) -> str:
    """A short, secret-free reason: the error type/object BILLmanager answered, or the
    exception's class. mgrctl's own text stays in the log detail."""
    err_type = getattr(exc, "err_type", None)
    if err_type is None:
        return type(exc).__name__
    value = str(getattr(exc, "err_value", "") or "")
    try:
        answer = json.loads(value)
    except ValueError:
        return f"{err_type} {getattr(exc, 'err_object', '')}".strip()
    error = answer.get("error", {}) if isinstance(answer, dict) else {}
    return f"{error.get('type', err_type)} {error.get('object', '')}".strip()


def _failure(function: str, exc: BaseException) -> ModuleError:
    return ModuleError(
        ErrorType.billing_failed,
        function,
        _reason(exc),
        detail=f"{type(exc).__name__}: {exc}"[:500],
    )


class VendorBilling:
    """BillingPort over the vendor library of the BILLmanager at `paths.root`."""

    def __init__(self, paths: MgrPaths) -> None:
        self.paths = paths
        self._vendor: _Vendor | None = None
        self._db_lock = threading.RLock()  # the vendor's one database connection
        self._counts: Counter[str] = Counter()
        self._counts_lock = threading.Lock()

    def _lib(self) -> _Vendor:
        with self._db_lock:
            if self._vendor is None:
                self._vendor = _import_vendor(self.paths.vendor_lib)
            return self._vendor

    def calls_made(self) -> Mapping[str, int]:
        with self._counts_lock:
            return {"read": self._counts["read"], "write": self._counts["write"]}

    def _counted(self, kind: str) -> None:
        with self._counts_lock:
            self._counts[kind] += 1

    def _call(self, function: str, call: Callable[[], Any]) -> Any:
        """Run one vendor call; any failure becomes billing_failed naming the function."""
        try:
            return call()
        except ModuleError:
            raise
        except Exception as exc:
            raise _failure(function, exc) from exc

    def _misc(self, function: str, *args: Any, **kwargs: Any) -> Any:
        misc = self._lib().misc
        if function in _VENDOR_READS:
            self._counted("read")
            with self._db_lock:
                return self._call(function, lambda: getattr(misc, function)(*args, **kwargs))
        self._counted("write")
        return self._call(function, lambda: getattr(misc, function)(*args, **kwargs))

    def _mgrctl(self, func: str, **kwargs: Any) -> Any:
        misc = self._lib().misc
        self._counted("write")
        return self._call(func, lambda: misc.Mgrctl(func, **kwargs))

    def _mgrctl_secret(self, func: str, secrets: dict[str, str], **kwargs: Any) -> None:
        """What misc.Mgrctl does (mgrctl at the root, JSON out), logging nothing of the args;
        the `secrets` go through mgrctl's environment (`-e`), not its argv."""
        argv, secret_env = mgrctl_command(self.paths.mgrctl, func, kwargs, secrets)
        self._counted("write")
        try:
            result = subprocess.run(argv, cwd=self.paths.root, capture_output=True, check=False,
                                    timeout=MGRCTL_TIMEOUT, env={**os.environ, **secret_env})
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ModuleError(ErrorType.billing_failed, func, type(exc).__name__) from None
        reply: Any = None
        try:
            reply = json.loads(result.stdout or b"{}")
        except ValueError:
            reply = None
        if result.returncode != 0 or not isinstance(reply, dict) or "error" in reply:
            raise ModuleError(ErrorType.billing_failed, func, f"mgrctl exit {result.returncode}",
                              detail=str(redact(result.stderr.decode(errors="replace")))[:500])

    def _query(self, what: str, sql: str, *args: Any) -> list[dict[str, Any]]:
        db = self._lib().db
        self._counted("read")
        with self._db_lock:
            rows: list[dict[str, Any]] = self._call(what, lambda: list(db.db_query(sql, *args)))
        return rows

    # reading ------------------------------------------------------------------------------

    def _iteminfo(self, item: int) -> dict[str, Any]:
        misc = self._lib().misc
        self._counted("read")
        try:
            with self._db_lock:
                info: dict[str, Any] = misc.iteminfo(item)
        except IndexError:
            raise ModuleError(ErrorType.service_not_found, "item", str(item)) from None
        except Exception as exc:
            raise _failure("iteminfo", exc) from exc
        return info

    def check_service_exists(self, item: int) -> None:
        self._iteminfo(item)

    def service(self, item: int) -> Service:
        info = self._iteminfo(item)
        if info.get("processingmodule") is None:
            raise ModuleError(ErrorType.billing_failed, "processingmodule", str(item))
        params = {k: _text(v) for k, v in self._misc("itemparams", item).items()}
        for secret in sorted(CRYPTED):  # the crypted service params
            register_secret(params.get(secret, ""))
        addons = {k: _text(v[0]) for k, v in self._misc("itemaddons", item).items()}
        pricelist = int(info["pricelist"])
        tariff = {k: _text(v) for k, v in self._misc("get_pricelist_params", pricelist).items()}
        account = int(info["account_id"])
        users = self._query("user", CLIENT_USERS_SQL, account)
        if not users:
            raise ModuleError(ErrorType.billing_failed, "user", f"account {account}")
        client = users[0]
        last = info.get("lastpricelist")
        previous = int(last) if last not in (None, "") and int(last) != pricelist else None
        return Service(
            id=item,
            module=int(info["processingmodule"]),
            status=int(info["status"]),
            pricelist=pricelist,
            account_id=account,
            client_email=_text(client["email"]),
            client_email_verified=self._email_confirmed(int(client["id"])),
            userid=int(client["id"]),
            params=params,
            addons=addons,
            tariff_raw=tariff,
            previous_pricelist=previous,
        )

    def _email_confirmed(self, user_id: int) -> bool:
        db = self._lib().db
        self._counted("read")
        try:
            with self._db_lock:
                rows = db.db_query(EMAIL_CONFIRMED_SQL, user_id)
        except Exception as exc:
            log.warning(
                "billing.email_confirmed_unreadable",
                user=user_id,
                error=f"{type(exc).__name__}: {exc}"[:300],
            )
            return False
        return bool(rows) and _text(rows[0].get("email_confirmed")).lower() in ("on", "1", "yes")

    def module_settings(self, module: int) -> ModuleSettings:
        raw = {k: _text(v) for k, v in self._misc("get_module_params", module).items()}
        register_secret(raw.get("password", ""))
        return module_settings(raw)

    def service_ips(self, item: int) -> list[BillingIp]:
        rows = self._misc("itemips", item)
        ips = [BillingIp(id=int(row["id"]), address=_text(row["name"])) for row in rows]
        return sorted(ips, key=lambda ip: ip.id)

    def services_holding_server(self, server_id: int) -> list[int]:
        rows = self._query("itemparam", SERVER_HOLDERS_SQL, Param.SERVER_ID.value, str(server_id),
                           int(ServiceStatus.deleted), MODULE_NAME)
        return [int(row["id"]) for row in rows]

    def services_for_sync(self, module: int, item: int | None = None) -> list[SyncEntry]:
        if item is None:
            return list(self.iter_services_for_sync(module))
        return self._sync_entries(module, SYNC_ONE_ITEM, item)

    def iter_services_for_sync(self, module: int, *,
                               chunk: int = SYNC_CHUNK) -> Iterator[SyncEntry]:
        after = 0
        while True:
            entries = self._sync_entries(module, SYNC_AFTER_ID, after, limit=chunk)
            yield from entries
            if len(entries) < chunk:
                return
            after = entries[-1].item

    def _sync_entries(self, module: int, only: str, arg: int, *,
                      limit: int | None = None) -> list[SyncEntry]:
        """The live services `only` selects (at most `limit` of them, in id order), with
        their addresses; a limited read takes the addresses of exactly the ids it got."""
        tail = " ORDER BY i.id" + (f" LIMIT {int(limit)}" if limit is not None else "")
        rows = self._query("item", SYNC_SERVICES_SQL + only + tail,
                           Param.SERVER_ID.value, Param.DRIFT.value, Param.POWER_WISH.value,
                           module, *_LIVE, Param.MANUAL.value, arg)
        if not rows:
            return []
        ip_only = only
        ip_args: tuple[int, ...] = (arg,)
        if limit is not None:
            ip_only, ip_args = SYNC_ID_RANGE, (arg, int(rows[-1]["id"]))
        addresses: dict[int, set[str]] = {}
        for row in self._query("ip", SYNC_ADDON_IPS_SQL + ip_only, ItemType.IP.value, module,
                               *_LIVE, *ip_args):
            addresses.setdefault(int(row["item"]), set()).add(_text(row["name"]))
        return [
            SyncEntry(
                item=int(row["id"]),
                status=int(row["status"]),
                pricelist=int(row["pricelist"]),
                account_id=int(row["account"]),
                client_email=_text(row["email"]),
                addresses=frozenset(addresses.get(int(row["id"]), ())),
                bookkeeping=ServiceBookkeeping.from_params({
                    Param.SERVER_ID.value: row["server_id"], Param.DRIFT.value: row["drift_note"],
                    Param.POWER_WISH.value: row["power_wish"],
                }),
            )
            for row in rows
        ]

    def modules(self) -> list[int]:
        return [int(row["id"]) for row in self._query("processingmodule", MODULES_SQL, MODULE_NAME)]

    # writing ------------------------------------------------------------------------------

    def save_param(self, item: int, name: str, value: str, *, crypted: bool = False) -> None:
        if crypted:
            register_secret(value)
            # neither misc.save_param (logs the value) nor misc.Mgrctl (the public copy logs the
            # whole command line at debug level): a secret goes straight to mgrctl
            self._mgrctl_secret(
                "service.saveparam", {name: value}, sok="ok", elid=item, crypted="on"
            )
        else:
            self._misc("save_param", item, name, value)
        log.info("billing.param_saved", item=item, param=name, crypted=crypted)

    def save_bookkeeping(self, item: int, **changes: Unpack[BookkeepingChanges]) -> None:
        for param, value in encode(changes).items():
            self.save_param(item, param, value, crypted=param in CRYPTED)

    def add_ip(self, item: int, address: str, *, gateway: str = "", netmask: str = "") -> int:
        rows = self.service_ips(item)
        for row in rows:
            if row.address == address:
                return row.id  # recorded by an earlier run that died before reporting
        slot = next((row for row in rows if not row.address), None)
        if slot is not None:
            ip_id = self._misc(
                "save_ip", slot.id, address, netmask=netmask, gateway=gateway, domain=""
            )
        else:
            reply = self._mgrctl(
                "service.ip.add", sok="ok", plid=item, ip=address, mask=netmask,
                gateway=gateway, domain="",
            )
            ip_id = reply["model"]["ip.id"]
        self._misc("commit_ip", ip_id)
        log.info("billing.ip_added", item=item, ip=address, ip_id=int(ip_id), slot=slot is not None)
        return int(ip_id)

    def remove_ip(self, ip_id: int) -> None:
        self._misc("del_ip", ip_id)
        log.info("billing.ip_removed", ip_id=ip_id)

    def post(self, item: int, event: PostEvent, **fields: str) -> None:
        vendor_function = _VENDOR_POST.get(event)
        if vendor_function is not None and not fields:
            self._misc(vendor_function, item)
        else:
            self._mgrctl(f"service.post{event}", elid=item, sok="ok", **fields)
        log.info("billing.posted", item=item, post=event)

    def set_status_message(self, item: int, text: str) -> None:
        self._misc("set_service_status", item, text)

    def record_operation_error(self, runningoperation: int, error: ModuleError) -> None:
        from dci6_processing.protocol import error_xml

        errorxml = error_xml(error).decode()
        self._misc("save_runningoperation_error", runningoperation, errorxml)

    def create_manual_task(
        self, item: int, runningoperation: int | None, command: str, comment: str
    ) -> None:
        if runningoperation is not None:
            self._misc("create_manual_task", item, runningoperation, command, comment=comment)
        else:
            reply = self._mgrctl("task.gettype", operation=command, item=item)
            task_type = _text(reply.get("model", {}).get("task_type"))
            if task_type:
                self._mgrctl("task.edit", item=item, type=task_type, sok="ok", comment=comment)
        log.info(
            "billing.manual_task", item=item, runningoperation=runningoperation, command=command
        )

    def rollback_tariff_change(self, item: int, userid: int | None) -> None:
        extra = {} if userid is None else {"userid": userid}
        self._mgrctl("service.changepricelist.rollback", elid=item, sok="ok", **extra)
        log.info("billing.tariff_change_rolled_back", item=item)

    def sync_catalogue(self, module: int, param: str, values: list[tuple[str, str]]) -> None:
        published = {value: {"name": label} for value, label in values}
        self._misc("sync_itemtype_param", module, ITEMTYPE, param, published)


def _text(value: Any) -> str:
    return "" if value is None else str(value)
