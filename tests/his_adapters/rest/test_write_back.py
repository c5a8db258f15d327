"""Write-back (确认收费), its query and the refund write-back (退费回写), over HTTP."""
from __future__ import annotations

import datetime as dt

from gateway.his import RefundWriteBack, WriteBackStatus
from his_adapters.rest import RestHisAdapter
from his_adapters.simhis import SimHospital

from .conftest import MakeAdapter, first_pending, write_back_for

RECORDED, REJECTED = WriteBackStatus.RECORDED, WriteBackStatus.REJECTED


def refund_of(payment_id: str, refund_id: str, amount: int, total: int, patient_id: str) -> RefundWriteBack:
    return RefundWriteBack(refund_id=refund_id, payment_id=payment_id, amount=amount, total=total,
                           refunded_at=dt.datetime.now(dt.UTC), patient_id=patient_id, channel="wechatpay",
                           reason="患者申请退费")


async def test_write_back_is_recorded_with_the_his_serial(adapter: RestHisAdapter, hospital: SimHospital) -> None:
    charge = first_pending(hospital, "outpatient_settlement")
    result = await adapter.write_back(write_back_for(charge, "PAY0001", channel="alipay", operator="ZZJ01"))
    assert result.status is RECORDED and result.his_serial and result.his_serial.startswith("SF")
    record = hospital.find_record("PAY0001")
    assert record is not None and record.his_serial == result.his_serial
    assert record.channel == "ZFB" and record.amount == charge.amount and record.operator == "ZZJ01"
    assert record.channel_trade_no == "42000PAY0001" and record.charge_ids == [charge.charge_id]
    assert charge.status == "paid" and charge.payment_id == "PAY0001"


async def test_the_same_payment_twice_is_one_record(adapter: RestHisAdapter, hospital: SimHospital) -> None:
    charge = first_pending(hospital)
    wb = write_back_for(charge, "PAY0002")
    first, again = await adapter.write_back(wb), await adapter.write_back(wb)
    assert first.status is RECORDED and again.status is RECORDED
    assert again.his_serial == first.his_serial
    assert again.raw["resultCode"] == "2001"  # the HIS said "already recorded", and that counts as recorded
    assert [r.payment_id for r in hospital.records].count("PAY0002") == 1


async def test_default_operator_and_channel_codes(adapter: RestHisAdapter, hospital: SimHospital) -> None:
    for payment_id, channel, code in (("PAY0003", "wechatpay", "WX"), ("PAY0004", "unionpay", "YL"),
                                      ("PAY0005", "ecny", "SZRMB")):
        await adapter.write_back(write_back_for(first_pending(hospital), payment_id, channel=channel))
        record = hospital.find_record(payment_id)
        assert record is not None and record.channel == code and record.operator == "YINYI"


async def test_several_charges_in_one_payment(adapter: RestHisAdapter, hospital: SimHospital) -> None:
    patient_id = next(iter(hospital.patients))
    charges = [hospital.add_charge(patient_id, fen) for fen in (1250, 30)]
    result = await adapter.write_back(write_back_for(charges, "PAY0006"))
    assert result.status is RECORDED
    record = hospital.find_record("PAY0006")
    assert record is not None and record.amount == 1280 and record.charge_ids == [c.charge_id for c in charges]


async def test_bill_already_paid_by_another_payment_is_rejected(adapter: RestHisAdapter,
                                                                hospital: SimHospital) -> None:
    charge = first_pending(hospital)
    assert (await adapter.write_back(write_back_for(charge, "PAY0010"))).status is RECORDED
    result = await adapter.write_back(write_back_for(charge, "PAY0011"))
    assert result.status is REJECTED and result.error_code == "1002" and "已缴费" in (result.error_message or "")
    assert hospital.find_record("PAY0011") is None


async def test_amount_mismatch_is_rejected(adapter: RestHisAdapter, hospital: SimHospital) -> None:
    charge = first_pending(hospital)
    result = await adapter.write_back(write_back_for(charge, "PAY0012", amount=charge.amount - 1))
    assert result.status is REJECTED and result.error_code == "1003"
    assert "金额不符" in (result.error_message or "") and result.his_serial is None
    assert charge.status == "pending" and hospital.find_record("PAY0012") is None


async def test_unknown_charge_is_rejected(adapter: RestHisAdapter, hospital: SimHospital) -> None:
    charge = first_pending(hospital)
    wb = write_back_for(charge, "PAY0013").model_copy(update={"charge_ids": ["CF20990101999999"]})
    result = await adapter.write_back(wb)
    assert result.status is REJECTED and result.error_code == "1001"


async def test_write_back_query(adapter: RestHisAdapter, hospital: SimHospital) -> None:
    assert await adapter.query_write_back("PAY-NEVER") is None
    charge = first_pending(hospital)
    recorded = await adapter.write_back(write_back_for(charge, "PAY0020"))
    found = await adapter.query_write_back("PAY0020")
    assert found is not None and found.status is RECORDED and found.his_serial == recorded.his_serial


async def test_query_status_absent_means_no_record(make_adapter: MakeAdapter, hospital: SimHospital) -> None:
    adapter = make_adapter(write_back_query={"mapping": {"fields": {
        "status": {"src": "data.status", "values": {"1": "recorded", "2": "absent"}}}}})
    record = hospital.record_payment(payment_id="PAY0021", charge_ids=[first_pending(hospital).charge_id],
                                     amount=first_pending(hospital).amount, channel="WX", channel_trade_no=None,
                                     paid_at=dt.datetime.now(dt.UTC))
    assert (await adapter.query_write_back("PAY0021")) is not None
    hospital.cancel_record(record.his_serial)
    assert await adapter.query_write_back("PAY0021") is None


async def test_refund_write_back_partial_then_rest_then_over(adapter: RestHisAdapter, hospital: SimHospital) -> None:
    charge = first_pending(hospital)
    await adapter.write_back(write_back_for(charge, "PAY0030"))
    part = await adapter.write_back_refund(refund_of("PAY0030", "REF0001", 1, charge.amount, charge.patient_id))
    assert part.status is RECORDED and part.his_serial and part.his_serial.startswith("TF")
    assert charge.status == "paid"
    rest = await adapter.write_back_refund(refund_of("PAY0030", "REF0002", charge.amount - 1, charge.amount,
                                                     charge.patient_id))
    assert rest.status is RECORDED and charge.status == "refunded"
    over = await adapter.write_back_refund(refund_of("PAY0030", "REF0003", 1, charge.amount, charge.patient_id))
    assert over.status is REJECTED and over.error_code == "1005"
    assert [r.refund_id for r in hospital.records if r.kind == "refund"] == ["REF0001", "REF0002"]
    refund = hospital.find_refund("REF0001")
    assert refund is not None and refund.reason == "患者申请退费"


async def test_refund_write_back_is_idempotent(adapter: RestHisAdapter, hospital: SimHospital) -> None:
    charge = first_pending(hospital)
    await adapter.write_back(write_back_for(charge, "PAY0031"))
    rwb = refund_of("PAY0031", "REF0010", 100 if charge.amount > 100 else 1, charge.amount, charge.patient_id)
    first, again = await adapter.write_back_refund(rwb), await adapter.write_back_refund(rwb)
    assert first.status is RECORDED and again.status is RECORDED and again.his_serial == first.his_serial
    assert again.raw["resultCode"] == "2002"
    assert sum(1 for r in hospital.records if r.refund_id == "REF0010") == 1


async def test_refund_of_an_unknown_payment_is_rejected(adapter: RestHisAdapter, hospital: SimHospital) -> None:
    result = await adapter.write_back_refund(refund_of("PAY-NONE", "REF0020", 100, 100, "2000001"))
    assert result.status is REJECTED and result.error_code == "1004" and result.error_message == "原收费记录不存在"
