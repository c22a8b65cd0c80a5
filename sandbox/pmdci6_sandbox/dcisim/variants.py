"""Variant panels: a simulator that answers some routes elsewhere than pmdci6's table guesses.

pmdci6's inferred routes may differ on a real DCImanager 6. A variant moves a route, renames
the body fields it reads, or replaces per-server switch control with per-port control, and
its published API description (`openapi.py`) says so, as a real panel's Swagger would. Tests
use them to show that `pmdci6 doctor` names the difference and prints the routes.toml
override, and that with that override the whole lifecycle runs unchanged.

    DciSimulator(variant="owner-user")          pmdci6-sandbox dci --variant owner-user
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    moved: Mapping[str, str] = field(default_factory=dict)  # route -> its path here
    renames: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # std -> here
    removed: frozenset[str] = frozenset()  # routes this panel does not serve
    added: tuple[str, ...] = ()  # routes of simulator.EXTRA_ROUTES it serves


STANDARD = Variant("standard", "the routes exactly as pmdci6's route table has them")

VARIANTS: dict[str, Variant] = {
    variant.name: variant
    for variant in (
        STANDARD,
        Variant(
            "owner-user",
            "the owner is set with POST /api/dci/v3/server/{server_id}/user {\"user\": id}",
            moved={"server.owner.set": "/api/dci/v3/server/{server_id}/user"},
            renames={"server.owner.set": {"owner": "user"}},
        ),
        Variant(
            "switch-per-port",
            "switch ports are turned on and off one by one: POST "
            "/api/dci/v3/switch/{switch_id}/port/{port_id}/enable|disable; there is no "
            "per-server call",
            removed=frozenset({"server.switch_port.enable", "server.switch_port.disable"}),
            added=("switch.port.enable", "switch.port.disable"),
        ),
        Variant(
            "install-v2",
            "the OS is installed with POST /api/dci/v3/server/{server_id}/install "
            "{\"template\", \"host_name\", ...}",
            moved={"server.operation.install": "/api/dci/v3/server/{server_id}/install"},
            renames={"server.operation.install": {"os_template": "template",
                                                  "hostname": "host_name"}},
        ),
    )
}


def variant(name: str | None) -> Variant:
    """The variant called `name` (None: the standard panel); ValueError names the choices."""
    if name is None:
        return STANDARD
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown panel variant {name!r}; choose one of "
                         f"{', '.join(sorted(VARIANTS))}") from None
