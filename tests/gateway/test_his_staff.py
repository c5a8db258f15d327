"""Business-system work for staff, end to end over real HTTP against the simulators:
the demo's printed sample, the write-back exception search and its refund, refund
write-back failures, patient notices and the automatic refund's limits.

Faults are injected at the simulated HIS (``POST <his>/_sim/faults``), never by
patching the gateway.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web

from gateway.testing.pytest_plugin import make_test_settings
from gateway.timeutil import local_today
from tests.conftest import Gateway, free_port, start_gateway, stop_gateway, wait_for
from tests.gateway.test_his_flow import (_case_of, _configure, _his_fault, _is_wb, _patient_with_charges, hgw,
                                         his_pay_body, his_sim)

__all__ = ["hgw", "his_sim"]  # fixtures shared with test_his_flow


# --- helpers ---------------------------------------------------------------------------------------
class Inbox:
    """A webhook receiver on a loopback port."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[tuple[dict[str, str], dict[str, Any]]] = asyncio.Queue()
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> Inbox:
        async def hook(request: web.Request) -> web.Response:
            self.received.put_nowait((dict(request.headers), json.loads(await request.read())))
            return web.Response(status=204)

        app = web.Application()
        app.router.add_post("/hook", hook)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}/hook"
        return self

    async def next(self, event: str, timeout: float = 10) -> dict[str, Any]:
        while True:
            headers, notice = await asyncio.wait_for(self.received.get(), timeout)
            if headers["X-Yinyi-Event"] == event:
                return notice

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def inbox() -> AsyncIterator[Inbox]:
    box = await Inbox().start()
    try:
        yield box
    finally:
        await box.stop()


async def _subscribe(gw: Gateway, inbox: Inbox, events: list[str], audiences: list[str], **config: Any) -> None:
    status, body = await gw.admin.request("PUT", "/v1/admin/notifiers/hook", {
        "notifier": "webhook", "config": {"url": inbox.url, **config}, "events": events, "audiences": audiences})
    assert status == 200, body


async def _paid_and_recorded(gw: Gateway, his_sim: Any, **his: Any) -> tuple[Any, Any, dict[str, Any]]:
    patient, charges = _patient_with_charges(his_sim)
    body = his_pay_body(patient, [charges[0]])
    body["his"].update(his)
    status, p = await gw.client.post("/v1/payments", body)
    assert status == 200 and p["status"] == "SUCCEEDED", p
    p["out_trade_no"] = body["out_trade_no"]
    return patient, charges[0], p


async def _case_in(gw: Gateway, pid: str, status: str) -> dict[str, Any] | None:
    case = await _case_of(gw, pid)
    return case if case and case["status"] == status else None


async def _approve(gw: Gateway, approval_id: str) -> None:
    _, mine = await gw.admin.request("GET", "/v1/admin/approvals?view=mine", headers={"X-Operator": "cashier-li"})
    role = next(a["required_role"] for a in mine["items"] if a["id"] == approval_id)
    status, decided = await gw.admin.post(f"/v1/admin/approvals/{approval_id}/approve", {"comment": "同意"},
                                          operator="fin-zhao", roles=role)
    assert status == 200 and decided["status"] == "APPROVED", decided


async def _search(gw: Gateway, **query: str) -> list[dict[str, Any]]:
    q = "&".join(f"{k}={quote(v, safe=',')}" for k, v in query.items())
    status, found = await gw.admin.get(f"/v1/admin/his/writebacks?{q}")
    assert status == 200, found
    return list(found["items"])


# --- 1. the demo's sample -----------------------------------------------------------------------------
async def test_demo_prints_a_sample_charge_that_pays_and_writes_back(hgw: Gateway, his_sim: Any,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.demo import _print_banner, setup_his

    his = await setup_his(hgw.core, {"his-rest": his_sim})
    sample = his["his-rest"]["sample_patient"]
    assert his["his-rest"]["control_url"] == f"{his_sim.base_url}/_sim"
    charge = his_sim.hospital.charges[sample["charge_id"]]
    assert charge.status == "pending" and charge.amount == sample["amount"]
    assert charge.bill_type == "outpatient_registration" and sample["business_type"] == "registration"
    _print_banner({**hgw.sandbox, "gateway": {"base_url": hgw.base_url, "openapi": "-"}, "his": his},
                  Path("sandbox.json"))
    banner = capsys.readouterr().out
    for value in (sample["card_no"], sample["charge_id"], f"{sample['amount']} fen", f"{his_sim.base_url}/_sim"):
        assert value in banner, (value, banner)
    json.dumps(his)  # what sandbox.json holds

    # The printed values work as the README's kiosk session uses them.
    status, listed = await hgw.client.get(f"/v1/his/pending-charges?system=his&card_no={sample['card_no']}")
    assert status == 200, listed
    assert {"charge_id": sample["charge_id"], "amount": sample["amount"]}.items() <= next(
        c for c in listed["items"] if c["charge_id"] == sample["charge_id"]).items()
    pay_line = next(line for line in banner.splitlines() if "POST /v1/payments" in line)
    pay = json.loads(pay_line.split("'", 1)[1].rsplit("'", 1)[0])
    status, p = await hgw.client.post("/v1/payments", pay)
    assert status == 200 and p["status"] == "SUCCEEDED", p
    await wait_for(lambda: _is_wb(hgw, p["payment_id"], "RECORDED"), timeout=10)
    assert his_sim.hospital.find_record(p["payment_id"]).charge_ids == [sample["charge_id"]]


# --- 2. write-back exceptions: search and refund ---------------------------------------------------------
async def test_exception_search_by_every_key_then_refund_from_a_result(hgw: Gateway, his_sim: Any) -> None:
    # A payment the HIS recorded and then voided (作废): found by its business serial.
    _, _, voided = await _paid_and_recorded(hgw, his_sim)
    await wait_for(lambda: _is_wb(hgw, voided["payment_id"], "RECORDED"), timeout=10)
    serial = his_sim.hospital.find_record(voided["payment_id"]).his_serial
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{his_sim.base_url}/_sim/records/{serial}/cancel") as r:
            assert r.status == 200
    found = await _search(hgw, his_serial=serial, status="RECORDED")
    assert [(w["payment_id"], w["case_id"]) for w in found] == [(voided["payment_id"], None)]
    # Recorded in the HIS: not a single-sided payment, so not refundable from here.
    status, problem = await hgw.admin.post(f"/v1/admin/his/writebacks/{voided['payment_id']}/refund", {},
                                           operator="cashier-li")
    assert status == 409 and problem["code"] == "INVALID_STATE", problem

    # A rejected write-back: found by date, patient, visit, trade numbers and charge.
    await _his_fault(his_sim, "write_back", "refuse", count=1)
    patient, charge, p = await _paid_and_recorded(hgw, his_sim)
    pid = p["payment_id"]
    case = await wait_for(lambda: _case_of(hgw, pid), timeout=5)
    _, pay = await hgw.client.get(f"/v1/payments/{pid}")
    queries = [{"date": local_today().isoformat()}, {"patient_id": patient.patient_id},
               {"patient_name": patient.name}, {"visit_no": charge.visit_no}, {"trade_no": pid},
               {"trade_no": p["out_trade_no"]}, {"trade_no": pay["channel_trade_no"]},
               {"charge_id": charge.charge_id}]
    for query in queries:
        found = await _search(hgw, **query)
        assert [(w["payment_id"], w["status"], w["case_id"], w["case_status"]) for w in found] == \
            [(pid, "REJECTED", case["id"], "OPEN")], (query, found)
    assert await _search(hgw, charge_id=charge.charge_id[:-1]) == []  # one whole charge id, not a prefix
    assert await _search(hgw, date=(local_today() - dt.timedelta(days=3)).isoformat()) == []

    # Refund along the original route from the result: the case's refund, through approval.
    row = (await _search(hgw, charge_id=charge.charge_id))[0]
    status, applied = await hgw.admin.post(f"/v1/admin/his/writebacks/{row['payment_id']}/refund",
                                           {"reason": "患者要求退款"}, operator="cashier-li")
    assert status == 202 and applied["case"]["id"] == case["id"] and applied["case"]["status"] == "APPROVING"
    status, again = await hgw.admin.post(f"/v1/admin/his/writebacks/{row['payment_id']}/refund", {},
                                         operator="cashier-li")
    assert status == 202 and again["approval_id"] == applied["approval_id"]  # reused, not a second application
    assert (await _search(hgw, trade_no=pid))[0]["case_status"] == "APPROVING"
    await _approve(hgw, applied["approval_id"])
    final = await wait_for(lambda: _case_in(hgw, pid, "RESOLVED"), timeout=15)
    assert final["resolution"] == "refunded"
    _, pay = await hgw.client.get(f"/v1/payments/{pid}")
    assert pay["status"] == "REFUNDED"
    status, problem = await hgw.admin.post("/v1/admin/his/writebacks/P-nope/refund", {}, operator="cashier-li")
    assert status == 404, problem


# --- 3. refund write-backs that fail -----------------------------------------------------------------------
@pytest.fixture
async def rgw(tmp_path: Path, wechat_sim: Any, his_sim: Any) -> AsyncIterator[Gateway]:
    """Quick retries fast, the slow schedule far away: only staff retry within a test."""
    settings = make_test_settings(tmp_path, port=free_port(), his_worker_interval_seconds=0.1,
                                  his_writeback_retry_waits=[0.1, 0.1], his_writeback_slow_interval_seconds=60,
                                  single_sided_auto_refund_minutes=60)
    g, runner = await start_gateway(settings, {"wechatpay": wechat_sim})
    await _configure(g, his_sim)
    try:
        yield g
    finally:
        await stop_gateway(g, runner)


@pytest.mark.parametrize(("kind", "status"), [("refuse", "REJECTED"), ("error", "FAILED")])
async def test_failed_refund_write_back_tells_staff_and_staff_retry_records_it(
        rgw: Gateway, his_sim: Any, inbox: Inbox, kind: str, status: str) -> None:
    await _subscribe(rgw, inbox, ["refund_writeback.failed"], ["staff"], secret="s3cret-hook")
    _, _, p = await _paid_and_recorded(rgw, his_sim)
    pid = p["payment_id"]
    await wait_for(lambda: _is_wb(rgw, pid, "RECORDED"), timeout=10)
    await _his_fault(his_sim, "refund_write_back", kind)
    code, r = await rgw.client.post(f"/v1/payments/{pid}/refunds", {
        "out_refund_no": "RF" + secrets.token_hex(4), "amount": p["amount"], "his_write_back": True})
    assert code == 200, r
    rid = r["refund_id"]

    notice = await inbox.next("refund_writeback.failed", timeout=20)
    assert notice["audience"] == "staff" and notice["title"].startswith("退费回写HIS失败")
    assert notice["payload"]["refund_id"] == rid and notice["payload"]["status"] == status
    assert notice["payload"]["payment_id"] == pid and notice["payload"]["amount"] == p["amount"]
    found = await _search(rgw, kind="refund", trade_no=rid)
    assert [(w["refund_id"], w["status"], w["case_id"]) for w in found] == [(rid, status, None)]
    assert await _case_of(rgw, pid) is None  # the money went back: no single-sided case
    _, listed = await rgw.admin.get(f"/v1/admin/notices?subject_id={rid}")
    assert [n["event"] for n in listed["items"]] == ["refund_writeback.failed"]

    # Still failing: the retry is taken, fails again and tells staff again.
    code, queued = await rgw.admin.post(f"/v1/admin/his/writebacks/{rid}/retry", {}, operator="it-sun")
    assert code == 200 and queued["status"] == "PENDING" and queued["refund_id"] == rid, queued
    await inbox.next("refund_writeback.failed", timeout=20)
    assert not any(x.kind == "refund" and x.refund_id == rid for x in his_sim.hospital.records)
    # Fixed: the staff retry records the refund in the HIS.
    async with aiohttp.ClientSession() as s:
        await s.delete(f"{his_sim.base_url}/_sim/faults")
    code, queued = await rgw.admin.post(f"/v1/admin/his/writebacks/{rid}/retry", {}, operator="it-sun")
    assert code == 200, queued

    async def recorded() -> bool:
        return any(x.kind == "refund" and x.refund_id == rid for x in his_sim.hospital.records)

    await wait_for(recorded, timeout=10)
    found = await _search(rgw, kind="refund", trade_no=rid, status="RECORDED")
    assert found and found[0]["his_serial"]
    code, problem = await rgw.admin.post(f"/v1/admin/his/writebacks/{rid}/retry", {}, operator="it-sun")
    assert code == 409 and problem["code"] == "INVALID_STATE"


# --- 4. notices and the automatic refund's limits ---------------------------------------------------------
async def test_patient_is_told_when_the_case_is_resolved(hgw: Gateway, his_sim: Any, inbox: Inbox) -> None:
    await _subscribe(hgw, inbox, ["single_sided.resolved"], ["patient"], include_personal_data=True)
    await _his_fault(his_sim, "write_back", "refuse")
    patient, charges = _patient_with_charges(his_sim)
    body = his_pay_body(patient, [charges[0]])
    body["his"]["patient_phone"] = patient.phone
    status, p = await hgw.client.post("/v1/payments", body)
    assert status == 200 and p["status"] == "SUCCEEDED", p
    case = await wait_for(lambda: _case_of(hgw, p["payment_id"]), timeout=5)
    status, done = await hgw.admin.post(f"/v1/admin/cases/{case['id']}/resolve", {"note": "窗口现金退款"},
                                        operator="cashier-li")
    assert status == 200, done
    notice = await inbox.next("single_sided.resolved")
    assert notice["audience"] == "patient"
    payload = notice["payload"]
    assert payload["payment_id"] == p["payment_id"] and payload["amount"] == p["amount"]
    assert payload["resolution"] == "manual" and payload["resolution_zh"] == "人工处理"
    assert payload["patient_phone"] == patient.phone and payload["patient_name"] == patient.name
    assert "人工处理" in notice["text"]
    assert inbox.received.empty()  # the staff notice of the same event is not this hook's audience
    _, detail = await hgw.admin.get(f"/v1/admin/cases/{case['id']}")
    assert {"event": "single_sided.resolved", "audience": "patient", "notifiers": 1} in \
        [h["detail"] for h in detail["history"] if h["action"] == "notified"]


async def _auto_gateway(tmp_path: Path, wechat_sim: Any, his_sim: Any, **overrides: Any) -> tuple[Gateway, Any]:
    settings = make_test_settings(tmp_path, port=free_port(), his_worker_interval_seconds=0.1,
                                  his_writeback_retry_waits=[], **overrides)
    gw, runner = await start_gateway(settings, {"wechatpay": wechat_sim})
    await _configure(gw, his_sim)
    return gw, runner


async def test_case_above_the_automatic_refund_limit_stays_open(tmp_path: Path, wechat_sim: Any,
                                                                his_sim: Any) -> None:
    h = his_sim.hospital
    pending = sorted(((c, p) for p in h.patients.values() for c in h.pending(p.patient_id)
                      if c.bill_type.startswith("outpatient")), key=lambda x: x[0].amount)
    (small, small_patient), (large, large_patient) = pending[0], pending[-1]
    assert small.amount < large.amount
    gw, runner = await _auto_gateway(tmp_path, wechat_sim, his_sim, single_sided_auto_refund_minutes=0,
                                     single_sided_auto_refund_max=small.amount)
    try:
        await _his_fault(his_sim, "write_back", "refuse")
        pids = []
        for patient, charge in ((large_patient, large), (small_patient, small)):
            status, p = await gw.client.post("/v1/payments", his_pay_body(patient, [charge]))
            assert status == 200 and p["status"] == "SUCCEEDED", p
            pids.append(p["payment_id"])
        # The small one (at the limit) is refunded automatically …
        refunded = await wait_for(lambda: _case_in(gw, pids[1], "RESOLVED"), timeout=15)
        assert refunded["resolution"] == "refunded" and refunded["resolved_by"] == "system"
        # … while the large one, opened earlier, waits for a person.
        case = await _case_of(gw, pids[0])
        assert case["status"] == "OPEN" and case["next_check_at"] is None, case
        await asyncio.sleep(0.5)  # a few more worker rounds
        case = await _case_of(gw, pids[0])
        assert case["status"] == "OPEN" and case["refund_id"] is None
        _, detail = await gw.admin.get(f"/v1/admin/cases/{case['id']}")
        assert "auto_refund" not in [x["action"] for x in detail["history"]]
        assert detail["history"][0]["detail"]["auto_refund"] is False
        _, pay = await gw.client.get(f"/v1/payments/{pids[0]}")
        assert pay["status"] == "SUCCEEDED"
    finally:
        await stop_gateway(gw, runner)


async def test_automatic_refund_waits_the_configured_minutes(tmp_path: Path, wechat_sim: Any,
                                                             his_sim: Any) -> None:
    minutes = 0.02  # 1.2 s
    gw, runner = await _auto_gateway(tmp_path, wechat_sim, his_sim, single_sided_auto_refund_minutes=minutes,
                                     single_sided_auto_refund_max=1_000_000)
    try:
        await _his_fault(his_sim, "write_back", "refuse")
        _, _, p = await _paid_and_recorded(gw, his_sim)
        pid = p["payment_id"]
        case = await wait_for(lambda: _case_of(gw, pid), timeout=5)
        opened = dt.datetime.fromisoformat(case["opened_at"])
        assert dt.datetime.fromisoformat(case["next_check_at"]) - opened == dt.timedelta(minutes=minutes)
        await asyncio.sleep(0.5)
        assert (await _case_of(gw, pid))["status"] == "OPEN"  # not yet: the delay is running
        final = await wait_for(lambda: _case_in(gw, pid, "RESOLVED"), timeout=15)
        assert final["resolution"] == "refunded"
        _, detail = await gw.admin.get(f"/v1/admin/cases/{case['id']}")
        auto = next(x for x in detail["history"] if x["action"] == "auto_refund")
        assert auto["detail"] == {"after_minutes": minutes}
        assert dt.datetime.fromisoformat(auto["created_at"]) - opened >= dt.timedelta(minutes=minutes)
    finally:
        await stop_gateway(gw, runner)
