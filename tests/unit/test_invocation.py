"""`invocation.dci_client`: the one place a DCImanager client is built from module settings."""

from __future__ import annotations

import ast
from pathlib import Path

import responses
from pydantic import SecretStr

from dci6_processing.invocation import Invocation, dci_client
from dci6_processing.paths import MgrPaths
from dci6_processing.settings import ModuleSettings
from tests.unit.test_dci_client import EMAIL, PASSWORD, URL, panel

__all__ = ["panel"]  # the client tests' fixture: a mock panel that lets anyone log in


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
    tokens = [p for p in (paths.state_dir / "tokens").iterdir() if p.name != "digest.key"]
    assert len(tokens) == 1  # beside the per-host key that digests passwords


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
