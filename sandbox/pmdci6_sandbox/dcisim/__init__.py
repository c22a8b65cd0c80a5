"""A stateful DCImanager 6 simulator over real HTTP on loopback.

It serves the project's DCImanager 6 API contract (`dcimanager6-api.md`, from ISPsystem's
public API docs) so the real client, with its timeouts, retries and TLS options, is exercised:

    from pmdci6_sandbox.dcisim import DciSimulator, Inventory

    with DciSimulator(Inventory.default(), time_scale=0.0) as sim:
        sim.url, sim.admin_email, sim.admin_password
        sim.faults.burst_503(3); sim.fail_operations("install", reason="disk failed")

Routes (all under `sim.url`; every route but login needs `x-xsrf-token: <token>` or cookie
`ses6=<token>`, else 401 code 1001):

    POST   /api/auth/v4/public/token                      auth.token (201)
    GET    /api/dci/v3/server                              server.list
    GET    /api/dci/v3/server/configuration                server.configuration
    GET    /api/dci/v3/server/{id}                         server.get
    POST   /api/dci/v3/server/{id}/owner    {"owner": N}   server.owner.set
    DELETE /api/dci/v3/server/{id}/owner                   server.owner.remove
    POST   /api/dci/v3/server/{id}/switch_port/enable      server.switch_port.enable
    POST   /api/dci/v3/server/{id}/switch_port/disable     server.switch_port.disable
    POST   /api/dci/v3/server/{id}/power_on|power_off|power_reset   server.power_*
    POST   /api/dci/v3/server/{id}/operation/stop|install|diag      server.operation.*
    POST   /api/dci/v3/server/{id}/ip                      server.ip.add
    DELETE /api/dci/v3/ip/{ip_id}                          ip.remove
    GET    /api/dci/v3/user, POST /api/dci/v3/user         user.list, user.create
    GET    /api/dci/v3/os_template                         os_template.list
    GET    /api/dci/v3/location                            location.list
    GET    /api/ip/v3/ippool                               ippool.list
    POST   /api/auth/v4/user/{id}/key       {}             auth.user.key.create (201)
    GET    /auth/key-v4/{key}                              page.key_login (browser, no token)
    GET    /auth/login                                     page.login (browser, no token)

Lists take `where`, `orderby` and `limit` (grammar and escaping rule in
`dcisim.query`) and answer `{"list": [...], "size": <total>}`.

What the spec leaves open, and what this simulator chose (a real panel may differ):
- Errors follow the project's inferred table (401/1001 token, 401/1002 login, 404/1004 not
  found, 409/2001 owned, 400/2002 no switch connection, 400/2003 power rule, 409/2004 running
  operation, 409/2005 user exists, 409/3001 pool exhausted, 400/1000 malformed, 503, 500).
  An unknown path is 404/1004 "Not found", a known path with the wrong method 405/1000
  (both after the token check, so an anonymous caller learns nothing about routes).
- String comparisons in `where` are case-insensitive (MySQL collation); evaluation uses SQL
  three-valued logic (a null field is neither EQ nor NE anything). `where` also narrows the
  servers counted by `server/configuration`. Unknown field names are a 400.
- Any valid token may call any route but key creation (no other per-role permissions); login works
  for the admin and for users created with a password.
- Operations: install and diagnostics run on the panel clock (durations from the inventory,
  defaults 600 and 900 panel-seconds) times `time_scale`; with 0 they finish at the next
  read. Progress is `{"percent", "step"}`. Install sets `os_template` and `domain` (the
  hostname) when it starts and powers the server on when it ends ok; with `temporary_ipv4`
  it adds an address from the pool marked for deallocation with status "temporary", which
  stays until removed. Diagnostics hold a "temporary" address from the body's `ippool` (or the
  deallocation pool) until they end; ending ok clears `is_new`, and with `clear_disks` sets
  `os_template` to null. A failed or canceled operation changes nothing else. Stopping a
  server with no running operation is a no-op answering `{}`. Hung operations never finish
  (the panel's own 60-minute diagnostics cut-off is not simulated; stop them instead).
- Power: `power_status` changes `power` panel-seconds (default 5) after the request;
  `power_reset` ends "on" whatever the state before.
- Addresses: assigned ones have status "assigned"; entries carry `ippool`, `gateway` and
  `network` (the pool's network, or the subnet itself). IPv6 single addresses come from the
  pool's first /64 and subnets from the rest. Removing the last address is allowed.
- Login keys: only an administrator's token may create one (403/1006 otherwise, or always
  after `refuse_login_keys()`); a key is bound to its user, single use and valid an hour of
  wall time (`expire_login_keys()` ends them). Opening `/auth/key-v4/<key>` answers 302 to `/`
  with `Set-Cookie: ses6=<token>` of that user; a used, expired or unknown key is 403/1007.
  Accepted power requests are recorded in order (`power_actions()`).
- Users: roles are served exactly as the inventory gives them (array or "[@user]" string);
  users created over the API get the string form when their id is even.
- Faults count down per matching request; a dropped request is logged with status 0 and is
  not acted on; a slow request is acted on after its delay even if the client gave up.
"""

from pmdci6_sandbox.dcisim.faults import FaultPlan, Faults
from pmdci6_sandbox.dcisim.inventory import Inventory, InventoryError
from pmdci6_sandbox.dcisim.query import QuerySyntaxError
from pmdci6_sandbox.dcisim.simulator import ROUTES, DciSimulator, LoggedRequest, Route
from pmdci6_sandbox.dcisim.state import PanelError, is_free

__all__ = [
    "ROUTES",
    "DciSimulator",
    "FaultPlan",
    "Faults",
    "Inventory",
    "InventoryError",
    "LoggedRequest",
    "PanelError",
    "QuerySyntaxError",
    "Route",
    "is_free",
]
