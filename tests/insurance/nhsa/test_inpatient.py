"""Inpatient flows: 2401 → 2301 → 2402 → 2303 → 2304 → 2305, and the reversals of
admission (2404) and discharge (2405)."""
from __future__ import annotations

import pytest

from gateway.errors import InsuranceAlreadyReversed, InsuranceRejected
from gateway.insurance import SettlementRef

from .conftest import WANGWU_ID, discharge_request, fee, inpatient_visit, now, person, settle_request


def inpatient_settle(visit, p, total, **kw):
    return settle_request(visit, p, total, med_type="21", chrg_bchno=None, discharge_time=now(), password="123456",
                          **kw)


async def test_inpatient_end_to_end(adapter, control, sim) -> None:
    p = await person(adapter)
    visit = await inpatient_visit(adapter, p)
    up = await adapter.upload_inpatient_fees(visit, [
        fee("1", "120100001", 24000, qty="3", batch=None, med_type="21"),  # bed 80/day over the 60 limit
        fee("2", "330100001", 500000, batch=None, med_type="21"),
        fee("3", "XJ01DDA002", 30000, qty="10", batch=None, med_type="21"),
        fee("4", "XJ01DDA002", -6000, qty="-2", batch=None, med_type="21", init_feedetl_sn="3"),
    ])
    assert next(line for line in up.lines if line.feedetl_sn == "1").overlmt == 6000
    with pytest.raises(InsuranceRejected, match="出院"):
        await adapter.pre_settle_inpatient(inpatient_settle(visit, p, 548000))
    await adapter.discharge(discharge_request(visit))
    pre = await adapter.pre_settle_inpatient(inpatient_settle(visit, p, 548000))
    settled = await adapter.settle_inpatient(inpatient_settle(visit, p, 548000))
    split = settled.split.check()
    assert split == pre.split and settled.clr_type == "21"
    assert split.total == 548000 and split.overlmt_selfpay == 6000 and split.preselfpay == 2400
    assert split.deductible == 80000  # per admission
    assert split.funds["hifp_pay"] == (548000 - 6000 - 2400 - 80000) * 85 // 100
    with pytest.raises(InsuranceRejected, match="已结算"):
        await adapter.cancel_discharge(visit)
    rev = await adapter.reverse_inpatient_settlement(SettlementRef(setl_id=settled.setl_id or "", visit=visit))
    assert rev.split.check().total == -548000
    with pytest.raises(InsuranceAlreadyReversed):
        await adapter.reverse_inpatient_settlement(SettlementRef(setl_id=settled.setl_id or "", visit=visit))
    settlements = await control("GET", "/settlements")
    assert {s["reversal_of"] for s in settlements} == {None, settled.setl_id}


async def test_admission_and_discharge_reversals(adapter, control) -> None:
    p = await person(adapter)
    visit = await inpatient_visit(adapter, p)
    await adapter.upload_inpatient_fees(visit, [fee("1", "XJ01AAA001", 1000, batch=None)])
    with pytest.raises(InsuranceRejected, match="费用"):
        await adapter.cancel_admission(visit)
    await adapter.discharge(discharge_request(visit))
    await adapter.cancel_discharge(visit)
    assert (await control("GET", f"/visits/{visit.mdtrt_id}"))["status"] == "admitted"
    await adapter.revoke_inpatient_fees(visit)
    await adapter.cancel_admission(visit)
    assert (await control("GET", f"/visits/{visit.mdtrt_id}"))["status"] == "cancelled"
    again = await inpatient_visit(adapter, p)  # a new admission is possible now
    assert again.mdtrt_id != visit.mdtrt_id


async def test_single_disease_hospital_share_and_medical_aid(adapter) -> None:
    p = await person(adapter, WANGWU_ID)
    visit = await inpatient_visit(adapter, p, med_type="26")
    await adapter.upload_inpatient_fees(visit, [fee("1", "330100001", 1_000_000, batch=None)])
    await adapter.discharge(discharge_request(visit))
    s = await adapter.settle_inpatient(settle_request(visit, p, 1_000_000, med_type="26", chrg_bchno=None,
                                                      password="654321"))
    split = s.split.check()
    assert split.hosp_part == 200_000  # above the 8,000 yuan single-disease quota
    assert split.funds["maf_pay"] > 0 and split.funds["cvlserv_pay"] > 0
    assert split.total == split.fund_total + split.psn_part + split.hosp_part
