"""`made_once` (tests/conftest.py): what the xdist workers of one run share is built once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.conftest import made_once


class _Factory:
    """A TempPathFactory as made_once uses it: a worker's base temp inside the run's one."""

    def __init__(self, run: Path, worker: str) -> None:
        self.base = run / f"popen-{worker}"
        self.base.mkdir(parents=True, exist_ok=True)

    def getbasetemp(self) -> Path:
        return self.base


def test_two_workers_asking_at_once_build_once(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    builds: list[Path] = []

    def build(directory: Path) -> dict[str, str]:
        builds.append(directory)
        time.sleep(0.2)  # long enough for the other asker to arrive meanwhile
        (directory / "artifact").write_text("built")
        return {"artifact": str(directory / "artifact")}

    results: list[object] = []
    askers = [threading.Thread(target=lambda w=w: results.append(
        made_once(_Factory(tmp_path, w), "thing", build)))  # type: ignore[arg-type]
        for w in ("gw0", "gw1")]
    for asker in askers:
        asker.start()
    for asker in askers:
        asker.join()
    assert len(builds) == 1
    assert builds[0] == tmp_path / "thing"
    assert results == [{"artifact": str(tmp_path / "thing" / "artifact")}] * 2


def test_a_failed_build_is_not_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    factory = _Factory(tmp_path, "gw0")

    def broken(directory: Path) -> None:
        (directory / "half").write_text("half-built")
        raise RuntimeError("build failed")

    with pytest.raises(RuntimeError):
        made_once(factory, "thing", broken)  # type: ignore[arg-type]
    assert made_once(factory, "thing",  # type: ignore[arg-type]
                     lambda directory: sorted(p.name for p in directory.iterdir())) == []


def test_without_xdist_the_sessions_own_base_temp(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    factory = _Factory(tmp_path, "master")
    assert made_once(factory, "thing", lambda d: str(d)) == str(factory.base / "thing")  # type: ignore[arg-type]
