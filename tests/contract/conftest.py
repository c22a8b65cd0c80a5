"""Fixtures of the contract layer: the real DCI client against the real simulator over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dci6_processing.dci.client import Backoff, DciClient
from pmdci6_sandbox.dcisim import DciSimulator, Inventory


@pytest.fixture
def sim() -> Iterator[DciSimulator]:
    """A fresh simulator of the default inventory; operations finish at the next read."""
    with DciSimulator(Inventory.default(), time_scale=0.0) as simulator:
        yield simulator


@pytest.fixture
def client(sim: DciSimulator, tmp_path: Path) -> DciClient:
    """The production client against `sim`, its token cache in tmp_path, short timeouts."""
    return DciClient(sim.url, sim.admin_email, sim.admin_password, timeout=5.0,
                     token_cache_dir=tmp_path / "tokens", backoff=0.01)


@pytest.fixture
def quick_poll() -> Backoff:
    """Polling fast enough for operations on a zero or tiny time scale."""
    return Backoff(initial=0.01, factor=1.5, maximum=0.1)
