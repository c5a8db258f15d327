"""The simulated hospital's insurance register (医保结算登记), without any wire."""
from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from his_adapters.simhis import SimHisRefusal, SimHospital

NOW = dt.datetime(2026, 11, 25, 2, 30, tzinfo=dt.UTC)


def _settle(h: SimHospital, charge_id: str, total: int, **kw: Any) -> Any:
    # 60 % fund (pooled + large-amount), 10 % account, 5 % wallet, the rest cash
    fund = total * 6 // 10
    acct, wallet = total // 10, total // 20
    values: dict[str, Any] = dict(
        settlement_id="IS1", charge_ids=[charge_id], setl_id="S1", mdtrt_id="M1", psn_no="P1", insutype="310",
        total=total, fund_total=fund, funds={"hifp_pay": fund - 100, "hifob_pay": 100}, acct_pay=acct,
        acct_mulaid_pay=0, wallet_pay=wallet, cash_pay=total - fund - acct - wallet, hosp_part=0,
        cash_payment_id="P9", cash_channel="WX", cash_trade_no="4200P9", settled_at=NOW)
    values.update(kw)
    return h.record_insurance(**values)


def _charge(h: SimHospital, amount: int = 53500) -> Any:
    patient = next(iter(h.patients.values()))
    return h.add_charge(patient.patient_id, amount, created_at=NOW)


def test_a_settlement_is_recorded_once_with_its_cash_part_on_the_bill() -> None:
    h = SimHospital(now=NOW)
    charge = _charge(h)
    entry = _settle(h, charge.charge_id, 53500)
    assert entry.his_serial.startswith("YB20261125") and charge.status == "paid"
    assert _settle(h, charge.charge_id, 53500) is entry  # idempotent by settlement id
    [line] = [r for r in h.records if r.payment_id == "P9"]
    assert (line.kind, line.amount, line.channel, line.his_serial) == ("payment", entry.cash_pay, "WX",
                                                                       entry.cash_serial)


@pytest.mark.parametrize("change, code", [
    ({"acct_pay": 1}, "SPLIT_MISMATCH"),
    ({"funds": {"hifp_pay": 1}}, "SPLIT_MISMATCH"),
    ({"fund_total": 53400, "funds": {"hifp_pay": 53400}, "acct_pay": 0, "wallet_pay": 0, "cash_pay": 100,
      "charge_amount": 53400}, "AMOUNT_MISMATCH"),
    ({"cash_payment_id": None}, "INVALID_PARAMETER"),
    ({"wallet_pay": -1}, "INVALID_AMOUNT"),
])
def test_a_split_that_does_not_add_up_or_a_wrong_total_is_refused(change: dict[str, Any], code: str) -> None:
    h = SimHospital(now=NOW)
    change = dict(change)
    charge = _charge(h, change.pop("charge_amount", 53500))
    with pytest.raises(SimHisRefusal) as exc:
        _settle(h, charge.charge_id, 53500, **change)
    assert exc.value.code == code and charge.status == "pending" and not h.insurance


def test_a_reversal_refunds_the_cash_line_and_makes_the_bill_payable_again() -> None:
    h = SimHospital(now=NOW)
    charge = _charge(h)
    entry = _settle(h, charge.charge_id, 53500)
    with pytest.raises(SimHisRefusal) as exc:
        h.reverse_insurance(settlement_id="IS1", total=1, rev_setl_id="S2", cash_refund_id="R1", reversed_at=NOW)
    assert exc.value.code == "AMOUNT_MISMATCH"
    got = h.reverse_insurance(settlement_id="IS1", total=53500, rev_setl_id="S2", cash_refund_id="R1",
                              reversed_at=NOW)
    assert got is entry and entry.status == "reversed" and entry.reversal_serial.startswith("YC")
    assert charge.status == "pending" and charge.payment_id is None
    assert [(r.kind, r.amount) for r in h.records if r.payment_id == "P9"] == [("payment", entry.cash_pay),
                                                                              ("refund", entry.cash_pay)]
    with pytest.raises(SimHisRefusal) as exc:
        h.reverse_insurance(settlement_id="nope", total=1, rev_setl_id=None, cash_refund_id=None, reversed_at=NOW)
    assert exc.value.code == "SETTLEMENT_NOT_FOUND"
