"""Every error a BILLmanager admin can meet, by its `msg_error_<type>` name.

BILLmanager shows the descriptor's message `msg_error_<type>` for an error XML of that type,
so each member here has an English and a Russian message in xml/billmgr_mod_pmdci6.xml
(tests/unit/test_descriptor.py checks it). Raise `ModuleError(ErrorType.X, ...)`; never a bare
string type. Kept free of heavy imports: the CLI's last-resort error path uses it.

An error is never changed after it is built (`ModuleError` refuses it): its `str()` is what
it said when raised. To add context, raise a new error `from` the old one.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorType(StrEnum):
    # invocation and input
    bad_input = "bad_input"  # stdin XML malformed or missing
    missing_option = "missing_option"  # e.g. --item not given for open
    unknown_command = "unknown_command"
    invalid_param = "invalid_param"  # a setting/param out of range or malformed (object=name)
    bad_url = "bad_url"  # the module's DCImanager URL is not scheme://host[:port] (value: why)
    bad_hostname = "bad_hostname"  # the order's hostname is not an RFC 1123 name
    internal = "internal"  # unexpected failure; details only in the log
    bad_routes = "bad_routes"  # etc/pmdci6/routes.toml is invalid (object: file and route)
    # BILLmanager side
    billing_failed = "billing_failed"  # vendor library / mgrctl call failed
    service_not_found = "service_not_found"
    # reaching the panel
    panel_unreachable = "panel_unreachable"  # DNS, refused, dropped, timed out
    tls_failed = "tls_failed"
    bad_credentials = "bad_credentials"
    panel_busy = "panel_busy"  # 503 after every retry
    panel_error = "panel_error"  # any other panel error: value carries the panel's message
    route_mismatch = "route_mismatch"  # 405 / non-JSON 404: the route table differs (object=route)
    panel_answer_too_large = "panel_answer_too_large"  # object=route, value names the limit
    panel_timeout = "panel_timeout"  # a route's answer missed its deadline (object=route)
    not_found = "not_found"  # a panel object (server, user, ip) does not exist
    # choosing and owning a server
    no_free_server = "no_free_server"  # object=configuration
    server_in_use = "server_in_use"  # preset dci_server_id already has an owner
    server_not_found = "server_not_found"  # the service's server is gone from the panel
    server_busy = "server_busy"  # another process works on this service/server now
    user_is_admin = "user_is_admin"
    email_not_verified = "email_not_verified"
    owner_mismatch = "owner_mismatch"  # drift: server no longer belongs to the service's user
    no_switch_connection = "no_switch_connection"
    # the client's own actions (reboot, start, stop, go to panel)
    service_not_active = "service_not_active"  # object=service, value=its status
    server_in_maintenance = "server_in_maintenance"  # object=server id
    server_operation_running = "server_operation_running"  # object=server id, value=operation
    power_refused = "power_refused"  # the panel refused a power action (value: its reason)
    # catalogue
    configuration_not_found = "configuration_not_found"
    os_template_not_found = "os_template_not_found"
    ip_pool_not_found = "ip_pool_not_found"
    location_not_found = "location_not_found"
    pool_exhausted = "pool_exhausted"
    # operations
    operation_failed = "operation_failed"  # value carries the panel's status_info
    operation_timeout = "operation_timeout"
    tariff_change_unsupported = "tariff_change_unsupported"
    sync_running = "sync_running"  # another cron sync holds the lock
    sync_failed = "sync_failed"  # some services could not be reconciled (value: the run's summary)


class ModuleError(Exception):
    """An error reported to BILLmanager as `<error type=... object=... value=...>`.

    `object` names the thing at fault (a param name, a configuration, a server id) and
    `value` the offending value or the panel's reason. Neither may contain a secret.
    `detail` goes to the log only. Sealed once built: setting a field raises AttributeError
    (subclasses set their own fields before calling this `__init__`).
    """

    _sealed = False

    def __init__(
        self,
        type: ErrorType,
        object: str = "",
        value: str = "",
        *,
        detail: str = "",
    ) -> None:
        self.type = ErrorType(type)
        self.object = str(object)
        self.value = str(value)
        self.detail = detail
        super().__init__(f"{self.type}: object={self.object!r} value={self.value!r}")
        self._sealed = True

    def __setattr__(self, name: str, value: object) -> None:
        # dunders stay writable: Python itself sets __traceback__, __cause__, __notes__
        if self._sealed and not name.startswith("__"):
            raise AttributeError(f"{type(self).__name__} is sealed once built: raise a new "
                                 f"error (from this one) instead of setting {name!r}")
        super().__setattr__(name, value)

    @property
    def msg_name(self) -> str:
        return f"msg_error_{self.type}"


class LockBusy(ModuleError):
    """Another process holds the lock (of a service, the claim or the sync) right now."""

    def __init__(self, what: str) -> None:
        super().__init__(ErrorType.server_busy, object=what)
