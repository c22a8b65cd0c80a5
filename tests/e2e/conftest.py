"""End-to-end fixtures: the DCImanager simulator and a stand-in BILLmanager host with one
processing module, one tariff and one client, wired together as BILLmanager would be."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from pmdci6_sandbox.billmgr_host import BillmgrHost
from pmdci6_sandbox.dcisim import DciSimulator, Inventory
from pmdci6_sandbox.dcisim.state import PanelState

MODULE = 1
TARIFF = 1
CLIENT_ACCOUNT = 7
CLIENT_EMAIL = "client@example.com"
# every free server of this configuration in the default inventory has a data port
CONFIGURATION = "EPYC-7302-256Gb-4x960SSD"


@dataclass
class Sandbox:
    host: BillmgrHost
    sim: DciSimulator

    def order(self, item: int, *, addons: dict[str, str] | None = None,
              params: dict[str, str] | None = None, account: int = CLIENT_ACCOUNT) -> int:
        self.host.add_service(item, module=MODULE, pricelist=TARIFF, account_id=account,
                              params=params or {"ostempl": "2"},
                              addons={"ip": "1"} if addons is None else addons)
        return item

    def order_on_tariff(self, item: int, tariff: int, *, account: int = CLIENT_ACCOUNT,
                        addons: dict[str, str] | None = None, **options: str) -> int:
        """A tariff like the default one but for `options`, and an order on it."""
        self.host.add_tariff(tariff, **tariff_params(**options))
        self.host.add_service(item, module=MODULE, pricelist=tariff, account_id=account,
                              params={"ostempl": "1"},
                              addons={"ip": "1"} if addons is None else addons)
        return item

    def run(self, command: str, item: int | None = None, *extra: str,
            stdin: bytes | None = None, env: dict[str, str] | None = None) -> object:
        argv = ["--command", command]
        if item is not None:
            argv += ["--item", str(item)]
        argv += list(extra)
        return self.host.run(*argv, stdin=stdin, env=env)

    def server_of(self, item: int) -> dict[str, object]:
        server_id = int(self.host.service(item).params["dci_server_id"])
        return self.sim.server(server_id)


def tariff_params(**overrides: str) -> dict[str, str]:
    params = {
        "configuration": CONFIGURATION,
        "os_template": "1",
        "ipv4_pool": "1",
        "ipv6_pool": "10",
        "diag_template": "Diag6",
        "diag_pool": "2",
        "shutdown_on_close": "on",
        "ports_off_on_close": "on",
    }
    params.update(overrides)
    return params


def seed(root: Path, sim: DciSimulator) -> Sandbox:
    """A BILLmanager host at `root` with the module pointing at `sim`, the tariff and the
    client."""
    host = BillmgrHost.create(root)
    host.add_module(MODULE, url=sim.url, username=sim.admin_email,
                    password=sim.admin_password, by_server_type="on", verify_tls="on",
                    diagtimeout="60", installtimeout_linux="60",
                    installtimeout_windows="120")
    host.add_tariff(TARIFF, **tariff_params())
    host.add_client(CLIENT_ACCOUNT, CLIENT_EMAIL)
    return Sandbox(host=host, sim=sim)


@contextmanager
def running_sandbox(root: Path, inventory: Inventory | None = None, *,
                    variant: str | None = None) -> Iterator[Sandbox]:
    """A simulator (of a variant panel, when given) on loopback and a BILLmanager host whose
    module points at it."""
    sim = DciSimulator(inventory or Inventory.default(), time_scale=0.0, variant=variant)
    with sim:
        yield seed(root, sim)


POLL_SECONDS = "0.01"  # the module's wait between two looks at a panel operation


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    monkeypatch.setenv("PMDCI6_POLL_SECONDS", POLL_SECONDS)
    with running_sandbox(tmp_path / "mgr5") as box:
        yield box


# --- starting from a prepared service -------------------------------------------------------
# NOTE: the crash tests start dozens of times from the same point ("an opened service", "an
# opened and suspended service"). Each point is reached once per xdist worker, by the real
# binary against the real simulator, exactly as a fresh sandbox would; then the simulator's
# state and the host's tree are saved, and every test that starts there gets a copy of both
# (a deep copy and a directory copy instead of an `open` run: about 0.8 s of CPU each).


@dataclass(frozen=True)
class _Saved:
    panel: PanelState
    tree: Path
    item: int


@pytest.fixture(scope="session")
def worker_panel() -> Iterator[tuple[DciSimulator, PanelState]]:
    """One default simulator for this worker's whole run, and its pristine state."""
    sim = DciSimulator(Inventory.default(), time_scale=0.0)
    with sim:
        yield sim, sim.snapshot()


@pytest.fixture(scope="session")
def _saved_points() -> dict[Callable[[Sandbox], int], _Saved]:
    return {}


Prepared = Callable[[Callable[[Sandbox], int]], tuple[Sandbox, int]]


@pytest.fixture
def prepared(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
             monkeypatch: pytest.MonkeyPatch, worker_panel: tuple[DciSimulator, PanelState],
             _saved_points: dict[Callable[[Sandbox], int], _Saved]) -> Prepared:
    """`prepared(prepare)`: a sandbox as `prepare(fresh sandbox)` leaves it, and the item it
    returned. `prepare` runs once per worker (keyed by the function itself); later calls start
    from a copy of what it left. The simulator is the worker's one: a second call in the same
    test restores it, so only the newest sandbox is live."""
    monkeypatch.setenv("PMDCI6_POLL_SECONDS", POLL_SECONDS)
    sim, pristine = worker_panel

    def start_from(prepare: Callable[[Sandbox], int]) -> tuple[Sandbox, int]:
        saved = _saved_points.get(prepare)
        if saved is None:
            sim.restore(pristine)
            tree = tmp_path_factory.mktemp("prepared") / "mgr5"
            item = prepare(seed(tree, sim))
            saved = _saved_points[prepare] = _Saved(sim.snapshot(), tree, item)
        sim.restore(saved.panel)  # a sandbox from an earlier call in this test is stale now
        root = Path(tempfile.mkdtemp(dir=tmp_path)) / "mgr5"
        shutil.copytree(saved.tree, root, symlinks=True)  # modes too: the 0600 files stay 0600
        return Sandbox(host=BillmgrHost(root), sim=sim), saved.item

    return start_from
