"""bookkeeping.py: pmdci6's record on a service, read from its params and encoded back."""

from __future__ import annotations

import pytest

from dci6_processing.bookkeeping import Param, ServiceBookkeeping, encode
from dci6_processing.errors import ErrorType, ModuleError


def test_a_service_without_params_has_an_empty_record() -> None:
    record = ServiceBookkeeping.from_params({})
    assert record == ServiceBookkeeping()
    assert record.recorded_server() is None


def test_params_are_read_into_typed_fields() -> None:
    record = ServiceBookkeeping.from_params({
        "dci_server_id": " 42 ", "dci_install_operation": "7", "dci_diag_operation": " 9",
        "dci_drift": "DCImanager drift: x", "dci_manual": " ON ", "password": "pw",
        "hostname": "not ours",
    })
    assert (record.server_id, record.server_id_text) == (42, "42")
    assert (record.install_operation, record.diag_operation) == (7, 9)
    assert record.drift == "DCImanager drift: x" and record.root_password == "pw"
    assert record.manual is True
    assert "pw" not in repr(record)


@pytest.mark.parametrize("switch", ["off", "yes", "1", "", "onn"])
def test_only_on_exempts_a_service(switch: str) -> None:
    # the sync's SQL filter reads exactly 'on': the lifecycle must agree with it
    assert ServiceBookkeeping.from_params({"dci_manual": switch}).manual is False


def test_an_operation_id_that_is_no_number_is_not_ours() -> None:
    record = ServiceBookkeeping.from_params({"dci_install_operation": "None"})
    assert record.install_operation is None


def test_a_server_id_that_is_no_number_is_refused_by_the_lifecycle_and_quoted_by_the_sync(
) -> None:
    record = ServiceBookkeeping.from_params({"dci_server_id": "42; drop"})
    assert (record.server_id, record.server_id_text) == (None, "42; drop")
    with pytest.raises(ModuleError) as err:
        record.recorded_server()
    assert (err.value.type, err.value.object, err.value.value) == (
        ErrorType.invalid_param, "dci_server_id", "42; drop")


def test_changes_are_encoded_as_billmanager_stores_them() -> None:
    assert encode({"server_id": 17, "diag_operation": None, "drift": ""}) == {
        Param.SERVER_ID: "17", Param.DIAG_OPERATION: "", Param.DRIFT: ""}


def test_what_is_written_is_read_back() -> None:
    changes = encode({"server_id": 17, "install_operation": 5, "diag_operation": 6,
                      "drift": "d", "root_password": "pw"})
    record = ServiceBookkeeping.from_params({p.value: v for p, v in changes.items()})
    assert (record.server_id, record.install_operation, record.diag_operation, record.drift,
            record.root_password) == (17, 5, 6, "d", "pw")
