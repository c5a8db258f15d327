"""The simulated hospital's business rules, without any wire."""
from __future__ import annotations

import datetime as dt
import re

import pytest

from his_adapters.simhis import BILL_TYPES, CST, Item, SimHisRefusal, SimHospital
from his_adapters.simhis.people import id_check_digit, valid_id_no

NOW = dt.datetime(2026, 11, 25, 2, 30, tzinfo=dt.UTC)  # 10:30 in China


def _hospital(**kw: int) -> SimHospital:
    return SimHospital(now=NOW, **kw)


def _pay(h: SimHospital, payment_id: str, charge_ids: list[str], amount: int | None = None,
         paid_at: dt.datetime = NOW) -> object:
    due = sum(h.charges[c].amount for c in charge_ids if c in h.charges)
    return h.record_payment(payment_id=payment_id, charge_ids=charge_ids, amount=due if amount is None else amount,
                            channel="WX", channel_trade_no="4200" + payment_id, paid_at=paid_at)


def test_the_same_seed_gives_the_same_hospital() -> None:
    a, b, c = _hospital(seed=3), _hospital(seed=3), _hospital(seed=4)
    assert a.patients == b.patients and a.charges == b.charges and a.visits == b.visits
    assert a.patients != c.patients


def test_seeded_people_look_real() -> None:
    h = _hospital(patients=30)
    assert len(h.patients) == 30
    for p in h.patients.values():
        assert re.fullmatch(r"[\u4e00-\u9fff]{2,3}", p.name)
        assert valid_id_no(p.id_no)
        assert re.fullmatch(r"8\d{11}", p.card_no) and re.fullmatch(r"1\d{10}", p.phone)
        assert 1 <= len(h.pending(p.patient_id)) <= 3
    assert {c.bill_type for c in h.charges.values()} == set(BILL_TYPES)
    assert len({p.card_no for p in h.patients.values()}) == 30


def test_id_check_digit() -> None:
    # the standard's worked example: 11010519491231002X
    assert id_check_digit("11010519491231002") == "X"
    assert valid_id_no("11010519491231002X") and not valid_id_no("110105194912310021")


def test_numbers_look_like_a_his() -> None:
    h = _hospital()
    prefixes = {"outpatient_registration": "GH", "outpatient_settlement": "CF", "inpatient_deposit": "YJ",
                "inpatient_settlement": "JS"}
    for charge in h.charges.values():
        assert re.fullmatch(prefixes[charge.bill_type] + r"\d{14}", charge.charge_id)
        assert re.fullmatch(r"(MZ|ZY)\d{14}", charge.visit_no)
        assert charge.visit_no[:2] == ("ZY" if charge.bill_type.startswith("inpatient") else "MZ")
        assert charge.amount == sum(i.amount for i in charge.items) > 0
        assert charge.created_at.tzinfo is dt.UTC and charge.created_at <= NOW
    record = _pay(h, "P1", [next(iter(h.charges))])
    assert re.fullmatch(r"SF20261125\d{6}", record.his_serial)  # type: ignore[attr-defined]


def test_find_patient_by_each_identifier() -> None:
    h = _hospital()
    p = next(iter(h.patients.values()))
    visit = next(v for v in h.visits.values() if v.patient_id == p.patient_id)
    for kw in ({"card_no": p.card_no}, {"id_no": p.id_no.lower()}, {"visit_no": visit.visit_no},
               {"patient_id": p.patient_id}):
        assert h.find_patient(**kw) == p
    assert h.find_patient(card_no="nope") is None and h.find_patient() is None


def test_payment_is_idempotent_and_marks_charges_paid() -> None:
    h = _hospital()
    charge = next(iter(h.charges.values()))
    first = _pay(h, "P1", [charge.charge_id])
    again = h.record_payment(payment_id="P1", charge_ids=["whatever"], amount=1, channel="ZFB",
                             channel_trade_no=None, paid_at=NOW)
    assert again is first and len(h.records) == 1
    assert charge.status == "paid" and charge.payment_id == "P1"
    assert h.find_record("P1") is first and charge not in h.pending(charge.patient_id)


@pytest.mark.parametrize(("setup", "code"), [
    (lambda h, c: ([c.charge_id], c.amount + 1), "AMOUNT_MISMATCH"),
    (lambda h, c: (["CF00000000000000"], 1), "CHARGE_NOT_FOUND"),
    (lambda h, c: ([], 0), "CHARGE_NOT_FOUND"),
    (lambda h, c: (_pay(h, "OTHER", [c.charge_id]) and [c.charge_id], c.amount), "BILL_PAID"),
])
def test_payment_refusals(setup: object, code: str) -> None:
    h = _hospital()
    charge = next(iter(h.charges.values()))
    charge_ids, amount = setup(h, charge)  # type: ignore[operator]
    with pytest.raises(SimHisRefusal) as info:
        h.record_payment(payment_id="P9", charge_ids=charge_ids, amount=amount, channel="WX",
                         channel_trade_no=None, paid_at=NOW)
    assert info.value.code == code and info.value.message
    assert h.find_record("P9") is None


def test_charges_of_two_patients_are_refused() -> None:
    h = _hospital()
    ids = list(h.patients)
    a, b = h.add_charge(ids[0], 100), h.add_charge(ids[1], 100)
    with pytest.raises(SimHisRefusal, match="MIXED"):
        _pay(h, "P2", [a.charge_id, b.charge_id])
    assert a.status == b.status == "pending"


def test_refunds_partial_full_over_and_idempotent() -> None:
    h = _hospital()
    charge = h.add_charge(next(iter(h.patients)), 1000, bill_type="inpatient_deposit")
    _pay(h, "P1", [charge.charge_id])
    r1 = h.record_refund(refund_id="R1", payment_id="P1", amount=400, refunded_at=NOW)
    assert h.record_refund(refund_id="R1", payment_id="P1", amount=400, refunded_at=NOW) is r1
    assert r1.kind == "refund" and r1.bill_type == "inpatient_deposit" and r1.his_serial.startswith("TF")
    assert charge.status == "paid"
    with pytest.raises(SimHisRefusal, match="REFUND_EXCEEDS"):
        h.record_refund(refund_id="R2", payment_id="P1", amount=601, refunded_at=NOW)
    h.record_refund(refund_id="R3", payment_id="P1", amount=600, refunded_at=NOW)
    assert charge.status == "refunded" and h.refunded("P1") == 1000
    with pytest.raises(SimHisRefusal, match="PAYMENT_NOT_FOUND"):
        h.record_refund(refund_id="R4", payment_id="NOPE", amount=1, refunded_at=NOW)
    with pytest.raises(SimHisRefusal, match="INVALID_AMOUNT"):
        h.record_refund(refund_id="R5", payment_id="P1", amount=0, refunded_at=NOW)


def test_bill_uses_china_days_and_bill_types() -> None:
    h = _hospital()
    pid = next(iter(h.patients))
    late = h.add_charge(pid, 100, created_at=NOW)
    early = h.add_charge(pid, 200, created_at=NOW)
    deposit = h.add_charge(pid, 300, bill_type="inpatient_deposit", created_at=NOW)
    _pay(h, "LATE", [late.charge_id], paid_at=dt.datetime(2026, 11, 25, 23, 59, 59, tzinfo=CST))
    _pay(h, "EARLY", [early.charge_id], paid_at=dt.datetime(2026, 11, 26, 0, 0, 0, tzinfo=CST))
    _pay(h, "DEP", [deposit.charge_id], paid_at=dt.datetime(2026, 11, 25, 12, tzinfo=CST))
    day = dt.date(2026, 11, 25)
    assert [r.payment_id for r in h.bill(day, "outpatient_settlement")] == ["LATE"]
    assert [r.payment_id for r in h.bill(day + dt.timedelta(days=1), "outpatient_settlement")] == ["EARLY"]
    assert [r.payment_id for r in h.bill(day, "inpatient_deposit")] == ["DEP"]


def test_add_charge_rules() -> None:
    h = _hospital()
    pid = next(iter(h.patients))
    with pytest.raises(SimHisRefusal, match="PATIENT_NOT_FOUND"):
        h.add_charge("nobody", 100)
    for bad in (0, -1, True):
        with pytest.raises(ValueError):
            h.add_charge(pid, bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="add up"):
        h.add_charge(pid, 100, items=[Item("a", "1", "1", 99)])
    with pytest.raises(ValueError, match="bill_type"):
        h.add_charge(pid, 100, bill_type="exam")
    charge = h.add_charge(pid, 100, bill_type="inpatient_settlement", department="骨科病区")
    assert charge.visit_no.startswith("ZY") and charge.department == "骨科病区" and charge.status == "pending"


def test_cancelled_records_stay_in_the_bill() -> None:
    h = _hospital()
    charge = next(iter(h.charges.values()))
    record = _pay(h, "P1", [charge.charge_id])
    h.cancel_record(record.his_serial)  # type: ignore[attr-defined]
    assert [r.status for r in h.bill(NOW.astimezone(CST).date(), charge.bill_type)] == ["cancelled"]
    with pytest.raises(SimHisRefusal, match="PAYMENT_NOT_FOUND"):
        h.record_refund(refund_id="R1", payment_id="P1", amount=1, refunded_at=NOW)
