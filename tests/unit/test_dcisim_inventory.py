"""Inventories and IP pools of the simulator."""

from __future__ import annotations

import ipaddress
import json
import time
from pathlib import Path

import pytest

from pmdci6_sandbox.dcisim import Inventory, InventoryError, is_free
from pmdci6_sandbox.dcisim.pools import AddressPool, AllocationRefused, PoolExhausted


def test_default_inventory_matches_the_agreed_sandbox() -> None:
    inventory = Inventory.default()
    assert inventory.admin_email == "admin@sandbox.example"
    assert len(inventory.admin_password) >= 16
    assert Inventory.default().admin_password != inventory.admin_password  # per run
    assert [location["id"] for location in inventory.locations] == [1, 2, 3]
    pools = {pool["id"]: pool for pool in inventory.ip_pools}
    assert pools[1]["name"] == "public-v4" and pools[1]["network"] == "203.0.113.0/24"
    assert pools[2]["name"] == "diag-v4" and pools[2]["for_deallocation"] is True
    assert pools[3]["name"] == "tiny-v4"
    assert pools[10]["name"] == "public-v6" and pools[10]["family"] == "ipv6"
    templates = {t["id"]: (t["name"], t["os_family"]) for t in inventory.os_templates}
    assert templates == {
        1: ("Ubuntu 22.04", "linux"),
        2: ("Debian 12", "linux"),
        3: ("Windows Server 2022", "windows"),
        4: ("AlmaLinux 9", "linux"),
    }
    servers = inventory.servers
    assert 35 <= len(servers) <= 45
    free = [server for server in servers if is_free(server)]
    configurations = {server["configuration"] for server in free}
    assert {"i9-9900K-64Gb-2x1024NVMe", "E5-2690v4-128Gb-2x480SSD",
            "EPYC-7302-256Gb-4x960SSD"} <= configurations  # fmt: skip
    assert len(free) > len(servers) / 2
    assert any(server["owner"] is not None for server in servers)
    assert any(server["is_new"] for server in servers)
    assert sum(server["maintenance_mode"] for server in servers) == 1
    no_data_port = [
        server for server in servers
        if not any(not p["is_ipmi_connection"] for p in server["switch_connection"])
    ]  # fmt: skip
    assert len(no_data_port) >= 2
    assert any(p["is_ipmi_connection"] for s in servers for p in s["switch_connection"])
    roles = [user["roles"] for user in inventory.users]
    assert any(isinstance(r, str) for r in roles) and any(isinstance(r, list) for r in roles)
    assert inventory.durations == {"install": 600.0, "diag": 900.0, "power": 5.0}


def test_packaged_file_holds_no_password() -> None:
    text = (Path(__file__).parents[2] / "sandbox/pmdci6_sandbox/inventory.json").read_text()
    assert "password" not in json.loads(text)["admin"]


def test_generate_is_large_fast_deterministic_and_realistic() -> None:
    started = time.perf_counter()
    inventory = Inventory.generate(servers=10_000, seed=1)
    elapsed = time.perf_counter() - started
    servers = inventory.servers
    assert len(servers) == 10_000
    assert len({server["id"] for server in servers}) == 10_000
    owned = sum(server["owner"] is not None for server in servers)
    new = sum(server["is_new"] for server in servers)
    free = sum(is_free(server) for server in servers)
    assert 300 < owned < 700
    assert 300 < new < 700
    assert free > 8_000
    again = Inventory.generate(servers=10_000, seed=1)
    assert again.servers == servers
    assert Inventory.generate(servers=10_000, seed=2).servers != servers
    # Owned servers' addresses are all distinct and inside the public pool.
    addresses = [ip["name"] for server in servers for ip in server["ip"]]
    assert len(addresses) == len(set(addresses)) == owned
    network = ipaddress.ip_network("198.18.0.0/15")
    assert all(ipaddress.ip_address(a) in network for a in addresses)
    print(f"generate(10_000): {elapsed:.2f}s")


def test_load_round_trip_and_fixed_password(tmp_path: Path) -> None:
    document = Inventory.default().to_document()
    document["admin"]["password"] = "fixed-sandbox-password"
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps(document))
    loaded = Inventory.load(path)
    assert loaded.admin_password == "fixed-sandbox-password"
    assert loaded.servers == Inventory.default().servers


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["servers"].append(dict(d["servers"][0])), "duplicate id"),
        (lambda d: d["servers"][0].update(location_id=99), "unknown location_id"),
        (lambda d: d["servers"][0].update(owner=99), "unknown owner"),
        (lambda d: d["servers"][0].update(colour="red"), "unknown fields"),
        (lambda d: d["ip_pools"][0].update(network="203.0.113.0/33"), "ip_pools"),
        (lambda d: d["users"].pop(0), "admin must be one of the users"),
        (lambda d: d.pop("admin"), "admin.email"),
    ],
)
def test_inconsistent_inventories_are_refused(mutate: object, message: str) -> None:
    document = Inventory.default().to_document()
    document = json.loads(json.dumps(document))
    mutate(document)  # type: ignore[operator]
    with pytest.raises(InventoryError, match=message):
        Inventory.from_document(document)


def _pool(**document: object) -> AddressPool:
    return AddressPool.from_document({"id": 1, "name": "p", **document})


def test_ipv4_pool_hands_out_its_range_and_never_the_gateway() -> None:
    pool = _pool(network="192.0.2.0/29", gateway="192.0.2.1")
    handed = [pool.allocate() for _ in range(5)]
    assert handed == ["192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5", "192.0.2.6"]
    with pytest.raises(PoolExhausted):
        pool.allocate()
    pool.release("192.0.2.4")
    assert pool.allocate() == "192.0.2.4"
    with pytest.raises(AllocationRefused):
        pool.allocate(prefix=30)


def test_ipv4_pool_with_range_and_marked_addresses() -> None:
    pool = _pool(network="192.0.2.0/24", range=["192.0.2.10", "192.0.2.12"])
    pool.mark_used("192.0.2.11")
    assert pool.allocate() == "192.0.2.10"
    assert pool.allocate() == "192.0.2.12"
    with pytest.raises(PoolExhausted):
        pool.allocate()


def test_ipv6_pool_hands_out_subnets_and_single_addresses_without_overlap() -> None:
    pool = _pool(network="2001:db8::/48", gateway="2001:db8::1")
    single = pool.allocate()
    assert single == "2001:db8::2"
    first = ipaddress.ip_network(pool.allocate(prefix=64))
    second = ipaddress.ip_network(pool.allocate(prefix=64))
    wide = ipaddress.ip_network(pool.allocate(prefix=56))
    block = ipaddress.ip_network("2001:db8::/64")
    networks = [block, first, second, wide]
    for index, one in enumerate(networks):
        for other in networks[index + 1 :]:
            assert not one.overlaps(other), (one, other)
    assert all(n.subnet_of(ipaddress.ip_network("2001:db8::/48")) for n in networks)  # type: ignore[arg-type]
    assert pool.allocate(prefix=128) == "2001:db8::3"
    with pytest.raises(AllocationRefused):
        pool.allocate(prefix=40)


def test_ipv6_subnets_run_out() -> None:
    pool = _pool(network="2001:db8::/62", gateway="2001:db8::1")
    handed = [pool.allocate(prefix=64) for _ in range(3)]  # the first /64 is reserved
    assert handed == ["2001:db8:0:1::/64", "2001:db8:0:2::/64", "2001:db8:0:3::/64"]
    with pytest.raises(PoolExhausted):
        pool.allocate(prefix=64)
    pool.release("2001:db8:0:2::/64")
    assert pool.allocate(prefix=64) == "2001:db8:0:2::/64"


def test_forced_exhaustion() -> None:
    pool = _pool(network="192.0.2.0/24")
    pool.forced_exhausted = True
    with pytest.raises(PoolExhausted):
        pool.allocate()


def test_direct_construction_fills_server_defaults() -> None:
    base = Inventory.default()
    inventory = Inventory(
        admin_email=base.admin_email,
        admin_password="sandbox-only",
        locations=base.locations,
        os_templates=base.os_templates,
        ip_pools=base.ip_pools,
        users=base.users,
        servers=[{"id": 7, "configuration": "c", "location_id": 1}],
    )
    server = inventory.servers[0]
    assert server["name"] == "srv-00007" and server["owner"] is None
    assert server["power_status"] == "off" and server["ip"] == []
    assert [p["id"] for p in server["switch_connection"]] == [71, 72]
