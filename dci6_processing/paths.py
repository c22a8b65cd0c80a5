"""Where everything BILLmanager owns lives: one root, overridable for tests and the sandbox.

Kept free of heavy imports: `features` uses it and must stay fast.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ROOT = "/usr/local/mgr5"
ROOT_ENV = "PMDCI6_MGR_ROOT"
MODULE_NAME = "pmdci6"


@dataclass(frozen=True)
class MgrPaths:
    root: Path

    @property
    def vendor_lib(self) -> Path:
        return self.root / "lib" / "python"

    @property
    def mgrctl(self) -> Path:
        return self.root / "sbin" / "mgrctl"

    @property
    def log_file(self) -> Path:
        return self.root / "var" / f"{MODULE_NAME}.log"

    @property
    def state_dir(self) -> Path:
        """Private module state: token cache, locks. Created 0700."""
        return self.root / "var" / MODULE_NAME

    @property
    def xml_dir(self) -> Path:
        return self.root / "etc" / "xml"

    @property
    def descriptor(self) -> Path:
        return self.xml_dir / f"billmgr_mod_{MODULE_NAME}.xml"

    @property
    def processing_dir(self) -> Path:
        return self.root / "processing"

    @property
    def do_nothing_flag(self) -> Path:
        """BILLmanager's maintenance switch: while it exists, lifecycle commands do nothing."""
        return self.root / "etc" / "billmgr.DoNothing"

    @property
    def debug_conf(self) -> Path:
        return self.root / "etc" / "debug.conf"

    @property
    def routes_file(self) -> Path:
        """The admin's route overrides (dci/overrides.py); `make install` never writes it."""
        return self.root / "etc" / MODULE_NAME / "routes.toml"

    def ensure_state_dir(self) -> Path:
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o700)
        return self.state_dir


def mgr_paths() -> MgrPaths:
    return MgrPaths(Path(os.environ.get(ROOT_ENV) or DEFAULT_ROOT))
