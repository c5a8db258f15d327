"""Write-back into the interface table: idempotent by payment id, refusals as results."""
from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from gateway.his import PatientQuery, RefundWriteBack, WriteBack, WriteBackStatus
from his_adapters.dbview import DbViewHisAdapter

from .conftest import SeededHis

PAID_AT = dt.datetime(2024, 5, 20, 2, 30, tzinfo=dt.UTC)  # 10:30 in the hospital


def _payment(payment_id: str, charge: dict[str, Any], patient_id: str, amount: int | None = None) -> WriteBack:
    return WriteBack(payment_id=payment_id, out_trade_no=f"K-{payment_id}", app_id="kiosk",
                     amount=charge["amount"] if amount is None else amount, channel="wechatpay", method="code",
                     channel_trade_no="4200000001", paid_at=PAID_AT, patient_id=patient_id,
                     visit_no=charge["visit_no"], charge_ids=[charge["charge_id"]], bill_type=charge["bill_type"],
                     operator="ZZJ01")


async def _interface_row(his: DbViewHisAdapter, payment_id: str) -> dict[str, Any]:
    async with his.db.transaction("test", write=False) as s:
        (row,) = await s.execute(
            "SELECT amount, channel_code, bill_type, pay_time, charge_ids FROM pay_interface "
            "WHERE payment_id = :payment_id", {"payment_id": payment_id})
    return row


async def test_write_back_is_idempotent_by_payment_id(adapter: DbViewHisAdapter, his_db: SeededHis) -> None:
    patient = his_db.patient(2)
    (charge,) = his_db.data.pending[patient["patient_id"]]
    wb = _payment(f"PAY-{his_db.kind}-1", charge, patient["patient_id"])
    first = await adapter.write_back(wb)
    assert first.status is WriteBackStatus.RECORDED and first.his_serial and first.his_serial.startswith("JS")
    again = await adapter.write_back(wb)
    assert (again.status, again.his_serial) == (WriteBackStatus.RECORDED, first.his_serial)
    queried = await adapter.query_write_back(wb.payment_id)
    assert queried is not None and queried.his_serial == first.his_serial
    row = await _interface_row(adapter, wb.payment_id)
    assert str(row["channel_code"]) == "WX" and row["bill_type"] == "MZ" and row["charge_ids"] == charge["charge_id"]
    assert str(row["pay_time"]).startswith("2024-05-20 10:30:00")  # local wall clock
    # The HIS now considers the charge paid.
    assert await adapter.pending_charges(PatientQuery(patient_id=patient["patient_id"])) == []


async def test_query_of_an_unknown_payment_is_none(adapter: DbViewHisAdapter) -> None:
    assert await adapter.query_write_back("NO-SUCH-PAYMENT") is None


async def test_amount_mismatch_is_rejected_and_nothing_written(adapter: DbViewHisAdapter, his_db: SeededHis) -> None:
    patient = his_db.patient(6)
    (charge,) = his_db.data.pending[patient["patient_id"]]
    wb = _payment(f"PAY-{his_db.kind}-2", charge, patient["patient_id"], amount=charge["amount"] + 1)
    result = await adapter.write_back(wb)
    assert (result.status, result.error_code) == (WriteBackStatus.REJECTED, "AMOUNT_MISMATCH")
    assert result.error_message == "支付金额与待缴金额不一致"
    assert await adapter.query_write_back(wb.payment_id) is None
    assert len(await adapter.pending_charges(PatientQuery(patient_id=patient["patient_id"]))) == 1


async def test_unknown_charge_is_rejected(adapter: DbViewHisAdapter, his_db: SeededHis) -> None:
    charge = {"charge_id": "NO-SUCH", "amount": 100, "visit_no": None, "bill_type": "outpatient_settlement"}
    result = await adapter.write_back(_payment(f"PAY-{his_db.kind}-3", charge, "P0"))
    assert (result.status, result.error_code) == (WriteBackStatus.REJECTED, "CHARGE_NOT_PENDING")


async def test_concurrent_write_backs_of_one_payment_record_once(his_db: SeededHis) -> None:
    patient = his_db.patient(13)  # a pending deposit of 3000.00 yuan
    (charge,) = his_db.data.pending[patient["patient_id"]]
    wb = _payment(f"PAY-{his_db.kind}-4", charge, patient["patient_id"])
    adapters = [DbViewHisAdapter(his_db.config()) for _ in range(3)]
    try:
        results = await asyncio.gather(*(a.write_back(wb) for a in adapters))
        assert {r.status for r in results} == {WriteBackStatus.RECORDED}
        assert len({r.his_serial for r in results}) == 1
        row = await _interface_row(adapters[0], wb.payment_id)
        assert str(row["amount"]) in ("3000.00", "3000", "3000.0") and row["bill_type"] == "YJ"
    finally:
        for a in adapters:
            await a.aclose()


async def test_refund_write_back_is_idempotent(adapter: DbViewHisAdapter, his_db: SeededHis) -> None:
    rwb = RefundWriteBack(refund_id=f"REF-{his_db.kind}-1", payment_id="PAY-X", amount=1, total=1234567890,
                          refunded_at=PAID_AT, patient_id="P1000001", channel="alipay", reason="退号")
    first = await adapter.write_back_refund(rwb)
    assert first.status is WriteBackStatus.RECORDED and first.his_serial and first.his_serial.startswith("TF")
    assert (await adapter.write_back_refund(rwb)).his_serial == first.his_serial
    async with adapter.db.transaction("test", write=False) as s:
        (row,) = await s.execute("SELECT amount, channel_code FROM refund_interface WHERE refund_id = :refund_id",
                                 {"refund_id": rwb.refund_id})
    assert str(row["amount"]) in ("0.01",) and row["channel_code"] == "ZFB"
