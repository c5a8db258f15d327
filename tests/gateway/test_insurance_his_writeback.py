"""Insurance settlements written back to the business system (医保结算回写), end to end over real HTTP.

The gateway runs against the WeChat Pay simulator, the insurance-centre simulator and
a HIS simulator (REST, and SOAP for the kiosk flow), each with its shipped
configuration. What the HIS recorded is read through its /_sim control surface and
compared with the gateway's insurance ledger, bucket by bucket.

Decisions the tests pin down: a settlement is written back once it is COMPLETED,
with or without a cash top-up; a top-up that fails reverses the settlement before
the HIS ever hears of it, so nothing is written back; a reversal after completion is
written back as its own record (医保结算撤销) once the settlement itself was recorded.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.services.his_systems import SystemIn
from his_adapters.rest.simulator import start_simulator as start_rest_his
from his_adapters.soap.simulator import start_simulator as start_soap_his
from insurance.nhsa.simulator import NhsaSimHandle
from tests.conftest import Gateway, start_gateway, stop_gateway, wait_for
from tests.gateway.test_insurance_flow import (configure_centre, identify, insurance_settings, nhsa_sim,  # noqa: F401
                                               outpatient_visit, settle_body, settlement, sim_call, small_accounts,
                                               standing_at_centre)
from tests.gateway.test_payments import code

FUND_NAMES = ("hifp_pay", "cvlserv_pay", "hifes_pay", "hifmi_pay", "hifob_pay", "maf_pay", "oth_pay")


@pytest.fixture(params=["rest"])
async def his_sim(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    start = start_soap_his if request.param == "soap" else start_rest_his
    handle = await start("127.0.0.1", 0)
    try:
        yield handle
    finally:
        await handle.stop()


@pytest.fixture
async def hgw(tmp_path: Path, wechat_sim: Any, nhsa_sim: NhsaSimHandle, his_sim: Any  # noqa: F811
              ) -> AsyncIterator[Gateway]:
    settings = insurance_settings(tmp_path, his_worker_interval_seconds=0.1, his_writeback_retry_waits=[0.1, 0.1],
                                  his_writeback_slow_interval_seconds=0.3, his_writeback_slow_max_seconds=1.0)
    g, runner = await start_gateway(settings, {"wechatpay": wechat_sim})
    await configure_centre(g, nhsa_sim)
    cfg = his_sim.system_configs()[0]
    await g.core.his.put("test", cfg["id"], SystemIn(name=cfg["name"], adapter=cfg["adapter"],
                                                     business_types=cfg["business_types"],
                                                     config={**cfg["config"], "timeout_seconds": 1}))
    try:
        yield g
    finally:
        await stop_gateway(g, runner)


async def his_control(his: Any, method: str, path: str, body: Any = None) -> Any:
    async with aiohttp.ClientSession() as s:
        async with s.request(method, f"{his.control_url}{path}", json=body) as r:
            data = await r.json()
            assert r.status < 400, data
            return data


async def his_bill_for(his: Any, total: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A sandbox HIS patient and a new pending outpatient charge of ``total`` fen (the fees just uploaded)."""
    patient = next(iter(his.hospital.patients.values()))
    charge = await his_control(his, "POST", "/charges", {"patient_id": patient.patient_id, "amount": total,
                                                         "bill_type": "outpatient_settlement"})
    link = {"system": his.system_configs()[0]["id"], "patient_id": patient.patient_id,
            "patient_name": patient.name, "visit_no": charge["visit_no"], "charge_ids": [charge["charge_id"]]}
    return charge, link


async def his_entry(his: Any, sid: str) -> dict[str, Any] | None:
    found = await his_control(his, "GET", f"/insurance-settlements?settlement_id={sid}")
    return found[0] if found else None


async def writeback_is(g: Gateway, sid: str, status: str, *, reversal: bool = False) -> dict[str, Any] | None:
    his = (await settlement(g, sid))["his"]
    if reversal:
        his = (his or {}).get("reversal")
    return his if his and his["status"] == status else None


def assert_buckets_equal(entry: dict[str, Any], amounts: dict[str, Any]) -> None:
    """What the HIS holds is what the ledger holds, bucket by bucket."""
    assert entry["total"] == amounts["total"]
    assert entry["fund_total"] == amounts["fund"]
    assert entry["acct_pay"] == amounts["personal_account"]
    assert entry["acct_mulaid_pay"] == amounts["mutual_aid_account"]
    assert entry["wallet_pay"] == (amounts["wallet"] or 0)
    assert entry["cash_pay"] == amounts["cash"]
    assert entry["hosp_part"] == amounts["hospital"]
    assert {k: v for k, v in entry["funds"].items() if v} == {k: v for k, v in amounts["funds"].items() if v}
    assert sum(entry["funds"].values()) == entry["fund_total"]


# --- tests ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("his_sim", ["rest", "soap"], indirect=True)
async def test_kiosk_settlement_with_wechat_top_up_is_written_back_with_buckets_apart_and_so_is_its_reversal(
        hgw: Gateway, nhsa_sim: NhsaSimHandle, his_sim: Any) -> None:  # noqa: F811
    await small_accounts(nhsa_sim)
    person = await identify(hgw)
    visit, total = await outpatient_visit(hgw, person)
    charge, link = await his_bill_for(his_sim, total)
    status, s = await hgw.client.post("/v1/insurance/settlements", settle_body(person, visit, total, his=link))
    assert status == 200 and s["status"] == "COMPLETED", s
    a = s["amounts"]
    assert a["fund"] > 0 and a["personal_account"] == 1000 and a["wallet"] == 2000 and a["cash"] > 0
    sid = s["settlement_id"]

    recorded = await wait_for(lambda: writeback_is(hgw, sid, "RECORDED"), timeout=10)
    entry = await his_entry(his_sim, sid)
    assert entry is not None and entry["his_serial"] == recorded["his_serial"]
    assert_buckets_equal(entry, a)
    assert (entry["setl_id"], entry["mdtrt_id"], entry["psn_no"], entry["insutype"]) == \
        (s["setl_id"], visit["mdtrt_id"], visit["psn_no"], visit["insutype"])
    assert entry["charge_ids"] == [charge["charge_id"]] and entry["status"] == "normal"
    # The cash part is the top-up payment, and a line of the HIS's daily bill like any channel payment.
    assert entry["cash_payment_id"] == s["payment_id"] and entry["cash_channel"] == "WX"
    records = await his_control(his_sim, "GET", f"/records?payment_id={s['payment_id']}")
    assert [(r["kind"], r["amount"]) for r in records] == [("payment", a["cash"])]
    assert charge["charge_id"] not in {c.charge_id for c in his_sim.hospital.pending(link["patient_id"])}
    # The history says so; the interface log keeps psn_no masked.
    _, events = await hgw.client.get(f"/v1/insurance/settlements/{sid}/events")
    assert any(e["action"] == "his_recorded:ins_setl" for e in events)
    await hgw.core.ilog.flush()
    logged = await hgw.core.ilog.search(interface="his.ins_setl_write_back", payment_id=sid)
    assert logged and visit["psn_no"] not in str(logged) and s["setl_id"] in logged[0]["request_body"]

    # A reversal after completion is written back as its own record, the cash refund with it.
    status, r = await hgw.client.post(f"/v1/insurance/settlements/{sid}/reverse", {})
    assert status == 200 and r["status"] == "REVERSED", r
    await wait_for(lambda: writeback_is(hgw, sid, "RECORDED", reversal=True), timeout=10)
    entry = await his_entry(his_sim, sid)
    assert entry is not None and entry["status"] == "reversed" and entry["cash_refund_id"] == r["refund_id"]
    assert entry["rev_setl_id"] == r["reversal"]["setl_id"]
    records = await his_control(his_sim, "GET", f"/records?payment_id={s['payment_id']}")
    assert sorted((x["kind"], x["amount"]) for x in records) == [("payment", a["cash"]), ("refund", a["cash"])]
    assert charge["charge_id"] in {c.charge_id for c in his_sim.hospital.pending(link["patient_id"])}


async def test_fully_covered_settlement_is_written_back_without_a_cash_part(
        hgw: Gateway, nhsa_sim: NhsaSimHandle, his_sim: Any) -> None:  # noqa: F811
    person = await identify(hgw)  # the seeded accounts cover the whole self-pay part
    visit, total = await outpatient_visit(hgw, person)
    _, link = await his_bill_for(his_sim, total)
    body = settle_body(person, visit, total, his=link)
    del body["top_up"]
    records_before = len(his_sim.hospital.records)
    status, s = await hgw.client.post("/v1/insurance/settlements", body)
    assert status == 200 and s["status"] == "COMPLETED" and s["amounts"]["cash"] == 0, s
    assert s["payment_id"] is None
    await wait_for(lambda: writeback_is(hgw, s["settlement_id"], "RECORDED"), timeout=10)
    entry = await his_entry(his_sim, s["settlement_id"])
    assert entry is not None
    assert_buckets_equal(entry, s["amounts"])
    assert entry["cash_payment_id"] is None and entry["cash_serial"] is None
    assert len(his_sim.hospital.records) == records_before  # no channel money, no bill line


async def test_failed_top_up_reverses_the_settlement_and_writes_nothing_back(
        hgw: Gateway, nhsa_sim: NhsaSimHandle, his_sim: Any) -> None:  # noqa: F811
    await small_accounts(nhsa_sim)
    person = await identify(hgw)
    visit, total = await outpatient_visit(hgw, person)
    charge, link = await his_bill_for(his_sim, total)
    body = settle_body(person, visit, total, his=link,
                       top_up={"method": "code", "auth_code": code("9011"), "entry": "kiosk-01"})
    status, s = await hgw.client.post("/v1/insurance/settlements", body)
    assert status == 200 and s["status"] == "REVERSED" and s["reason"] == "topup_failed", s
    assert await standing_at_centre(nhsa_sim, visit["mdtrt_id"]) == []
    await asyncio.sleep(0.6)  # several write-back passes
    got = await settlement(hgw, s["settlement_id"])
    assert got["his"]["status"] == "CANCELLED" and got["his"]["reversal"] is None and got["his"]["attempts"] == 0
    assert await his_entry(his_sim, s["settlement_id"]) is None
    assert charge["charge_id"] in {c.charge_id for c in his_sim.hospital.pending(link["patient_id"])}


async def test_a_bill_that_differs_from_the_fees_is_refused_before_the_centre_settles(
        hgw: Gateway, nhsa_sim: NhsaSimHandle, his_sim: Any) -> None:  # noqa: F811
    person = await identify(hgw)
    visit, total = await outpatient_visit(hgw, person)
    _, link = await his_bill_for(his_sim, total + 100)
    status, problem = await hgw.client.post("/v1/insurance/settlements", settle_body(person, visit, total, his=link))
    assert (status, problem["code"]) == (422, "HIS_AMOUNT_MISMATCH"), problem
    assert await standing_at_centre(nhsa_sim, visit["mdtrt_id"]) == []


async def test_a_refused_write_back_is_kept_apart_and_retried_by_staff(
        hgw: Gateway, nhsa_sim: NhsaSimHandle, his_sim: Any) -> None:  # noqa: F811
    await his_control(his_sim, "POST", "/faults", {"op": "insurance_write_back", "kind": "refuse"})
    person = await identify(hgw)
    visit, total = await outpatient_visit(hgw, person)
    _, link = await his_bill_for(his_sim, total)
    body = settle_body(person, visit, total, his=link)
    del body["top_up"]
    status, s = await hgw.client.post("/v1/insurance/settlements", body)
    assert status == 200 and s["status"] == "COMPLETED", s
    sid = s["settlement_id"]
    rejected = await wait_for(lambda: writeback_is(hgw, sid, "REJECTED"), timeout=10)
    assert rejected["last_error_code"] == "1099"
    _, found = await hgw.admin.get(f"/v1/admin/his/writebacks?trade_no={body['out_settle_no']}")
    items = found["items"] if isinstance(found, dict) else found
    assert [(w["kind"], w["settlement_id"], w["status"]) for w in items] == [("ins_setl", sid, "REJECTED")]
    _, events = await hgw.client.get(f"/v1/insurance/settlements/{sid}/events")
    assert any(e["action"] == "his_rejected:ins_setl" for e in events)
    await his_control(his_sim, "DELETE", "/faults")
    status, retried = await hgw.admin.post(f"/v1/admin/his/writebacks/{sid}/retry", {})
    assert status == 200, retried
    await wait_for(lambda: writeback_is(hgw, sid, "RECORDED"), timeout=10)
    entry = await his_entry(his_sim, sid)
    assert entry is not None
    assert_buckets_equal(entry, s["amounts"])
