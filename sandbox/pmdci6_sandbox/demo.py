"""`pmdci6-sandbox demo`: a whole order lifecycle on the sandbox, through the real binary,
exactly as BILLmanager would call it — printed as a timeline, with the hardware and billing
state after every call, and checked at the end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import requests
from lxml import etree

from pmdci6_sandbox.billmgr_host import BillmgrHost
from pmdci6_sandbox.dcisim import DciSimulator, Inventory

MODULE, TARIFF, ACCOUNT, ITEM = 1, 1, 7, 101
CLIENT = "client@example.com"
SECRET_PARAMS = ("password", "panel_password")
STATUS = {1: "Ordered", 2: "Active", 3: "Stopped", 4: "Deleted", 5: "Processing"}


@dataclass
class Timeline:
    started: float = field(default_factory=time.monotonic)
    failures: list[str] = field(default_factory=list)

    def say(self, what: str, detail: str = "") -> None:
        stamp = f"[{time.monotonic() - self.started:6.2f}s]"
        click.echo(f"{stamp} {what}" + (f"\n{' ' * 10}{detail}" if detail else ""))

    def expect(self, ok: bool, what: str) -> None:
        click.echo(f"{' ' * 10}{'✓' if ok else '✗'} {what}")
        if not ok:
            self.failures.append(what)


def _outcome(result: subprocess.CompletedProcess[bytes]) -> str:
    if result.returncode == 0:
        return "ok"
    try:
        error = etree.fromstring(result.stdout).find("error")
    except etree.XMLSyntaxError:
        return f"exit {result.returncode}"
    if error is None:
        return f"exit {result.returncode}"
    return f"error msg_error_{error.get('type')} ({error.get('object') or ''})"


def _posted(record: Any, func: str) -> bool:
    return func in [name for name, _ in record.events]


def _server_line(server: dict[str, Any]) -> str:
    ports = [c["admin_status"] for c in server["switch_connection"]
             if not c.get("is_ipmi_connection")]
    ips = [ip["name"] for ip in server["ip"]]
    op = server.get("operation") or {}
    os_name = (server.get("os_template") or {}).get("name") or "none (disks clean)"
    return (f"server #{server['id']} {server['name']} [{server['configuration']}] "
            f"owner={server['owner_email'] or '-'} power={server['power_status']} "
            f"ports={','.join(ports) or '-'} os={os_name} op={op.get('status') or '-'} "
            f"ips={', '.join(ips) or '-'}")


@click.command("demo")
@click.option("--time-scale", default=0.004, show_default=True,
              help="Real seconds per panel second: install takes 600 panel seconds.")
@click.option("--keep", is_flag=True, help="Keep the temporary BILLmanager root and print it.")
def demo_command(time_scale: float, keep: bool) -> None:
    """Run a whole order (open, suspend, resume, reboot, stop, start, go to panel, add an IP,
    sync, close) on the sandbox."""
    root = Path(tempfile.mkdtemp(prefix="pmdci6-demo-"))
    os.environ["PMDCI6_POLL_SECONDS"] = str(max(0.05, time_scale * 20))
    try:
        failures = _run(root / "mgr5", time_scale)
    finally:
        if keep:
            click.echo(f"BILLmanager root kept at {root / 'mgr5'}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    if failures:
        raise click.ClickException(f"{len(failures)} expectation(s) failed: {failures}")


def _run(root: Path, time_scale: float) -> list[str]:
    t = Timeline()
    with DciSimulator(Inventory.default(), time_scale=time_scale) as sim:
        host = BillmgrHost.create(root)
        t.say(f"sandbox: DCImanager 6 simulator at {sim.url}",
              f"{len(sim.servers())} servers; operations run at {time_scale} s per panel second")
        host.add_module(MODULE, url=sim.url, username=sim.admin_email,
                        password=sim.admin_password, by_server_type="on", verify_tls="on")
        host.add_tariff(TARIFF, configuration="EPYC-7302-256Gb-4x960SSD", os_template="1",
                        ipv4_pool="1", ipv6_pool="10", diag_template="Diag6", diag_pool="2",
                        shutdown_on_close="on", ports_off_on_close="on")
        host.add_client(ACCOUNT, CLIENT)
        host.add_service(ITEM, module=MODULE, pricelist=TARIFF, account_id=ACCOUNT,
                         params={"ostempl": "2", "hostname": "web1.client.example"},
                         addons={"ip": "2", "ip6": "1", "ip6_prefix": "64"})
        t.say(f"sandbox: BILLmanager root {root}",
              f"module {MODULE} -> simulator, tariff {TARIFF} (EPYC-7302-256Gb-4x960SSD), "
              f"client {CLIENT}, service {ITEM}: Debian 12, 2 IPv4, one IPv6 /64")

        def call(title: str, *argv: str, stdin: bytes | None = None,
                 expect_ok: bool = True) -> subprocess.CompletedProcess[bytes]:
            before = len(sim.requests)
            began = time.monotonic()
            result = host.run(*argv, stdin=stdin)
            spent = time.monotonic() - began
            outcome = _outcome(result)
            t.say(f"{title:<38} {outcome:<45} {spent:5.2f}s, {len(sim.requests) - before} "
                  f"panel requests")
            t.expect((result.returncode == 0) == expect_ok,
                     f"{'succeeds' if expect_ok else 'refused with a clear error'}")
            return result

        def state(check: Callable[[dict[str, Any], Any], list[tuple[bool, str]]]) -> None:
            record = host.service(ITEM)
            server_id = int(record.params.get("dci_server_id") or 0)
            server = sim.server(server_id) if server_id else {}
            if server:
                click.echo(f"{' ' * 10}{_server_line(server)}")
            shown = {k: v for k, v in record.params.items() if k not in SECRET_PARAMS}
            click.echo(f"{' ' * 10}billing: service {ITEM} {STATUS.get(record.status)} "
                       f"ips={[a for _, a in record.ips]} params={shown}")
            for ok, what in check(server, record):
                t.expect(ok, what)

        features = call("features", "--command", "features")
        names = [f.get("name") for f in etree.fromstring(features.stdout).iter("feature")]
        click.echo(f"{' ' * 10}features: {', '.join(str(n) for n in names)}")
        conn = (f"<doc><processingmodule><url>{sim.url}</url><username>{sim.admin_email}"
                f"</username><password>{{}}</password><verify_tls>on</verify_tls>"
                f"</processingmodule></doc>")
        call("check_connection (right password)", "--command", "check_connection",
             stdin=conn.format(sim.admin_password).encode())
        call("check_connection (wrong password)", "--command", "check_connection",
             stdin=conn.format("not-the-password").encode(), expect_ok=False)
        call("open (client paid)", "--command", "open", "--item", str(ITEM),
             "--runningoperation", "1")
        state(lambda s, r: [
            (r.params.get("panel_account") == "created" and "panel_password" in r.crypted_params,
             "the client's DCImanager login saved for the instruction, password crypted"),
            (r.status == 2, "service Active"),
            (s.get("owner_email") == CLIENT, "server owned by the client's DCImanager user"),
            ((s.get("os_template") or {}).get("id") == 2, "Debian 12 installed"),
            (len(r.ips) == 3, "2 IPv4 + 1 IPv6 recorded in BILLmanager"),
            (bool(r.params.get("password")) and "password" in r.crypted_params,
             "root password saved, crypted"),
        ])
        call("suspend (client did not pay)", "--command", "suspend", "--item", str(ITEM))
        state(lambda s, r: [(r.status == 3, "service Stopped"),
                            (all(c["admin_status"] == "down" for c in s["switch_connection"]
                                 if not c.get("is_ipmi_connection")), "switch ports down")])
        call("resume (client paid)", "--command", "resume", "--item", str(ITEM))
        state(lambda s, r: [(r.status == 2, "service Active"),
                            (all(c["admin_status"] == "up" for c in s["switch_connection"]
                                 if not c.get("is_ipmi_connection")), "switch ports up")])
        server_id = int(host.service(ITEM).params["dci_server_id"])
        resets = sim.power_actions(server_id).count("power_reset")
        call("reboot (client's button)", "--command", "reboot", "--item", str(ITEM),
             "--runningoperation", "2")
        state(lambda s, r: [
            (sim.power_actions(server_id).count("power_reset") == resets + 1,
             "DCImanager accepted one power_reset"),
            (_posted(r, "service.postreboot"), "reported with service.postreboot")])
        call("stop (client's button)", "--command", "stop", "--item", str(ITEM))
        state(lambda s, r: [(s.get("power_status") == "off", "server powered off"),
                            (r.params.get("dci_power_wish") == "off",
                             "the client's wish recorded (dci_power_wish=off)")])
        call("sync_item (cron)", "--command", "sync_item", "--item", str(ITEM))
        state(lambda s, r: [(s.get("power_status") == "off",
                             "the sync leaves a server its client stopped off")])
        call("start (client's button)", "--command", "start", "--item", str(ITEM))
        state(lambda s, r: [(s.get("power_status") == "on", "server powered on"),
                            (not r.params.get("dci_power_wish"), "the wish cleared")])
        panel = call("transition_controlpanel (Go to panel)", "--command",
                     "transition_controlpanel", "--item", str(ITEM))
        url = etree.fromstring(panel.stdout).findtext("url") or ""
        click.echo(f"{' ' * 10}browser goes to {url.rsplit('/', 1)[0]}/<one-time key>")
        opened = requests.get(url, allow_redirects=False, timeout=10)
        session = sim.session_user(opened.cookies.get("ses6") or "")
        t.expect(opened.status_code == 302 and session is not None
                 and session["email"] == CLIENT, "the key opens a session of the client")
        t.expect(requests.get(url, allow_redirects=False, timeout=10).status_code == 403,
                 "the key works once")
        host.set_addon(ITEM, "ip", "3")
        call("setparam (IPv4 addon 2 -> 3)", "--command", "setparam", "--item", str(ITEM))
        state(lambda s, r: [(len([i for i in s["ip"] if i["family"] == "ipv4"]) == 3,
                             "3 IPv4 addresses on the server"),
                            (len(r.ips) == 4, "4 addresses recorded in BILLmanager")])
        sim.update_server(server_id, power_status="off")
        t.say("drift: someone powered the server off in DCImanager")
        call("sync_item (cron)", "--command", "sync_item", "--item", str(ITEM))
        state(lambda s, r: [(s.get("power_status") == "on", "Active service powered back on")])
        call("close (service deleted)", "--command", "close", "--item", str(ITEM))
        state(lambda s, r: [
            (r.status == 4, "service Deleted"),
            (s.get("owner") is None, "owner released"),
            (s.get("os_template") is None, "disks wiped by diagnostics"),
            (s.get("power_status") == "off", "powered off"),
            (not [i for i in s["ip"] if i.get("status") != "temporary"], "addresses released"),
            (r.ips == [], "no addresses left on the service"),
        ])
        by_route = Counter(req.route for req in sim.requests)
        t.say(f"done: {len(sim.requests)} panel requests",
              ", ".join(f"{route} {n}" for route, n in by_route.most_common()))
        log = (root / "var" / "pmdci6.log").read_text()
        final = host.service(ITEM).params
        t.expect(sim.admin_password not in log and final.get("password", "x") not in log
                 and final.get("panel_password", "x") not in log,
                 "no password in the module log")
    t.say("all expectations met" if not t.failures else f"FAILED: {t.failures}")
    return t.failures
