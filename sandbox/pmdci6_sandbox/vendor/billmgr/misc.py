"""misc as in the public vendor copy (github.com/ea0hw33/billmgr billmgr/misc.py) and the
newer functions ISPsystem's own modules call (get_pricelist_params,
sync_itemtype_param with an itemtype argument), over the sandbox store.

Reads go straight to the store; every write goes through Mgrctl, as in the real library.
Deviations, on purpose: save_param never logs a crypted value (the copy logs it at info);
get_module_params is not lru-cached (tests reuse module ids across sandbox roots).
"""

import json
import os
import subprocess
from collections import namedtuple

import billmgr.db
import billmgr.logger
from billmgr import BINARY_NAME, MGR_ROOT
from billmgr.exception import XmlException

logger = billmgr.logger.get_logger("billmgr_misc")

# the public copy spells the second field "measuere"; callers read the value by index
Addon = namedtuple("Addon", "value measure")


def Mgrctl(func: str, **kwargs):
    """Run sbin/mgrctl -m billmgr <func> k=v ... out=bjson at the root; parsed JSON back."""
    kwargs["out"] = "bjson"
    command = ["sbin/mgrctl", "-m", "billmgr", func, *[f"{k}={v}" for k, v in kwargs.items()]]
    logger.debug("Run mgrctl %s", func)
    result = subprocess.run(
        command,
        cwd=MGR_ROOT,
        env=dict(os.environ, SSH_CONNECTION=BINARY_NAME),
        capture_output=True,
        check=False,
    )
    stdout = result.stdout.decode().strip(" \n\t")
    stderr = result.stderr.decode().strip(" \n\t")
    if result.returncode != 0:
        raise XmlException("process", "not_zero_code", stderr)
    response = json.loads(stdout)
    if "error" in response:
        raise XmlException("process", "error", stdout)
    return response


def get_item_processingmodule(item):
    return billmgr.db.db_query("SELECT processingmodule FROM item WHERE id = %s", item)[0][
        "processingmodule"
    ]


def iteminfo(iid: int):
    return billmgr.db.db_query(
        "SELECT it.intname, pm.module, i.id, i.parent, i.processingmodule, i.lastpricelist, "
        "p.intname AS pricelist_intname, i.pricelist, i.status, i.expiredate, i.opendate, "
        "i.account AS account_id, a.name AS account_name "
        "FROM item i "
        "LEFT JOIN account a ON a.id = i.account "
        "JOIN pricelist p ON p.id = i.pricelist "
        "JOIN itemtype it ON it.id = p.itemtype "
        "LEFT JOIN processingmodule pm ON pm.id = i.processingmodule "
        "WHERE i.id = %s",
        iid,
    )[0]


def itemparams(iid: int, alias: dict | None = None):
    def replace_name(param: str):
        return (alias or {}).get(param, param)

    plain = billmgr.db.db_query("SELECT intname, value FROM itemparam WHERE item = %s", iid)
    crypted = billmgr.db.db_query(
        "SELECT intname, value FROM itemcryptedparam WHERE item = %s", iid
    )
    return {
        **{replace_name(row["intname"]): row["value"] for row in plain},
        **{replace_name(row["intname"]): row["value"] for row in crypted},
    }


def itemips(iid: int, where_statement: list | None = None, private_ip: bool = False):
    """Rows id, name of the service's `ip` (or `privateip`) addon item, joined as the real
    library does; where_statement: [(condition with %s, [args])] appended with AND."""
    conditions = ["item.id = %s", "itemtype.intname = %s"]
    args = [iid, "privateip" if private_ip else "ip"]
    for condition, condition_args in where_statement or []:
        conditions.append(condition)
        args += condition_args
    return billmgr.db.db_query(
        # conditions come from module code, values stay parameters (as in the real library)
        "SELECT ip.id, ip.name FROM ip"  # noqa: S608
        " JOIN item addon ON ip.item = addon.id"
        " JOIN item ON addon.parent = item.id"
        " JOIN pricelist ON addon.pricelist = pricelist.id"
        " JOIN itemtype ON pricelist.itemtype = itemtype.id"
        " WHERE " + " AND ".join(conditions) + " ORDER BY ip.id",
        *args,
    )


def itemaddons(iid: int):
    rows = billmgr.db.db_query(
        "SELECT intname, value FROM item WHERE parent = %s AND intname IS NOT NULL", iid
    )
    return {row["intname"]: Addon(row["value"], "") for row in rows}


def get_module_params(module: int):
    plain = billmgr.db.db_query(
        "SELECT intname, value FROM processingparam WHERE processingmodule = %s", module
    )
    crypted = billmgr.db.db_query(
        "SELECT intname, value FROM processingcryptedparam WHERE processingmodule = %s", module
    )
    return {
        **{row["intname"]: row["value"] for row in plain},
        **{row["intname"]: row["value"] for row in crypted},
    }


def get_pricelist_params(pricelist: int):
    rows = billmgr.db.db_query(
        "SELECT intname, value FROM pricelistparam WHERE pricelist = %s", pricelist
    )
    return {row["intname"]: row["value"] for row in rows}


def sync_itemtype_param(module: int, itemtype: str, param_name: str, param_values: dict):
    """Publish {value: {"name": label}} (or {value: label}) as the param's select values."""
    current = billmgr.db.db_query(
        "SELECT id, intname FROM itemtypeparamvalue "
        "WHERE processingmodule = %s AND itemtype = %s AND param = %s AND active = 'on'",
        module,
        itemtype,
        param_name,
    )
    current_ids = {row["intname"]: row["id"] for row in current}
    for gone in set(current_ids) - set(param_values):
        Mgrctl("itemtype.param.value.processing.suspend", elid=module, plid=current_ids[gone])
    for value in set(param_values) - set(current_ids):
        label = param_values[value]
        names = label if isinstance(label, dict) else {"name": label}
        Mgrctl(
            "itemtype.param.value.sync",
            itemtype=itemtype,
            module=module,
            param=param_name,
            value=value,
            disablepricelists="on",
            **names,
        )


def save_param(iid: int, param: str, value: str, crypted: bool = False):
    logger.info("item#%d: Save %sparam '%s'", iid, "crypted " if crypted else "", param)
    Mgrctl("service.saveparam", sok="ok", elid=iid, **{param: value},
           crypted="on" if crypted else "off")


def drop_param(iid: int, param: str):
    logger.info("item#%d: Drop param '%s'", iid, param)
    Mgrctl("service.dropparam", sok="ok", elid=iid, name=param)


def set_service_status(iid: int, status: str):
    logger.info("item#%d: Set status '%s'", iid, status)
    Mgrctl("service.setstatus", elid=iid, service_status=status, sok="ok")


def set_service_expiredate(iid: int, date: str):
    logger.info("item#%d: Set expiredate '%s'", iid, date)
    Mgrctl("service.setexpiredate", elid=iid, expiredate=date, sok="ok")


def save_ip(ip_id: int, ip: str, netmask: str = "", gateway: str = "", domain: str = ""):
    return Mgrctl(
        "service.ip.add", sok="ok", elid=ip_id, ip=ip, mask=netmask, gateway=gateway,
        domain=domain,
    )["model"]["ip.id"]


def commit_ip(ip_id):
    Mgrctl("service.ip.add.commit", sok="ok", elid=ip_id)


def del_ip(ip_id):
    Mgrctl("service.ip.del", sok="ok", elid=ip_id)


def save_runningoperation_error(runningoperation: int, error: str):
    Mgrctl("runningoperation.edit", sok="ok", elid=runningoperation, errorxml=error)


def postopen(iid: int, **kwargs):
    # as in the public copy: vds.open, which BILLmanager refuses for other item types
    logger.info("Postopen %d", iid)
    Mgrctl("vds.open", elid=iid, sok="ok", **kwargs)


def postprolong(iid: int, **kwargs):
    logger.info("Postprolong %d", iid)
    Mgrctl("service.postprolong", elid=iid, sok="ok", **kwargs)


def postclose(iid: int):
    logger.info("Postclose %d", iid)
    Mgrctl("service.postclose", elid=iid, sok="ok")


def postsetparam(iid: int):
    logger.info("Postsetparam %d", iid)
    Mgrctl("service.postsetparam", elid=iid, sok="ok")


def postresume(iid: int):
    logger.info("Postresume %d", iid)
    Mgrctl("service.postresume", elid=iid, sok="ok")


def postsuspend(iid: int):
    logger.info("Postsuspend %d", iid)
    Mgrctl("service.postsuspend", elid=iid, sok="ok")


def poststart(iid: int):
    logger.info("Poststart %d", iid)
    Mgrctl("service.poststart", elid=iid, sok="ok")


def postreboot(iid: int):
    logger.info("Postreboot %d", iid)
    Mgrctl("service.postreboot", elid=iid, sok="ok")


def set_manual_rerun(runningoperation: int, **kwargs):
    Mgrctl("runningoperation.setmanual", elid=runningoperation, sok="ok", **kwargs)


def create_manual_task(iid: int, runningoperation: int, command: str, **kwargs):
    set_manual_rerun(runningoperation)
    task_type = Mgrctl("task.gettype", operation=command, item=iid)["model"]["task_type"]
    if task_type:
        Mgrctl("task.edit", item=iid, runningoperation=runningoperation, type=task_type,
               sok="ok", **kwargs)
