"""Insurance through the gateway, end to end over real HTTP: identify, visit, fees,
pre-settlement, mixed settlement with a WeChat top-up, receipt, reversal, inpatient.

The gateway runs against the WeChat Pay simulator and the insurance-centre simulator
(wallet profile ``sm_oauth``); what the centre holds is checked through its /_sim
control surface, never by patching the gateway.
"""
from __future__ import annotations

from decimal import Decimal

import datetime as dt
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.testing.pytest_plugin import make_test_settings
from insurance.nhsa.simulator import NhsaSimHandle, start_simulator
from tests.conftest import Gateway, free_port, start_gateway, stop_gateway, wait_for
from tests.gateway.test_payments import code

ZHANGSAN_QR = "EC-QR-ZHANGSAN"
ZHANGSAN_PSN = "43000000000000000001"
ZHANGSAN_ID = "430102198001011234"


@pytest.fixture
async def nhsa_sim() -> AsyncIterator[NhsaSimHandle]:
    handle = await start_simulator("127.0.0.1", 0, profile="sm_oauth")
    try:
        yield handle
    finally:
        await handle.stop()


def insurance_settings(tmp_path: Path, **kw: Any) -> Any:
    values: dict[str, Any] = {"insurance_worker_interval_seconds": 0.2, "insurance_topup_timeout_seconds": 60,
                              "insurance_call_grace_seconds": 4, "insurance_retry_seconds": 0.3}
    values.update(kw)
    return make_test_settings(tmp_path, port=free_port(), **values)


async def configure_centre(g: Gateway, sim: NhsaSimHandle, **overrides: Any) -> None:
    cfg = sim.system_configs()[0]
    status, body = await g.admin.request("PUT", f"/v1/admin/insurance/centres/{cfg['id']}", {
        "name": cfg["name"], "adapter": "nhsa", "config": {**cfg["config"], "timeout_seconds": 1.5, **overrides}})
    assert status == 200, body


@pytest.fixture
async def igw(tmp_path: Path, wechat_sim: Any, nhsa_sim: NhsaSimHandle) -> AsyncIterator[Gateway]:
    g, runner = await start_gateway(insurance_settings(tmp_path), {"wechatpay": wechat_sim})
    await configure_centre(g, nhsa_sim)
    try:
        yield g
    finally:
        await stop_gateway(g, runner)


async def sim_call(sim: NhsaSimHandle, method: str, path: str, body: Any = None) -> Any:
    async with aiohttp.ClientSession() as s:
        async with s.request(method, sim.control_url + path, json=body) as r:
            data = await r.json()
            assert r.status < 400, data
            return data


async def fault(sim: NhsaSimHandle, infno: str, kind: str = "timeout", when: str = "before", **kw: Any) -> None:
    await sim_call(sim, "POST", "/faults", {"infno": infno, "kind": kind, "when": when, "delay_seconds": 3, **kw})


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def fee_line(sn: str, code_: str, amount: int, qty: int = 1, batch: str | None = "B1") -> dict[str, Any]:
    price = f"{Decimal(amount) / 100 / qty:.4f}"
    return {"feedetl_sn": sn, "fee_time": now_iso(), "med_list_codg": code_, "medins_list_codg": f"H-{code_}",
            "amount": amount, "quantity": str(qty), "unit_price": price, "chrg_bchno": batch}


async def identify(g: Gateway, qr: str = ZHANGSAN_QR) -> dict[str, Any]:
    status, person = await g.client.post("/v1/insurance/persons/identify", {"method": "evoucher", "qr_code": qr})
    assert status == 200, person
    return person


async def outpatient_visit(g: Gateway, person: dict[str, Any], lines: list[dict[str, Any]] | None = None
                           ) -> tuple[dict[str, Any], int]:
    ins = person["insurances"][0]
    cert = person["mdtrt_cert"]
    status, reg = await g.client.post("/v1/insurance/outpatient/registrations", {
        "psn_no": person["psn_no"], "insuplc_admdvs": ins["insuplc_admdvs"], "insutype": ins["insutype"],
        "cert_type": cert["cert_type"], "cert_no": cert["cert_no"], "ipt_otp_no": "MZ" + secrets.token_hex(4),
        "begin_time": now_iso(), "doctor_code": "D001", "doctor_name": "王医生", "dept_code": "K01",
        "dept_name": "内科", "caty": "A03"})
    assert status == 200, reg
    visit = {"psn_no": person["psn_no"], "insuplc_admdvs": ins["insuplc_admdvs"], "mdtrt_id": reg["mdtrt_id"],
             "insutype": ins["insutype"]}
    status, info = await g.client.post("/v1/insurance/outpatient/visit-info", {
        "visit": visit, "med_type": "11", "begin_time": now_iso(), "dise_codg": "J06.9", "dise_name": "上呼吸道感染"})
    assert status == 200, info
    lines = lines or [fee_line("1", "001102000010000", 2500), fee_line("2", "XJ01DDA002", 48000, 12),
                      fee_line("3", "ZZ9999001", 3000)]
    status, fees = await g.client.post("/v1/insurance/outpatient/fees", {"visit": visit, "lines": lines})
    assert status == 200, fees
    return visit, fees["total"]


def settle_body(person: dict[str, Any], visit: dict[str, Any], total: int, **kw: Any) -> dict[str, Any]:
    cert = person["mdtrt_cert"]
    body: dict[str, Any] = {"out_settle_no": "S" + secrets.token_hex(6), "kind": "outpatient", "visit": visit,
                            "med_type": "11", "cert_type": cert["cert_type"], "cert_no": cert["cert_no"],
                            "total": total, "chrg_bchno": "B1",
                            "top_up": {"method": "code", "auth_code": code(), "entry": "kiosk-01", "campus": "main"}}
    body.update(kw)
    return body


async def small_accounts(sim: NhsaSimHandle, psn_no: str = ZHANGSAN_PSN, acct: int = 1000, wallet: int = 2000) -> None:
    """Leave the patient a little in each account so that fund, account, wallet and cash all pay."""
    await sim_call(sim, "PUT", f"/persons/{psn_no}/balances", {"acct_balance": acct, "wallet_balance": wallet})


async def settlement(g: Gateway, sid: str) -> dict[str, Any]:
    status, body = await g.client.get(f"/v1/insurance/settlements/{sid}")
    assert status == 200, body
    return body


async def is_status(g: Gateway, sid: str, *statuses: str) -> dict[str, Any] | None:
    body = await settlement(g, sid)
    return body if body["status"] in statuses else None


def check_invariants(s: dict[str, Any]) -> None:
    a = s["amounts"]
    assert a["total"] == a["fund"] + a["psn_part"] + a["hospital"]
    assert a["psn_part"] == a["personal_account"] + a["mutual_aid_account"] + (a["wallet"] or 0) + a["cash"]
    assert sum(a["funds"].values()) == a["fund"]


async def centre_settlement(sim: NhsaSimHandle, setl_id: str) -> dict[str, Any]:
    return await sim_call(sim, "GET", f"/settlements/{setl_id}")


async def standing_at_centre(sim: NhsaSimHandle, mdtrt_id: str) -> list[dict[str, Any]]:
    """Settlements of a visit at the centre that are not reversed (and are not reversals)."""
    rows = await sim_call(sim, "GET", "/settlements")
    return [r for r in rows if r["mdtrt_id"] == mdtrt_id and not r["reversal_of"] and not r["reversed_by"]]


# --- tests ----------------------------------------------------------------------------------------------


async def test_kiosk_settles_with_insurance_and_wechat_top_up_and_the_receipt_keeps_buckets_apart(
        igw: Gateway, nhsa_sim: NhsaSimHandle, wechat_sim: Any) -> None:
    await small_accounts(nhsa_sim)
    person = await identify(igw)
    assert person["name"] == "张*" and "*" in person["certno"] and ZHANGSAN_ID not in str(person)
    assert person["insurances"][0]["wallet_balance"] == 2000
    visit, total = await outpatient_visit(igw, person)
    status, pre = await igw.client.post("/v1/insurance/pre-settlements", {
        k: v for k, v in settle_body(person, visit, total).items() if k not in ("out_settle_no", "top_up")})
    assert status == 200, pre
    assert pre["amounts"]["cash"] > 0 and pre["amounts"]["wallet"] > 0
    body = settle_body(person, visit, total, notify_url="http://127.0.0.1:9/notify")
    status, s = await igw.client.post("/v1/insurance/settlements", body)
    assert status == 200, s
    assert s["status"] == "COMPLETED", s
    check_invariants(s)
    a = s["amounts"]
    assert a["fund"] > 0 and a["personal_account"] == 1000 and a["wallet"] == 2000 and a["cash"] > 0
    assert a["cash"] == pre["amounts"]["cash"]
    assert s["top_up"]["status"] == "SUCCEEDED" and s["top_up"]["amount"] == a["cash"]
    assert s["psn_name"] == "张*"
    centre = await centre_settlement(nhsa_sim, s["setl_id"])
    assert centre["buckets"]["cash_pay"] == a["cash"] and centre["reversed_by"] is None
    status, receipt = await igw.client.get(f"/v1/insurance/settlements/{s['settlement_id']}/receipt")
    assert status == 200, receipt
    cols = {c["key"]: c for c in receipt["columns"]}
    assert cols["fund"]["label_zh"] == "医保统筹" and cols["fund"]["amount"] == a["fund"]
    assert cols["personal_account"]["label_zh"] == "个人账户" and cols["personal_account"]["amount"] == 1000
    assert cols["wallet"]["label_zh"] == "医保钱包" and cols["wallet"]["amount"] == 2000
    assert cols["cash"]["label_zh"] == "现金/自付" and cols["cash"]["amount"] == a["cash"]
    assert cols["mutual_aid_account"]["label_zh"] == "共济账户"
    assert receipt["total"]["amount"] == total and receipt["cash_paid_by"]["channel"] == "wechatpay"
    # The result query by the caller's key, and the ledger for reconciliation.
    _, found = await igw.client.get(f"/v1/insurance/settlements?out_settle_no={body['out_settle_no']}")
    assert found["settlement_id"] == s["settlement_id"]
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date().isoformat()
    status, totals = await igw.admin.get(f"/v1/admin/insurance/ledger/totals?begin={today}")
    assert status == 200, totals
    row = next(t for t in totals["items"] if t["insutype"] == "310")
    assert row["medfee_sumamt"] == total and row["fund_pay_sumamt"] == a["fund"] and row["count"] == 1
    # A caller notification is queued for the final state.
    notes = await igw.core.callbacks.search(payment_id=s["settlement_id"])
    assert any(n["event"] == "insurance_settlement.completed" for n in notes["items"] if isinstance(notes, dict)) \
        or any(n["event"] == "insurance_settlement.completed" for n in (notes if isinstance(notes, list) else []))


async def test_same_out_settle_no_replays_and_a_different_body_conflicts(igw: Gateway, nhsa_sim: NhsaSimHandle) -> None:
    await small_accounts(nhsa_sim)
    person = await identify(igw)
    visit, total = await outpatient_visit(igw, person)
    body = settle_body(person, visit, total)
    _, first = await igw.client.post("/v1/insurance/settlements", body)
    _, again = await igw.client.post("/v1/insurance/settlements", body)
    assert first["status"] == "COMPLETED" and again["settlement_id"] == first["settlement_id"]
    assert again["top_up"]["payment_id"] == first["top_up"]["payment_id"]
    status, conflict = await igw.client.post("/v1/insurance/settlements", {**body, "total": total + 1})
    assert (status, conflict["code"]) == (409, "IDEMPOTENCY_CONFLICT")
    assert conflict["settlement_id"] == first["settlement_id"]
    rows = [r for r in await sim_call(nhsa_sim, "GET", "/settlements") if r["mdtrt_id"] == visit["mdtrt_id"]]
    assert len(rows) == 1


async def test_bad_input_is_refused_with_a_stable_code_and_records_nothing(igw: Gateway) -> None:
    status, body = await igw.client.post("/v1/insurance/settlements", {"out_settle_no": "x1", "kind": "outpatient"})
    assert (status, body["code"]) == (400, "VALIDATION_FAILED")
    status, body = await igw.client.post("/v1/insurance/persons/identify", {"method": "social_card", "card_no": "A1"})
    assert (status, body["code"]) == (400, "VALIDATION_FAILED")
    status, body = await igw.client.get("/v1/insurance/settlements?out_settle_no=x1")
    assert (status, body["code"]) == (404, "INSURANCE_SETTLEMENT_NOT_FOUND")
    status, body = await igw.client.post("/v1/insurance/persons/identify", {"method": "evoucher", "qr_code": "nope"})
    assert status == 422 and body["code"] == "INSURANCE_REJECTED" and body["detail"]


async def test_password_failure_and_exhausted_balance_reach_the_caller_as_clear_errors(
        igw: Gateway, nhsa_sim: NhsaSimHandle) -> None:
    status, person = await igw.client.post("/v1/insurance/persons/identify", {"method": "id_card", "id_no": ZHANGSAN_ID})
    assert status == 200, person
    person["mdtrt_cert"] = {"cert_type": "02", "cert_no": ZHANGSAN_ID}
    visit, total = await outpatient_visit(igw, person)
    body = settle_body(person, visit, total, password="000000")
    status, err = await igw.client.post("/v1/insurance/settlements", body)
    assert (status, err["code"]) == (422, "INSURANCE_PASSWORD_FAILED"), err
    assert "密码" in err["detail"] and err["settlement_status"] == "FAILED"
    again_status, again = await igw.client.post("/v1/insurance/settlements", body)
    assert (again_status, again["code"]) == (422, "INSURANCE_PASSWORD_FAILED")  # same body, same answer
    assert await standing_at_centre(nhsa_sim, visit["mdtrt_id"]) == []
    status, ok = await igw.client.post("/v1/insurance/settlements", settle_body(person, visit, total, password="123456"))
    assert status == 200 and ok["status"] == "COMPLETED", ok
    # Exhausted balance: the centre refuses, the caller reads its words.
    await fault(nhsa_sim, "2207", kind="error", err_msg="个人账户余额不足")
    visit2, total2 = await outpatient_visit(igw, person)
    status, err = await igw.client.post("/v1/insurance/settlements",
                                        settle_body(person, visit2, total2, password="123456"))
    assert (status, err["code"]) == (422, "INSURANCE_BALANCE_INSUFFICIENT") and err["detail"] == "个人账户余额不足"


async def test_reversal_of_a_completed_settlement_refunds_the_cash_and_reverses_at_the_centre(
        igw: Gateway, nhsa_sim: NhsaSimHandle, wechat_sim: Any) -> None:
    await small_accounts(nhsa_sim)
    person = await identify(igw)
    visit, total = await outpatient_visit(igw, person)
    _, s = await igw.client.post("/v1/insurance/settlements", settle_body(person, visit, total))
    assert s["status"] == "COMPLETED"
    status, r = await igw.client.post(f"/v1/insurance/settlements/{s['settlement_id']}/reverse", {})
    assert status == 200 and r["status"] == "REVERSED" and r["reason"] == "caller_reversed", r
    assert (await centre_settlement(nhsa_sim, s["setl_id"]))["reversed_by"] == r["reversal"]["setl_id"]
    assert r["refund_id"]
    _, refund = await igw.client.get(f"/v1/refunds/{r['refund_id']}")
    assert refund["amount"] == s["amounts"]["cash"] and refund["status"] in ("PROCESSING", "SUCCEEDED")
    balances = await sim_call(nhsa_sim, "GET", f"/persons/{ZHANGSAN_PSN}")
    assert balances["acct_balance"] == 1000 and balances["wallet_balance"] == 2000  # given back
    # Reversing twice is a clear error.
    status, err = await igw.client.post(f"/v1/insurance/settlements/{s['settlement_id']}/reverse", {})
    assert (status, err["code"]) == (409, "INSURANCE_ALREADY_REVERSED")
    # The ledger nets the settlement and its reversal for 3201.
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date().isoformat()
    _, lines = await igw.admin.get(f"/v1/admin/insurance/ledger/lines?begin={today}")
    mine = [ln for ln in lines["items"] if ln["settlement_id"] == s["settlement_id"]]
    assert sorted(ln["refund"] for ln in mine) == [False, True]
    assert sum(ln["medfee_sumamt"] for ln in mine) == 0


async def test_inpatient_stay_from_admission_to_discharge_settlement(igw: Gateway, nhsa_sim: NhsaSimHandle) -> None:
    person = await identify(igw, "EC-QR-LISI")
    ins = person["insurances"][0]
    cert = person["mdtrt_cert"]
    status, adm = await igw.client.post("/v1/insurance/inpatient/admissions", {
        "psn_no": person["psn_no"], "insuplc_admdvs": ins["insuplc_admdvs"], "insutype": ins["insutype"],
        "cert_type": cert["cert_type"], "cert_no": cert["cert_no"], "med_type": "21", "begin_time": now_iso(),
        "ipt_no": "ZY" + secrets.token_hex(4), "atddr_no": "D002", "chfpdr_name": "李主任", "adm_diag_dscr": "肺炎",
        "adm_dept_codg": "K02", "adm_dept_name": "呼吸科", "adm_bed": "12", "dise_codg": "J18.9", "dise_name": "肺炎"})
    assert status == 200, adm
    visit = {"psn_no": person["psn_no"], "insuplc_admdvs": ins["insuplc_admdvs"], "mdtrt_id": adm["mdtrt_id"],
             "insutype": ins["insutype"]}
    lines = [fee_line("F1", "120100001", 6000, 1, None), fee_line("F2", "330100001", 300000, 1, None),
             fee_line("F3", "ZZ9999001", 5000, 1, None)]
    status, fees = await igw.client.post("/v1/insurance/inpatient/fees", {"visit": visit, "lines": lines})
    assert status == 200 and fees["total"] == 311000, fees
    discharge = {"visit": visit, "end_time": now_iso(), "dise_codg": "J18.9", "dise_name": "肺炎",
                 "dscg_dept_codg": "K02", "dscg_dept_name": "呼吸科"}
    status, early = await igw.client.post("/v1/insurance/settlements", {
        **settle_body(person, visit, 311000, kind="inpatient", med_type="21", chrg_bchno=None)})
    assert status == 422 and early["code"] == "INSURANCE_REJECTED" and "出院" in early["detail"], early
    status, d = await igw.client.post("/v1/insurance/inpatient/discharges", discharge)
    assert status == 200, d
    status, pre = await igw.client.post("/v1/insurance/pre-settlements", {
        "kind": "inpatient", "visit": visit, "med_type": "21", "cert_type": cert["cert_type"],
        "cert_no": cert["cert_no"], "total": 311000})
    assert status == 200, pre
    status, s = await igw.client.post("/v1/insurance/settlements", settle_body(
        person, visit, 311000, kind="inpatient", med_type="21", chrg_bchno=None, business_type="inpatient",
        # a large amount: the patient confirms with a password; hold the answer until paid
        top_up={"method": "code", "auth_code": code(), "wait_seconds": 20}))
    assert status == 200 and s["status"] == "COMPLETED", s
    check_invariants(s)
    assert s["amounts"]["cash"] == pre["amounts"]["cash"] and s["clr_type"] == "21"
    assert (await centre_settlement(nhsa_sim, s["setl_id"]))["reversed_by"] is None
    _, payment = await igw.client.get(f"/v1/payments/{s['payment_id']}")
    assert payment["business_type"] == "inpatient" and payment["amount"] == s["amounts"]["cash"]
    # The discharge fee list a kiosk prints: the lines with the centre's verdict, and the settlement by bucket.
    status, printed = await igw.client.get(f"/v1/insurance/visits/{visit['mdtrt_id']}/fee-list")
    assert status == 200, printed
    assert [i["feedetl_sn"] for i in printed["items"]] == ["F1", "F2", "F3"]
    assert printed["totals"]["total"]["amount"] == 311000
    assert sum(c["amount"] for c in printed["categories"]) == 311000
    assert printed["settlement"]["setl_id"] == s["setl_id"]
    assert {c["key"] for c in printed["settlement"]["columns"]} >= {"fund", "personal_account", "cash"}


async def test_revoked_fee_lines_leave_the_fee_list(igw: Gateway, nhsa_sim: NhsaSimHandle) -> None:
    person = await identify(igw, "EC-QR-LISI")
    ins = person["insurances"][0]
    cert = person["mdtrt_cert"]
    status, adm = await igw.client.post("/v1/insurance/inpatient/admissions", {
        "psn_no": person["psn_no"], "insuplc_admdvs": ins["insuplc_admdvs"], "insutype": ins["insutype"],
        "cert_type": cert["cert_type"], "cert_no": cert["cert_no"], "med_type": "21", "begin_time": now_iso(),
        "ipt_no": "ZY" + secrets.token_hex(4), "atddr_no": "D002", "chfpdr_name": "李主任", "adm_diag_dscr": "肺炎",
        "adm_dept_codg": "K02", "adm_dept_name": "呼吸科", "adm_bed": "12", "dise_codg": "J18.9", "dise_name": "肺炎"})
    assert status == 200, adm
    visit = {"psn_no": person["psn_no"], "insuplc_admdvs": ins["insuplc_admdvs"], "mdtrt_id": adm["mdtrt_id"],
             "insutype": ins["insutype"]}
    lines = [fee_line("G1", "120100001", 6000, 1, None), fee_line("G2", "330100001", 2000, 2, None)]
    status, _ = await igw.client.post("/v1/insurance/inpatient/fees", {"visit": visit, "lines": lines})
    assert status == 200
    status, _ = await igw.client.post("/v1/insurance/inpatient/fees/revoke", {"visit": visit, "batch": "G2"})
    assert status == 200
    _, printed = await igw.client.get(f"/v1/insurance/visits/{visit['mdtrt_id']}/fee-list")
    assert [i["feedetl_sn"] for i in printed["items"]] == ["G1"]
    assert printed["items"][0]["quantity"] == "1" and printed["totals"]["total"]["amount"] == 6000
    assert printed["settlement"] is None
