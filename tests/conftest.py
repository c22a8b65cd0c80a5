"""Fixtures every test layer may use. Only generic ones live here; a layer's own fixtures
(the simulator, the stand-in BILLmanager host) live in that layer's conftest.py.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import structlog

from dci6_processing import log
from dci6_processing.paths import ROOT_ENV, MgrPaths

REPO_ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests marked slow first (stable: the rest keep their order). Longest first keeps
    the run's tail short, and under `--dist worksteal` they open the first worker's queue,
    so a class sharing one build (TestFullInstall) stays on that worker, one after another;
    idle workers steal from the other end of a queue."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture
def isolated_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Secrets registered by other tests must not mask this test's text, and this test's
    log file must not receive other tests' events (modules that configure logging use it
    with `pytestmark = pytest.mark.usefixtures("isolated_logging")`)."""
    monkeypatch.setattr(log, "_secrets", set())
    yield
    log.close()
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def session_shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory every pytest-xdist worker of this run sees (the parent of the workers'
    base temps, as xdist's docs show for fixtures made once per run); without xdist, this
    session's own base temp."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextmanager
def run_wide_lock(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Path]:
    """Hold `<name>.lock` in the run's shared directory: one worker at a time, across the
    run's workers (e.g. every `make install` of the checkout, which builds in its build/)."""
    shared = session_shared_dir(tmp_path_factory)
    with open(shared / f"{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield shared
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def made_once(tmp_path_factory: pytest.TempPathFactory, name: str,
              make: Callable[[Path], Any]) -> Any:
    """`make(directory)` once per test run, whichever xdist workers ask: the first builds in
    `<shared>/<name>/` and keeps its JSON result there; the others wait for it and read it.
    A failed build is not kept: the next asker tries again and fails with its own error."""
    with run_wide_lock(tmp_path_factory, name) as shared:
        result = shared / f"{name}.json"
        if result.exists():
            return json.loads(result.read_text())
        directory = shared / name
        if directory.exists():  # a build that failed halfway
            shutil.rmtree(directory)
        directory.mkdir()
        value = make(directory)
        result.write_text(json.dumps(value))
        return value


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The checkout under test (where pyproject.toml, xml/ and etc/ are)."""
    return REPO_ROOT


def _console_script(name: str) -> Path:
    """A console script of the virtualenv running the tests (installed by make venv)."""
    script = Path(sys.executable).with_name(name)
    if not script.exists():
        pytest.fail(f"{script} is missing: install the package and the sandbox (make venv)")
    return script


@pytest.fixture(scope="session")
def pmdci6_bin() -> Path:
    """The product's console script."""
    return _console_script("pmdci6")


@pytest.fixture(scope="session")
def sandbox_bin() -> Path:
    """The sandbox distribution's console script (`pmdci6-sandbox dci`, `pmdci6-sandbox demo`)."""
    return _console_script("pmdci6-sandbox")


@pytest.fixture
def mgr_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MgrPaths]:
    """An empty BILLmanager root in tmp_path, exported as PMDCI6_MGR_ROOT for this test,
    so nothing can reach a real /usr/local/mgr5."""
    root = tmp_path / "mgr5"
    root.mkdir()
    monkeypatch.setenv(ROOT_ENV, str(root))
    yield MgrPaths(root)


@pytest.fixture(autouse=True)
def _isolated_secrets() -> Iterator[None]:
    """Secrets registered with the log are process-wide; a test's own (often short, like
    "x") must not mask text in the next test."""
    from dci6_processing import log

    before = set(log._secrets)
    yield
    log._secrets.clear()
    log._secrets.update(before)


@pytest.fixture(autouse=True)
def _one_billing_root_per_process() -> Iterator[None]:
    """The billing adapter imports the vendor library `billmgr` of its BILLmanager root once
    per process and refuses another root's (a real host has one root). Each test gets its
    own stand-in root, so each test starts as a fresh process would: no `billmgr` imported,
    sys.path as it was."""
    path_before = list(sys.path)
    yield
    for name in [n for n in sys.modules if n == "billmgr" or n.startswith("billmgr.")]:
        del sys.modules[name]
    sys.path[:] = path_before

