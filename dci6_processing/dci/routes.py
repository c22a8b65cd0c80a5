"""Every DCImanager 6 route the module uses, in ONE table.

Each route is marked CONFIRMED (found in ISPsystem's public docs or real client code) or
INFERRED (a real instance may answer elsewhere: fixing it is a one-line change here, and
`pmdci6 doctor` tells an admin which routes their instance answers). Nothing else in the
project writes a path: the client asks this table for one.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

HttpMethod = Literal["GET", "POST", "DELETE"]


class Confirmation(StrEnum):
    CONFIRMED = "confirmed"
    INFERRED = "inferred"


CONFIRMED = Confirmation.CONFIRMED
INFERRED = Confirmation.INFERRED


@dataclass(frozen=True)
class Route:
    """One call of the panel: `/api/<service>/<version>/<template>` with `{name}` slots."""

    name: str
    method: HttpMethod
    service: str
    version: str
    template: str
    confirmation: Confirmation
    note: str = ""

    @property
    def placeholders(self) -> tuple[str, ...]:
        return tuple(
            field for _, field, _, _ in string.Formatter().parse(self.template) if field
        )

    @property
    def changes_state(self) -> bool:
        return self.method != "GET"

    @property
    def pattern(self) -> str:
        """The path as documentation shows it, slots unfilled."""
        return f"/api/{self.service}/{self.version}/{self.template}"

    def path(self, **ids: int) -> str:
        """The request path with every slot filled by an integer id.

        Only integers are accepted so no value can add a path segment or a query.
        """
        expected = set(self.placeholders)
        if set(ids) != expected:
            raise ValueError(f"route {self.name} needs {sorted(expected)}, got {sorted(ids)}")
        for key, value in ids.items():
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"route {self.name}: {key} must be an integer id")
        return f"/api/{self.service}/{self.version}/{self.template.format(**ids)}"


ROUTES: tuple[Route, ...] = (
    Route("auth.token", "POST", "auth", "v4", "public/token", CONFIRMED),
    Route("server.list", "GET", "dci", "v3", "server", CONFIRMED),
    Route("server.get", "GET", "dci", "v3", "server/{server_id}", CONFIRMED),
    Route("server.configuration", "GET", "dci", "v3", "server/configuration", CONFIRMED),
    Route("user.list", "GET", "dci", "v3", "user", CONFIRMED,
          note="the list is confirmed; filtering it by e-mail is inferred"),
    Route("user.create", "POST", "dci", "v3", "user", CONFIRMED,
          note="the call is confirmed; the exact body is inferred"),
    Route("server.owner.set", "POST", "dci", "v3", "server/{server_id}/owner", INFERRED),
    Route("server.owner.remove", "DELETE", "dci", "v3", "server/{server_id}/owner", INFERRED),
    Route("server.switch_port.enable", "POST", "dci", "v3",
          "server/{server_id}/switch_port/enable", INFERRED),
    Route("server.switch_port.disable", "POST", "dci", "v3",
          "server/{server_id}/switch_port/disable", INFERRED),
    Route("server.power_on", "POST", "dci", "v3", "server/{server_id}/power_on", CONFIRMED),
    Route("server.power_off", "POST", "dci", "v3", "server/{server_id}/power_off", CONFIRMED),
    Route("server.power_reset", "POST", "dci", "v3", "server/{server_id}/power_reset", CONFIRMED),
    Route("server.operation.stop", "POST", "dci", "v3",
          "server/{server_id}/operation/stop", INFERRED),
    Route("server.operation.install", "POST", "dci", "v3",
          "server/{server_id}/operation/install", INFERRED),
    Route("server.operation.diag", "POST", "dci", "v3",
          "server/{server_id}/operation/diag", INFERRED),
    Route("server.ip.add", "POST", "dci", "v3", "server/{server_id}/ip", INFERRED),
    Route("ip.remove", "DELETE", "dci", "v3", "ip/{ip_id}", INFERRED),
    Route("ippool.list", "GET", "ip", "v3", "ippool", INFERRED),
    Route("os_template.list", "GET", "dci", "v3", "os_template", INFERRED),
    Route("location.list", "GET", "dci", "v3", "location", INFERRED),
    # DCImanager KB "how to sign in to the platform with a key": documented through the panel's
    # internal port (header Internal-Auth: on); an administrator's token calling it from outside
    # is inferred
    Route("auth.user.key.create", "POST", "auth", "v4", "user/{user_id}/key", INFERRED,
          note="a one-time login key for a user; documented only for the internal port"),
)

_PAGE_SLOT = re.compile(r"[A-Za-z0-9_-]{1,512}")


@dataclass(frozen=True)
class Page:
    """A page of the panel's web interface a client's browser is sent to (not an API call)."""

    name: str
    template: str
    confirmation: Confirmation
    note: str = ""

    def path(self, **slots: str) -> str:
        """The page path with every slot filled by an opaque token the panel issued; a value
        that could add a path segment, a query or a fragment is refused."""
        expected = {field for _, field, _, _ in string.Formatter().parse(self.template) if field}
        if set(slots) != expected:
            raise ValueError(f"page {self.name} needs {sorted(expected)}, got {sorted(slots)}")
        for key, value in slots.items():
            if not isinstance(value, str) or not _PAGE_SLOT.fullmatch(value):
                raise ValueError(f"page {self.name}: {key} is not a panel token")
        return "/" + self.template.format(**slots)


# DCImanager KB "how to sign in to the platform with a key": the key opens a session, one hour
KEY_LOGIN_PAGE = Page("page.key_login", "auth/key-v4/{key}", CONFIRMED)
# the platform's login form, where a client goes when no key could be made
LOGIN_PAGE = Page("page.login", "auth/login", INFERRED)

_BY_NAME: dict[str, Route] = {route.name: route for route in ROUTES}


def route(name: str) -> Route:
    """The route called `name`; a typo is a programming error, so KeyError."""
    return _BY_NAME[name]
