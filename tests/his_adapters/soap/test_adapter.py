"""The SOAP adapter against the simulated HIS over real HTTP, with the shipped configuration."""
from __future__ import annotations

import pytest

from gateway.errors import HisProtocolError, HisRejected
from gateway.his import HIS_BILL_TYPES, PatientQuery, WriteBackStatus
from his_adapters.simhis import Item
from his_adapters.soap import SoapHisAdapter
from his_adapters.soap.simulator import SoapHisSimHandle

from .conftest import MakeAdapter, refund_for, today, write_back_for


def _patient_with_pending(sim: SoapHisSimHandle) -> str:
    return next(p for p in sim.hospital.patients if sim.hospital.pending(p))


@pytest.mark.parametrize("identifier", ["card_no", "id_no", "patient_id", "visit_no"])
async def test_pending_charges_by_each_identifier(sim: SoapHisSimHandle, adapter: SoapHisAdapter,
                                                  identifier: str) -> None:
    patient = sim.hospital.patients[_patient_with_pending(sim)]
    expected = sim.hospital.pending(patient.patient_id)
    if identifier == "visit_no":
        visit_no = expected[0].visit_no
        query = PatientQuery(visit_no=visit_no)
        expected = sim.hospital.pending(patient.patient_id, visit_no)
    else:
        query = PatientQuery(**{identifier: getattr(patient, identifier)})
    charges = await adapter.pending_charges(query)
    assert {c.charge_id for c in charges} == {c.charge_id for c in expected}
    for charge in charges:
        src = sim.hospital.charges[charge.charge_id]
        assert charge.amount == src.amount and isinstance(charge.amount, int)
        assert charge.bill_type == src.bill_type
        assert charge.patient_id == patient.patient_id and charge.patient_name == patient.name
        assert charge.created_at == src.created_at.replace(microsecond=0)
        assert charge.created_at.utcoffset().total_seconds() == 0
        assert sum(i.amount for i in charge.items) == charge.amount
        assert [i.code for i in charge.items] == [i.code for i in src.items]


async def test_pending_unknown_patient_is_rejected(adapter: SoapHisAdapter) -> None:
    with pytest.raises(HisRejected) as info:
        await adapter.pending_charges(PatientQuery(card_no="000000000000"))
    assert info.value.extra["his_code"] == "101"
    assert info.value.extra["his_message"] == "患者信息不存在"


async def test_pending_added_charge_with_yuan_cents(sim: SoapHisSimHandle, adapter: SoapHisAdapter) -> None:
    pid = next(iter(sim.hospital.patients))
    charge = sim.hospital.add_charge(pid, 1, items=[Item("挂号费 <加急> & \"复诊\"", "X1", "1", 1)])
    charges = await adapter.pending_charges(PatientQuery(patient_id=pid))
    got = next(c for c in charges if c.charge_id == charge.charge_id)
    assert got.amount == 1 and got.items[0].name == "挂号费 <加急> & \"复诊\""


async def test_write_back_recorded_and_idempotent(sim: SoapHisSimHandle, adapter: SoapHisAdapter) -> None:
    pid = _patient_with_pending(sim)
    charges = (await adapter.pending_charges(PatientQuery(patient_id=pid)))[:1]
    wb = write_back_for(charges)
    first = await adapter.write_back(wb)
    assert first.status is WriteBackStatus.RECORDED and first.his_serial
    again = await adapter.write_back(wb)
    assert again.status is WriteBackStatus.RECORDED and again.his_serial == first.his_serial
    assert again.raw["ResultCode"] == "1"  # the HIS's "already recorded" code
    records = [r for r in sim.hospital.records if r.payment_id == wb.payment_id]
    assert len(records) == 1
    rec = records[0]
    assert rec.amount == wb.amount and rec.channel == "WX" and rec.operator == "KIOSK01"
    assert rec.occurred_at == wb.paid_at and rec.channel_trade_no == wb.channel_trade_no
    assert sim.hospital.charges[charges[0].charge_id].status == "paid"


async def test_write_back_bill_already_paid_is_rejected(sim: SoapHisSimHandle, adapter: SoapHisAdapter) -> None:
    pid = _patient_with_pending(sim)
    charges = (await adapter.pending_charges(PatientQuery(patient_id=pid)))[:1]
    assert (await adapter.write_back(write_back_for(charges))).status is WriteBackStatus.RECORDED
    other = await adapter.write_back(write_back_for(charges))
    assert other.status is WriteBackStatus.REJECTED
    assert other.error_code == "202" and "已缴费" in (other.error_message or "")


async def test_write_back_unknown_charge_is_rejected(sim: SoapHisSimHandle, adapter: SoapHisAdapter) -> None:
    pid = _patient_with_pending(sim)
    charges = (await adapter.pending_charges(PatientQuery(patient_id=pid)))[:1]
    wb = write_back_for(charges).model_copy(update={"charge_ids": ["CF-NO-SUCH"]})
    result = await adapter.write_back(wb)
    assert result.status is WriteBackStatus.REJECTED and result.error_code == "201"
    assert sim.hospital.find_record(wb.payment_id) is None


async def test_write_back_amount_mismatch(sim: SoapHisSimHandle, adapter: SoapHisAdapter) -> None:
    pid = _patient_with_pending(sim)
    charges = (await adapter.pending_charges(PatientQuery(patient_id=pid)))[:1]
    result = await adapter.write_back(write_back_for(charges, amount=charges[0].amount - 1))
    assert result.status is WriteBackStatus.REJECTED and result.error_code == "204"
    assert "应收" in (result.error_message or "")
    assert sim.hospital.charges[charges[0].charge_id].status == "pending"


async def test_write_back_query(sim: SoapHisSimHandle, adapter: SoapHisAdapter) -> None:
    assert await adapter.query_write_back("PAY-NEVER-SEEN") is None
    pid = _patient_with_pending(sim)
    charges = (await adapter.pending_charges(PatientQuery(patient_id=pid)))[:1]
    wb = write_back_for(charges, channel="alipay")
    recorded = await adapter.write_back(wb)
    found = await adapter.query_write_back(wb.payment_id)
    assert found is not None and found.status is WriteBackStatus.RECORDED
    assert found.his_serial == recorded.his_serial and found.raw["PayAmt"]


async def test_refund_write_back(sim: SoapHisSimHandle, adapter: SoapHisAdapter) -> None:
    pid = _patient_with_pending(sim)
    charges = (await adapter.pending_charges(PatientQuery(patient_id=pid)))[:1]
    wb = write_back_for(charges, channel="unionpay")
    await adapter.write_back(wb)
    part = refund_for(wb, 1)
    first = await adapter.write_back_refund(part)
    assert first.status is WriteBackStatus.RECORDED and first.his_serial and first.his_serial.startswith("TF")
    again = await adapter.write_back_refund(part)
    assert again.status is WriteBackStatus.RECORDED and again.his_serial == first.his_serial
    too_much = await adapter.write_back_refund(refund_for(wb, wb.amount))
    assert too_much.status is WriteBackStatus.REJECTED and too_much.error_code == "303"
    rest = await adapter.write_back_refund(refund_for(wb, wb.amount - 1))
    assert rest.status is WriteBackStatus.RECORDED
    assert sim.hospital.refunded(wb.payment_id) == wb.amount
    unknown = await adapter.write_back_refund(refund_for(write_back_for(charges, payment_id="PAY-NONE"), 1))
    assert unknown.status is WriteBackStatus.REJECTED and unknown.error_code == "301"


async def test_bills_of_the_four_types(sim: SoapHisSimHandle, adapter: SoapHisAdapter) -> None:
    paid: dict[str, list[str]] = {}
    channels = iter(["wechatpay", "alipay", "unionpay", "ecny"] * 10)
    for bill_type in HIS_BILL_TYPES:
        pid = next(p for p in sim.hospital.patients
                   if any(c.bill_type == bill_type for c in sim.hospital.pending(p)))
        charge = next(c for c in await adapter.pending_charges(PatientQuery(patient_id=pid))
                      if c.bill_type == bill_type)
        wb = write_back_for([charge], channel=next(channels))
        assert (await adapter.write_back(wb)).status is WriteBackStatus.RECORDED
        paid[bill_type] = [wb.payment_id]
        if bill_type == "outpatient_settlement":
            await adapter.write_back_refund(refund_for(wb, 1))
    cancelled = sim.hospital.find_record(paid["inpatient_deposit"][0])
    assert cancelled is not None
    sim.hospital.cancel_record(cancelled.his_serial)

    for bill_type in HIS_BILL_TYPES:
        bill = await adapter.daily_bill(today(), bill_type)
        assert bill.bill_type == bill_type and bill.day == today()
        assert {ln.trade_no for ln in bill.lines} == set(paid[bill_type])
        assert bill.total_count == len(bill.lines)
        expected = sum(r.amount if r.kind == "payment" else -r.amount
                       for r in sim.hospital.bill(today(), bill_type) if r.status == "normal")
        assert bill.total_amount == expected
        for line in bill.lines:
            assert line.bill_type == bill_type
            assert line.channel in ("wechatpay", "alipay", "unionpay", "ecny")
            assert line.occurred_at.utcoffset().total_seconds() == 0
    settlement = await adapter.daily_bill(today(), "outpatient_settlement")
    kinds = sorted(ln.kind for ln in settlement.lines)
    assert kinds == ["payment", "refund"]
    refund = next(ln for ln in settlement.lines if ln.kind == "refund")
    assert refund.amount == 1 and refund.refund_no
    deposit = await adapter.daily_bill(today(), "inpatient_deposit")
    assert [ln.status for ln in deposit.lines] == ["cancelled"] and deposit.total_amount == 0


async def test_bill_of_an_empty_day(adapter: SoapHisAdapter) -> None:
    import datetime as dt

    bill = await adapter.daily_bill(today() - dt.timedelta(days=30), "outpatient_registration")
    assert bill.lines == [] and bill.total_count == 0 and bill.total_amount == 0


async def test_bill_summary_disagreeing_is_a_protocol_error(sim: SoapHisSimHandle,
                                                            make_adapter: MakeAdapter) -> None:
    adapter = make_adapter()
    pid = _patient_with_pending(sim)
    charge = (await adapter.pending_charges(PatientQuery(patient_id=pid)))[0]
    await adapter.write_back(write_back_for([charge]))
    # XPath arithmetic makes the HIS's own summary disagree with its lines
    off_count = make_adapter(functions={"bill": {"summary_count": "TotalCount + 1"}})
    with pytest.raises(HisProtocolError, match="summary says"):
        await off_count.daily_bill(today(), charge.bill_type)
    off_amount = make_adapter(functions={"bill": {"summary_amount": "concat('1', TotalAmt)"}})
    with pytest.raises(HisProtocolError, match="add up to"):
        await off_amount.daily_bill(today(), charge.bill_type)


async def test_missing_mapped_field_is_a_protocol_error(sim: SoapHisSimHandle, make_adapter: MakeAdapter) -> None:
    adapter = make_adapter(functions={"pending": {"mapping": {"fields": {"charge_id": "NoSuchElement"}}}})
    pid = _patient_with_pending(sim)
    with pytest.raises(HisProtocolError, match="charge_id"):
        await adapter.pending_charges(PatientQuery(patient_id=pid))


async def test_bad_refusal_query_raises_rejected(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter()
    with pytest.raises(HisRejected) as info:
        await adapter.daily_bill(today(), "exam")  # the HIS has no such bill type
    assert info.value.extra["his_code"] == "100"


async def test_not_found_codes_mean_nothing_to_return(make_adapter: MakeAdapter) -> None:
    # a system that answers "no such patient" / "no such bill type" with codes meaning "nothing here"
    adapter = make_adapter(functions={
        "pending": {"refusal_codes": ["-1", "100", "102"], "not_found_codes": ["101"]},
        "bill": {"refusal_codes": ["-1"], "not_found_codes": ["100"]}})
    assert await adapter.pending_charges(PatientQuery(card_no="000000000000")) == []
    bill = await adapter.daily_bill(today(), "exam")
    assert bill.lines == [] and bill.total_count is None
