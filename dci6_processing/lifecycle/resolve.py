"""Turn tariff and order references (a DCImanager id, or a name) into panel objects."""

from __future__ import annotations

from dci6_processing.dci.client import DciClient
from dci6_processing.dci.models import IpPool, OsTemplate
from dci6_processing.errors import ErrorType, ModuleError


def _matches(ref: str, obj_id: int, name: str) -> bool:
    ref = ref.strip()
    return (ref.isdigit() and int(ref) == obj_id) or ref.casefold() == name.casefold()


def resolve_os_template(dci: DciClient, ref: str, *, param: str = "os_template") -> OsTemplate:
    for template in dci.os_templates():
        if _matches(ref, template.id, template.name):
            return template
    raise ModuleError(ErrorType.os_template_not_found, object=param, value=ref)


def resolve_pool(dci: DciClient, ref: str | None, *, family: str, param: str) -> IpPool:
    if not ref:
        raise ModuleError(ErrorType.invalid_param, object=param, value="",
                          detail=f"an {family} pool is needed and the tariff names none")
    for pool in dci.ip_pools():
        if _matches(ref, pool.id, pool.name) and pool.family == family:
            return pool
    raise ModuleError(ErrorType.ip_pool_not_found, object=param, value=ref)
