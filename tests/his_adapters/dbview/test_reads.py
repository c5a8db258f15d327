"""Pending charges and daily bills read from the seeded views (PostgreSQL, MariaDB, SQLite)."""
from __future__ import annotations

import datetime as dt

import pytest

from gateway.errors import HisNotSupported, HisProtocolError
from gateway.his import HIS_BILL_TYPES, HisCapability, PatientQuery
from his_adapters.dbview import DbViewHisAdapter

from .conftest import DAY, SeededHis

UTC = dt.UTC


@pytest.mark.parametrize("identifier", ["patient_id", "card_no", "id_no"])
async def test_pending_by_patient_identifier(adapter: DbViewHisAdapter, his_db: SeededHis, identifier: str) -> None:
    patient = his_db.patient(4)
    charges = await adapter.pending_charges(PatientQuery(**{identifier: patient[identifier]}))
    expected = his_db.data.pending[patient["patient_id"]]
    assert [(c.charge_id, c.amount, len(c.items)) for c in charges] == [
        (e["charge_id"], e["amount"], e["items"]) for e in expected]
    charge = charges[0]
    assert charge.patient_id == patient["patient_id"] and charge.patient_name == patient["name"]
    assert charge.bill_type == "outpatient_settlement"
    assert sum(i.amount for i in charge.items) == charge.amount
    assert all(i.name and i.code and i.quantity == "1" for i in charge.items)
    # 09:00 + 7 min × 4 local (+08:00) is 01:28 UTC
    assert charge.created_at == dt.datetime(2024, 5, 20, 1, 28, tzinfo=UTC)


async def test_pending_by_visit_no_and_deposit(adapter: DbViewHisAdapter, his_db: SeededHis) -> None:
    patient = his_db.patient(5)  # an inpatient with a pending deposit, no prescription
    (expected,) = his_db.data.pending[patient["patient_id"]]
    charges = await adapter.pending_charges(PatientQuery(visit_no=expected["visit_no"]))
    assert [(c.charge_id, c.amount, c.bill_type, c.items) for c in charges] == [
        (expected["charge_id"], 300000, "inpatient_deposit", [])]


async def test_pending_none_and_unknown_patient(adapter: DbViewHisAdapter, his_db: SeededHis) -> None:
    assert await adapter.pending_charges(PatientQuery(patient_id=his_db.patient(1)["patient_id"])) == []
    assert await adapter.pending_charges(PatientQuery(card_no="NO-SUCH-CARD")) == []


async def test_pending_items_aggregated_from_rows(his_db: SeededHis) -> None:
    cfg = his_db.config()
    cfg["pending"].update(items="rows", items_sql=None, sql={"patient_id": (
        "SELECT c.charge_id, c.patient_id, c.total_amount, c.charge_type, i.item_code, i.item_name, i.qty, "
        "i.amount AS item_amount FROM v_pending_charges c JOIN v_pending_items i ON i.charge_id = c.charge_id "
        "WHERE c.patient_id = :patient_id ORDER BY c.charge_id, i.item_id")})
    cfg["pending"]["mapping"]["fields"] = {"charge_id": "charge_id", "patient_id": "patient_id",
                                           "amount": "total_amount", "charge_type": "charge_type"}
    cfg["pending"]["items_mapping"]["fields"]["amount"] = "item_amount"
    his = DbViewHisAdapter(cfg)
    try:
        patient = his_db.patient(8)
        charges = await his.pending_charges(PatientQuery(patient_id=patient["patient_id"]))
    finally:
        await his.aclose()
    (expected,) = his_db.data.pending[patient["patient_id"]]
    assert [(c.charge_id, c.amount, len(c.items)) for c in charges] == [
        (expected["charge_id"], expected["amount"], expected["items"])]
    assert charges[0].extra == {"charge_type": "MZ"}  # unmapped core names go to extra


async def test_pending_identifier_without_sql_is_not_supported(his_db: SeededHis) -> None:
    cfg = his_db.config()
    cfg["pending"]["sql"] = {"patient_id": cfg["pending"]["sql"]["patient_id"]}
    his = DbViewHisAdapter(cfg)
    with pytest.raises(HisNotSupported, match="card_no"):
        await his.pending_charges(PatientQuery(card_no="C1"))
    await his.aclose()


@pytest.mark.parametrize("bill_type", [b.value for b in HIS_BILL_TYPES])
async def test_daily_bills_of_the_four_types(adapter: DbViewHisAdapter, his_db: SeededHis, bill_type: str) -> None:
    bill = await adapter.daily_bill(DAY, bill_type)
    expected = his_db.data.bills[bill_type]
    assert bill.day == DAY and bill.bill_type == bill_type
    assert {line.his_serial for line in bill.lines} == expected["serials"]
    assert (bill.total_count, bill.total_amount) == (expected["count"], expected["total"])
    assert sum(1 for line in bill.lines if line.kind == "refund") == expected["refunds"]
    start = dt.datetime(2024, 5, 19, 16, tzinfo=UTC)  # local midnight in UTC
    assert all(start <= line.occurred_at < start + dt.timedelta(days=1) for line in bill.lines)
    assert all(line.bill_type == bill_type and line.raw["pay_serial"] == line.his_serial for line in bill.lines)
    assert {line.channel for line in bill.lines} <= {"wechatpay", "alipay", "unionpay", "CASH"}


async def test_bill_amounts_are_exact_and_day_bounded(adapter: DbViewHisAdapter) -> None:
    bill = await adapter.daily_bill(DAY, "outpatient_settlement")
    by_amount = {line.amount: line for line in bill.lines}
    assert by_amount[1].occurred_at == dt.datetime(2024, 5, 19, 16, tzinfo=UTC)  # 00:00:00 local
    assert by_amount[1234567890].occurred_at == dt.datetime(2024, 5, 20, 15, 59, 59, tzinfo=UTC)
    assert by_amount[6660].status == "cancelled"
    assert 7770 not in by_amount and 8880 not in by_amount  # the seconds before and after the day
    online = next(line for line in bill.lines if line.channel == "wechatpay")
    assert online.trade_no and online.channel_trade_no and online.operator == "ZZJ01"
    assert all(isinstance(line.amount, int) for line in bill.lines)


async def test_empty_day(adapter: DbViewHisAdapter) -> None:
    bill = await adapter.daily_bill(DAY - dt.timedelta(days=30), "inpatient_deposit")
    assert (bill.lines, bill.total_count, bill.total_amount) == ([], 0, 0)


async def test_summary_mismatch_is_a_protocol_error(his_db: SeededHis) -> None:
    cfg = his_db.config()
    cfg["bills"]["types"]["outpatient_registration"]["summary_sql"] = (
        "SELECT 1 AS line_count, 0 AS net_total FROM v_daily_bill WHERE bill_type = :bill_type "
        "GROUP BY bill_type")
    his = DbViewHisAdapter(cfg)
    try:
        with pytest.raises(HisProtocolError, match="summary says 1 lines"):
            await his.daily_bill(DAY, "outpatient_registration")
    finally:
        await his.aclose()


async def test_unmapped_status_code_is_a_protocol_error(his_db: SeededHis) -> None:
    cfg = his_db.config()
    cfg["bills"]["mapping"]["fields"]["status"] = {"src": "status", "values": {"1": "normal"}}
    his = DbViewHisAdapter(cfg)
    try:
        assert (await his.daily_bill(DAY, "inpatient_deposit")).lines  # all normal there
        with pytest.raises(HisProtocolError, match="'status' has code '0'"):
            await his.daily_bill(DAY, "outpatient_settlement")
    finally:
        await his.aclose()


async def test_unconfigured_bill_type_is_not_supported(adapter: DbViewHisAdapter) -> None:
    with pytest.raises(HisNotSupported, match="exam"):
        await adapter.daily_bill(DAY, "exam")


async def test_read_only_configuration_has_no_write_back(his_db: SeededHis) -> None:
    cfg = his_db.config()
    del cfg["write_back"], cfg["refund_write_back"]
    his = DbViewHisAdapter(cfg)
    assert his.capabilities == {HisCapability.PENDING, HisCapability.BILLS}
    assert his.supports(HisCapability.BILLS) and not his.supports(HisCapability.WRITE_BACK)
    assert DbViewHisAdapter.supports(HisCapability.WRITE_BACK)  # the class can, when configured
    with pytest.raises(HisNotSupported):
        await his.query_write_back("x")
    await his.aclose()
