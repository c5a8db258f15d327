"""Finance work through the console API, end to end over real HTTP against the simulators: the admin
routes as aliases (a single-sided case refunded after another user's approval), payment search and
detail, refund applications, the overview, unmasking personal data and the operation log's chain."""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

from sqlalchemy import text

from tests.conftest import wait_for
from tests.console.conftest import ConsoleClient, ConsoleGateway, oplog
from tests.gateway.test_his_flow import _his_fault, _patient_with_charges, his_pay_body
from tests.gateway.test_payments import code, pay_body


async def _case(c: ConsoleClient, pid: str, status: str | None = None) -> dict[str, Any] | None:
    s, body = await c.get("/console/api/admin/cases")
    assert s == 200, body
    case = next((x for x in body["items"] if x["payment_id"] == pid), None)
    return case if case and (status is None or case["status"] == status) else None


async def _single_sided(cgw: ConsoleGateway) -> tuple[dict[str, Any], Any]:
    patient, charges = _patient_with_charges(cgw.his_sim)
    await _his_fault(cgw.his_sim, "write_back", "refuse")
    status, p = await cgw.gw.client.post("/v1/payments", his_pay_body(patient, [charges[0]]))
    assert status == 200 and p["status"] == "SUCCEEDED", p
    return p, patient


async def test_a_case_is_refunded_through_the_admin_aliases_after_another_users_approval(cgw: ConsoleGateway) -> None:
    p, _ = await _single_sided(cgw)
    cashier = await cgw.login("cashier-li")
    case = await wait_for(lambda: _case(cashier, p["payment_id"]), timeout=10)
    status, applied = await cashier.post(f"/console/api/admin/cases/{case['id']}/refund", {"reason": "患者要求退款"})
    assert status == 202, applied
    approval_id = applied["approval_id"]
    # The cashier may apply but not decide; deciding needs approvals.decide.
    status, problem = await cashier.post(f"/console/api/admin/approvals/{approval_id}/approve", {})
    assert status == 403 and problem["code"] == "CONSOLE_PERMISSION_DENIED"
    assert problem["permission"] == "approvals.decide"
    fin = await cgw.login("fin-zhao")
    status, waiting = await fin.get("/console/api/admin/approvals?view=waiting")
    assert status == 200 and approval_id in {a["id"] for a in waiting["items"]}
    status, mine = await cashier.get("/console/api/admin/approvals?view=mine")
    assert [a["applicant"] for a in mine["items"] if a["id"] == approval_id] == ["console:cashier-li"]
    status, decided = await fin.post(f"/console/api/admin/approvals/{approval_id}/approve", {"comment": "同意"})
    assert status == 200 and decided["status"] == "APPROVED" and decided["decided_by"] == "console:fin-zhao"

    final = await wait_for(lambda: _case(fin, p["payment_id"], "RESOLVED"), timeout=20)
    assert final["resolution"] == "refunded"
    status, pay = await fin.get(f"/console/api/payments/{p['payment_id']}")
    assert status == 200 and pay["status"] == "REFUNDED"
    # The same handlers answer the signed API: the history names the console users.
    _, detail = await cgw.gw.admin.get(f"/v1/admin/cases/{case['id']}")
    by_action = {h["action"]: h["actor"] for h in detail["history"]}
    assert by_action["refund_requested"] == "console:cashier-li" and by_action["refund_approved"] == "console:fin-zhao"
    admin = await cgw.login("admin")
    changes = await oplog(admin, action="POST /admin/")
    assert [(e["user"], e["action"], e["target"], e["detail"]["status"]) for e in changes] == [
        ("fin-zhao", "POST /admin/approvals/{id}/approve", approval_id, 200),
        ("cashier-li", "POST /admin/cases/{id}/refund", case["id"], 202)], changes
    assert changes[1]["detail"]["body"] == {"reason": "患者要求退款"} and changes[1]["ip"] == "127.0.0.1"
    assert (await oplog(admin, action="permission.denied", user="cashier-li"))[0]["detail"]["permission"] == \
        "approvals.decide"


async def test_permissions_guard_every_route(cgw: ConsoleGateway) -> None:
    cashier = await cgw.login("cashier-li")
    for method, path, perm in (("GET", "/console/api/system/users", "system.users"),
                               ("POST", "/console/api/system/users", "system.users"),
                               ("GET", "/console/api/system/oplog", "oplog.view"),
                               ("POST", "/console/api/admin/approvals/batch", "approvals.decide"),
                               ("PATCH", "/console/api/admin/channels/wechatpay", "config.edit"),
                               ("POST", "/console/api/admin/apps", "system.users"),
                               ("POST", "/console/api/admin/recon/runs", "recon.run"),
                               ("GET", "/console/api/admin/reports/daily_summary?begin=2026-01-01&format=csv",
                                "reports.view")):
        status, problem = await cashier.call(method, path, {} if method != "GET" else None)
        assert status == 403 and problem["code"] == "CONSOLE_PERMISSION_DENIED", (path, problem)
        assert problem["permission"] == perm, (path, problem)
    auditor = await cgw.login("audit-sun")
    assert (await auditor.get("/console/api/system/oplog"))[0] == 200
    assert (await auditor.get("/console/api/admin/merchants"))[0] == 200
    status, problem = await auditor.call("PATCH", "/console/api/admin/channels/wechatpay", {"enabled": False})
    assert status == 403 and problem["permission"] == "config.edit"
    status, problem = await auditor.post("/console/api/admin/cases/C1/resolve", {"note": "看看"})
    assert status == 403 and problem["permission"] == "cases.handle"
    # Without a session nothing but the login answers.
    anon = cgw.client()
    for path in ("/console/api/me", "/console/api/overview", "/console/api/admin/cases",
                 "/console/api/payments/search"):
        status, problem = await anon.get(path)
        assert status == 401 and problem["code"] == "CONSOLE_SESSION_EXPIRED", path


async def test_a_role_made_in_the_console_applies_at_once(cgw: ConsoleGateway) -> None:
    admin = await cgw.login("admin")
    status, perms = await admin.get("/console/api/system/permissions")
    assert status == 200 and {"code": "pii.view"}.items() <= next(
        p for p in perms["items"] if p["code"] == "pii.view").items()
    assert all(p["label_zh"] and p["label_en"] for p in perms["items"])
    assert {"finance", "finance_director", "admin"} <= set(perms["approval_roles"])
    status, role = await admin.post("/console/api/system/roles", {
        "id": "window-lead", "name": "窗口组长", "permissions": ["payments.view", "overview.view"],
        "approval_roles": []})
    assert status == 201 and role["permissions"] == ["overview.view", "payments.view"], role
    status, problem = await admin.post("/console/api/system/roles", {"id": "bad", "name": "x", "permissions": ["nope"]})
    assert status == 400 and problem["code"] == "VALIDATION_FAILED"
    status, _ = await admin.call("PUT", "/console/api/system/users/cashier-li", {"roles": ["window-lead"]})
    assert status == 200
    lead = await cgw.login("cashier-li")
    assert lead.me["user"]["permissions"] == ["overview.view", "payments.view"]
    assert (await lead.get("/console/api/admin/cases"))[0] == 403
    status, _ = await admin.call("PUT", "/console/api/system/roles/window-lead",
                                 {"permissions": ["payments.view", "overview.view", "cases.view"]})
    assert status == 200
    assert (await lead.get("/console/api/admin/cases"))[0] == 200  # the same session, the new permission
    status, problem = await admin.call("DELETE", "/console/api/system/roles/window-lead")
    assert status == 409 and problem["users"] == ["cashier-li"]
    status, problem = await admin.call("DELETE", "/console/api/system/roles/finance")
    assert status == 409  # built-in
    status, problem = await admin.call("PUT", "/console/api/system/roles/admin", {"permissions": []})
    assert status == 409
    status, problem = await admin.call("DELETE", "/console/api/system/users/admin")
    assert status == 409  # not oneself
    actions = [e["action"] for e in await oplog(admin, user="admin", action="role.")]
    assert actions == ["role.update", "role.create"]


async def _pay(cgw: ConsoleGateway, **kw: Any) -> dict[str, Any]:
    status, p = await cgw.gw.client.post("/v1/payments", pay_body(**kw))
    assert status == 200, p
    return p


async def test_payment_search_and_detail(cgw: ConsoleGateway) -> None:
    ok1 = await _pay(cgw, amount=2500)
    ok2 = await _pay(cgw, amount=1200, entry="window-9")
    failed = await _pay(cgw, amount=300, auth_code=code("9011"))
    patient, charges = _patient_with_charges(cgw.his_sim)
    status, his = await cgw.gw.client.post("/v1/payments", his_pay_body(patient, [charges[0]]))
    assert status == 200 and his["status"] == "SUCCEEDED", his
    c = await cgw.login("cashier-li")
    status, found = await c.get("/console/api/payments/search")
    assert status == 200 and found["total"] == 4 and len(found["items"]) == 4
    assert [x["payment_id"] for x in found["items"]][0] == his["payment_id"]  # newest first
    status, found = await c.get("/console/api/payments/search?status=SUCCEEDED&limit=2")
    assert found["total"] == 3 and len(found["items"]) == 2
    status, found = await c.get(f"/console/api/payments/search?out_trade_no={ok1['out_trade_no']}")
    assert [x["payment_id"] for x in found["items"]] == [ok1["payment_id"]]
    status, found = await c.get("/console/api/payments/search?entry=window-9")
    assert [x["payment_id"] for x in found["items"]] == [ok2["payment_id"]]
    status, found = await c.get(f"/console/api/payments/search?channel_trade_no={ok2['channel_trade_no']}")
    assert [x["payment_id"] for x in found["items"]] == [ok2["payment_id"]]
    status, found = await c.get(f"/console/api/payments/search?patient={quote(patient.patient_id)}")
    assert [x["payment_id"] for x in found["items"]] == [his["payment_id"]]
    status, found = await c.get(f"/console/api/payments/search?patient={quote(patient.name)}")
    assert [x["payment_id"] for x in found["items"]] == [his["payment_id"]]
    status, found = await c.get("/console/api/payments/search?status=FAILED&method=code&channel=wechatpay")
    assert [x["payment_id"] for x in found["items"]] == [failed["payment_id"]]
    assert found["items"][0]["app_id"] == cgw.gw.sandbox["caller"]["app_id"]
    status, found = await c.get("/console/api/payments/search?begin=2000-01-01&end=2000-01-02")
    assert found["total"] == 0
    # The signed API's read routes, aliased: any app's payments.
    status, one = await c.get(f"/console/api/payments/{ok1['payment_id']}")
    assert status == 200 and one["amount"] == 2500
    status, one = await c.get(f"/console/api/payments?out_trade_no={ok2['out_trade_no']}")
    assert status == 200 and one["payment_id"] == ok2["payment_id"]

    async def with_calls() -> dict[str, Any] | None:  # the interface log is written in batches
        s, d = await c.get(f"/console/api/payments/{his['payment_id']}/detail")
        assert s == 200, d
        return d if any(call["direction"] == "out" for call in d["calls"]) else None

    detail = await wait_for(with_calls, timeout=5)
    assert detail["payment"]["payment_id"] == his["payment_id"]
    assert [(e["from_status"], e["to_status"]) for e in detail["events"]][:2] == [(None, "CREATED"),
                                                                                   ("CREATED", "SUCCEEDED")]
    assert detail["writeback"]["system"] == "his" and detail["writeback"]["patient_id"] != patient.patient_id
    assert detail["refunds"] == [] and detail["case"] is None
    status, problem = await c.get("/console/api/payments/P-nope/detail")
    assert status == 404 and problem["code"] == "PAYMENT_NOT_FOUND"


async def test_a_refund_application_is_refunded_after_approval(cgw: ConsoleGateway) -> None:
    p = await _pay(cgw, amount=2500)
    cashier = await cgw.login("cashier-li")
    url = f"/console/api/payments/{p['payment_id']}/refund-requests"
    status, problem = await cashier.post(url, {"amount": 3000, "reason": "多收"})
    assert status == 409 and problem["code"] == "REFUND_EXCEEDS_PAID"
    status, applied = await cashier.post(url, {"amount": 1000, "reason": "多收"})
    assert status == 202, applied
    assert applied["kind"] == "payment_refund" and applied["required_role"] == "finance" and applied["amount"] == 1000
    status, problem = await cashier.post(url, {"amount": 500})
    assert status == 409 and problem["approval_id"] == applied["id"]  # one application at a time
    fin = await cgw.login("fin-zhao")
    status, decided = await fin.post(f"/console/api/admin/approvals/{applied['id']}/approve", {"comment": "同意"})
    assert status == 200 and decided["status"] == "APPROVED", decided

    async def refunded() -> dict[str, Any] | None:
        _, d = await fin.get(f"/console/api/payments/{p['payment_id']}/detail")
        return d if d["payment"]["status"] == "PARTIALLY_REFUNDED" and d["refunds"] else None

    detail = await wait_for(refunded, timeout=15)
    assert detail["payment"]["status"] == "PARTIALLY_REFUNDED" and detail["payment"]["refunded_amount"] == 1000
    assert detail["refunds"][0]["out_refund_no"] == f"RQ-{applied['id']}"
    assert [(a["id"], a["status"]) for a in detail["approvals"]] == [(applied["id"], "APPROVED")]
    rid = detail["refunds"][0]["refund_id"]
    status, refund = await fin.get(f"/console/api/refunds/{rid}")
    assert status == 200 and refund["amount"] == 1000
    admin = await cgw.login("admin")
    req = (await oplog(admin, action="payment.refund_request"))[0]
    assert req["user"] == "cashier-li" and req["target"] == p["payment_id"] and req["detail"]["amount"] == 1000
    # Large amounts need the director.
    big = await _pay(cgw, amount=150000, auth_code=code("1234"), wait_seconds=20)
    status, applied = await cashier.post(f"/console/api/payments/{big['payment_id']}/refund-requests",
                                         {"amount": 150000, "reason": "退费"})
    assert status == 202 and applied["required_role"] == "finance_director"
    status, problem = await fin.post(f"/console/api/admin/approvals/{applied['id']}/approve", {})
    assert status == 403 and problem["code"] == "APPROVAL_FORBIDDEN"
    director = await cgw.login("dir-qian")
    status, decided = await director.post(f"/console/api/admin/approvals/{applied['id']}/approve", {})
    assert status == 200 and decided["status"] == "APPROVED"


async def test_overview_adds_up_the_payments_made(cgw: ConsoleGateway) -> None:
    amounts = [2500, 1200, 300]
    paid = [await _pay(cgw, amount=a) for a in amounts]
    await _pay(cgw, amount=777, auth_code=code("9011"))  # declined: not counted
    qr = await _pay(cgw, amount=990, method="qr", auth_code=None, channel="wechatpay")  # unpaid order: not counted
    assert qr["status"] == "PAYING"
    status, refund = await cgw.gw.client.post(f"/v1/payments/{paid[0]['payment_id']}/refunds",
                                              {"out_refund_no": "R-ov-1", "amount": 500})
    assert status == 200, refund

    async def refunded() -> bool:
        _, r = await cgw.gw.client.get(f"/v1/refunds/{refund['refund_id']}")
        return r["status"] == "SUCCEEDED"

    await wait_for(refunded, timeout=10)
    c = await cgw.login("fin-zhao")
    status, ov = await c.get("/console/api/overview")
    assert status == 200, ov
    assert ov["totals"] == {"count": 3, "paid": sum(amounts), "refunded": 500, "net": sum(amounts) - 500}
    assert len(ov["trend"]) == 1 and ov["trend"][0]["paid"] == sum(amounts) and ov["trend"][0]["count"] == 3
    assert ov["by_method"] == [{"key": "code", "count": 3, "paid": sum(amounts), "refunded": 500,
                                "net": sum(amounts) - 500}]
    assert [(g["key"], g["paid"]) for g in ov["by_channel"]] == [("wechatpay", sum(amounts))]
    assert [(g["key"], g["count"]) for g in ov["by_entry"]] == [("window-3", 3)]
    assert ov["open_cases"] == 0 and ov["open_differences"] == 0 and ov["pending_approvals_for_me"] == 0
    day = ov["trend"][0]["day"]
    status, week = await c.get("/console/api/overview?begin=2000-01-01&end=2000-01-07")
    assert week["totals"]["count"] == 0 and len(week["trend"]) == 7
    status, same = await c.get(f"/console/api/overview?begin={day}&end={day}")
    assert same["totals"] == ov["totals"]
    # An application waiting for the finance tier counts for fin-zhao, not for the cashier who filed it.
    cashier = await cgw.login("cashier-li")
    status, _ = await cashier.post(f"/console/api/payments/{paid[1]['payment_id']}/refund-requests", {"amount": 100})
    assert status == 202
    assert (await c.get("/console/api/overview"))[1]["pending_approvals_for_me"] == 1
    assert (await cashier.get("/console/api/overview"))[1]["pending_approvals_for_me"] == 0


async def test_unmasked_personal_data_needs_pii_view_and_is_logged(cgw: ConsoleGateway) -> None:
    p, patient = await _single_sided(cgw)
    cashier = await cgw.login("cashier-li")
    case = await wait_for(lambda: _case(cashier, p["payment_id"]), timeout=10)
    status, masked = await cashier.get("/console/api/admin/his/writebacks")
    assert status == 200 and masked["items"], masked
    row = next(w for w in masked["items"] if w["payment_id"] == p["payment_id"])
    assert row["patient_name"] != patient.name and "*" in row["patient_name"]
    assert row["patient_id"] != patient.patient_id
    status, problem = await cashier.get("/console/api/admin/his/writebacks?unmask=1")
    assert status == 403 and problem["permission"] == "pii.view"
    director = await cgw.login("dir-qian")
    status, clear = await director.get("/console/api/admin/his/writebacks?unmask=1")
    assert status == 200
    row = next(w for w in clear["items"] if w["payment_id"] == p["payment_id"])
    assert row["patient_name"] == patient.name and row["patient_id"] == patient.patient_id
    status, detail = await director.get(f"/console/api/admin/cases/{case['id']}")
    assert detail["writeback"]["patient_name"] != patient.name
    status, detail = await director.get(f"/console/api/admin/cases/{case['id']}?unmask=1")
    assert detail["writeback"]["patient_name"] == patient.name
    status, pd = await director.get(f"/console/api/payments/{p['payment_id']}/detail?unmask=true")
    assert pd["writeback"]["patient_id"] == patient.patient_id
    admin = await cgw.login("admin")
    views = await oplog(admin, action="pii.unmask")
    assert [(v["user"], v["detail"]["route"]) for v in views] == [
        ("dir-qian", "/console/api/payments/{payment_id}/detail"), ("dir-qian", "/console/api/admin/cases/{id}"),
        ("dir-qian", "/console/api/admin/his/writebacks")]
    assert views[1]["target"] == case["id"]
    denied = await oplog(admin, action="permission.denied")
    assert [(d["user"], d["detail"]["permission"]) for d in denied] == [("cashier-li", "pii.view")]
    # The signed API may unmask too; it is audited.
    status, clear = await cgw.gw.admin.request("GET", "/v1/admin/his/writebacks?unmask=1",
                                               headers={"X-Operator": "it-sun"})
    assert status == 200
    _, audit = await cgw.gw.admin.get("/v1/admin/audit?action=pii.unmask")
    assert audit["items"][0]["actor"].endswith(":it-sun")


async def test_exports_need_their_permission_and_are_logged(cgw: ConsoleGateway) -> None:
    await _pay(cgw, amount=100)
    fin = await cgw.login("fin-zhao")
    status, reports = await fin.get("/console/api/admin/reports")
    assert status == 200 and reports["items"], reports
    key = reports["items"][0]["key"]
    from gateway.timeutil import local_today

    day = local_today().isoformat()
    status, _ = await fin.get(f"/console/api/admin/reports/{key}?begin={day}&end={day}")
    assert status == 200
    status, body = await fin.get(f"/console/api/admin/reports/{key}?begin={day}&end={day}&format=csv")
    assert status == 200 and fin.last_headers["Content-Disposition"].startswith("attachment")
    cashier = await cgw.login("cashier-li")
    status, problem = await cashier.get(f"/console/api/admin/reports/{key}?begin={day}&end={day}&format=csv")
    assert status == 403 and problem["permission"] == "reports.view"
    admin = await cgw.login("admin")
    exports = await oplog(admin, action="report.export")
    assert [(e["user"], e["target"], e["detail"]["query"]["format"]) for e in exports] == [("fin-zhao", key, "csv")]


async def test_the_operation_log_chain_verifies_and_shows_an_edited_row(cgw: ConsoleGateway) -> None:
    admin = await cgw.login("admin")
    await admin.post("/console/api/system/users", {"username": "temp-a", "display_name": "临时",
                                                   "roles": ["auditor"], "password": "Temp-user-2025"})
    await admin.call("PUT", "/console/api/system/users/temp-a", {"enabled": False})
    status, verdict = await admin.get("/console/api/system/oplog/verify")
    assert status == 200 and verdict["ok"] is True and verdict["broken"] is None, verdict
    assert verdict["checked"] == verdict["last_id"] >= 8  # the users' creation, two logins, the changes
    status, page = await admin.get("/console/api/system/oplog?limit=3")
    assert len(page["items"]) == 3 and page["total"] == verdict["last_id"]
    target = next(e for e in (await oplog(admin, action="user.update")) if e["target"] == "temp-a")
    async with cgw.core.engine.begin() as conn:  # somebody with database access covers their tracks
        await conn.execute(text("UPDATE console_oplog SET username = 'someone-else' WHERE id = :id"),
                           {"id": target["id"]})
    status, verdict = await admin.get("/console/api/system/oplog/verify")
    assert verdict["ok"] is False and verdict["broken"]["id"] == target["id"], verdict
    assert "edited" in verdict["broken"]["reason"] and verdict["broken"]["reason_zh"]
    async with cgw.core.engine.begin() as conn:
        await conn.execute(text("UPDATE console_oplog SET username = 'admin' WHERE id = :id"), {"id": target["id"]})
        await conn.execute(text("DELETE FROM console_oplog WHERE id = :id"), {"id": target["id"] - 1})
    status, verdict = await admin.get("/console/api/system/oplog/verify")
    assert verdict["ok"] is False and verdict["broken"]["id"] == target["id"] - 1
    assert "deleted" in verdict["broken"]["reason"]
    # Searching: by user, action prefix, target and time range.
    found = await oplog(admin, user="admin", action="user.", target="temp-a")
    assert [e["action"] for e in found] == ["user.update"]
    assert await oplog(admin, begin="2000-01-01", end="2000-01-02") == []
