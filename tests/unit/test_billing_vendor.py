"""VendorBilling against the stand-in BILLmanager host: every BillingPort method, through
the stand-in vendor library and mgrctl, as in production."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from dci6_processing import log
from dci6_processing.billing.port import BillingIp, BillingPort
from dci6_processing.billing.vendor import VendorBilling, mgrctl_command
from dci6_processing.errors import ErrorType, ModuleError
from dci6_processing.paths import MgrPaths
from pmdci6_sandbox.billmgr_host import BillmgrHost

PANEL_PASSWORD = "Panel-Only-S3cret"
ROOT_PASSWORD = "Root-Only-S3cret"
ITEM = 42
MODULE = 1
TARIFF = 10


@pytest.fixture
def host(tmp_path: Path) -> BillmgrHost:
    host = BillmgrHost.create(tmp_path / "mgr5")
    host.add_module(MODULE, url="dci.example.com/", username="admin@example.com",
                    password=PANEL_PASSWORD, by_server_type="off", location_id="2",
                    diagtimeout="", installtimeout_linux="90")
    host.add_tariff(TARIFF, configuration="i9-9900K-64Gb-2x1024NVMe", ipv4_pool="1",
                    check_email_verified="on")
    host.add_client(7, "client@example.com", user_id=70)
    host.add_service(ITEM, module=MODULE, pricelist=TARIFF, account_id=7,
                     params={"ostempl": "2", "dci_server_id": "17"},
                     addons={"ip": "2", "ip6": "1"}, ip_slots=1)
    return host


@pytest.fixture
def billing(host: BillmgrHost) -> VendorBilling:
    return VendorBilling(host.paths)


def test_is_a_billing_port(billing: VendorBilling) -> None:
    port: BillingPort = billing
    assert port is billing


# reading ------------------------------------------------------------------------------------

def test_service(billing: VendorBilling) -> None:
    service = billing.service(ITEM)
    assert (service.id, service.module, service.status) == (ITEM, MODULE, 1)
    assert (service.pricelist, service.account_id) == (TARIFF, 7)
    assert service.client_email == "client@example.com"
    assert service.client_email_verified is True
    assert service.userid == 70
    assert service.params == {"ostempl": "2", "dci_server_id": "17"}
    assert service.addons == {"ip": "2", "ip6": "1"}
    assert service.tariff.configuration == "i9-9900K-64Gb-2x1024NVMe"
    assert service.tariff.check_email_verified is True
    assert service.previous_pricelist is None
    assert service.order.ipv4_count == 2 and service.order.ipv6_count == 1
    assert service.bookkeeping.recorded_server() == 17


def test_service_with_unconfirmed_email_and_pending_tariff_change(
    host: BillmgrHost, billing: VendorBilling
) -> None:
    host.add_tariff(11, configuration="EPYC-7302-256Gb-4x960SSD")
    host.add_client(8, "new@example.com", email_verified=False)
    host.add_client(8, "second-user@example.com")
    host.add_service(43, module=MODULE, pricelist=11, lastpricelist=TARIFF, account_id=8)
    service = billing.service(43)
    assert service.client_email == "new@example.com"  # the account's first user
    assert service.client_email_verified is False
    assert service.previous_pricelist == TARIFF
    assert service.tariff.configuration == "EPYC-7302-256Gb-4x960SSD"


def test_unreadable_confirmation_flag_counts_as_unverified(
    host: BillmgrHost, billing: VendorBilling
) -> None:
    conn = sqlite3.connect(host.store_path)
    try:
        conn.execute("ALTER TABLE user DROP COLUMN email_confirmed")
        conn.commit()
    finally:
        conn.close()
    service = billing.service(ITEM)
    assert service.client_email == "client@example.com"
    assert service.client_email_verified is False


def test_unknown_service(billing: VendorBilling) -> None:
    with pytest.raises(ModuleError) as caught:
        billing.service(4242)
    assert (caught.value.type, caught.value.value) == (ErrorType.service_not_found, "4242")


def test_check_service_exists(billing: VendorBilling) -> None:
    billing.check_service_exists(ITEM)
    with pytest.raises(ModuleError) as caught:
        billing.check_service_exists(4242)
    assert (caught.value.type, caught.value.value) == (ErrorType.service_not_found, "4242")


def test_service_of_an_account_without_user(host: BillmgrHost, billing: VendorBilling) -> None:
    conn = sqlite3.connect(host.store_path)
    try:
        conn.execute("INSERT INTO account (id, name) VALUES (9, 'orphan')")
        conn.commit()
    finally:
        conn.close()
    host.add_service(44, module=MODULE, pricelist=TARIFF, account_id=9)
    with pytest.raises(ModuleError) as caught:
        billing.service(44)
    assert (caught.value.type, caught.value.object) == (ErrorType.billing_failed, "user")


def test_service_secrets_are_registered_for_the_log(
    host: BillmgrHost, billing: VendorBilling
) -> None:
    host.set_param(ITEM, "password", ROOT_PASSWORD)
    assert billing.service(ITEM).params["password"] == ROOT_PASSWORD
    assert log.redact(f"x {ROOT_PASSWORD} y") == "x *** y"


def test_module_settings(billing: VendorBilling) -> None:
    settings = billing.module_settings(MODULE)
    assert settings.url == "https://dci.example.com"
    assert settings.username == "admin@example.com"
    assert settings.password.get_secret_value() == PANEL_PASSWORD
    assert settings.by_server_type is False and settings.location_id == 2
    assert settings.diagtimeout == 60 and settings.installtimeout_linux == 90
    assert log.redact(PANEL_PASSWORD) == "***"


def test_module_settings_invalid(host: BillmgrHost, billing: VendorBilling) -> None:
    host.add_module(2, url="https://dci.example.com", username="not-an-email", password="x")
    with pytest.raises(ModuleError) as caught:
        billing.module_settings(2)
    assert (caught.value.type, caught.value.object) == (ErrorType.invalid_param, "username")


def test_modules_lists_only_this_module_type(host: BillmgrHost, billing: VendorBilling) -> None:
    host.add_module(3, url="https://dci2.example.com", username="a@example.com", password="x")
    host.add_foreign_module(2, "pmvmmanager6")
    assert billing.modules() == [MODULE, 3]


def test_services_holding_server(host: BillmgrHost, billing: VendorBilling) -> None:
    host.add_service(45, module=MODULE, pricelist=TARIFF, account_id=7, status=2,
                     params={"dci_server_id": "17"})
    host.add_service(46, module=MODULE, pricelist=TARIFF, account_id=7, status=4,
                     params={"dci_server_id": "17"})
    host.add_service(47, module=MODULE, pricelist=TARIFF, account_id=7,
                     params={"dci_server_id": "170"})
    host.add_foreign_module(2, "pmvmmanager6")
    host.add_service(48, module=2, pricelist=TARIFF, account_id=7,
                     params={"dci_server_id": "17"})
    assert billing.services_holding_server(17) == [ITEM, 45]
    assert billing.services_holding_server(170) == [47]
    assert billing.services_holding_server(5) == []


# writing ------------------------------------------------------------------------------------

def test_save_param(host: BillmgrHost, billing: VendorBilling) -> None:
    billing.save_param(ITEM, "hostname", "srv17.example.com")
    billing.save_param(ITEM, "password", ROOT_PASSWORD, crypted=True)
    record = host.service(ITEM)
    assert record.params["hostname"] == "srv17.example.com"
    assert record.params["password"] == ROOT_PASSWORD
    assert record.crypted_params == frozenset({"password"})
    saves = [args for func, args in record.events if func == "service.saveparam"]
    assert saves[0] == {"elid": str(ITEM), "sok": "ok", "hostname": "srv17.example.com",
                        "crypted": "off"}
    assert saves[1]["password"] == "***" and saves[1]["crypted"] == "on"
    vendor_log = host.root / "var" / "billmgr-vendor.log"
    assert ROOT_PASSWORD not in (vendor_log.read_text() if vendor_log.exists() else "")
    assert billing.service(ITEM).params["password"] == ROOT_PASSWORD


def test_a_secret_reaches_mgrctl_through_its_environment_not_its_argv() -> None:
    argv, env = mgrctl_command(Path("/usr/local/mgr5/sbin/mgrctl"), "service.saveparam",
                               {"sok": "ok", "elid": 42, "crypted": "on"},
                               {"password": ROOT_PASSWORD, "rootkey": PANEL_PASSWORD})
    assert argv == ["/usr/local/mgr5/sbin/mgrctl", "-m", "billmgr", "service.saveparam",
                    "sok=ok", "elid=42", "crypted=on", "out=bjson",
                    "-e", "password=$PMDCI6_SECRET_0", "-e", "rootkey=$PMDCI6_SECRET_1"]
    assert env == {"PMDCI6_SECRET_0": ROOT_PASSWORD, "PMDCI6_SECRET_1": PANEL_PASSWORD}
    assert not any(ROOT_PASSWORD in word or PANEL_PASSWORD in word for word in argv)


def test_save_bookkeeping_writes_each_field_once_and_the_password_crypted(
    host: BillmgrHost, billing: VendorBilling
) -> None:
    billing.save_bookkeeping(ITEM, server_id=18, install_operation=None,
                             root_password=ROOT_PASSWORD, drift="DCImanager drift: x")
    record = host.service(ITEM)
    assert record.params["dci_server_id"] == "18"
    assert record.params["dci_install_operation"] == ""
    assert record.crypted_params == frozenset({"password"})
    saves = [args for func, args in record.events if func == "service.saveparam"]
    assert [sorted(set(args) - {"elid", "sok", "crypted"}) for args in saves] == [
        ["dci_server_id"], ["dci_install_operation"], ["password"], ["dci_drift"]]
    assert [args["crypted"] for args in saves] == ["off", "off", "on", "off"]
    assert saves[2]["password"] == "***"
    bookkeeping = billing.service(ITEM).bookkeeping
    assert (bookkeeping.server_id, bookkeeping.install_operation, bookkeeping.root_password,
            bookkeeping.drift) == (18, None, ROOT_PASSWORD, "DCImanager drift: x")


def test_a_failed_secret_save_names_the_call_never_the_secret(
    host: BillmgrHost, billing: VendorBilling
) -> None:
    with pytest.raises(ModuleError) as err:
        billing.save_param(999_999, "password", ROOT_PASSWORD, crypted=True)
    assert err.value.type is ErrorType.billing_failed
    assert err.value.object == "service.saveparam"
    assert ROOT_PASSWORD not in f"{err.value} {err.value.value} {err.value.detail}"


def test_add_ip_fills_the_slot_first_then_adds_rows(
    host: BillmgrHost, billing: VendorBilling
) -> None:
    (slot,) = billing.service_ips(ITEM)
    assert slot.address == ""
    first = billing.add_ip(ITEM, "203.0.113.10", gateway="203.0.113.1", netmask="255.255.255.0")
    second = billing.add_ip(ITEM, "2001:db8:0:1::/64")
    assert first == slot.id and second != slot.id
    assert billing.service_ips(ITEM) == [
        BillingIp(first, "203.0.113.10"), BillingIp(second, "2001:db8:0:1::/64")]
    record = host.service(ITEM)
    assert record.committed_ips == {first, second}
    funcs = [func for func, _ in record.events]
    assert funcs == ["service.ip.add", "service.ip.add.commit"] * 2
    assert record.events[0][1]["gateway"] == "203.0.113.1"
    assert record.events[0][1]["mask"] == "255.255.255.0"


def test_add_ip_again_is_a_no_op(host: BillmgrHost, billing: VendorBilling) -> None:
    first = billing.add_ip(ITEM, "203.0.113.10")
    calls = len(host.mgrctl_log())
    assert billing.add_ip(ITEM, "203.0.113.10") == first
    assert len(host.mgrctl_log()) == calls
    assert len(billing.service_ips(ITEM)) == 1


def test_remove_ip(billing: VendorBilling) -> None:
    ip_id = billing.add_ip(ITEM, "203.0.113.10")
    billing.remove_ip(ip_id)
    assert billing.service_ips(ITEM) == []


def test_remove_unknown_ip_is_billing_failed(billing: VendorBilling) -> None:
    with pytest.raises(ModuleError) as caught:
        billing.remove_ip(999)
    err = caught.value
    assert (err.type, err.object, err.value) == (ErrorType.billing_failed, "del_ip", "missed elid")


@pytest.mark.parametrize(
    ("event", "func", "status"),
    [("open", "service.postopen", 2), ("suspend", "service.postsuspend", 3),
     ("resume", "service.postresume", 2), ("close", "service.postclose", 4),
     ("setparam", "service.postsetparam", 1), ("reboot", "service.postreboot", 1),
     ("start", "service.poststart", 1), ("stop", "service.poststop", 1)],
)
def test_post(host: BillmgrHost, billing: VendorBilling, event: str, func: str,
              status: int) -> None:
    billing.post(ITEM, event)  # type: ignore[arg-type]
    record = host.service(ITEM)
    assert record.status == status
    assert record.events == [(func, {"elid": str(ITEM), "sok": "ok"})]


def test_postopen_carries_fields(host: BillmgrHost, billing: VendorBilling) -> None:
    billing.post(ITEM, "open", ip="203.0.113.10")
    assert host.service(ITEM).events == [
        ("service.postopen", {"elid": str(ITEM), "sok": "ok", "ip": "203.0.113.10"})]


def test_set_status_message(host: BillmgrHost, billing: VendorBilling) -> None:
    billing.set_status_message(ITEM, "server 17 now belongs to someone else")
    assert host.service(ITEM).status_message == "server 17 now belongs to someone else"


def test_record_operation_error(host: BillmgrHost, billing: VendorBilling) -> None:
    billing.record_operation_error(
        5, ModuleError(ErrorType.no_free_server, "i9-9900K-64Gb-2x1024NVMe", "location 2"))
    (recorded,) = host.operation_errors()
    assert recorded.runningoperation == 5 and not recorded.manual
    assert 'type="no_free_server"' in recorded.errorxml
    assert "location 2" in recorded.errorxml


def test_create_manual_task(host: BillmgrHost, billing: VendorBilling) -> None:
    billing.create_manual_task(ITEM, 5, "open", "no free server of this configuration")
    (task,) = host.tasks()
    assert (task.item, task.runningoperation, task.type) == (ITEM, 5, "dedic_manual")
    assert task.comment == "no free server of this configuration"
    (operation,) = host.operation_errors()
    assert operation.manual and operation.item == ITEM


def test_create_manual_task_without_running_operation(
    host: BillmgrHost, billing: VendorBilling
) -> None:
    billing.create_manual_task(ITEM, None, "sync_item", "check the server by hand")
    (task,) = host.tasks()
    assert (task.item, task.runningoperation, task.comment) == (
        ITEM, None, "check the server by hand")
    assert host.operation_errors() == []


def test_no_task_without_a_department(host: BillmgrHost, billing: VendorBilling) -> None:
    host.set_task_type("*", "")
    billing.create_manual_task(ITEM, 5, "open", "nobody to tell")
    billing.create_manual_task(ITEM, None, "open", "nobody to tell")
    assert host.tasks() == []


def test_rollback_tariff_change(host: BillmgrHost, billing: VendorBilling) -> None:
    host.add_tariff(11, configuration="EPYC-7302-256Gb-4x960SSD")
    host.add_service(43, module=MODULE, pricelist=11, lastpricelist=TARIFF, account_id=7)
    billing.rollback_tariff_change(43, 70)
    record = host.service(43)
    assert record.pricelist == TARIFF
    assert record.events[-1] == (
        "service.changepricelist.rollback", {"elid": "43", "sok": "ok", "userid": "70"})
    assert billing.service(43).previous_pricelist is None


def test_sync_catalogue(host: BillmgrHost, billing: VendorBilling) -> None:
    billing.sync_catalogue(MODULE, "configuration", [("a", "Config A"), ("b", "Config B")])
    assert host.catalogue(MODULE, "configuration") == [("a", "Config A"), ("b", "Config B")]
    billing.sync_catalogue(MODULE, "configuration", [("b", "Config B"), ("c", "Config C")])
    assert host.catalogue(MODULE, "configuration") == [("b", "Config B"), ("c", "Config C")]
    billing.sync_catalogue(MODULE, "configuration", [("a", "Config A")])
    assert host.catalogue(MODULE, "configuration") == [("a", "Config A")]


# failures and loading -----------------------------------------------------------------------

def test_missing_vendor_library(tmp_path: Path) -> None:
    billing = VendorBilling(MgrPaths(tmp_path / "nowhere"))
    with pytest.raises(ModuleError) as caught:
        billing.modules()
    err = caught.value
    assert (err.type, err.object) == (ErrorType.billing_failed, "vendor_library")
    assert err.value == str(tmp_path / "nowhere" / "lib" / "python")


def test_failing_mgrctl_is_billing_failed(host: BillmgrHost, billing: VendorBilling) -> None:
    host.paths.mgrctl.write_text("#!/bin/sh\necho 'mgrctl: broken' >&2\nexit 3\n")
    with pytest.raises(ModuleError) as caught:
        billing.post(ITEM, "suspend")
    err = caught.value
    assert (err.type, err.object) == (ErrorType.billing_failed, "postsuspend")
    assert "broken" in err.detail


def test_a_second_root_in_the_same_process_is_refused(tmp_path: Path, host: BillmgrHost) -> None:
    """One process serves one BILLmanager root: the adapter never swaps the vendor library
    it imported for another root's."""
    other = BillmgrHost.create(tmp_path / "other")
    assert VendorBilling(host.paths).modules() == [MODULE]
    with pytest.raises(ModuleError) as caught:
        VendorBilling(other.paths).modules()
    assert (caught.value.type, caught.value.object) == (ErrorType.billing_failed, "vendor_library")
    billmgr = sys.modules["billmgr"]
    assert Path(str(billmgr.__file__)).is_relative_to(host.paths.vendor_lib)


def test_each_root_gets_its_own_library_in_its_own_process(
    tmp_path: Path, host: BillmgrHost
) -> None:
    other = BillmgrHost.create(tmp_path / "other")
    other.add_module(9, url="https://other.example.com", username="o@example.com",
                     password="x")
    probe = (
        "import sys\n"
        "from pathlib import Path\n"
        "from dci6_processing.billing.vendor import VendorBilling\n"
        "from dci6_processing.paths import MgrPaths\n"
        "print(VendorBilling(MgrPaths(Path(sys.argv[1]))).modules())\n"
    )
    for root, modules in ((host.root, [MODULE]), (other.root, [9])):
        done = subprocess.run([sys.executable, "-c", probe, str(root)], capture_output=True,
                              text=True, timeout=60, check=True)
        assert done.stdout.strip() == str(modules)
