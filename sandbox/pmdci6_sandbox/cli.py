"""`pmdci6-sandbox ...`: run the sandbox's stand-ins by hand (`dci`: the simulator; `demo`)."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from pathlib import Path

import click

from pmdci6_sandbox.dcisim import DciSimulator, Inventory, InventoryError
from pmdci6_sandbox.dcisim.variants import VARIANTS


@click.group("pmdci6-sandbox")
def sandbox_group() -> None:
    """pmdci6's sandbox: a DCImanager 6 simulator on loopback and a whole-order demo."""


def write_secret_file(path: Path, secret: str) -> None:
    """Writes `secret` to a file only its owner can read (0600, also when it existed)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(descriptor, 0o600)
        os.write(descriptor, secret.encode() + b"\n")
    finally:
        os.close(descriptor)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)  # unwinds serve_forever so the password file is removed


@sandbox_group.command("dci")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="TCP port; 0 picks a free one.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Loopback address to bind (anything else is refused).")
@click.option("--inventory", "inventory_path", type=click.Path(exists=True, dir_okay=False,
              path_type=Path), help="Inventory JSON (default: the packaged sandbox inventory).")
@click.option("--servers", type=click.IntRange(1), default=None,
              help="Generate an inventory with this many servers instead.")
@click.option("--seed", type=int, default=1, show_default=True,
              help="Seed for --servers.")
@click.option("--time-scale", type=click.FloatRange(0), default=0.01, show_default=True,
              help="Real seconds per panel second (install takes 600 panel seconds); "
                   "0 finishes operations at the next poll.")
@click.option("--latency-ms", type=click.FloatRange(0), default=0.0, show_default=True,
              help="Delay every answer by this many milliseconds, as a real panel takes tens "
                   "of them; concurrent requests are still served concurrently.")
@click.option("--jitter-ms", type=click.FloatRange(0), default=0.0, show_default=True,
              help="Vary that delay uniformly by up to this many milliseconds either way.")
@click.option("--password-file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Where to write the admin password (0600). "
                                 "Default: a new private temporary directory.")
@click.option("--certfile", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Serve HTTPS with this certificate (PEM).")
@click.option("--keyfile", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Private key for --certfile, if not inside it.")
@click.option("--variant", type=click.Choice(sorted(VARIANTS)), default=None,
              help="Serve a variant panel whose routes differ from pmdci6's table "
                   "(see pmdci6_sandbox.dcisim.variants).")
def dci_command(
    port: int,
    host: str,
    inventory_path: Path | None,
    servers: int | None,
    seed: int,
    time_scale: float,
    latency_ms: float,
    jitter_ms: float,
    password_file: Path | None,
    certfile: Path | None,
    keyfile: Path | None,
    variant: str | None,
) -> None:
    """Serve a stateful DCImanager 6 simulator until interrupted."""
    if inventory_path is not None and servers is not None:
        raise click.UsageError("give either --inventory or --servers, not both")
    if keyfile is not None and certfile is None:
        raise click.UsageError("--keyfile needs --certfile")
    try:
        if servers is not None:
            inventory = Inventory.generate(servers=servers, seed=seed)
        elif inventory_path is not None:
            inventory = Inventory.load(inventory_path)
        else:
            inventory = Inventory.default()
    except (InventoryError, ValueError, OSError) as error:
        raise click.ClickException(f"cannot load the inventory: {error}") from error
    try:
        simulator = DciSimulator(
            inventory,
            time_scale=time_scale,
            host=host,
            port=port,
            certfile=certfile,
            keyfile=keyfile,
            variant=variant,
            latency_ms=latency_ms,
            jitter_ms=jitter_ms,
        )
        url = simulator.bind()
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--host") from error
    except OSError as error:
        raise click.ClickException(f"cannot listen on {host}:{port}: {error}") from error

    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # before the password file exists
    private_dir: Path | None = None
    try:
        if password_file is None:
            private_dir = Path(tempfile.mkdtemp(prefix="pmdci6-sandbox-"))  # created 0700
            password_file = private_dir / "admin-password"
        write_secret_file(password_file, inventory.admin_password)
        click.echo(f"DCImanager 6 simulator listening on {url}")
        click.echo(f"admin e-mail:        {inventory.admin_email}")
        click.echo(f"admin password file: {password_file}")
        click.echo(f"servers: {len(inventory.servers)}, time scale: {time_scale}, "
                   f"latency: {latency_ms:g} ± {jitter_ms:g} ms; Ctrl-C stops")
        click.echo(f"variant: {simulator.variant.name} ({simulator.variant.description}); "
                   f"API description at {url}/swagger/")
        simulator.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped")
    finally:
        simulator.stop()
        if private_dir is not None:
            shutil.rmtree(private_dir, ignore_errors=True)


def main() -> None:
    from pmdci6_sandbox.demo import demo_command  # the demo needs the product; `dci` does not

    sandbox_group.add_command(demo_command)
    sandbox_group(prog_name="pmdci6-sandbox")
