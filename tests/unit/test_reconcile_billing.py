"""The sync's bulk billing read (`VendorBilling.services_for_sync`) against the stand-in host,
and the bulk seeding helper the benchmark uses."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from dci6_processing.billing.port import SyncEntry
from dci6_processing.billing.vendor import VendorBilling
from dci6_processing.bookkeeping import ServiceBookkeeping
from pmdci6_sandbox.billmgr_host import BillmgrHost, LiveService

MODULE = 1
OTHER_MODULE = 2
TARIFF = 10
ACTIVE, STOPPED = 2, 3


@pytest.fixture
def host(tmp_path: Path) -> BillmgrHost:
    host = BillmgrHost.create(tmp_path / "mgr5")
    for module in (MODULE, OTHER_MODULE):
        host.add_module(module, url="dci.example.com", username="admin@example.com",
                        password="Panel-Only-S3cret")
    host.add_tariff(TARIFF, configuration="i9-9900K-64Gb-2x1024NVMe")
    host.add_client(7, "first@example.com")
    host.add_client(7, "second@example.com")
    host.add_client(8, "other@example.com")
    return host


def test_a_clients_stop_is_read_with_the_service(host: BillmgrHost) -> None:
    host.add_live_services([
        LiveService(101, MODULE, TARIFF, 7, ACTIVE, {"dci_server_id": "17",
                                                    "dci_power_wish": "off"}),
        LiveService(102, MODULE, TARIFF, 7, ACTIVE, {"dci_server_id": "18",
                                                    "dci_power_wish": ""}),
    ])
    entries = VendorBilling(host.paths).services_for_sync(MODULE)
    assert [(e.item, e.bookkeeping.client_stopped) for e in entries] == [(101, True),
                                                                         (102, False)]


def test_only_live_services_of_the_module_are_read(host: BillmgrHost) -> None:
    host.add_live_services([
        LiveService(101, MODULE, TARIFF, 7, ACTIVE, {"dci_server_id": "17", "ostempl": "2"},
                    ("203.0.113.5", "2001:db8:1::/64")),
        LiveService(102, MODULE, TARIFF, 8, STOPPED, {"dci_server_id": " 18 ",
                                                     "dci_drift": "DCImanager drift: x"}),
        LiveService(103, MODULE, TARIFF, 7, 4, {"dci_server_id": "19"}),  # deleted
        LiveService(104, OTHER_MODULE, TARIFF, 7, ACTIVE, {"dci_server_id": "20"}),
        LiveService(106, MODULE, TARIFF, 7, ACTIVE, {"dci_server_id": "21", "dci_manual": "on"}),
        LiveService(107, MODULE, TARIFF, 7, ACTIVE, {"dci_server_id": "x", "dci_manual": "off"}),
    ])
    host.add_service(105, module=MODULE, pricelist=TARIFF, account_id=7,
                     addons={"ip": "2"}, ip_slots=2)  # ordered, with an addon child item

    entries = VendorBilling(host.paths).services_for_sync(MODULE)

    assert entries == [
        SyncEntry(item=101, status=ACTIVE, pricelist=TARIFF, account_id=7,
                  client_email="first@example.com",
                  addresses=frozenset({"203.0.113.5", "2001:db8:1::/64"}),
                  bookkeeping=ServiceBookkeeping(server_id=17, server_id_text="17")),
        SyncEntry(item=102, status=STOPPED, pricelist=TARIFF, account_id=8,
                  client_email="other@example.com", addresses=frozenset(),
                  bookkeeping=ServiceBookkeeping(server_id=18, server_id_text="18",
                                                 drift="DCImanager drift: x")),
        # 106 is exempted (dci_manual=on); 107's server id is kept as typed, for the drift
        SyncEntry(item=107, status=ACTIVE, pricelist=TARIFF, account_id=7,
                  client_email="first@example.com", addresses=frozenset(),
                  bookkeeping=ServiceBookkeeping(server_id=None, server_id_text="x")),
    ]


def test_one_item_is_read_alone(host: BillmgrHost) -> None:
    host.add_live_services([
        LiveService(101, MODULE, TARIFF, 7, ACTIVE, {"dci_server_id": "17"}, ("203.0.113.5",)),
        LiveService(102, MODULE, TARIFF, 7, ACTIVE, {}, ("203.0.113.6",)),
        LiveService(103, MODULE, TARIFF, 7, 5, {"dci_server_id": "19"}),  # processing
    ])
    billing = VendorBilling(host.paths)

    [only] = billing.services_for_sync(MODULE, item=102)
    assert (only.item, only.bookkeeping.server_id_text, only.addresses) == (
        102, "", frozenset({"203.0.113.6"}))
    assert billing.services_for_sync(MODULE, item=103) == []
    assert billing.services_for_sync(OTHER_MODULE, item=101) == []


def test_empty_ip_slots_are_not_addresses(host: BillmgrHost) -> None:
    host.add_service(101, module=MODULE, pricelist=TARIFF, account_id=7, status=ACTIVE,
                     params={"dci_server_id": "17"}, ip_slots=2)
    [entry] = VendorBilling(host.paths).services_for_sync(MODULE)
    assert entry.addresses == frozenset()


def test_addresses_are_read_from_the_services_ip_addon_item_only(host: BillmgrHost) -> None:
    """BILLmanager keeps a service's addresses on its `ip` addon item (the vendor's itemips
    joins them that way): an IP row on the service item itself, or on an addon of another
    item type, is not one of its addresses."""
    host.add_live_services([LiveService(101, MODULE, TARIFF, 7, ACTIVE, {"dci_server_id": "17"},
                                        ("203.0.113.5",))])
    conn = sqlite3.connect(host.store_path)
    with conn:
        conn.execute("INSERT INTO item (id, parent, status, pricelist, processingmodule, account)"
                     " VALUES (9001, 101, 2, ?, 1, 7)", (TARIFF,))
        conn.execute("INSERT INTO ip (item, name, status) VALUES (9001, '203.0.113.77', 2)")
        conn.execute("INSERT INTO ip (item, name, status) VALUES (101, '203.0.113.78', 2)")
    conn.close()

    [entry] = VendorBilling(host.paths).services_for_sync(MODULE)
    assert entry.addresses == {"203.0.113.5"}
    assert [ip.address for ip in VendorBilling(host.paths).service_ips(101)] == ["203.0.113.5"]


def test_ten_thousand_services_are_read_at_once(host: BillmgrHost) -> None:
    seeded = time.monotonic()
    host.add_live_services(
        LiveService(1000 + n, MODULE, TARIFF, 7, ACTIVE if n % 3 else STOPPED,
                    {"dci_server_id": str(n + 1)}, (f"10.{n // 250}.{n % 250}.1",))
        for n in range(10_000)
    )
    seeding = time.monotonic() - seeded
    started = time.monotonic()
    entries = VendorBilling(host.paths).services_for_sync(MODULE)
    reading = time.monotonic() - started

    assert len(entries) == 10_000
    assert entries[0].addresses == {"10.0.0.1"} and entries[-1].bookkeeping.server_id == 10000
    assert sum(e.status == STOPPED for e in entries) == 3334
    assert seeding < 10 and reading < 5, (seeding, reading)
