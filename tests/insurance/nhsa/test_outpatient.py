"""Outpatient flows end to end over HTTP, for each profile: 2201 → 2203 → 2204 → 2206
→ 2207 → 2208, the split's buckets and invariants, and the centre's refusals."""
from __future__ import annotations

import pytest

from gateway.errors import (
    InsuranceAlreadyReversed,
    InsuranceBalanceInsufficient,
    InsurancePasswordFailed,
    InsuranceRejected,
)
from gateway.insurance import SettlementRef, VisitInfo

from .conftest import LISI_ID, WANGWU_ID, fee, now, outpatient_visit, person, settle_request

PWD = "123456"


async def test_outpatient_end_to_end(adapter, control, sim) -> None:
    p = await person(adapter)
    visit = await outpatient_visit(adapter, p)
    await adapter.upload_visit_info(VisitInfo(visit=visit, med_type="11", begin_time=now(), dise_codg="J00",
                                              dise_name="急性鼻咽炎"))
    up = await adapter.upload_outpatient_fees(visit, [
        fee("1", "001102000010000", 2500), fee("2", "XJ01DDA002", 48000, qty="12"), fee("3", "ZZ9999001", 3000)])
    assert up.total == 53500
    cephalo = next(line for line in up.lines if line.feedetl_sn == "2")
    assert (cephalo.preselfpay, cephalo.inscp_scp) == (4800, 43200)
    assert next(line for line in up.lines if line.feedetl_sn == "3").fulamt_ownpay == 3000

    req = settle_request(visit, p, 53500, password=PWD)
    pre = await adapter.pre_settle_outpatient(req)
    assert pre.setl_id is None and pre.pre_settlement
    before = await control("GET", f"/persons/{p.psn_no}")
    settled = await adapter.settle_outpatient(req)
    split = settled.split.check()
    assert split == pre.split  # the pre-settlement promised exactly this
    assert settled.setl_id and settled.msgid.startswith("H43010000001")
    assert settled.clr_type == "11" and settled.setl_optins == visit.insuplc_admdvs
    assert split.total == 53500 and split.fulamt_ownpay == 3000 and split.preselfpay == 4800
    assert split.deductible == 20000  # employee outpatient 起付线 200 yuan
    assert split.funds["hifp_pay"] == (53500 - 3000 - 4800 - 20000) // 2
    assert split.acct_pay == split.psn_part and split.cash_pay == 0  # account covers it
    assert settled.balance_after == before["acct_balance"] - split.acct_pay
    if sim.profile.wallet_field:
        assert split.wallet_pay == 0
    else:
        assert split.wallet_pay is None

    reversal = await adapter.reverse_outpatient_settlement(SettlementRef(setl_id=settled.setl_id, visit=visit))
    reversal.split.check()
    assert reversal.split.total == -split.total and reversal.split.acct_pay == -split.acct_pay
    assert reversal.split.cash_pay == -split.cash_pay  # read from the spec's pdn_cash_pay spelling
    after = await control("GET", f"/persons/{p.psn_no}")
    assert after["acct_balance"] == before["acct_balance"]
    with pytest.raises(InsuranceAlreadyReversed) as err:
        await adapter.reverse_outpatient_settlement(SettlementRef(setl_id=settled.setl_id, visit=visit))
    assert "已撤销" in (err.value.detail or "") and err.value.extra["infno"] == "2208"

    # after the reversal the fees are open again: settle once more, deductible reused
    again = await adapter.settle_outpatient(req)
    assert again.split.deductible == 20000 and again.setl_id != settled.setl_id


async def test_wallet_is_its_own_bucket(adapter, control, sim) -> None:
    p = await person(adapter)
    await control("PUT", f"/persons/{p.psn_no}/balances", {"acct_balance": 1000, "wallet_balance": 5000})
    visit = await outpatient_visit(adapter, p)
    await adapter.upload_outpatient_fees(visit, [fee("1", "ZZ9999001", 10000)])
    s = await adapter.settle_outpatient(settle_request(visit, p, 10000, password=PWD))
    split = s.split.check()
    assert split.fund_total == 0 and split.psn_part == 10000 and split.acct_pay == 1000
    if sim.profile.wallet_field:
        assert (split.wallet_pay, split.cash_pay) == (5000, 4000)
        assert (await control("GET", f"/persons/{p.psn_no}"))["wallet_balance"] == 0
    else:
        assert (split.wallet_pay, split.cash_pay) == (None, 9000)
    assert s.warn_msg and "余额不足" in s.warn_msg  # the centre's warning is surfaced
    rev = await adapter.reverse_outpatient_settlement(SettlementRef(setl_id=s.setl_id, visit=visit))
    assert rev.split.wallet_pay == (-5000 if sim.profile.wallet_field else None)
    restored = await control("GET", f"/persons/{p.psn_no}")
    assert (restored["acct_balance"], restored["wallet_balance"]) == (1000, 5000)


async def test_mutual_aid_and_civil_servant(adapter) -> None:
    p = await person(adapter, WANGWU_ID)
    visit = await outpatient_visit(adapter, p)
    await adapter.upload_outpatient_fees(visit, [fee("1", "XJ01AAA001", 50000), fee("2", "ZZ9999001", 60000)])
    s = await adapter.settle_outpatient(settle_request(visit, p, 110000, password="654321"))
    split = s.split.check()
    assert split.funds["cvlserv_pay"] > 0
    assert split.acct_pay == 50000 and split.acct_mulaid_pay > 0  # own account first, then the family's


@pytest.mark.parametrize(("med_type", "deductible", "share"), [("14", 0, "0.8"), ("51", 0, "1")])
async def test_chronic_and_maternity(adapter, med_type: str, deductible: int, share: str) -> None:
    p = await person(adapter)
    visit = await outpatient_visit(adapter, p)
    await adapter.upload_visit_info(VisitInfo(visit=visit, med_type=med_type, begin_time=now()))
    await adapter.upload_outpatient_fees(visit, [fee("1", "XJ01AAA001", 40000)])
    s = await adapter.settle_outpatient(settle_request(visit, p, 40000, med_type=med_type, password=PWD))
    split = s.split.check()
    assert s.med_type == med_type and split.deductible == deductible
    assert split.funds["hifp_pay"] == int(40000 * float(share))
    if med_type == "51":
        assert split.psn_part == 0 and [d.fund_pay_type for d in s.fund_payments] == ["510100"]


async def test_resident_has_no_account(adapter, sim) -> None:
    p = await person(adapter, LISI_ID)
    assert p.insurance().balance == 0
    assert p.insurance().wallet_balance == (5000 if sim.profile.wallet_balance_field else None)
    visit = await outpatient_visit(adapter, p)
    await adapter.upload_outpatient_fees(visit, [fee("1", "XJ01AAA001", 30000)])
    s = await adapter.settle_outpatient(settle_request(visit, p, 30000))
    split = s.split.check()
    assert split.deductible == 10000 and split.funds["hifp_pay"] == 10000 and split.acct_pay == 0
    assert split.cash_pay == split.psn_part - (split.wallet_pay or 0)


async def test_password_failure_is_typed(adapter, control) -> None:
    p = await person(adapter)
    visit = await outpatient_visit(adapter, p)
    await adapter.upload_outpatient_fees(visit, [fee("1", "XJ01AAA001", 1000)])
    with pytest.raises(InsurancePasswordFailed) as err:
        await adapter.settle_outpatient(settle_request(visit, p, 1000, password="000000"))
    assert err.value.code == "INSURANCE_PASSWORD_FAILED" and "密码" in (err.value.detail or "")
    assert err.value.extra["msgid"] and err.value.extra["infno"] == "2207"
    assert await control("GET", "/settlements") == []


async def test_exhausted_balance_is_typed(adapter, control) -> None:
    p = await person(adapter)
    await control("PUT", f"/persons/{p.psn_no}/balances", {"acct_balance": 0, "wallet_balance": 0})
    visit = await outpatient_visit(adapter, p)
    await adapter.upload_outpatient_fees(visit, [fee("1", "XJ01AAA001", 2000)])
    with pytest.raises(InsuranceBalanceInsufficient) as err:
        await adapter.settle_outpatient(settle_request(visit, p, 2000, med_type="41", password=PWD))
    assert isinstance(err.value, InsuranceRejected) and err.value.status == 422


async def test_wrong_total_and_unknown_code_are_rejected(adapter) -> None:
    p = await person(adapter)
    visit = await outpatient_visit(adapter, p)
    with pytest.raises(InsuranceRejected, match="目录"):
        await adapter.upload_outpatient_fees(visit, [fee("1", "NOPE", 100)])
    await adapter.upload_outpatient_fees(visit, [fee("1", "XJ01AAA001", 100)])
    with pytest.raises(InsuranceRejected, match="不符"):
        await adapter.pre_settle_outpatient(settle_request(visit, p, 101))


async def test_revoke_fees_and_cancel_registration(adapter, control) -> None:
    p = await person(adapter)
    visit = await outpatient_visit(adapter, p)
    await adapter.upload_outpatient_fees(visit, [fee("1", "XJ01AAA001", 100), fee("2", "XJ01AAA001", 200)])
    ack = await adapter.revoke_outpatient_fees(visit)
    assert ack.infno == "2205" and ack.msgid
    state = await control("GET", f"/visits/{visit.mdtrt_id}")
    assert all(f["revoked"] for f in state["fees"])
    await adapter.cancel_outpatient(visit, "MZ-any")
    assert (await control("GET", f"/visits/{visit.mdtrt_id}"))["status"] == "cancelled"
    with pytest.raises(InsuranceRejected, match="已撤销"):
        await adapter.cancel_outpatient(visit, "MZ-any")
