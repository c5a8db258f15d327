"""Reconciliation end to end: the gateway fetches the simulated HIS's and WeChat Pay's real
bills over HTTP, matches them against its ledger and records every difference once.

The differences are made the way they arise in a hospital: a write-back the HIS refused
(long), a payment by a caller that never writes back (long), a HIS record with no money
behind it (short), a HIS record whose amount was keyed wrongly (amount mismatch) and a
HIS record cancelled although the money stayed (status mismatch).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from gateway.timeutil import local_today
from tests.conftest import Gateway, wait_for
from tests.gateway.test_his_flow import (_case_of, _his_fault, _is_wb, _patient_with_charges, his_pay_body,  # noqa: F401
                                         hgw, his_sim)
from tests.gateway.test_payments import pay_body


async def _pay_recorded(gw: Gateway, his_sim: Any, charge_count: int = 1) -> tuple[dict[str, Any], Any]:
    patient, charges = _patient_with_charges(his_sim, charge_count)
    status, p = await gw.client.post("/v1/payments", his_pay_body(patient, charges[:charge_count]))
    assert status == 200 and p["status"] == "SUCCEEDED", p
    await wait_for(lambda: _is_wb(gw, p["payment_id"], "RECORDED"), timeout=10)
    record = his_sim.hospital.find_record(p["payment_id"])
    assert record is not None
    return p, record


def _by_txn(diffs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["txn_id"], d["kind"]): d for d in diffs}


async def test_one_click_reconciliation_finds_each_difference_once(hgw: Gateway, his_sim: Any) -> None:
    today = local_today()
    matched, _ = await _pay_recorded(hgw, his_sim)
    mismatched, rec_mismatch = await _pay_recorded(hgw, his_sim)
    rec_mismatch.amount += 100  # keyed wrongly at the HIS
    cancelled, rec_cancel = await _pay_recorded(hgw, his_sim)
    his_sim.hospital.cancel_record(rec_cancel.his_serial)
    # A HIS record with no money behind it.
    ghost = dataclasses.replace(rec_cancel, his_serial="SF-GHOST-1", payment_id="PGHOST0000000001",
                                channel_trade_no=None, status="normal", amount=4321)
    his_sim.hospital.records.append(ghost)
    # Paid at the channel, the HIS refused to record it: a single-sided case opens at once.
    await _his_fault(his_sim, "write_back", "refuse")
    patient, charges = _patient_with_charges(his_sim)
    status, refused = await hgw.client.post("/v1/payments", his_pay_body(patient, charges[:1]))
    assert status == 200 and refused["status"] == "SUCCEEDED", refused
    await wait_for(lambda: _case_of(hgw, refused["payment_id"]), timeout=10)
    # A caller that never writes back.
    status, orphan = await hgw.client.post("/v1/payments", pay_body(amount=777))
    assert status == 200 and orphan["status"] == "SUCCEEDED", orphan

    status, run = await hgw.admin.post("/v1/admin/recon/runs", {"date": today.isoformat()})
    assert status == 201, run
    summary = run["summary"]
    assert run["status"] == "DONE" and summary["complete"], summary
    fetched = {(f["source"], f["source_id"], f["bill_type"]) for f in summary["fetches"]}
    assert ("platform", "ledger", "") in fetched and any(s == "channel" for s, _, _ in fetched)
    assert ("his", "his", "outpatient_settlement") in fetched
    assert summary["classes"]["matched"] >= 1

    _, listed = await hgw.admin.get(f"/v1/admin/recon/diffs?date={today.isoformat()}")
    diffs = _by_txn(listed["items"])
    expected = {(mismatched["payment_id"], "payment"): "amount_mismatch",
                (cancelled["payment_id"], "payment"): "status_mismatch",
                ("PGHOST0000000001", "payment"): "short",
                (refused["payment_id"], "payment"): "long",
                (orphan["payment_id"], "payment"): "long"}
    assert {k: d["class"] for k, d in diffs.items()} == expected, diffs
    assert (matched["payment_id"], "payment") not in diffs
    mm = diffs[(mismatched["payment_id"], "payment")]
    assert mm["his_amount"] == mismatched["amount"] + 100
    assert mm["platform_amount"] == mm["channel_amount"] == mismatched["amount"]
    assert diffs[("PGHOST0000000001", "payment")]["in_channel"] is False
    assert diffs[("PGHOST0000000001", "payment")]["class_zh"] == "短款"
    # Long entries are single-sided cases: the refused write-back keeps its case, the orphan gets one.
    refused_case = await _case_of(hgw, refused["payment_id"])
    orphan_case = await _case_of(hgw, orphan["payment_id"])
    assert refused_case and diffs[(refused["payment_id"], "payment")]["case_id"] == refused_case["id"]
    assert orphan_case and orphan_case["reason"] == "recon_long"
    assert diffs[(orphan["payment_id"], "payment")]["case_id"] == orphan_case["id"]
    assert summary["cases_opened"] == 1

    # Running the day again replaces the fetched bills and records nothing twice.
    status, again = await hgw.admin.post("/v1/admin/recon/runs", {"date": today.isoformat()})
    assert status == 201
    assert again["summary"]["new_differences"] == 0 and again["summary"]["cases_opened"] == 0
    assert again["summary"]["totals"] == summary["totals"]
    _, relisted = await hgw.admin.get(f"/v1/admin/recon/diffs?date={today.isoformat()}")
    assert relisted["total"] == len(expected)
    _, log = await hgw.admin.get(f"/v1/admin/recon/fetches?date={today.isoformat()}")
    assert len([f for f in log["items"] if f["source"] == "platform"]) >= 2

    # The wrongly keyed amount is corrected at the HIS: the next run clears the difference.
    rec_mismatch.amount -= 100
    _, third = await hgw.admin.post("/v1/admin/recon/runs", {"date": today.isoformat()})
    assert third["summary"]["cleared_differences"] == 1
    _, one = await hgw.admin.get(f"/v1/admin/recon/diffs/{mm['id']}")
    assert one["status"] == "CLEARED"

    # The short entry is balanced by hand, with a reason; the mark is audited and kept.
    ghost_diff = diffs[("PGHOST0000000001", "payment")]
    status, problem = await hgw.admin.post(f"/v1/admin/recon/diffs/{ghost_diff['id']}/mark",
                                           {"action": "balanced", "note": ""})
    assert status == 400 and problem["code"] == "VALIDATION_FAILED"
    status, marked = await hgw.admin.post(f"/v1/admin/recon/diffs/{ghost_diff['id']}/mark",
                                          {"action": "balanced", "note": "HIS误录, 已作废"}, operator="fin-zhao")
    assert status == 200 and marked["status"] == "RESOLVED" and marked["resolution"] == "balanced", marked
    assert marked["history"][0]["actor"].endswith(":fin-zhao")
    status, problem = await hgw.admin.post(f"/v1/admin/recon/diffs/{ghost_diff['id']}/mark",
                                           {"action": "ignored", "note": "again"})
    assert status == 409 or problem["code"] == "INVALID_STATE", problem
    _, fourth = await hgw.admin.post("/v1/admin/recon/runs", {"date": today.isoformat()})
    _, kept = await hgw.admin.get(f"/v1/admin/recon/diffs/{ghost_diff['id']}")
    assert kept["status"] == "RESOLVED" and fourth["summary"]["new_differences"] == 0

    await _reports_agree_with_the_ledger(hgw, today, [matched, mismatched, cancelled, refused, orphan])

    # The calendar shows the day with its open differences per channel.
    _, cal = await hgw.admin.get(f"/v1/admin/recon/calendar?month={today:%Y-%m}")
    day = next(d for d in cal["days"] if d["day"] == today.isoformat())
    assert day["state"] == "differences" and day["open_differences"] == 3
    assert day["channels"].get("wechatpay", 0) >= 2


async def test_long_entry_refunded_after_approval_closes_its_difference(hgw: Gateway, his_sim: Any) -> None:
    today = local_today()
    status, orphan = await hgw.client.post("/v1/payments", pay_body(amount=30000))
    assert status == 200 and orphan["status"] == "SUCCEEDED", orphan
    _, run = await hgw.admin.post("/v1/admin/recon/runs", {"date": today.isoformat()})
    assert run["summary"]["classes"].get("long") == 1, run
    case = await _case_of(hgw, orphan["payment_id"])
    assert case is not None and case["status"] == "OPEN"
    status, applied = await hgw.admin.post(f"/v1/admin/cases/{case['id']}/refund", {"reason": "对账长款退款"},
                                           operator="cashier-li")
    assert status == 202, applied
    status, decided = await hgw.admin.post(f"/v1/admin/approvals/{applied['approval_id']}/approve",
                                           {"comment": "同意"}, operator="fin-zhao", roles="finance")
    assert status == 200, decided

    async def refunded() -> bool:
        c = await _case_of(hgw, orphan["payment_id"])
        return bool(c and c["status"] == "RESOLVED" and c["resolution"] == "refunded")

    await wait_for(refunded, timeout=15)
    _, after = await hgw.admin.post("/v1/admin/recon/runs", {"date": today.isoformat()})
    _, listed = await hgw.admin.get(f"/v1/admin/recon/diffs?date={today.isoformat()}")
    diffs = _by_txn(listed["items"])
    pay_diff = diffs[(orphan["payment_id"], "payment")]
    assert pay_diff["status"] == "RESOLVED" and pay_diff["resolution"] == "refunded", pay_diff
    refund_diffs = [d for d in listed["items"] if d["kind"] == "refund"]
    assert len(refund_diffs) == 1 and refund_diffs[0]["status"] == "RESOLVED", refund_diffs
    assert refund_diffs[0]["resolution"] == "refunded"
    _, cal = await hgw.admin.get(f"/v1/admin/recon/calendar?month={today:%Y-%m}")
    assert next(d for d in cal["days"] if d["day"] == today.isoformat())["state"] == "balanced"
    assert after["summary"]["complete"]


async def test_bills_that_cannot_be_fetched_leave_the_day_incomplete(hgw: Gateway, his_sim: Any) -> None:
    await _his_fault(his_sim, "bill", "error")
    day = local_today() - dt.timedelta(days=1)
    _, run = await hgw.admin.post("/v1/admin/recon/runs", {"date": day.isoformat(), "window_days": 0})
    assert run["status"] == "DONE" and run["summary"]["complete"] is False
    failed = [f for f in run["summary"]["fetches"] if f["status"] == "FAILED"]
    assert failed and all(f["source"] == "his" and f["attempts"] >= 1 for f in failed)
    _, cal = await hgw.admin.get(f"/v1/admin/recon/calendar?month={day:%Y-%m}")
    assert next(d for d in cal["days"] if d["day"] == day.isoformat())["state"] == "incomplete"
    status, problem = await hgw.admin.post("/v1/admin/recon/runs",
                                           {"date": (local_today() + dt.timedelta(days=1)).isoformat()})
    assert status == 400 and problem["code"] == "VALIDATION_FAILED"


def test_cli_runs_a_day_and_lists_its_differences(tmp_path: Any, monkeypatch: Any) -> None:
    import json

    from click.testing import CliRunner

    from gateway.cli import cli

    monkeypatch.setenv("YINYI_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("YINYI_DATABASE_URL", raising=False)
    day = (local_today() - dt.timedelta(days=2)).isoformat()
    result = CliRunner().invoke(cli, ["recon", "run", "--date", day, "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["day"] == day and out["status"] == "DONE" and out["mode"] == "t1"
    assert out["summary"]["totals"]["platform"] == {"count": 0, "paid": 0, "refunded": 0}
    again = json.loads(CliRunner().invoke(cli, ["recon", "run", "--date", day, "--json"]).output)
    assert again["id"] != out["id"] and again["summary"]["new_differences"] == 0
    result = CliRunner().invoke(cli, ["recon", "run", "--date", day])
    assert result.exit_code == 0 and f"{day} t1 run" in result.output, result.output
    result = CliRunner().invoke(cli, ["recon", "diffs", "--date", day])
    assert result.exit_code == 0 and "0 difference(s)" in result.output, result.output
    result = CliRunner().invoke(cli, ["recon", "run", "--date", "2026-13-01"])
    assert result.exit_code != 0


async def _reports_agree_with_the_ledger(gw: Gateway, today: dt.date, payments: list[dict[str, Any]]) -> None:
    import io
    from decimal import Decimal

    from openpyxl import load_workbook

    _, listed = await gw.admin.get("/v1/admin/reports")
    assert {"long_short", "refunds", "cashier_income", "channel_income", "platform_vs_his", "his",
            "platform", "insurance"} <= {r["key"] for r in listed["items"]}
    day = today.isoformat()
    status, rep = await gw.admin.get(f"/v1/admin/reports/channel_income?begin={day}")
    assert status == 200, rep
    paid = sum(p["amount"] for p in payments)
    assert rep["totals"]["paid"] == paid and rep["totals"]["count"] == len(payments)
    assert rep["columns"][0]["zh"] == "期间"
    _, cashier = await gw.admin.get(f"/v1/admin/reports/cashier_income?begin={day}&group=month")
    assert cashier["totals"]["paid"] == paid and all(r["period"] == f"{today:%Y-%m}" for r in cashier["rows"])
    _, ls = await gw.admin.get(f"/v1/admin/reports/long_short?begin={day}")
    classes = {r["class"]: r["count"] for r in ls["rows"]}
    assert classes["长款"] == 2 and classes["短款"] == 1 and classes["金额不符"] == 1
    _, vs = await gw.admin.get(f"/v1/admin/reports/platform_vs_his?begin={day}")
    assert vs["totals"]["difference"] == vs["totals"]["platform"] - vs["totals"]["his"]

    # The Excel export opens and holds the API's figures; CSV and printable HTML too.
    status, _, _ = await gw.admin.fetch("GET", f"/v1/admin/reports/channel_income?begin={day}&format=pdf")
    assert status == 400
    raw = {}
    for fmt in ("xlsx", "csv", "html"):
        status, headers, raw[fmt] = await gw.admin.fetch("GET", f"/v1/admin/reports/channel_income?begin={day}"
                                                                f"&format={fmt}")
        assert status == 200 and "attachment" in headers["Content-Disposition"], raw[fmt][:200]
    ws = load_workbook(io.BytesIO(raw["xlsx"])).active
    header = [c.value for c in ws[2]]
    last = [c.value for c in ws[ws.max_row]]
    assert Decimal(str(last[header.index("收款金额")])) == Decimal(paid) / 100
    assert raw["csv"].startswith("\ufeff".encode()) and "收款金额".encode() in raw["csv"]
    assert b"<table>" in raw["html"] and b"http" not in raw["html"].split(b"<table>")[0]
    _, audit = await gw.admin.get("/v1/admin/audit?action=report.export")
    assert len([a for a in audit["items"] if a["action"] == "report.export"]) == 3


async def test_bank_statement_shows_whether_each_channel_day_arrived(hgw: Gateway, his_sim: Any) -> None:
    today = local_today()
    await _pay_recorded(hgw, his_sim)
    status, p = await hgw.client.post("/v1/payments", pay_body(amount=1234))
    assert status == 200 and p["status"] == "SUCCEEDED"

    def statement(amount: str) -> bytes:
        rows = ["某某银行 账户明细", "交易日期,摘要,对方户名,贷方金额,借方金额,流水号"]
        for i in range(1, 4):
            d = today + dt.timedelta(days=i)
            if i == 1:
                rows.append(f"{d:%Y/%m/%d},{d:%m%d}结算款,财付通支付科技有限公司,\"{amount}\",,B{d:%Y%m%d}01")
            rows.append(f"{d:%Y/%m/%d},手续费,,,2.00,B{d:%Y%m%d}99")
        return "\n".join(rows).encode("gb18030")

    status, out = await hgw.admin.request("POST", "/v1/admin/recon/bank-statements?account=6222001&filename=s.csv",
                                          raw=statement("1.00"))
    assert status == 200 and [d["line_count"] for d in out["days"]] == [1], out
    status, run = await hgw.admin.post("/v1/admin/recon/runs", {"date": today.isoformat()})
    assert status == 201, run
    arrivals = {a["channel"]: a for a in run["summary"]["arrivals"]["items"]}
    wx = arrivals["wechatpay"]
    assert wx["status"] == "arrival_mismatch" and wx["arrived"] == 100
    _, listed = await hgw.admin.get(f"/v1/admin/recon/diffs?date={today.isoformat()}&class=arrival_mismatch")
    (diff,) = listed["items"]
    assert diff["bank_amount"] == 100 and diff["channel_amount"] == wx["expected"] and diff["class_zh"] == "到账金额不符"

    # The corrected statement replaces that day; the settlement has arrived and the difference clears.
    from gateway.money import fen_to_yuan

    status, out = await hgw.admin.request("POST", "/v1/admin/recon/bank-statements?account=6222001&filename=s.csv",
                                          raw=statement(fen_to_yuan(wx["expected"])))
    assert status == 200
    _, again = await hgw.admin.post("/v1/admin/recon/runs", {"date": today.isoformat()})
    assert {a["channel"]: a["status"] for a in again["summary"]["arrivals"]["items"]} == {"wechatpay": "arrived"}
    assert again["summary"]["arrivals"]["cleared_differences"] == 1
    # Three-way differences of the day are untouched by the arrival check.
    assert again["summary"]["cleared_differences"] == 0

    status, problem = await hgw.admin.request("POST", "/v1/admin/recon/bank-statements?account=6222001",
                                              raw="交易日期,贷方金额\n2026-13-01,1.00\n".encode())
    assert status == 400 and problem["code"] == "VALIDATION_FAILED" and problem["errors"], problem


async def test_scheduler_runs_each_slot_once_across_processes(hgw: Gateway, his_sim: Any) -> None:
    from gateway.recon.scheduler import ReconScheduler

    await _pay_recorded(hgw, his_sim)
    # Two schedulers stand for two gateway processes sharing the database.
    first, second = ReconScheduler(hgw.core), ReconScheduler(hgw.core)
    hgw.core.settings.recon_t1_after = "00:00"
    results = [await first.run_once(), await second.run_once()]
    assert results == [2, 0]  # today's T+0 slot and yesterday's T+1, once
    _, runs = await hgw.admin.get("/v1/admin/recon/runs")
    modes = sorted((r["mode"], r["day"]) for r in runs["items"])
    yesterday = (local_today() - dt.timedelta(days=1)).isoformat()
    assert modes == sorted([("t0", local_today().isoformat()), ("t1", yesterday)])
    assert all(r["actor"] == "system:scheduler" for r in runs["items"])


async def test_payments_no_business_system_owns_are_matched_against_the_channel_only(
        hgw: Gateway, his_sim: Any) -> None:
    today = local_today()
    # Parking has no business system here: no HIS record is expected of it.
    status, parking = await hgw.client.post("/v1/payments", pay_body(amount=600, business_type="parking"))
    assert status == 200 and parking["status"] == "SUCCEEDED", parking
    status, orphan = await hgw.client.post("/v1/payments", pay_body(amount=700))  # outpatient: the HIS owns it
    assert status == 200 and orphan["status"] == "SUCCEEDED", orphan
    for mode in ("t0", "t1"):
        status, run = await hgw.admin.post("/v1/admin/recon/runs", {"date": today.isoformat(), "mode": mode})
        assert status == 201, run
        assert run["summary"]["without_business_system"] == 1
        assert run["summary"]["totals"]["his"]["count"] == 0  # stand-ins are never reported as HIS lines
    _, listed = await hgw.admin.get(f"/v1/admin/recon/diffs?date={today.isoformat()}")
    assert {d["txn_id"]: d["class"] for d in listed["items"]} == {orphan["payment_id"]: "long"}
