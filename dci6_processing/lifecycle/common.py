"""What every lifecycle command shares: loading the service and its ports, locks, named steps.

Steps are named (`lifecycle.steps`, one ordered list per operation) so that logs read as a
timeline and crash tests can stop the process after any of them
(`PMDCI6_FAILPOINT=crash-after:<step>`, a failpoint in the FreeBSD/TiKV sense: the process
exits at once, as a kill -9 would leave it).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Unpack

import structlog

from dci6_processing.billing.port import BillingPort
from dci6_processing.bookkeeping import BookkeepingChanges, Param, encode
from dci6_processing.dci.client import DciClient
from dci6_processing.dci.models import Server, User
from dci6_processing.errors import ErrorType, LockBusy, ModuleError
from dci6_processing.invocation import Invocation
from dci6_processing.lifecycle.steps import OperationSteps, Step, UndeclaredStep
from dci6_processing.paths import MgrPaths
from dci6_processing.settings import ModuleSettings, OrderAddons, Service, TariffOptions

log = structlog.get_logger(__name__)

FAILPOINT_ENV = "PMDCI6_FAILPOINT"
FAILPOINT_EXIT_CODE = 137
_running: ContextVar[OperationSteps | None] = ContextVar("pmdci6_operation", default=None)


@dataclass
class ServiceContext:
    """One service with everything a lifecycle command needs to act on it."""

    inv: Invocation
    billing: BillingPort
    service: Service
    settings: ModuleSettings
    dci: DciClient

    @property
    def item(self) -> int:
        return self.service.id

    @property
    def tariff(self) -> TariffOptions:
        return self.service.tariff

    @property
    def order(self) -> OrderAddons:
        return self.service.order

    @property
    def paths(self) -> MgrPaths:
        return self.inv.paths

    def refresh(self) -> None:
        """Re-read the service after saving params, so later steps see them."""
        self.service = self.billing.service(self.item)


def save_bookkeeping(ctx: ServiceContext, **changes: Unpack[BookkeepingChanges]) -> None:
    """Save fields of the service's bookkeeping record and see them on `ctx.service` at once
    (its params, and its `bookkeeping`, read anew), without re-reading the service."""
    ctx.billing.save_bookkeeping(ctx.item, **changes)
    ctx.service.params.update({param.value: value for param, value in encode(changes).items()})
    ctx.service.__dict__.pop("bookkeeping", None)  # the cached record, parsed again on use


def load_service(inv: Invocation) -> ServiceContext:
    item = inv.require_item()
    billing = inv.billing()
    service = billing.service(item)
    settings = billing.module_settings(service.module)
    structlog.contextvars.bind_contextvars(item=item, module=service.module)
    return ServiceContext(inv=inv, billing=billing, service=service, settings=settings,
                          dci=inv.dci(settings))


def step(done: Step) -> None:
    """Mark a finished step of the running operation: one log line, and the crash failpoint.

    A step the operation's list does not hold is refused, so every step is in a list (and so
    crash-tested)."""
    operation = _running.get()
    if operation is None or done not in operation.steps:
        raise UndeclaredStep(f"step {done.name!r} is not in the step list of "
                             f"{operation.command if operation else 'any running operation'}")
    log.info("step.done", step=done.name)
    if os.environ.get(FAILPOINT_ENV) == f"crash-after:{done.name}":
        log.warning("failpoint.crash", step=done.name)
        os._exit(FAILPOINT_EXIT_CODE)


@contextmanager
def running(operation: OperationSteps) -> Iterator[None]:
    """Run code as `operation`: the steps it passes must be in its list."""
    token = _running.set(operation)
    try:
        yield
    finally:
        _running.reset(token)


@contextmanager
def file_lock(path: Path, *, wait_seconds: float, what: str) -> Iterator[int]:
    """An exclusive flock (the locked file's descriptor); gives up after wait_seconds with
    msg_error_server_busy."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockBusy(what) from None
                time.sleep(0.05)
        yield fd
    finally:
        os.close(fd)  # closing releases the lock


def item_lock_path(paths: MgrPaths, item: int) -> Path:
    return paths.ensure_state_dir() / "locks" / f"item-{item}.lock"


@dataclass(frozen=True)
class HeldServiceLock:
    """A service lock this process holds; the file keeps when its last holder let it go."""

    fd: int

    def let_go_since(self, since: float) -> bool:
        """Whether a process let the lock go at `since` (time.time()) or later. A file no
        one has let go yet is empty; one that cannot be read counts as yes (a read more)."""
        try:
            stamp = os.pread(self.fd, 64, 0).decode("ascii").strip()
        except (OSError, UnicodeDecodeError):
            return True
        if not stamp:
            return False
        try:
            return float(stamp) >= since
        except ValueError:
            return True


SERVICE_LOCK_WAIT_SECONDS = 30.0  # how long a command waits for another one on its service


@contextmanager
def service_lock(paths: MgrPaths, item: int, *,
                 wait_seconds: float | None = None) -> Iterator[HeldServiceLock]:
    """One process at a time works on a service (Ironic's node lock). Whoever lets it go
    writes the time into the lock file, so that the cron sync can tell that someone worked
    on the service since it looked at its server (`HeldServiceLock.let_go_since`)."""
    if wait_seconds is None:
        wait_seconds = SERVICE_LOCK_WAIT_SECONDS
    with file_lock(item_lock_path(paths, item), wait_seconds=wait_seconds,
                   what=f"service {item}") as fd:
        try:
            yield HeldServiceLock(fd)
        finally:
            stamp = f"{time.time():.6f}\n".encode("ascii")
            with suppress(OSError):
                os.pwrite(fd, stamp, 0)
                os.ftruncate(fd, len(stamp))


def existing_service_lock(inv: Invocation) -> AbstractContextManager[HeldServiceLock]:
    """The lock of the invocation's service, once BILLmanager confirms the item exists: no
    lock file (no state at all) for an item it does not have (msg_error_service_not_found)."""
    item = inv.require_item()
    inv.billing().check_service_exists(item)
    return service_lock(inv.paths, item)


def run_on_service(inv: Invocation, action: Callable[[ServiceContext], None], *,
                   steps: OperationSteps) -> None:
    """Load the service under its lock and act on it through `steps`; an exempted service
    goes to staff.

    BILLmanager's own switch (`billmgr.DoNothing`) stops everything and is honoured by the CLI;
    this one stops a single service: the operation becomes a task for the module's department.
    """
    item = inv.require_item()
    with existing_service_lock(inv):
        ctx = load_service(inv)
        if ctx.service.bookkeeping.manual:
            log.warning("service.exempt", command=inv.command)
            ctx.billing.create_manual_task(
                item, inv.runningoperation, inv.command,
                f"Service {item} is marked for manual handling ({Param.MANUAL}=on): "
                f"pmdci6 did not {inv.command} it. Do it in DCImanager, then finish the operation.")
            return
        with running(steps):
            action(ctx)


def claim_lock(paths: MgrPaths) -> AbstractContextManager[int]:
    """Serialises choosing and releasing servers on this BILLmanager host."""
    return file_lock(paths.ensure_state_dir() / "locks" / "claim.lock",
                     wait_seconds=300, what="server claim")


def owned_by(server: Server, user: User | None, email: str) -> bool:
    """Whether the panel says this server belongs to the given client."""
    if user is not None and server.owner is not None:
        return server.owner == user.id
    return bool(server.owner_email) and (server.owner_email or "").lower() == email.lower()


def client_server(ctx: ServiceContext) -> Server:
    """The service's server, verified to still belong to the service's client (Tenantos).

    Touch nothing when it does not: the drift is reported, not "fixed".
    """
    server_id = ctx.service.bookkeeping.recorded_server()
    if server_id is None:
        raise ModuleError(ErrorType.server_not_found, object=f"service {ctx.item}",
                          detail=f"no {Param.SERVER_ID} saved on the service")
    server = ctx.dci.server(server_id)
    if not owned_by(server, None, ctx.service.client_email):
        raise ModuleError(ErrorType.owner_mismatch, object=str(server_id),
                          value=server.owner_email or "",
                          detail=f"expected owner {ctx.service.client_email}")
    return server
