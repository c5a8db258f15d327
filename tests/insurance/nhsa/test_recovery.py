"""Unknown outcomes and 2601: timeouts, 5xx, dropped connections, system errors."""
from __future__ import annotations

import pytest

from gateway.errors import (
    InsuranceRejected,
    InsuranceTimeout,
    InsuranceUnavailable,
    InsuranceUnknown,
    UpstreamError,
)

from .conftest import fee, outpatient_visit, person, settle_request


async def _ready(adapter, amount=20000):
    p = await person(adapter)
    visit = await outpatient_visit(adapter, p)
    await adapter.upload_outpatient_fees(visit, [fee("1", "XJ01AAA001", amount)])
    return p, visit, settle_request(visit, p, amount, password="123456")


async def test_2601_after_timeout_in_after_mode_restores_the_centre(make_adapter, control) -> None:
    adapter = make_adapter(timeout_seconds=0.5)
    p, visit, req = await _ready(adapter)
    before = await control("GET", f"/persons/{p.psn_no}")
    await control("POST", "/faults", {"infno": "2207", "kind": "timeout", "when": "after", "delay_seconds": 5})
    with pytest.raises(InsuranceTimeout) as err:
        await adapter.settle_outpatient(req)
    assert isinstance(err.value, InsuranceUnknown) and isinstance(err.value, UpstreamError)
    msgid = err.value.extra["msgid"]
    assert err.value.extra["infno"] == "2207" and len(msgid) == 30
    # the centre did settle: the money moved although the kiosk never heard
    done = await control("GET", "/settlements")
    assert len(done) == 1 and done[0]["msgid"] == msgid
    assert (await control("GET", f"/persons/{p.psn_no}"))["acct_balance"] < before["acct_balance"]

    ack = await adapter.reverse_call(p.psn_no, visit.insuplc_admdvs, msgid, "2207")
    assert ack.infno == "2601" and ack.output["data"]["rvs_rslt"] == "1"
    assert (await control("GET", f"/persons/{p.psn_no}"))["acct_balance"] == before["acct_balance"]
    settlements = await control("GET", "/settlements")
    assert settlements[0]["reversed_by"] and settlements[1]["reversal_of"] == settlements[0]["setl_id"]
    again = await adapter.reverse_call(p.psn_no, visit.insuplc_admdvs, msgid, "2207")  # idempotent
    assert again.msgid != ack.msgid
    assert (await control("GET", f"/persons/{p.psn_no}"))["acct_balance"] == before["acct_balance"]
    # the fees are open again: the kiosk may settle afresh
    s = await adapter.settle_outpatient(req)
    assert s.split.check().total == 20000


async def test_2601_of_a_call_that_never_arrived(make_adapter, control) -> None:
    adapter = make_adapter(timeout_seconds=0.5)
    p, visit, req = await _ready(adapter)
    await control("POST", "/faults", {"infno": "2207", "kind": "timeout", "when": "before", "delay_seconds": 5})
    with pytest.raises(InsuranceTimeout) as err:
        await adapter.settle_outpatient(req)
    ack = await adapter.reverse_call(p.psn_no, visit.insuplc_admdvs, err.value.extra["msgid"], "2207")
    assert ack.output["data"]["rvs_rslt"] == "0"
    assert await control("GET", "/settlements") == []
    registration = next(c for c in await control("GET", "/calls") if c["infno"] == "2201")
    with pytest.raises(InsuranceRejected, match="不符"):  # a real msgid, the wrong transaction code
        await adapter.reverse_call(p.psn_no, visit.insuplc_admdvs, registration["msgid"], "2207")


async def test_2601_undoes_a_registration(adapter, control) -> None:
    p = await person(adapter)
    visit = await outpatient_visit(adapter, p)
    calls = await control("GET", "/calls")
    reg = next(c for c in calls if c["infno"] == "2201")
    await adapter.reverse_call(p.psn_no, visit.insuplc_admdvs, reg["msgid"], "2201")
    assert (await control("GET", f"/visits/{visit.mdtrt_id}"))["status"] == "cancelled"


@pytest.mark.parametrize(("kind", "exc"), [("http_500", InsuranceUnavailable), ("drop", InsuranceUnavailable)])
async def test_broken_calls_are_unknown(adapter, control, kind, exc) -> None:
    p, visit, req = await _ready(adapter)
    await control("POST", "/faults", {"infno": "2207", "kind": kind, "when": "after"})
    with pytest.raises(exc) as err:
        await adapter.settle_outpatient(req)
    assert err.value.extra["msgid"]
    assert len(await control("GET", "/settlements")) == 1  # done, although the answer was lost


async def test_error_messages_map_to_known_or_unknown(adapter, control) -> None:
    p, visit, req = await _ready(adapter)
    await control("POST", "/faults", {"infno": "2207", "kind": "error", "err_msg": "系统异常，请稍后重试"})
    with pytest.raises(InsuranceUnavailable, match="系统异常"):
        await adapter.settle_outpatient(req)
    await control("POST", "/faults", {"infno": "2207", "kind": "error", "err_msg": "该人员处于暂停参保状态"})
    with pytest.raises(InsuranceRejected, match="暂停参保") as err:
        await adapter.settle_outpatient(req)
    assert type(err.value) is InsuranceRejected and err.value.code == "INSURANCE_REJECTED"
    s = await adapter.settle_outpatient(req)  # faults used up
    assert s.setl_id
