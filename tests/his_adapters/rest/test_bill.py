"""Daily bills (日对账单) of the four HIS bill types, and their summary checks."""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from gateway.errors import HisProtocolError, HisRejected
from gateway.his import HIS_BILL_TYPES
from gateway.money import fen_to_yuan, yuan_to_fen
from his_adapters.rest import RestHisAdapter, RestHisConfig
from his_adapters.simhis import CST, SimHospital

from .conftest import MakeAdapter, ScriptedHis, china_today, deep_merge, first_pending, write_back_for

BILL_PATH = "/hisapi/v1/bill/daily"


@pytest.mark.parametrize("bill_type", [str(b) for b in HIS_BILL_TYPES])
async def test_bill_of_each_type(adapter: RestHisAdapter, hospital: SimHospital, bill_type: str) -> None:
    paid = []
    for n in range(2):
        charge = first_pending(hospital, bill_type)
        await adapter.write_back(write_back_for(charge, f"B{bill_type[:6]}{n}", channel="alipay"))
        paid.append(charge)
    hospital.record_refund(refund_id="RB1", payment_id=f"B{bill_type[:6]}0", amount=1,
                           refunded_at=dt.datetime.now(dt.UTC))
    bill = await adapter.daily_bill(china_today(), bill_type)
    assert bill.bill_type == bill_type and bill.day == china_today()
    assert bill.total_count == 3 == len(bill.lines)
    assert bill.total_amount == sum(c.amount for c in paid) - 1
    payments = [ln for ln in bill.lines if ln.kind == "payment"]
    refunds = [ln for ln in bill.lines if ln.kind == "refund"]
    assert [ln.trade_no for ln in payments] == [f"B{bill_type[:6]}0", f"B{bill_type[:6]}1"]
    assert [(ln.amount, ln.refund_no, ln.trade_no) for ln in refunds] == [(1, "RB1", f"B{bill_type[:6]}0")]
    assert all(ln.amount > 0 and ln.channel == "alipay" and ln.bill_type == bill_type for ln in bill.lines)
    assert all(ln.occurred_at.tzinfo is not None and ln.status == "normal" for ln in bill.lines)
    assert payments[0].patient_name == hospital.patients[paid[0].patient_id].name
    assert payments[0].raw["amount"] == fen_to_yuan(paid[0].amount)


async def test_other_bill_types_stay_out(adapter: RestHisAdapter, hospital: SimHospital) -> None:
    await adapter.write_back(write_back_for(first_pending(hospital, "inpatient_deposit"), "BX1"))
    bill = await adapter.daily_bill(china_today(), "outpatient_registration")
    assert bill.lines == [] and bill.total_count == 0 and bill.total_amount == 0


async def test_the_bill_day_is_a_china_day(adapter: RestHisAdapter, hospital: SimHospital) -> None:
    day = dt.date(2026, 3, 8)
    charge, other = first_pending(hospital), None
    midnight = dt.datetime(2026, 3, 8, tzinfo=CST)
    hospital.record_payment(payment_id="EARLY", charge_ids=[charge.charge_id], amount=charge.amount, channel="WX",
                            channel_trade_no=None, paid_at=midnight + dt.timedelta(minutes=5))
    other = first_pending(hospital, charge.bill_type)
    hospital.record_payment(payment_id="LATE", charge_ids=[other.charge_id], amount=other.amount, channel="WX",
                            channel_trade_no=None, paid_at=midnight - dt.timedelta(minutes=5))
    bill = await adapter.daily_bill(day, charge.bill_type)
    assert [ln.trade_no for ln in bill.lines] == ["EARLY"]
    assert bill.lines[0].occurred_at == (midnight + dt.timedelta(minutes=5)).astimezone(dt.UTC)
    previous = await adapter.daily_bill(day - dt.timedelta(days=1), charge.bill_type)
    assert [ln.trade_no for ln in previous.lines] == ["LATE"]


async def test_cancelled_lines_and_cash(adapter: RestHisAdapter, hospital: SimHospital) -> None:
    a, b = first_pending(hospital, "outpatient_settlement"), None
    now = dt.datetime.now(dt.UTC)
    kept = hospital.record_payment(payment_id="C1", charge_ids=[a.charge_id], amount=a.amount, channel="CASH",
                                   channel_trade_no=None, paid_at=now)
    b = first_pending(hospital, "outpatient_settlement")
    voided = hospital.record_payment(payment_id="C2", charge_ids=[b.charge_id], amount=b.amount, channel="WX",
                                     channel_trade_no=None, paid_at=now)
    hospital.cancel_record(voided.his_serial)
    bill = await adapter.daily_bill(china_today(), "outpatient_settlement")
    by_serial = {ln.his_serial: ln for ln in bill.lines}
    assert by_serial[kept.his_serial].channel == "CASH"  # an unknown code passes through
    assert by_serial[voided.his_serial].status == "cancelled" and by_serial[voided.his_serial].channel == "wechatpay"
    assert bill.total_count == 2 and bill.total_amount == a.amount


async def test_bill_by_get(make_adapter: MakeAdapter, hospital: SimHospital) -> None:
    adapter = make_adapter(bill={"method": "GET"})
    await adapter.write_back(write_back_for(first_pending(hospital, "inpatient_settlement"), "G1"))
    bill = await adapter.daily_bill(china_today(), "inpatient_settlement")
    assert [ln.trade_no for ln in bill.lines] == ["G1"]


async def test_unknown_bill_type_is_refused_by_the_his(adapter: RestHisAdapter) -> None:
    with pytest.raises(HisRejected) as info:
        await adapter.daily_bill(china_today(), "exam")
    assert info.value.extra["his_code"] == "9002"


# --- answers no honest HIS gives, from a scripted server --------------------------------

def _bill(details: list[dict[str, Any]], count: int | None = None, total: Any = None) -> dict[str, Any]:
    if total is None:
        total = fen_to_yuan(sum(yuan_to_fen(d["amount"]) for d in details if d.get("status", "1") == "1"))
    return {"resultCode": "0", "resultMsg": "成功",
            "data": {"totalCount": len(details) if count is None else count, "totalAmount": total,
                     "details": details}}


def _line(serial: str, amount: Any, trade_type: str = "1", **extra: Any) -> dict[str, Any]:
    return {"hisSerialNo": serial, "orderNo": "P" + serial, "tradeType": trade_type, "payChannel": "WX",
            "amount": amount, "tradeTime": "2026-11-25 08:00:00", "status": "1", **extra}


ScriptedAdapter = Callable[..., RestHisAdapter]


async def test_summary_count_disagreeing_is_a_protocol_error(scripted: ScriptedHis,
                                                             scripted_adapter: ScriptedAdapter) -> None:
    scripted.answer(BILL_PATH, _bill([_line("1", "1.00")], count=2))
    with pytest.raises(HisProtocolError, match="2 lines"):
        await scripted_adapter().daily_bill(dt.date(2026, 11, 25), "outpatient_settlement")


async def test_summary_total_disagreeing_is_a_protocol_error(scripted: ScriptedHis,
                                                             scripted_adapter: ScriptedAdapter) -> None:
    scripted.answer(BILL_PATH, _bill([_line("1", "1.00"), _line("2", "-0.50", "2")], total="1.00"))
    with pytest.raises(HisProtocolError, match="50 fen"):
        await scripted_adapter().daily_bill(dt.date(2026, 11, 25), "outpatient_settlement")


async def test_a_refund_line_with_a_positive_amount_is_a_protocol_error(scripted: ScriptedHis,
                                                                        scripted_adapter: ScriptedAdapter) -> None:
    scripted.answer(BILL_PATH, _bill([_line("1", "0.50", "2")], total="-0.50"))
    with pytest.raises(HisProtocolError, match="refund line"):
        await scripted_adapter().daily_bill(dt.date(2026, 11, 25), "outpatient_settlement")


async def test_kind_from_the_sign_when_no_kind_is_mapped(system: dict[str, Any], scripted: ScriptedHis,
                                                         session: aiohttp.ClientSession) -> None:
    cfg = deep_merge(system["config"], {"base_url": scripted.base_url, "auth": {"scheme": "none"}})
    del cfg["bill"]["mapping"]["fields"]["kind"]
    adapter = RestHisAdapter(RestHisConfig.model_validate(cfg), session)
    scripted.answer(BILL_PATH, _bill([_line("1", "12345678.90"), _line("2", "-0.01", "2")]))
    bill = await adapter.daily_bill(dt.date(2026, 11, 25), "outpatient_settlement")
    assert [(ln.kind, ln.amount) for ln in bill.lines] == [("payment", 1_234_567_890), ("refund", 1)]
    assert bill.total_amount == 1_234_567_889


async def test_negative_amount_on_an_unsigned_wire_is_a_protocol_error(scripted: ScriptedHis,
                                                                       scripted_adapter: ScriptedAdapter) -> None:
    scripted.answer(BILL_PATH, _bill([_line("1", "-1.00", "2")]))
    with pytest.raises(HisProtocolError, match="negative"):
        await scripted_adapter(bill={"signed_amounts": False}).daily_bill(dt.date(2026, 11, 25), "other")


async def test_json_number_amounts_stay_exact(scripted: ScriptedHis, scripted_adapter: ScriptedAdapter) -> None:
    # 0.1 + 0.2 as binary floats is not 0.3; parsed as Decimal it is
    body = ('{"resultCode":"0","data":{"totalCount":3,"totalAmount":0.3,"details":['
            '{"hisSerialNo":"1","tradeType":"1","amount":0.1,"tradeTime":"2026-11-25 08:00:00","status":"1"},'
            '{"hisSerialNo":"2","tradeType":"1","amount":0.2,"tradeTime":"2026-11-25 08:00:00","status":"1"},'
            '{"hisSerialNo":"3","tradeType":"1","amount":0.00,"tradeTime":"2026-11-25 08:00:00","status":"1"}]}}')
    scripted.answer(BILL_PATH, body)
    bill = await scripted_adapter().daily_bill(dt.date(2026, 11, 25), "outpatient_settlement")
    assert [ln.amount for ln in bill.lines] == [10, 20, 0] and bill.total_amount == 30
    assert bill.lines[0].raw["amount"] == "0.1"  # raw stays JSON-friendly


@pytest.mark.parametrize("bad", ["1.001", "一元", "", None])
async def test_bad_amounts_are_protocol_errors(scripted: ScriptedHis, scripted_adapter: ScriptedAdapter,
                                               bad: Any) -> None:
    scripted.answer(BILL_PATH, _bill([_line("1", bad)], total="0.00"))
    with pytest.raises(HisProtocolError, match="amount"):
        await scripted_adapter().daily_bill(dt.date(2026, 11, 25), "outpatient_settlement")


async def test_missing_list_and_missing_summary(scripted: ScriptedHis, scripted_adapter: ScriptedAdapter) -> None:
    scripted.answer(BILL_PATH, {"resultCode": "0", "data": {"totalCount": 0, "totalAmount": "0.00"}})
    with pytest.raises(HisProtocolError, match="no list"):
        await scripted_adapter().daily_bill(dt.date(2026, 11, 25), "outpatient_settlement")
    empty = await scripted_adapter(bill={"list_optional": True}).daily_bill(dt.date(2026, 11, 25), "other")
    assert empty.lines == [] and empty.total_count == 0
    scripted.answer(BILL_PATH, {"resultCode": "0", "data": {"details": []}})
    with pytest.raises(HisProtocolError, match="summary"):
        await scripted_adapter().daily_bill(dt.date(2026, 11, 25), "outpatient_settlement")


async def test_unknown_status_code_in_a_line(scripted: ScriptedHis, scripted_adapter: ScriptedAdapter) -> None:
    scripted.answer(BILL_PATH, _bill([_line("1", "1.00", status="9")], total="0.00"))
    with pytest.raises(HisProtocolError, match="status"):
        await scripted_adapter().daily_bill(dt.date(2026, 11, 25), "outpatient_settlement")
