"""`make install` lays out what BILLmanager expects, and the staged tree runs as it is.

The full install builds a real virtualenv from this checkout (non-editable) into a DESTDIR;
the launcher and cron checks use `make install-files` and a stand-in interpreter, so they
stay fast.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import made_once, run_wide_lock

# `make install` builds in the checkout's build/: every run of it holds the run-wide
# "checkout-build" lock, so two xdist workers never build side by side.

PREFIX = "/usr/local/mgr5"
APP_VENV = f"{PREFIX}/lib/pmdci6/venv"
RESTART_STEP = f"{PREFIX}/sbin/mgrctl -m billmgr -R"


@dataclass(frozen=True)
class Installed:
    destdir: Path
    output: str
    seconds: float

    @property
    def root(self) -> Path:
        return self.destdir / PREFIX.lstrip("/")

    @property
    def venv(self) -> Path:
        return self.destdir / APP_VENV.lstrip("/")

    @property
    def launcher(self) -> Path:
        return self.root / "processing" / "pmdci6"

    def site_packages(self) -> Path:
        found = sorted(self.venv.glob("lib/python3.*/site-packages"))
        assert len(found) == 1, found
        return found[0]


def clean_env() -> dict[str, str]:
    """The caller's environment minus what would point the module or pip elsewhere."""
    env = dict(os.environ)
    for name in ("PMDCI6_MGR_ROOT", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"):
        env.pop(name, None)
    return env


def make(repo_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["make", "--no-print-directory", "-C", str(repo_root), *args],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=600,
    )
    assert proc.returncode == 0, f"make {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def run_install(repo_root: Path, destdir: Path,
                tmp_path_factory: pytest.TempPathFactory) -> Installed:
    with run_wide_lock(tmp_path_factory, "checkout-build"):
        started = time.monotonic()
        proc = make(repo_root, "install", f"DESTDIR={destdir}", f"PYTHON={sys.executable}")
        return Installed(destdir, proc.stdout, time.monotonic() - started)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, repo_root: Path) -> Installed:
    """One install per test run, shared by the xdist workers: its tests only read it (the
    reinstall test works on a copy)."""

    def build(directory: Path) -> dict[str, object]:
        done = run_install(repo_root, directory / "destdir", tmp_path_factory)
        return {"destdir": str(done.destdir), "output": done.output, "seconds": done.seconds}

    made = made_once(tmp_path_factory, "install", build)
    return Installed(Path(made["destdir"]), made["output"], made["seconds"])


@pytest.mark.slow  # builds a real virtualenv: about 10 s on an idle machine, 20 s under load
class TestFullInstall:
    def test_layout_and_modes(self, installed: Installed, repo_root: Path) -> None:
        launcher = installed.launcher
        assert launcher.is_file() and not launcher.is_symlink()
        assert mode(launcher) == 0o755
        assert launcher.read_bytes().startswith(b"#!/bin/sh\n")

        descriptor = installed.root / "etc" / "xml" / "billmgr_mod_pmdci6.xml"
        shipped = repo_root / "xml" / "billmgr_mod_pmdci6.xml"
        assert descriptor.read_bytes() == shipped.read_bytes()
        assert mode(descriptor) == 0o644

        cron = installed.destdir / "etc" / "cron.d" / "pmdci6"
        assert cron.read_text() == (repo_root / "etc" / "cron.pmdci6").read_text()
        assert mode(cron) == 0o644

        assert (installed.venv / "bin" / "python").exists()
        assert (installed.venv / "bin" / "pmdci6").is_file()
        leftovers = sorted(p.name for p in installed.venv.parent.iterdir())
        assert leftovers == ["venv"]

    def test_prints_the_restart_step(self, installed: Installed) -> None:
        assert RESTART_STEP in installed.output

    def test_venv_holds_a_built_copy_of_every_tracked_module_file(
        self, installed: Installed, repo_root: Path
    ) -> None:
        site = installed.site_packages()
        assert not list(site.glob("__editable__*")), "installed editable"
        for pth in site.glob("*.pth"):
            assert str(repo_root) not in pth.read_text(), f"{pth.name} points back at the checkout"
        tracked = subprocess.run(
            ["git", "-C", str(repo_root), "ls-files", "dci6_processing"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert tracked
        missing = [name for name in tracked if not (site / name).is_file()]
        assert missing == [], "tracked files not shipped (package-data in pyproject.toml?)"

        where = subprocess.run(
            [
                str(installed.venv / "bin" / "python"),
                "-c",
                "import dci6_processing; print(dci6_processing.__file__)",
            ],
            capture_output=True,
            text=True,
            cwd=installed.destdir,
            env=clean_env(),
            check=True,
        ).stdout.strip()
        assert Path(where).is_relative_to(site)

    def test_baked_paths_name_the_final_prefix(self, installed: Installed) -> None:
        script = (installed.venv / "bin" / "pmdci6").read_text().splitlines()[0]
        assert script == f"#!{APP_VENV}/bin/python"
        staged = os.fsencode(installed.destdir)
        for path in [*(installed.venv / "bin").iterdir(), installed.venv / "pyvenv.cfg"]:
            if path.is_file() and not path.is_symlink():
                assert staged not in path.read_bytes(), path

    def test_staged_launcher_prints_features_xml(self, installed: Installed) -> None:
        proc = subprocess.run(
            [str(installed.launcher), "--command", "features"],
            capture_output=True,
            cwd=installed.destdir,
            env=clean_env(),
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr.decode()
        doc = etree.fromstring(proc.stdout)
        assert doc.tag == "doc"
        assert doc.xpath("itemtypes/itemtype/@name") == ["dedic"]
        assert doc.xpath("params/param[@name='password']/@crypted") == ["yes"]
        assert doc.xpath("features/feature/@name"), "no feature listed"
        assert b"Traceback" not in proc.stderr

    def test_reinstall_replaces_the_venv_whole(
        self, installed: Installed, repo_root: Path, tmp_path: Path,
        tmp_path_factory: pytest.TempPathFactory,
    ) -> None:
        # a copy of the first install stands for "installed before" (the staged tree names
        # only the final prefix, so it can move): one venv build instead of two
        destdir = tmp_path / "destdir"
        shutil.copytree(installed.destdir, destdir, symlinks=True)
        stale = Installed(destdir, "", 0.0).venv / "stale-marker"
        stale.write_text("from the previous install")
        second = run_install(repo_root, destdir, tmp_path_factory)
        assert not stale.exists()
        assert sorted(p.name for p in second.venv.parent.iterdir()) == ["venv"]
        assert second.launcher.is_file()
        print(f"make install took {installed.seconds:.1f} s, then {second.seconds:.1f} s")


def cron_entries(text: str) -> list[str]:
    """The schedule lines of a cron.d file: no comments, blanks or VAR=value settings."""
    lines = [line.strip() for line in text.splitlines()]
    return [line for line in lines if line and line[0] != "#" and "=" not in line.split()[0]]


def install_files(repo_root: Path, destdir: Path, prefix: str) -> Path:
    make(repo_root, "install-files", f"DESTDIR={destdir}", f"PREFIX={prefix}")
    return destdir / prefix.lstrip("/")


def fake_interpreter(root: Path) -> None:
    """Stands in for the venv's python: prints the root it was given and its arguments."""
    python = root / "lib" / "pmdci6" / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text('#!/bin/sh\nprintf "%s\\n" "$PMDCI6_MGR_ROOT" "$@"\n')
    python.chmod(0o755)


def run_launcher(launcher: Path, env: dict[str, str], *args: str) -> list[str]:
    proc = subprocess.run(
        [str(launcher), *args], capture_output=True, text=True, env=env, timeout=30, check=True
    )
    return proc.stdout.splitlines()


class TestFilesForAnotherPrefix:
    def test_cron_runs_sync_every_5_minutes_under_flock_mailing_only_failures(
        self, repo_root: Path, tmp_path: Path
    ) -> None:
        install_files(repo_root, tmp_path, "/opt/mgr5")
        cron = (tmp_path / "etc" / "cron.d" / "pmdci6").read_text()
        assert cron.endswith("\n"), "cron ignores a last line without a newline"
        assert "/usr/local/mgr5" not in cron
        assert cron_entries(cron) == [
            "*/5 * * * * root flock -n /opt/mgr5/var/pmdci6.sync.lock "
            "/opt/mgr5/processing/pmdci6 --command sync >/opt/mgr5/var/pmdci6.sync.last 2>&1"
            " || cat /opt/mgr5/var/pmdci6.sync.last"
        ]

    def test_launcher_runs_its_own_trees_venv_with_that_root(
        self, repo_root: Path, tmp_path: Path
    ) -> None:
        root = install_files(repo_root, tmp_path, "/opt/mgr5")
        fake_interpreter(root)
        lines = run_launcher(root / "processing" / "pmdci6", clean_env(), "--command", "x y")
        assert lines == [
            str(root),
            str(root / "lib" / "pmdci6" / "venv" / "bin" / "pmdci6"),
            "--command",
            "x y",
        ]

    def test_launcher_leaves_an_explicit_root_alone(self, repo_root: Path, tmp_path: Path) -> None:
        root = install_files(repo_root, tmp_path, "/opt/mgr5")
        fake_interpreter(root)
        env = {**clean_env(), "PMDCI6_MGR_ROOT": "/somewhere/else"}
        assert run_launcher(root / "processing" / "pmdci6", env)[0] == "/somewhere/else"

    def test_launcher_symlinked_into_processing_serves_that_tree(
        self, repo_root: Path, tmp_path: Path
    ) -> None:
        source = install_files(repo_root, tmp_path / "source", "/opt/mgr5")
        tree = tmp_path / "tree"
        (tree / "processing").mkdir(parents=True)
        fake_interpreter(tree)
        link = tree / "processing" / "pmdci6"
        link.symlink_to(source / "processing" / "pmdci6")
        assert run_launcher(link, clean_env())[0] == str(tree)


def test_routes_example_installed_beside_and_never_over_the_admins_file(
    repo_root: Path, tmp_path: Path
) -> None:
    import tomllib

    root = install_files(repo_root, tmp_path, "/opt/mgr5")
    example = root / "etc" / "pmdci6" / "routes.toml.example"
    assert tomllib.loads(example.read_text()) == {}  # all commented out
    import re

    setting = re.compile(r"# (\[|[a-z]+ = )")
    uncommented = "\n".join(line.removeprefix("# ") for line in example.read_text().splitlines()
                            if setting.match(line))
    from dci6_processing.dci import overrides

    (tmp_path / "try.toml").write_text(uncommented)
    assert overrides.load(tmp_path / "try.toml").everywhere  # the examples are valid
    admins = root / "etc" / "pmdci6" / "routes.toml"
    admins.write_text('[route."server.get"]\nmethod = "GET"\n')
    install_files(repo_root, tmp_path, "/opt/mgr5")
    assert admins.read_text() == '[route."server.get"]\nmethod = "GET"\n'
