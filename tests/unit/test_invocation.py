"""`invocation.dci_client`: the one place a DCImanager client is built from module settings."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
import responses
from pydantic import SecretStr

from dci6_processing.invocation import Invocation, dci_client
from dci6_processing.paths import MgrPaths
from dci6_processing.settings import ModuleSettings

URL = "https://dci.example"
EMAIL = "admin@example.com"
PASSWORD = "S3cret-pa55"


@pytest.fixture
def panel() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(f"{URL}/api/auth/v4/public/token", status=201,
                  json={"id": "6", "token": "6-abcdef", "expires_at": None, "confirmed": True})
        yield mock


def settings(**fields: object) -> ModuleSettings:
    return ModuleSettings(url="dci.example/", username=EMAIL, password=SecretStr(PASSWORD),
                          **fields)  # type: ignore[arg-type]


def test_the_invocation_client_shares_the_token_cache(
    tmp_path: Path, panel: responses.RequestsMock
) -> None:
    paths = MgrPaths(tmp_path)
    client = Invocation(command="open", paths=paths).dci(settings())
    assert client.url == URL
    client.login()
    assert len(list((paths.state_dir / "tokens").iterdir())) == 1


def test_without_paths_every_process_logs_in_afresh() -> None:
    # check_connection must test the typed password, never a token cached by another process
    assert dci_client(settings())._session._cache is None


def test_tls_choice_comes_from_the_settings_unless_overridden(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("not checked here\n")
    assert dci_client(settings(verify_tls="off"))._session.verify is False
    assert dci_client(settings(ca_bundle=str(bundle)))._session.verify == str(bundle)
    assert dci_client(settings(), verify=False)._session.verify is False


def test_no_other_module_builds_a_client(repo_root: Path) -> None:
    """DciClient( is called in invocation.py only (the tests and benches may build their own)."""
    callers = []
    for path in sorted((repo_root / "dci6_processing").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("DciClient", "DciSession")):
                callers.append(f"{path.relative_to(repo_root)}:{node.func.id}")
    assert callers == ["dci6_processing/dci/client.py:DciSession",
                       "dci6_processing/invocation.py:DciClient"]
