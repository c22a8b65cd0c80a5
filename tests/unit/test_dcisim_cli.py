"""`pmdci6-sandbox dci`: serves until stopped, never prints the admin password."""

from __future__ import annotations

import json
import os
import queue
import signal
import stat
import subprocess
import threading
import time
from pathlib import Path

import requests
from click.testing import CliRunner

from pmdci6_sandbox.cli import sandbox_group, write_secret_file
from pmdci6_sandbox.dcisim import Inventory


def read_banner(process: subprocess.Popen[str], lines: int, timeout: float = 30) -> list[str]:
    """The first `lines` lines of stdout, read in a thread so a silent process cannot hang us."""
    assert process.stdout is not None
    stdout = process.stdout
    received: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for _ in range(lines):
            received.put(stdout.readline())

    threading.Thread(target=pump, daemon=True).start()
    banner: list[str] = []
    deadline = time.monotonic() + timeout
    while len(banner) < lines:
        try:
            line = received.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"no banner from the simulator: {banner}") from None
        assert line, f"the simulator exited: {banner}"
        banner.append(line.rstrip("\n"))
    return banner


def test_serves_prints_url_and_writes_the_password_0600(sandbox_bin: Path, tmp_path: Path) -> None:
    password_file = tmp_path / "admin-password"
    process = subprocess.Popen(
        [str(sandbox_bin), "dci", "--port", "0", "--servers", "300",
         "--time-scale", "0", "--password-file", str(password_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        banner = read_banner(process, 4)
        url = banner[0].rsplit(" ", 1)[-1]
        assert url.startswith("http://127.0.0.1:")
        assert "admin@sandbox.example" in banner[1]
        assert str(password_file) in banner[2]
        assert "servers: 300" in banner[3]
        assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
        password = password_file.read_text().strip()
        assert len(password) >= 16
        login = requests.post(
            f"{url}/api/auth/v4/public/token",
            json={"email": "admin@sandbox.example", "password": password},
            timeout=10,
        )
        assert login.status_code == 201
        servers = requests.get(
            f"{url}/api/dci/v3/server",
            params={"limit": "0,1"},
            headers={"x-xsrf-token": login.json()["token"]},
            timeout=10,
        )
        assert servers.json()["size"] == 300
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0
    assert password not in "\n".join(banner) + stdout + stderr


def test_default_password_file_is_private_and_removed_on_stop(sandbox_bin: Path) -> None:
    process = subprocess.Popen(
        [str(sandbox_bin), "dci"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        banner = read_banner(process, 3)
        password_file = Path(banner[2].rsplit(" ", 1)[-1])
        assert stat.S_IMODE(password_file.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert not password_file.exists() and not password_file.parent.exists()


def test_inventory_file_option(sandbox_bin: Path, tmp_path: Path) -> None:
    document = Inventory.default().to_document()
    document["servers"] = document["servers"][:5]
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps(document))
    process = subprocess.Popen(
        [str(sandbox_bin), "dci", "--inventory", str(inventory),
         "--password-file", str(tmp_path / "pw")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert "servers: 5," in read_banner(process, 4)[3]
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)


def test_option_errors() -> None:
    runner = CliRunner()
    public = runner.invoke(sandbox_group, ["dci", "--host", "0.0.0.0"])  # noqa: S104
    assert public.exit_code == 2 and "loopback" in public.output
    both = runner.invoke(sandbox_group, ["dci", "--servers", "5", "--inventory", __file__])
    assert both.exit_code == 2 and "either" in both.output
    broken = runner.invoke(sandbox_group, ["dci", "--inventory", __file__])
    assert broken.exit_code == 1 and "cannot load the inventory" in broken.output
    assert runner.invoke(sandbox_group, ["dci", "--time-scale", "-1"]).exit_code == 2


def test_write_secret_file_tightens_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("old")
    os.chmod(path, 0o644)
    write_secret_file(path, "s3cret")
    assert path.read_text() == "s3cret\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
