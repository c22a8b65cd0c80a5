"""The product wheel holds only the product: no sandbox, no simulator, no stand-in vendor
library `billmgr`, no `mgrctl` stand-in. Those live in the `pmdci6-sandbox` distribution
(sandbox/), which is never installed on a billing host."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import made_once
from tests.unit.test_install import clean_env

pytestmark = pytest.mark.slow  # a real build: a few seconds


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory: pytest.TempPathFactory, repo_root: Path) -> list[str]:
    """The wheel pip builds from a copy of the checkout's tracked files (a fresh clone, and
    no build/ shared with `make install` running in another test worker); built once per
    test run, whichever xdist workers run these tests."""
    names: list[str] = made_once(tmp_path_factory, "wheel",
                                 lambda directory: _build_wheel(directory, repo_root))
    return names


def _build_wheel(directory: Path, repo_root: Path) -> list[str]:
    source = directory / "clone"
    tracked = subprocess.run(
        ["git", "-C", str(repo_root), "ls-files", "-z", "--cached", "--others",
         "--exclude-standard"],
        capture_output=True, check=True, timeout=60,
    ).stdout.decode().split("\0")
    for name in filter(None, tracked):
        if (repo_root / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo_root / name, source / name)
    out = directory / "wheel"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", ".", "-w", str(out)],
        cwd=source,
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [wheel] = out.glob("pmdci6-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def test_wheel_holds_the_product(wheel_files: list[str], repo_root: Path) -> None:
    modules = {
        str(path.relative_to(repo_root))
        for path in (repo_root / "dci6_processing").rglob("*.py")
    }
    assert modules <= set(wheel_files)
    assert "dci6_processing/commands.py" in wheel_files


def test_wheel_holds_no_sandbox_file(wheel_files: list[str]) -> None:
    banned = ("pmdci6_sandbox", "dcisim", "billmgr", "mgrctl", "sandbox", "vendor/")
    leaked = [name for name in wheel_files if any(word in name.lower() for word in banned)]
    assert leaked == []
    top_level = {name.split("/", 1)[0] for name in wheel_files}
    assert {t for t in top_level if not t.endswith(".dist-info")} == {"dci6_processing"}
