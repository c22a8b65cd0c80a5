"""Reconcile decisions and the cron sync's bookkeeping, against fakes of both ports.

The fakes keep what a sync must never exceed visible: every panel request is counted per
route, every billing write is recorded.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Unpack, cast

import pytest

from dci6_processing.billing.port import BillingPort, SyncEntry
from dci6_processing.bookkeeping import (
    POWER_WISH_OFF,
    BookkeepingChanges,
    Param,
    ServiceBookkeeping,
    encode,
)
from dci6_processing.dci.client import DciClient
from dci6_processing.dci.errors import DciBusy, DciNotFound, DciUnreachable, PowerActionRejected
from dci6_processing.dci.models import Server
from dci6_processing.errors import ErrorType, ModuleError
from dci6_processing.invocation import Invocation
from dci6_processing.lifecycle.common import (
    file_lock,
    item_lock_path,
    service_lock,
)
from dci6_processing.lifecycle.reconcile import (
    DRIFT_PREFIX,
    MAX_STATUS_MESSAGE,
    Assessment,
    Correction,
    SyncFailed,
    assess,
    needs_attention,
    sync_item,
    sync_modules,
)
from dci6_processing.paths import MgrPaths
from dci6_processing.settings import ModuleSettings, Service, ServiceStatus, module_settings

ACTIVE, STOPPED = ServiceStatus.active, ServiceStatus.stopped
CLIENT = "client@example.com"
MODULE = 1


def server(server_id: int = 10, *, power: str = "on", ports: str = "up",
           owner_email: str | None = CLIENT, addresses: tuple[str, ...] = ("203.0.113.10",),
           running: bool = False, ipmi: bool = True, data_ports: int = 1,
           extra_ips: list[dict[str, Any]] | None = None) -> Server:
    connections: list[dict[str, Any]] = [
        {"id": server_id * 10 + n, "admin_status": ports, "is_ipmi_connection": False}
        for n in range(data_ports)
    ]
    if ipmi:
        # the IPMI link stays up whatever the service's status: never a reason to act
        connections.append({"id": server_id * 10 + 9, "admin_status": "up",
                            "is_ipmi_connection": True})
    ips: list[dict[str, Any]] = [
        {"id": server_id * 100 + n, "name": address,
         "family": "ipv6" if ":" in address else "ipv4", "status": "assigned"}
        for n, address in enumerate(addresses)
    ] + (extra_ips or [])
    raw: dict[str, Any] = {
        "id": server_id, "name": f"srv{server_id}", "owner": 5 if owner_email else None,
        "owner_email": owner_email, "power_status": power, "switch_connection": connections,
        "ip": ips,
        "operation": {"id": 77, "status": "running" if running else "ok"},
    }
    return Server.model_validate(raw)


def entry(item: int = 1, *, status: int = ACTIVE, server_id: str = "10",
          addresses: tuple[str, ...] = ("203.0.113.10",), note: str = "",
          email: str = CLIENT, client_stopped: bool = False) -> SyncEntry:
    return SyncEntry(item=item, status=status, pricelist=3, account_id=7, client_email=email,
                     addresses=frozenset(addresses),
                     bookkeeping=ServiceBookkeeping.from_params(
                         {Param.SERVER_ID.value: server_id, Param.DRIFT.value: note,
                          Param.POWER_WISH.value: POWER_WISH_OFF if client_stopped else ""}))


# --- decisions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "power", "ports", "expected"),
    [
        (ACTIVE, "off", "up", (Correction.POWER_ON,)),
        (ACTIVE, "on", "down", (Correction.PORTS_UP,)),
        (ACTIVE, "off", "down", (Correction.PORTS_UP, Correction.POWER_ON)),
        (ACTIVE, "on", "up", ()),
        (ACTIVE, "unknown", "up", ()),  # the guide powers on a server that is off, no guess
        (STOPPED, "on", "down", (Correction.POWER_OFF,)),
        (STOPPED, "off", "up", (Correction.PORTS_DOWN,)),
        (STOPPED, "on", "up", (Correction.POWER_OFF, Correction.PORTS_DOWN)),
        (STOPPED, "off", "down", ()),
        (STOPPED, "unknown", "down", ()),
    ],
)
def test_the_guides_rule(status: int, power: str, ports: str,
                         expected: tuple[Correction, ...]) -> None:
    decided = assess(entry(status=status), server(power=power, ports=ports))
    assert decided == Assessment(corrections=expected)


def test_a_server_its_client_stopped_stays_off() -> None:
    stopped_by_client = entry(status=ACTIVE, client_stopped=True)
    assert assess(stopped_by_client, server(power="off")) == Assessment(client_stopped=True)
    # the ports are still the service's: an Active service's ports come up
    assert assess(stopped_by_client, server(power="off", ports="down")) == Assessment(
        corrections=(Correction.PORTS_UP,), client_stopped=True)
    # on again (the client started it elsewhere): nothing to leave off, nothing to do
    assert assess(stopped_by_client, server(power="on")) == Assessment()
    # a Stopped service is powered off whatever its client wished
    assert assess(entry(status=STOPPED, client_stopped=True), server(power="on", ports="down")
                  ).corrections == (Correction.POWER_OFF,)


def test_a_server_without_data_ports_only_gets_power_decisions() -> None:
    bare = server(power="off", data_ports=0)
    assert assess(entry(status=ACTIVE), bare).corrections == (Correction.POWER_ON,)
    assert assess(entry(status=STOPPED), server(power="off", data_ports=0)).corrections == ()


def test_one_port_out_of_two_is_enough_to_switch() -> None:
    two = server(ports="up", data_ports=2)
    two.switch_connection[1].admin_status = "down"
    assert assess(entry(status=ACTIVE), two).corrections == (Correction.PORTS_UP,)
    assert assess(entry(status=STOPPED), two).corrections == (Correction.POWER_OFF,
                                                              Correction.PORTS_DOWN)


@pytest.mark.parametrize("status", [ServiceStatus.ordered, ServiceStatus.deleted,
                                    ServiceStatus.processing])
def test_services_that_are_not_live_are_left_alone(status: int) -> None:
    assert assess(entry(status=status), server(power="off")) == Assessment()
    assert assess(entry(status=status), None) == Assessment()


def test_a_running_operation_postpones_power_and_ports() -> None:
    decided = assess(entry(status=STOPPED), server(power="on", running=True))
    assert decided.corrections == ()
    assert "operation 77" in decided.waiting
    assert decided.drift == ()


def test_a_server_in_maintenance_is_left_to_the_engineer() -> None:
    in_maintenance = server(power="off", ports="down")
    in_maintenance.maintenance_mode = True
    decided = assess(entry(status=ACTIVE), in_maintenance)
    assert decided.corrections == ()
    assert "maintenance" in decided.waiting


def test_owner_drift_touches_nothing() -> None:
    decided = assess(entry(status=ACTIVE), server(power="off", owner_email="other@example.net"))
    assert decided.corrections == ()
    assert len(decided.drift) == 1
    assert "other@example.net" in decided.drift[0] and CLIENT in decided.drift[0]


def test_an_unowned_server_is_drift_too() -> None:
    decided = assess(entry(), server(owner_email=None))
    assert "no one" in decided.drift[0]


def test_owner_e_mail_compares_case_insensitively() -> None:
    assert assess(entry(email="Client@Example.COM"), server()).drift == ()


def test_a_gone_server_is_drift() -> None:
    decided = assess(entry(server_id="10"), None)
    assert decided.drift == ("server 10 is gone from DCImanager",)
    assert decided.corrections == ()


@pytest.mark.parametrize(("raw", "words"), [("", "no DCImanager server is recorded"),
                                            ("abc", "is not a DCImanager server id")])
def test_a_service_without_a_usable_server_id_is_drift(raw: str, words: str) -> None:
    decided = assess(entry(server_id=raw), None)
    assert words in decided.drift[0]


def test_ip_drift_names_both_sides() -> None:
    decided = assess(entry(addresses=("203.0.113.10",)),
                     server(power="off", addresses=("203.0.113.10", "203.0.113.99")))
    assert decided.corrections == ()
    assert "203.0.113.99" in decided.drift[0]
    assert "BILLmanager has 203.0.113.10" in decided.drift[0]


def test_ip_drift_counts_missing_addresses_too() -> None:
    decided = assess(entry(addresses=("203.0.113.10", "203.0.113.11")), server())
    assert "DCImanager has 203.0.113.10, BILLmanager has 203.0.113.10, 203.0.113.11" in \
        decided.drift[0]


def test_temporary_addresses_and_ipv6_case_are_not_drift() -> None:
    temporary = [{"id": 555, "name": "198.51.100.4", "family": "ipv4", "status": "temporary"}]
    decided = assess(entry(addresses=("203.0.113.10", "2001:DB8::/64")),
                     server(addresses=("203.0.113.10", "2001:db8::/64"), extra_ips=temporary))
    assert decided == Assessment()


def test_owner_and_ip_drift_are_both_reported() -> None:
    decided = assess(entry(addresses=()), server(owner_email="x@example.org"))
    assert len(decided.drift) == 2
    assert decided.note.startswith(DRIFT_PREFIX)
    assert "; " in decided.note


def test_the_note_names_a_few_addresses_and_is_capped() -> None:
    many = tuple(f"203.0.113.{n}" for n in range(200))
    decided = assess(entry(addresses=many), server())
    assert "and 194 more" in decided.note
    assert len(decided.note) < MAX_STATUS_MESSAGE
    long_owner = "x" * 600 + "@example.org"
    capped = assess(entry(addresses=many), server(owner_email=long_owner)).note
    assert len(capped) == MAX_STATUS_MESSAGE and capped.endswith("…")


def test_needs_attention() -> None:
    in_step = Assessment()
    drift = Assessment(drift=("server 10 is gone from DCImanager",))
    assert not needs_attention(entry(), in_step)
    assert needs_attention(entry(note=drift.note), in_step)  # a stale note to clear
    assert needs_attention(entry(), drift)
    assert not needs_attention(entry(note=drift.note), drift)  # reported already
    assert needs_attention(entry(), Assessment(corrections=(Correction.POWER_ON,)))


# --- fakes ----------------------------------------------------------------------------------


class FakePanel:
    """The DCImanager client calls a sync makes, over a dict of servers."""

    switches_each_port = False

    def __init__(self, servers: list[Server], *, page_size: int = 2) -> None:
        self.servers = {s.id: s for s in servers}
        self.page_size = page_size
        self.request_counts: collections.Counter[str] = collections.Counter()
        self.calls: list[tuple[str, int, object]] = []
        self.fail_on: dict[tuple[str, int], Exception] = {}
        self.fail_listing_after_pages: int | None = None
        self.hidden_from_listing: set[int] = set()
        self.ports_given: dict[int, tuple[object, ...]] = {}
        self.after_listing: Callable[[], None] | None = None  # another process acts meanwhile

    def iter_servers(self, where: object = None, **_: object) -> Iterator[Server]:
        listed = [s for i, s in sorted(self.servers.items()) if i not in self.hidden_from_listing]
        for page, start in enumerate(range(0, max(len(listed), 1), self.page_size)):
            if self.fail_listing_after_pages is not None and page >= self.fail_listing_after_pages:
                self.request_counts["server.list"] += 10
                raise DciBusy("Service temporarily unavailable", http_status=503)
            self.request_counts["server.list"] += 1
            yield from listed[start:start + self.page_size]
        if self.after_listing is not None:
            self.after_listing()

    def server(self, server_id: int) -> Server:
        self.request_counts["server.get"] += 1
        if server_id not in self.servers:
            raise DciNotFound("Server not found", http_status=404)
        return self.servers[server_id]

    def _act(self, name: str, server_id: int, arg: object) -> None:
        self.request_counts[name] += 1
        failure = self.fail_on.get((name, server_id))
        if failure is not None:
            raise failure
        self.calls.append((name, server_id, arg))

    def set_switch_ports(
        self, server_id: int, enabled: bool, ports: Sequence[object] = ()
    ) -> None:
        self.ports_given[server_id] = tuple(ports)
        self._act("server.switch_port", server_id, enabled)

    def power(self, server_id: int, action: str) -> None:
        self._act("server.power", server_id, action)


class FakeBilling:
    """The billing port calls a sync makes, over a dict of entries."""

    def __init__(self, entries: list[SyncEntry]) -> None:
        self.entries = {e.item: e for e in entries}
        self.messages: list[tuple[int, str]] = []
        self.params: list[tuple[int, str, str]] = []
        self.bulk_reads = 0
        self.single_reads = 0
        self.settings_unreadable = False
        self.reads = 0

    def iter_services_for_sync(self, module: int) -> Iterator[SyncEntry]:
        self.reads += 1
        yield from self.services_for_sync(module)

    def calls_made(self) -> dict[str, int]:
        return {"read": self.reads, "write": len(self.messages) + len(self.params)}

    def services_for_sync(self, module: int, item: int | None = None) -> list[SyncEntry]:
        if item is None:
            self.bulk_reads += 1
            return sorted(self.entries.values(), key=lambda e: e.item)
        self.single_reads += 1
        self.reads += 1
        found = self.entries.get(item)
        return [found] if found is not None and found.status in (ACTIVE, STOPPED) else []

    def module_settings(self, module: int) -> ModuleSettings:
        if self.settings_unreadable:
            raise ModuleError(ErrorType.billing_failed, "get_module_params", str(module))
        return module_settings({"url": "https://dci.example", "username": "admin@example.com",
                                "password": "not-used"})

    def modules(self) -> list[int]:
        return [MODULE]

    def check_service_exists(self, item: int) -> None:
        if item not in self.entries:
            raise ModuleError(ErrorType.service_not_found, "item", str(item))

    def service(self, item: int) -> Service:
        e = self.entries[item]
        return Service(id=item, module=MODULE, status=e.status, pricelist=e.pricelist,
                       account_id=e.account_id, client_email=e.client_email,
                       params={Param.SERVER_ID.value: e.bookkeeping.server_id_text})

    def set_status_message(self, item: int, text: str) -> None:
        self.messages.append((item, text))

    def save_bookkeeping(self, item: int, **changes: Unpack[BookkeepingChanges]) -> None:
        for param, value in encode(changes).items():
            self.params.append((item, param, value))
        e = self.entries[item]
        self.entries[item] = replace(e, bookkeeping=replace(e.bookkeeping, **changes))


class FakeInvocation(Invocation):
    panel: FakePanel | None = None

    def dci(self, settings: ModuleSettings, *, concurrency: int = 1) -> DciClient:
        assert self.panel is not None
        return cast(DciClient, self.panel)


def invocation(tmp_path: Path, billing: FakeBilling, panel: FakePanel, *,
               command: str = "sync", item: int | None = None,
               module: int | None = MODULE) -> FakeInvocation:
    inv = FakeInvocation(command=command, paths=MgrPaths(tmp_path / "mgr5"), item=item,
                         module=module, _billing=cast(BillingPort, billing))
    inv.panel = panel
    return inv


def run_sync(inv: Invocation) -> str:
    reply = sync_modules(inv)
    assert reply.endswith(b"\n")
    return reply.decode().strip()


def figures(summary: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in summary.split() if "=" in part)


# --- the cron sync --------------------------------------------------------------------------


def test_sync_lists_once_and_spends_one_request_per_correction(tmp_path: Path) -> None:
    servers = [server(10 + n) for n in range(7)]
    servers[1] = server(11, power="off")  # active but off
    servers[4] = server(14, power="on", ports="down")  # stopped but on
    entries = [entry(n + 1, server_id=str(10 + n), status=STOPPED if n == 4 else ACTIVE)
               for n in range(7)]
    entries[4] = entry(5, server_id="14", status=STOPPED)
    panel = FakePanel(servers, page_size=3)
    billing = FakeBilling(entries)

    summary = run_sync(invocation(tmp_path, billing, panel))

    assert sorted(panel.calls) == [("server.power", 11, "on"), ("server.power", 14, "off")]
    assert panel.request_counts == {"server.list": 3, "server.power": 2}
    assert figures(summary) == {"modules": "1", "checked": "7", "corrected": "2",
                                "drifted": "0", "failed": "0", "skipped": "0",
                                "client_stopped": "0", "requests": "5",
                                "billing_reads": "3", "billing_writes": "0",
                                "seconds": figures(summary)["seconds"]}
    assert billing.bulk_reads == 1
    assert billing.single_reads == 2  # re-read under the lock, only for the ones acted on
    assert billing.messages == [] and billing.params == []


def test_a_panel_switching_each_port_gets_the_listed_servers_ports(tmp_path: Path) -> None:
    servers = [server(10, ports="down"), server(11, ports="down")]
    panel = FakePanel(servers)
    billing = FakeBilling([entry(1, server_id="10"), entry(2, server_id="11")])
    run_sync(invocation(tmp_path, billing, panel))
    assert panel.ports_given == {10: (), 11: ()}  # one call per server: no ports kept

    panel.switches_each_port = True  # a routes.toml override: one call per port
    panel.calls.clear()
    run_sync(invocation(tmp_path, billing, panel))
    assert sorted(panel.calls) == [("server.switch_port", 10, True),
                                   ("server.switch_port", 11, True)]
    assert panel.ports_given == {10: tuple(servers[0].switch_connection),
                                 11: tuple(servers[1].switch_connection)}
    assert all(panel.ports_given.values())


def test_drift_is_reported_once_and_cleared_when_it_ends(tmp_path: Path) -> None:
    panel = FakePanel([server(10, power="off", owner_email="thief@example.org")])
    billing = FakeBilling([entry(1)])
    inv = invocation(tmp_path, billing, panel)

    assert figures(run_sync(inv))["drifted"] == "1"
    assert panel.calls == []  # nothing of a drifted service is touched
    assert len(billing.messages) == 1
    item, note = billing.messages[0]
    assert item == 1 and note.startswith(DRIFT_PREFIX) and "thief@example.org" in note
    assert billing.params == [(1, Param.DRIFT, note)]

    assert figures(run_sync(inv))["drifted"] == "1"
    assert len(billing.messages) == 1  # already reported: no new write

    panel.servers[10] = server(10, power="off")  # the admin gave the server back
    assert figures(run_sync(inv))["corrected"] == "1"
    assert panel.calls == [("server.power", 10, "on")]
    assert billing.messages[-1] == (1, "")
    assert billing.params[-1] == (1, Param.DRIFT, "")


def test_a_server_missing_from_the_listing_is_confirmed_before_it_is_called_gone(
        tmp_path: Path) -> None:
    panel = FakePanel([server(10, power="off"), server(11)])
    panel.hidden_from_listing = {10}  # a listing by offset skipped it
    billing = FakeBilling([entry(1, server_id="10"), entry(2, server_id="11"),
                           entry(3, server_id="12")])

    summary = figures(run_sync(invocation(tmp_path, billing, panel)))

    assert panel.calls == [("server.power", 10, "on")]
    assert panel.request_counts["server.get"] == 2  # servers 10 and 12
    assert summary["corrected"] == "1" and summary["drifted"] == "1"
    assert billing.messages == [(3, DRIFT_PREFIX + "server 12 is gone from DCImanager")]


def test_transient_panel_errors_count_as_failed_and_change_nothing(tmp_path: Path) -> None:
    panel = FakePanel([server(10, power="off"), server(11, power="off"), server(12, power="off")])
    panel.fail_on[("server.power", 10)] = DciBusy("Service temporarily unavailable",
                                                  http_status=503)
    panel.fail_on[("server.power", 11)] = DciUnreachable("connection refused")
    billing = FakeBilling([entry(1, server_id="10"), entry(2, server_id="11"),
                           entry(3, server_id="12")])

    with pytest.raises(SyncFailed) as failed:
        sync_modules(invocation(tmp_path, billing, panel))

    assert failed.value.type is ErrorType.sync_failed
    summary = figures(failed.value.value)
    assert summary["failed"] == "2" and summary["corrected"] == "1"
    assert panel.calls == [("server.power", 12, "on")]  # the broken ones never stop the rest
    assert billing.messages == [] and billing.params == []


def test_a_listing_that_breaks_fails_only_the_unlisted(tmp_path: Path) -> None:
    panel = FakePanel([server(10, power="off"), server(11, power="off"), server(12, power="off")],
                      page_size=1)
    panel.fail_listing_after_pages = 1
    billing = FakeBilling([entry(1, server_id="10"), entry(2, server_id="11"),
                           entry(3, server_id="12")])

    with pytest.raises(SyncFailed) as failed:
        sync_modules(invocation(tmp_path, billing, panel))

    summary = figures(failed.value.value)
    assert summary["failed"] == "2" and summary["corrected"] == "1"
    assert panel.calls == [("server.power", 10, "on")]
    assert billing.messages == []  # an unlisted server is not "gone"
    assert panel.request_counts["server.get"] == 0


def test_a_crash_in_one_service_does_not_stop_the_rest(tmp_path: Path) -> None:
    panel = FakePanel([server(10, power="off"), server(11, power="off")])
    panel.fail_on[("server.power", 10)] = RuntimeError("bug")
    billing = FakeBilling([entry(1, server_id="10"), entry(2, server_id="11")])

    with pytest.raises(SyncFailed) as failed:
        sync_modules(invocation(tmp_path, billing, panel))

    assert figures(failed.value.value)["failed"] == "1"
    assert panel.calls == [("server.power", 11, "on")]


def test_a_power_rule_refusal_means_the_server_got_there_already(tmp_path: Path) -> None:
    panel = FakePanel([server(10, power="off")])
    panel.fail_on[("server.power", 10)] = PowerActionRejected(
        "Power action not allowed in current state", http_status=400, code=2003)
    billing = FakeBilling([entry(1)])

    summary = figures(run_sync(invocation(tmp_path, billing, panel)))

    assert summary["failed"] == "0" and summary["corrected"] == "0"


def test_the_billing_side_is_re_read_under_the_service_lock(tmp_path: Path) -> None:
    """A suspend that finished after the bulk read must not be undone."""
    panel = FakePanel([server(10, power="on", ports="down")])
    billing = FakeBilling([entry(1, status=ACTIVE)])
    original = billing.services_for_sync

    def suspended_meanwhile(module: int, item: int | None = None) -> list[SyncEntry]:
        found = original(module, item)
        if item is not None:
            billing.entries[1] = entry(1, status=STOPPED)
            found = original(module, item)
        return found

    billing.services_for_sync = suspended_meanwhile  # type: ignore[method-assign]
    run_sync(invocation(tmp_path, billing, panel))

    assert panel.calls == [("server.power", 10, "off")]  # not ports up


def test_a_service_worked_on_after_the_listing_is_looked_at_again(tmp_path: Path) -> None:
    """sync_item corrected the server after the sync listed it: the sync does not redo it."""
    panel = FakePanel([server(10, power="off"), server(11, power="off")])
    billing = FakeBilling([entry(1, server_id="10"), entry(2, server_id="11")])
    inv = invocation(tmp_path, billing, panel)

    def sync_item_meanwhile() -> None:
        with service_lock(inv.paths, 1):
            panel.servers[10] = server(10, power="on")

    panel.after_listing = sync_item_meanwhile
    summary = figures(run_sync(inv))

    assert panel.calls == [("server.power", 11, "on")]  # only the one nobody else touched
    assert panel.request_counts["server.get"] == 1  # one direct read, for the one touched
    assert (summary["corrected"], summary["failed"]) == ("1", "0")


def test_a_suspend_that_finished_after_the_listing_is_neither_undone_nor_redone(
        tmp_path: Path) -> None:
    panel = FakePanel([server(10, power="off")])  # active, off: the listing asks power on
    billing = FakeBilling([entry(1, status=ACTIVE)])
    inv = invocation(tmp_path, billing, panel)

    def suspend_meanwhile() -> None:
        with service_lock(inv.paths, 1):
            panel.servers[10] = server(10, power="off", ports="down")
            billing.entries[1] = entry(1, status=STOPPED)

    panel.after_listing = suspend_meanwhile
    summary = figures(run_sync(inv))

    assert panel.calls == []  # no power on (undone), no ports down (redone)
    assert (summary["corrected"], summary["failed"], summary["checked"]) == ("0", "0", "1")


def test_a_service_now_recording_another_server_is_looked_at_again(tmp_path: Path) -> None:
    panel = FakePanel([server(10, power="off"), server(12, power="on")])
    billing = FakeBilling([entry(1, server_id="10")])
    original = billing.services_for_sync

    def reopened_meanwhile(module: int, item: int | None = None) -> list[SyncEntry]:
        if item is not None:
            billing.entries[1] = entry(1, server_id="12")
        return original(module, item)

    billing.services_for_sync = reopened_meanwhile  # type: ignore[method-assign]
    run_sync(invocation(tmp_path, billing, panel))

    assert panel.calls == []  # server 10's look says nothing about server 12
    assert panel.request_counts["server.get"] == 1


def test_a_service_lock_tells_when_it_was_last_let_go(tmp_path: Path) -> None:
    paths = MgrPaths(tmp_path / "mgr5")
    with service_lock(paths, 1) as first:
        assert not first.let_go_since(0.0)  # nobody has let it go yet
    after = time.time()
    with service_lock(paths, 1) as held:
        assert held.let_go_since(after - 60)
        assert not held.let_go_since(after + 1)
    item_lock_path(paths, 3).write_text("")  # a lock file from before the stamps
    with service_lock(paths, 3) as held:
        assert not held.let_go_since(0.0)
    item_lock_path(paths, 4).write_text("garbage")
    with service_lock(paths, 4) as held:
        assert held.let_go_since(time.time() + 60)  # unreadable: look again
    assert float(item_lock_path(paths, 4).read_text()) >= after  # stamped, garbage gone


def test_a_service_another_process_holds_is_skipped(tmp_path: Path) -> None:
    panel = FakePanel([server(10, power="off"), server(11, power="off")])
    billing = FakeBilling([entry(1, server_id="10"), entry(2, server_id="11")])
    inv = invocation(tmp_path, billing, panel)

    with file_lock(item_lock_path(inv.paths, 1), wait_seconds=0, what="test"):
        summary = figures(run_sync(inv))

    assert summary["skipped"] == "1" and summary["failed"] == "0"
    assert panel.calls == [("server.power", 11, "on")]


def test_two_syncs_never_overlap(tmp_path: Path) -> None:
    panel = FakePanel([server(10, power="off")])
    billing = FakeBilling([entry(1)])
    inv = invocation(tmp_path, billing, panel)

    with file_lock(inv.paths.ensure_state_dir() / "locks" / "sync.lock", wait_seconds=0,
                   what="test"), pytest.raises(ModuleError) as refused:
        sync_modules(inv)

    assert refused.value.type is ErrorType.sync_running
    assert panel.calls == [] and panel.request_counts == {}


def test_without_module_every_module_of_this_type_is_synced(tmp_path: Path) -> None:
    panel = FakePanel([server(10, power="off")])
    billing = FakeBilling([entry(1)])

    summary = figures(run_sync(invocation(tmp_path, billing, panel, module=None)))

    assert summary["modules"] == "1" and summary["corrected"] == "1"


def test_a_module_whose_settings_cannot_be_read_fails_its_services(tmp_path: Path) -> None:
    panel = FakePanel([server(10, power="off")])
    billing = FakeBilling([entry(1), entry(2, server_id="11")])
    billing.settings_unreadable = True

    with pytest.raises(SyncFailed) as failed:
        sync_modules(invocation(tmp_path, billing, panel))

    assert figures(failed.value.value)["failed"] == "2"
    assert panel.request_counts == {}


def test_an_empty_module_costs_no_request(tmp_path: Path) -> None:
    panel = FakePanel([server(10)])
    summary = figures(run_sync(invocation(tmp_path, FakeBilling([]), panel)))
    assert summary["checked"] == "0" and summary["requests"] == "0"


# --- sync_item ------------------------------------------------------------------------------


def test_sync_item_applies_the_rule_to_one_service(tmp_path: Path) -> None:
    panel = FakePanel([server(10, power="on", ports="up")])
    billing = FakeBilling([entry(1, status=STOPPED)])

    assert sync_item(invocation(tmp_path, billing, panel, command="sync_item", item=1)) is None

    assert panel.calls == [("server.power", 10, "off"), ("server.switch_port", 10, False)]
    assert panel.request_counts["server.list"] == 0


def test_sync_item_reports_drift_without_failing(tmp_path: Path) -> None:
    panel = FakePanel([])
    billing = FakeBilling([entry(1, server_id="10")])

    assert sync_item(invocation(tmp_path, billing, panel, command="sync_item", item=1)) is None

    assert billing.messages == [(1, DRIFT_PREFIX + "server 10 is gone from DCImanager")]


def test_sync_item_lets_a_transient_error_reach_billmanager(tmp_path: Path) -> None:
    panel = FakePanel([server(10, power="off")])
    panel.fail_on[("server.power", 10)] = DciBusy("Service temporarily unavailable",
                                                  http_status=503)
    billing = FakeBilling([entry(1)])

    with pytest.raises(DciBusy):
        sync_item(invocation(tmp_path, billing, panel, command="sync_item", item=1))

    assert billing.messages == []


def test_sync_item_leaves_a_service_that_is_not_live(tmp_path: Path) -> None:
    panel = FakePanel([server(10, power="off")])
    billing = FakeBilling([entry(1, status=ServiceStatus.processing)])

    assert sync_item(invocation(tmp_path, billing, panel, command="sync_item", item=1)) is None

    assert panel.request_counts == {}


def test_services_their_clients_stopped_are_counted_not_powered_on(tmp_path: Path) -> None:
    servers = [server(10, power="off"), server(11, power="off", ports="down"),
               server(12, power="off")]
    entries = [entry(1, server_id="10", client_stopped=True),
               entry(2, server_id="11", client_stopped=True),
               entry(3, server_id="12")]
    panel = FakePanel(servers)
    summary = figures(run_sync(invocation(tmp_path, FakeBilling(entries), panel)))
    assert panel.calls == [("server.switch_port", 11, True), ("server.power", 12, "on")]
    assert (summary["client_stopped"], summary["corrected"], summary["checked"]) == ("1", "2", "3")
