"""Many `open` processes at once, as BILLmanager starts them after a burst of payments:
no server ever goes to two services, and those that cannot be served fail cleanly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

from pmdci6_sandbox.dcisim import Inventory
from tests.e2e.conftest import MODULE, Sandbox, running_sandbox, tariff_params

SCARCE = "scarce-config-20"


def start_open(sandbox: Sandbox, item: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PMDCI6_MGR_ROOT=str(sandbox.host.root), PMDCI6_POLL_SECONDS="0.01")
    binary = Path(sys.executable).with_name("pmdci6")
    return subprocess.Popen([str(binary), "--command", "open", "--item", str(item)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def make_scarce(sandbox: Sandbox, count: int) -> list[int]:
    """Exactly `count` free servers of a configuration nobody else uses."""
    free = [int(s["id"]) for s in sandbox.sim.servers() if _is_free(s)][:count]
    assert len(free) == count
    for sid in free:
        sandbox.sim.update_server(sid, configuration=SCARCE)
    sandbox.host.add_tariff(3, **tariff_params(configuration=SCARCE))
    return free


def _is_free(server: dict[str, object]) -> bool:
    op = server.get("operation") or {}
    assert isinstance(op, dict)
    return (server["owner"] is None and not server["is_new"] and not server.get("maintenance_mode")
            and op.get("status") in (None, "ok", "canceled"))


@pytest.mark.slow
# each case starts 20+ processes at once; run first (tests/conftest.py), so `make test`'s
# worksteal keeps both at the head of one worker's queue, one after the other
@pytest.mark.parametrize("orders", [20, 25])
def test_parallel_opens_never_share_a_server(tmp_path: Path, orders: int) -> None:
    with running_sandbox(tmp_path / "mgr5", Inventory.generate(servers=120, seed=5)) as sandbox:
        scarce = set(make_scarce(sandbox, 20))
        for n in range(orders):
            sandbox.host.add_client(1000 + n, f"buyer{n}@example.com")
            sandbox.host.add_service(300 + n, module=MODULE, pricelist=3, account_id=1000 + n,
                                     params={"ostempl": "1"}, addons={"ip": "1"})
        procs = {300 + n: start_open(sandbox, 300 + n) for n in range(orders)}
        results = {item: (p.wait(timeout=300), p.stdout.read() if p.stdout else b"")
                   for item, p in procs.items()}
        opened = [item for item, (code, _) in results.items() if code == 0]
        failed = [item for item, (code, _) in results.items() if code != 0]
        assert len(opened) == min(orders, 20)
        for item in failed:
            doc = etree.fromstring(results[item][1])
            assert doc.find("error").get("type") == "no_free_server"
            record = sandbox.host.service(item)
            assert not record.params.get("dci_server_id")  # nothing half-done
            assert record.ips == []
        servers = [int(sandbox.host.service(item).params["dci_server_id"]) for item in opened]
        assert len(set(servers)) == len(servers)  # 20 distinct servers
        assert set(servers) <= scarce
        for item, sid in zip(opened, servers, strict=True):
            n = item - 300
            assert sandbox.sim.server(sid)["owner_email"] == f"buyer{n}@example.com"
