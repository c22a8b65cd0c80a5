"""TLS against the simulator serving HTTPS with a self-signed certificate, as most DCImanager
instances do: refused by default, accepted with its CA bundle, or with verification off."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from click.testing import CliRunner
from structlog.testing import capture_logs

from dci6_processing.dci import session as session_module
from dci6_processing.dci.client import DciClient
from dci6_processing.dci.errors import DciTlsError
from dci6_processing.doctor import doctor_command
from dci6_processing.errors import ErrorType
from pmdci6_sandbox.dcisim import DciSimulator, Inventory


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a self-signed certificate")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_sim(certificate: tuple[Path, Path]) -> Iterator[DciSimulator]:
    cert, key = certificate
    with DciSimulator(Inventory.default(), certfile=cert, keyfile=key) as simulator:
        yield simulator


def test_self_signed_is_refused_by_default(tls_sim: DciSimulator) -> None:
    assert tls_sim.url.startswith("https://")
    client = DciClient(tls_sim.url, tls_sim.admin_email, tls_sim.admin_password, timeout=5.0)
    with pytest.raises(DciTlsError) as caught:
        client.login()
    assert caught.value.type is ErrorType.tls_failed
    assert "certificate verify failed" in caught.value.value
    assert tls_sim.requests == []


def test_the_panels_ca_bundle_is_trusted(
    tls_sim: DciSimulator, certificate: tuple[Path, Path]
) -> None:
    client = DciClient(tls_sim.url, tls_sim.admin_email, tls_sim.admin_password, timeout=5.0,
                       verify=str(certificate[0]))
    assert client.server(1).id == 1


def test_verification_off_works_and_warns(tls_sim: DciSimulator) -> None:
    session_module._warned_insecure.discard(tls_sim.url)
    with capture_logs() as logs:
        client = DciClient(tls_sim.url, tls_sim.admin_email, tls_sim.admin_password,
                           timeout=5.0, verify=False)
        assert client.server(1).id == 1
    assert [e["log_level"] for e in logs if e["event"] == "dci.tls.verification_disabled"] == [
        "warning"]


def test_doctor_over_tls(tls_sim: DciSimulator, certificate: tuple[Path, Path]) -> None:
    base = ["--url", tls_sim.url, "--email", tls_sim.admin_email, "--password-env", "P"]
    env = {"P": tls_sim.admin_password}
    try:
        refused = CliRunner().invoke(doctor_command, base, env=env)
        assert refused.exit_code == 1
        assert "cannot log in: TLS handshake" in refused.stdout
        trusted = CliRunner().invoke(doctor_command, [*base, "--ca-bundle", str(certificate[0])],
                                     env=env)
        assert trusted.exit_code == 0, trusted.output
        assert f"TLS: verified with CA bundle {certificate[0]}" in trusted.stdout
        insecure = CliRunner().invoke(doctor_command, [*base, "--insecure"], env=env)
        assert insecure.exit_code == 0, insecure.output
        assert "TLS: NOT VERIFIED" in insecure.stdout
    finally:
        structlog.reset_defaults()
