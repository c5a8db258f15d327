"""Business-system integration end to end: pending charges, write-back, single-sided cases.

The gateway runs over real HTTP against the WeChat Pay simulator and the REST HIS
simulator (the shipped ``configs/his/rest-sim.toml``); faults are injected at the
simulated HIS, never by patching the gateway.
"""
from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.services.his_systems import SystemIn
from gateway.testing.pytest_plugin import make_test_settings
from his_adapters.rest.simulator import start_simulator as start_rest_his
from tests.conftest import Gateway, free_port, start_gateway, stop_gateway, wait_for
from tests.gateway.test_payments import code, pay_body


@pytest.fixture
async def his_sim() -> AsyncIterator[Any]:
    handle = await start_rest_his("127.0.0.1", 0)
    try:
        yield handle
    finally:
        await handle.stop()


async def _configure(gw: Gateway, his_sim: Any, **config_overrides: Any) -> None:
    cfg = his_sim.system_configs()[0]
    config = {**cfg["config"], "timeout_seconds": 1, **config_overrides}
    await gw.core.his.put("test", cfg["id"], SystemIn(name=cfg["name"], adapter=cfg["adapter"],
                                                      business_types=cfg["business_types"], config=config))


@pytest.fixture
async def hgw(tmp_path: Path, wechat_sim: Any, his_sim: Any) -> AsyncIterator[Gateway]:
    settings = make_test_settings(tmp_path, port=free_port(), his_worker_interval_seconds=0.1,
                                  his_writeback_retry_waits=[0.1, 0.1], his_writeback_slow_interval_seconds=0.3,
                                  his_writeback_slow_max_seconds=1.0, single_sided_auto_refund_minutes=60)
    g, runner = await start_gateway(settings, {"wechatpay": wechat_sim})
    await _configure(g, his_sim)
    try:
        yield g
    finally:
        await stop_gateway(g, runner)


def _patient_with_charges(his_sim: Any, n: int = 1) -> tuple[Any, list[Any]]:
    h = his_sim.hospital
    for p in h.patients.values():
        charges = h.pending(p.patient_id)
        if len(charges) >= n:
            return p, charges
    raise AssertionError("no seeded patient with pending charges")


def his_pay_body(patient: Any, charges: list[Any], **kw: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"amount": sum(c.amount for c in charges), "business_type": "outpatient",
                              "his": {"system": "his", "patient_id": patient.patient_id, "patient_name": patient.name,
                                      "visit_no": charges[0].visit_no, "charge_ids": [c.charge_id for c in charges]},
                              # large amounts ask for the patient's password first: hold the answer until settled
                              "wait_seconds": 20}
    values.update(kw)
    return pay_body(**values)


async def _wb_status(gw: Gateway, pid: str) -> str | None:
    _, body = await gw.client.get(f"/v1/payments/{pid}/his")
    return (body.get("writeback") or {}).get("status")


async def _case_of(gw: Gateway, pid: str) -> dict[str, Any] | None:
    _, body = await gw.admin.get("/v1/admin/cases")
    return next((c for c in body["items"] if c["payment_id"] == pid), None)


async def _his_fault(his_sim: Any, op: str, kind: str, **kw: Any) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{his_sim.base_url}/_sim/faults", json={"op": op, "kind": kind, **kw}) as r:
            assert r.status < 300, await r.text()


async def test_kiosk_lists_pending_charges_pays_one_and_the_his_records_it(hgw: Gateway, his_sim: Any) -> None:
    patient, charges = _patient_with_charges(his_sim)
    status, listed = await hgw.client.get(f"/v1/his/pending-charges?system=his&card_no={patient.card_no}")
    assert status == 200, listed
    ids = {c["charge_id"] for c in listed["items"]}
    assert {c.charge_id for c in charges} <= ids
    assert all("*" in (c["patient_name"] or "*") for c in listed["items"])  # masked on the wire
    first = next(c for c in listed["items"] if c["charge_id"] == charges[0].charge_id)

    status, p = await hgw.client.post("/v1/payments", his_pay_body(patient, [charges[0]]))
    assert status == 200 and p["status"] == "SUCCEEDED", p
    assert first["amount"] == p["amount"]
    await wait_for(lambda: _is_wb(hgw, p["payment_id"], "RECORDED"), timeout=10)
    record = his_sim.hospital.find_record(p["payment_id"])
    assert record is not None and record.amount == p["amount"] and record.charge_ids == [charges[0].charge_id]
    _, his = await hgw.client.get(f"/v1/payments/{p['payment_id']}/his")
    assert his["writeback"]["his_serial"] == record.his_serial
    assert await _case_of(hgw, p["payment_id"]) is None
    # The charge is no longer pending at the HIS.
    _, again = await hgw.client.get(f"/v1/his/pending-charges?system=his&patient_id={patient.patient_id}")
    assert charges[0].charge_id not in {c["charge_id"] for c in again["items"]}


async def _is_wb(gw: Gateway, pid: str, status: str) -> bool:
    return await _wb_status(gw, pid) == status


async def test_amount_differing_from_the_bill_is_refused_before_money_moves(hgw: Gateway, his_sim: Any) -> None:
    patient, charges = _patient_with_charges(his_sim)
    body = his_pay_body(patient, [charges[0]])
    body["amount"] += 1
    status, problem = await hgw.client.post("/v1/payments", body)
    assert status == 422 and problem["code"] == "HIS_AMOUNT_MISMATCH", problem
    _, found = await hgw.client.get(f"/v1/payments?out_trade_no={body['out_trade_no']}")
    assert found.get("code") == "PAYMENT_NOT_FOUND"


async def test_unknown_business_system_is_a_clear_error(hgw: Gateway, his_sim: Any) -> None:
    patient, charges = _patient_with_charges(his_sim)
    body = his_pay_body(patient, [charges[0]])
    body["his"]["system"] = "no-such-his"
    status, problem = await hgw.client.post("/v1/payments", body)
    assert status == 422 and problem["code"] == "HIS_SYSTEM_UNKNOWN"


async def test_rejected_write_back_opens_a_case_refunded_after_approval(hgw: Gateway, his_sim: Any) -> None:
    patient, charges = _patient_with_charges(his_sim)
    await _his_fault(his_sim, "write_back", "refuse")
    _, p = await hgw.client.post("/v1/payments", his_pay_body(patient, [charges[0]]))
    pid = p["payment_id"]
    case = await wait_for(lambda: _case_of(hgw, pid), timeout=5)
    assert case["status"] == "OPEN" and case["reason"] == "writeback_rejected"
    assert await _wb_status(hgw, pid) == "REJECTED"

    status, applied = await hgw.admin.post(f"/v1/admin/cases/{case['id']}/refund", {"reason": "患者要求退款"},
                                           operator="cashier-li")
    assert status == 202, applied
    approval_id = applied["approval_id"]
    # Nobody approves their own application; the role must match the amount tier.
    status, problem = await hgw.admin.post(f"/v1/admin/approvals/{approval_id}/approve", {},
                                           operator="cashier-li", roles="finance")
    assert status == 403 and problem["code"] == "APPROVAL_FORBIDDEN"
    status, problem = await hgw.admin.post(f"/v1/admin/approvals/{approval_id}/approve", {},
                                           operator="clerk-wang", roles="cashier")
    assert status == 403
    _, waiting = await hgw.admin.request("GET", "/v1/admin/approvals?view=waiting",
                                         headers={"X-Operator": "fin-zhao", "X-Operator-Roles": "finance"})
    assert approval_id in {a["id"] for a in waiting["items"]}
    status, decided = await hgw.admin.post(f"/v1/admin/approvals/{approval_id}/approve", {"comment": "同意"},
                                           operator="fin-zhao", roles="finance")
    assert status == 200 and decided["status"] == "APPROVED", decided

    async def resolved() -> dict[str, Any] | None:
        c = await _case_of(hgw, pid)
        return c if c and c["status"] == "RESOLVED" else None

    final = await wait_for(resolved, timeout=15)
    assert final["resolution"] == "refunded"
    _, pay = await hgw.client.get(f"/v1/payments/{pid}")
    assert pay["status"] == "REFUNDED"
    assert his_sim.hospital.find_record(pid) is None  # both sides agree: no record, money returned
    _, detail = await hgw.admin.get(f"/v1/admin/cases/{case['id']}")
    actions = [h["action"] for h in detail["history"]]
    for step in ("opened", "refund_requested", "refund_approved", "refund_started", "resolved_refunded"):
        assert step in actions, actions
    _, mine = await hgw.admin.request("GET", "/v1/admin/approvals?view=done",
                                      headers={"X-Operator": "fin-zhao", "X-Operator-Roles": "finance"})
    assert approval_id in {a["id"] for a in mine["items"]}


async def test_write_back_that_landed_despite_a_timeout_is_not_refunded(tmp_path: Path, wechat_sim: Any,
                                                                          his_sim: Any) -> None:
    settings = make_test_settings(tmp_path, port=free_port(), his_worker_interval_seconds=0.1,
                                  his_writeback_retry_waits=[], his_writeback_slow_interval_seconds=30,
                                  single_sided_auto_refund_minutes=0, single_sided_auto_refund_max=1_000_000)
    gw, runner = await start_gateway(settings, {"wechatpay": wechat_sim})
    try:
        await _configure(gw, his_sim)
        patient, charges = _patient_with_charges(his_sim)
        await _his_fault(his_sim, "write_back", "timeout", after=True, count=1)
        _, p = await gw.client.post("/v1/payments", his_pay_body(patient, [charges[0]]))
        pid = p["payment_id"]

        async def resolved() -> dict[str, Any] | None:
            c = await _case_of(gw, pid)
            return c if c and c["status"] == "RESOLVED" else None

        case = await wait_for(resolved, timeout=20)
        # The automatic refund asked the HIS first: it had recorded the payment.
        assert case["resolution"] == "written_back" and case["refund_id"] is None
        _, pay = await gw.client.get(f"/v1/payments/{pid}")
        assert pay["status"] == "SUCCEEDED"
        assert his_sim.hospital.find_record(pid) is not None
    finally:
        await stop_gateway(gw, runner)


async def test_small_case_is_refunded_automatically_after_n_minutes(tmp_path: Path, wechat_sim: Any,
                                                                    his_sim: Any) -> None:
    settings = make_test_settings(tmp_path, port=free_port(), his_worker_interval_seconds=0.1,
                                  his_writeback_retry_waits=[], single_sided_auto_refund_minutes=0,
                                  single_sided_auto_refund_max=1_000_000)
    gw, runner = await start_gateway(settings, {"wechatpay": wechat_sim})
    try:
        await _configure(gw, his_sim)
        patient, charges = _patient_with_charges(his_sim)
        await _his_fault(his_sim, "write_back", "refuse")
        _, p = await gw.client.post("/v1/payments", his_pay_body(patient, [charges[0]]))
        pid = p["payment_id"]

        async def resolved() -> dict[str, Any] | None:
            c = await _case_of(gw, pid)
            return c if c and c["status"] == "RESOLVED" else None

        case = await wait_for(resolved, timeout=20)
        assert case["resolution"] == "refunded" and case["resolved_by"] == "system"
        _, pay = await gw.client.get(f"/v1/payments/{pid}")
        assert pay["status"] == "REFUNDED"
        _, detail = await gw.admin.get(f"/v1/admin/cases/{case['id']}")
        assert "auto_refund" in [h["action"] for h in detail["history"]]
    finally:
        await stop_gateway(gw, runner)


async def test_his_down_for_the_whole_test_then_back_every_payment_written_back(hgw: Gateway,
                                                                                  his_sim: Any) -> None:
    h = his_sim.hospital
    patients = [p for p in h.patients.values() if h.pending(p.patient_id)][:4]
    await _his_fault(his_sim, "*", "down")
    pids = []
    for patient in patients:
        charge = h.pending(patient.patient_id)[0]
        # verify_amount needs the HIS: with it down the payment is refused (no money moves) …
        status, problem = await hgw.client.post("/v1/payments", his_pay_body(patient, [charge]))
        assert status in (502, 504) and problem["code"].startswith("HIS_"), problem
    # … so callers that already hold the bill (HIS window) pay with verification off.
    await _configure(hgw, his_sim)
    cfg = his_sim.system_configs()[0]
    await hgw.core.his.put("test", "his", SystemIn(name=cfg["name"], adapter="rest",
                                                   business_types=cfg["business_types"],
                                                   config={**cfg["config"], "timeout_seconds": 1},
                                                   options={"verify_amount": False}))
    for patient in patients:
        charge = h.pending(patient.patient_id)[0]
        status, p = await hgw.client.post("/v1/payments", his_pay_body(patient, [charge]))
        assert status == 200 and p["status"] == "SUCCEEDED", p
        pids.append(p["payment_id"])
    for pid in pids:
        case = await wait_for(lambda pid=pid: _case_of(hgw, pid), timeout=10)
        assert case["reason"] == "writeback_failed"
    async with aiohttp.ClientSession() as s:
        await s.delete(f"{his_sim.base_url}/_sim/faults")

    async def all_recorded() -> bool:
        return all([await _is_wb(hgw, pid, "RECORDED") for pid in pids])

    await wait_for(all_recorded, timeout=20, interval=0.3)
    for pid in pids:
        assert h.find_record(pid) is not None
        case = await _case_of(hgw, pid)
        assert case["status"] == "RESOLVED" and case["resolution"] == "written_back"
    assert len({r.payment_id for r in h.records if r.payment_id in pids}) == len(pids)


@pytest.mark.parametrize("kind", ["malformed", "unknown_status", "error"])
async def test_bad_his_answers_become_cases_never_lost_payments(hgw: Gateway, his_sim: Any, kind: str) -> None:
    patient, charges = _patient_with_charges(his_sim)
    await _his_fault(his_sim, "write_back", kind)
    _, p = await hgw.client.post("/v1/payments", his_pay_body(patient, [charges[0]]))
    case = await wait_for(lambda: _case_of(hgw, p["payment_id"]), timeout=10)
    assert case["reason"] == "writeback_failed"
    assert case["reason_detail"].split(":")[0] in ("HIS_PROTOCOL_ERROR", "HIS_UNAVAILABLE")
    _, pay = await hgw.client.get(f"/v1/payments/{p['payment_id']}")
    assert pay["status"] == "SUCCEEDED"  # the money is recorded; only the HIS side is missing
    _, found = await hgw.admin.get(f"/v1/admin/his/writebacks?patient_id={patient.patient_id}")
    assert p["payment_id"] in {w["payment_id"] for w in found["items"]}
    assert all(w["patient_id"] != patient.patient_id for w in found["items"])  # masked


async def test_exceptions_search_by_patient_visit_and_trade_number(hgw: Gateway, his_sim: Any) -> None:
    patient, charges = _patient_with_charges(his_sim)
    await _his_fault(his_sim, "write_back", "refuse")
    body = his_pay_body(patient, [charges[0]])
    _, p = await hgw.client.post("/v1/payments", body)
    await wait_for(lambda: _case_of(hgw, p["payment_id"]), timeout=5)
    for query in (f"patient_id={patient.patient_id}", f"patient_name={patient.name}",
                  f"visit_no={charges[0].visit_no}", f"trade_no={body['out_trade_no']}",
                  f"trade_no={p['payment_id']}"):
        from urllib.parse import quote

        q = "&".join(f"{k}={quote(v)}" for k, v in (x.split("=", 1) for x in [query]))
        status, found = await hgw.admin.get(f"/v1/admin/his/writebacks?{q}")
        assert status == 200 and [w["payment_id"] for w in found["items"]] == [p["payment_id"]], (query, found)
    _, none = await hgw.admin.get("/v1/admin/his/writebacks?patient_id=nobody")
    assert none["items"] == []


async def test_retry_by_staff_after_the_his_is_fixed(hgw: Gateway, his_sim: Any) -> None:
    patient, charges = _patient_with_charges(his_sim)
    await _his_fault(his_sim, "write_back", "refuse", count=1)
    _, p = await hgw.client.post("/v1/payments", his_pay_body(patient, [charges[0]]))
    case = await wait_for(lambda: _case_of(hgw, p["payment_id"]), timeout=5)
    status, _ = await hgw.admin.post(f"/v1/admin/cases/{case['id']}/retry-write-back", {}, operator="it-sun")
    assert status == 200
    await wait_for(lambda: _is_wb(hgw, p["payment_id"], "RECORDED"), timeout=10)
    final = await _case_of(hgw, p["payment_id"])
    assert final["status"] == "RESOLVED" and final["resolution"] == "written_back"


async def test_manual_resolution_and_batch_approval(hgw: Gateway, his_sim: Any) -> None:
    h = his_sim.hospital
    patients = [p for p in h.patients.values() if h.pending(p.patient_id)][:3]
    await _his_fault(his_sim, "write_back", "refuse")
    cases = []
    for patient in patients:
        _, p = await hgw.client.post("/v1/payments", his_pay_body(patient, [h.pending(patient.patient_id)[0]]))
        cases.append(await wait_for(lambda pid=p["payment_id"]: _case_of(hgw, pid), timeout=5))
    status, manual = await hgw.admin.post(f"/v1/admin/cases/{cases[0]['id']}/resolve",
                                          {"note": "窗口现金退款，收据号 X123"}, operator="cashier-li")
    assert status == 200 and manual["resolution"] == "manual"
    approvals = []
    for case in cases[1:]:
        _, applied = await hgw.admin.post(f"/v1/admin/cases/{case['id']}/refund", {}, operator="cashier-li")
        approvals.append(applied["approval_id"])
    _, mine = await hgw.admin.request("GET", "/v1/admin/approvals?view=mine", headers={"X-Operator": "cashier-li"})
    assert set(approvals) <= {a["id"] for a in mine["items"]}
    status, result = await hgw.admin.post("/v1/admin/approvals/batch",
                                          {"ids": approvals, "decision": "approve", "comment": "批量同意"},
                                          operator="fin-zhao", roles="finance")
    # Each application needs its amount tier's role: the finance role alone cannot pass the large one.
    need = {a["id"]: a["required_role"] for a in mine["items"]}
    for r in result["results"]:
        assert r["ok"] == (need[r["id"]] == "finance"), result
    status, result = await hgw.admin.post("/v1/admin/approvals/batch",
                                          {"ids": [r["id"] for r in result["results"] if not r["ok"]],
                                           "decision": "approve"}, operator="dir-qian", roles="finance_director")
    assert status == 200 and all(r["ok"] for r in result["results"]), result

    async def all_refunded() -> bool:
        return all([(await _case_of(hgw, c["payment_id"]))["resolution"] == "refunded" for c in cases[1:]])

    await wait_for(all_refunded, timeout=15)


async def test_withdrawn_application_returns_the_case_to_open(hgw: Gateway, his_sim: Any) -> None:
    patient, charges = _patient_with_charges(his_sim)
    await _his_fault(his_sim, "write_back", "refuse")
    _, p = await hgw.client.post("/v1/payments", his_pay_body(patient, [charges[0]]))
    case = await wait_for(lambda: _case_of(hgw, p["payment_id"]), timeout=5)
    _, applied = await hgw.admin.post(f"/v1/admin/cases/{case['id']}/refund", {}, operator="cashier-li")
    status, problem = await hgw.admin.post(f"/v1/admin/approvals/{applied['approval_id']}/withdraw", {},
                                           operator="someone-else")
    assert status == 403
    status, done = await hgw.admin.post(f"/v1/admin/approvals/{applied['approval_id']}/withdraw", {},
                                        operator="cashier-li")
    assert status == 200 and done["status"] == "WITHDRAWN"
    assert (await _case_of(hgw, p["payment_id"]))["status"] == "OPEN"


async def test_refund_written_back_when_the_caller_asks(hgw: Gateway, his_sim: Any) -> None:
    patient, charges = _patient_with_charges(his_sim)
    _, p = await hgw.client.post("/v1/payments", his_pay_body(patient, [charges[0]]))
    pid = p["payment_id"]
    await wait_for(lambda: _is_wb(hgw, pid, "RECORDED"), timeout=10)
    status, r = await hgw.client.post(f"/v1/payments/{pid}/refunds", {
        "out_refund_no": "RF" + secrets.token_hex(4), "amount": p["amount"], "his_write_back": True})
    assert status == 200 and r["status"] in ("PROCESSING", "SUCCEEDED"), r

    async def refund_recorded() -> bool:
        return any(x.kind == "refund" and x.refund_id == r["refund_id"] for x in his_sim.hospital.records)

    await wait_for(refund_recorded, timeout=30)
    _, wbs = await hgw.admin.get(f"/v1/admin/his/writebacks?status=RECORDED&kind=refund&trade_no={pid}")
    assert [w["refund_id"] for w in wbs["items"]] == [r["refund_id"]]


async def test_late_success_after_the_caller_closed_is_a_case_at_once(hgw: Gateway, his_sim: Any) -> None:
    patient, charges = _patient_with_charges(his_sim)
    body = his_pay_body(patient, [charges[0]], method="qr", channel="wechatpay", auth_code=None)
    _, p = await hgw.client.post("/v1/payments", body)
    pid = p["payment_id"]
    wsim = hgw.sandbox["simulators"]["wechatpay"]["base_url"]
    async with aiohttp.ClientSession() as s:
        # The close call never gets an answer; meanwhile the patient pays.
        await s.post(f"{wsim}/_sim/faults", json={"kind": "timeout", "path": "/close", "count": 1,
                                                  "delay_seconds": 30})
        hgw.core.settings.upstream_timeout_seconds = 1
        status, closed = await hgw.client.post(f"/v1/payments/{pid}/close", {})
        await s.post(f"{wsim}/_sim/orders/{pid}/pay", json={})
    from gateway.db.models import utcnow

    async def succeeded() -> bool:
        await hgw.core.ledger.update_payment(pid, next_check_at=utcnow())
        _, b = await hgw.client.get(f"/v1/payments/{pid}")
        return b["status"] == "SUCCEEDED"

    await wait_for(succeeded, timeout=15, interval=0.3)
    case = await wait_for(lambda: _case_of(hgw, pid), timeout=5)
    assert case["reason"] == "late_success"


async def test_webhook_notifier_tells_staff_of_a_new_case(hgw: Gateway, his_sim: Any) -> None:
    from plugins.notifiers.webhook import verify_signature

    received: asyncio.Queue[tuple[dict[str, str], bytes]] = asyncio.Queue()

    async def inbox(request: web.Request) -> web.Response:
        received.put_nowait((dict(request.headers), await request.read()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", inbox)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        status, _ = await hgw.admin.request("PUT", "/v1/admin/notifiers/finance-hook", {
            "notifier": "webhook", "config": {"url": f"http://127.0.0.1:{port}/hook", "secret": "s3cret-hook"},
            "events": ["single_sided.opened"], "audiences": ["staff"]})
        assert status == 200
        patient, charges = _patient_with_charges(his_sim)
        await _his_fault(his_sim, "write_back", "refuse")
        _, p = await hgw.client.post("/v1/payments", his_pay_body(patient, [charges[0]]))
        headers, body = await asyncio.wait_for(received.get(), 10)
        assert headers["X-Yinyi-Event"] == "single_sided.opened"
        assert verify_signature("s3cret-hook", headers["X-Yinyi-Timestamp"], body, headers["X-Yinyi-Signature"])
        import json

        notice = json.loads(body)
        assert notice["payload"]["payment_id"] == p["payment_id"] and notice["title"].startswith("出现单边账")
        assert patient.patient_id not in body.decode()
    finally:
        await runner.cleanup()


async def test_inpatient_deposit_paid_by_wechat_written_back_and_refunded(hgw: Gateway, his_sim: Any) -> None:
    h = his_sim.hospital
    patient = next(p for p in h.patients.values()
                   if any(v.kind == "inpatient" and v.patient_id == p.patient_id for v in h.visits.values()))
    visit = next(v for v in h.visits.values() if v.kind == "inpatient" and v.patient_id == patient.patient_id)
    deposit = h.add_charge(patient.patient_id, 200000, bill_type="inpatient_deposit", visit_no=visit.visit_no)
    status, p = await hgw.client.post("/v1/payments", pay_body(
        amount=200000, business_type="inpatient_deposit", subject="住院预交金", wait_seconds=20,
        his={"system": "his", "patient_id": patient.patient_id, "visit_no": visit.visit_no,
             "charge_ids": [deposit.charge_id]}))
    assert status == 200 and p["status"] == "SUCCEEDED", p
    await wait_for(lambda: _is_wb(hgw, p["payment_id"], "RECORDED"), timeout=10)
    assert h.find_record(p["payment_id"]).bill_type == "inpatient_deposit"
    # At discharge the unused part of the deposit is refunded along the original route and written back.
    status, r = await hgw.client.post(f"/v1/payments/{p['payment_id']}/refunds", {
        "out_refund_no": "DEP" + secrets.token_hex(4), "amount": 50000, "reason": "出院结算退还预交金",
        "his_write_back": True})
    assert status == 200 and r["status"] in ("PROCESSING", "SUCCEEDED"), r

    async def refund_recorded() -> bool:
        return any(x.kind == "refund" and x.refund_id == r["refund_id"] and x.amount == 50000 for x in h.records)

    await wait_for(refund_recorded, timeout=30)
    _, pay = await hgw.client.get(f"/v1/payments/{p['payment_id']}")
    assert pay["status"] == "PARTIALLY_REFUNDED" and pay["refunded_amount"] == 50000
