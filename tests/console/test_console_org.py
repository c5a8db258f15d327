"""The console's newer pages over the console API: the code tables (数据字典), the departments (组织机构),
bill and bank-statement imports sent as raw files through the session and CSRF check, write-back
exceptions (回写HIS异常) searched and refunded, merchants and entries edited."""
from __future__ import annotations

from pathlib import Path

from gateway.channel import Method
from gateway.his import BillType
from gateway.statemachine import PaymentStatus, RefundStatus
from tests.conftest import wait_for
from tests.console.conftest import ConsoleGateway, oplog
from tests.gateway.test_his_flow import _his_fault, _patient_with_charges, his_pay_body

ROOT = Path(__file__).resolve().parents[2]
STATEMENT = ("交易日期,贷方金额,借方金额,对方户名,摘要,流水号\n"
             "2026-11-30,1000.00,,财付通支付科技有限公司,微信结算,B0001\n"
             "2026-12-01,50.50,,支付宝（中国）网络技术有限公司,支付宝结算,B0002\n"
             "2026-12-01,,20.00,某某公司,手续费,B0003\n").encode()


async def test_dictionaries_list_every_code_with_both_labels(cgw: ConsoleGateway) -> None:
    anon = cgw.client()
    assert (await anon.get("/console/api/system/dictionaries"))[0] == 401
    cashier = await cgw.login("cashier-li")  # any user may read them
    status, body = await cashier.get("/console/api/system/dictionaries")
    assert status == 200, body
    tables = {t["key"]: t for t in body["items"]}
    assert {"channels", "payment_methods", "business_types", "his_bill_types", "payment_statuses", "refund_statuses",
            "writeback_statuses", "case_statuses", "approval_statuses", "difference_statuses",
            "difference_classes"} <= set(tables)
    for t in tables.values():
        assert t["name_zh"] and t["name_en"] and t["entries"], t["key"]
        for e in t["entries"]:
            assert e["code"] and e["label_zh"] and e["label_en"], (t["key"], e)

    def codes(key: str) -> set[str]:
        return {e["code"] for e in tables[key]["entries"]}

    assert codes("payment_statuses") == {s.value for s in PaymentStatus}
    assert codes("refund_statuses") == {s.value for s in RefundStatus}
    assert codes("payment_methods") == {m.value for m in Method}
    assert codes("his_bill_types") == {b.value for b in BillType}
    assert "wechatpay" in codes("channels")
    assert {"long", "short", "amount_mismatch", "arrival_missing", "ins_centre_only"} <= codes("difference_classes")
    assert {"OPEN", "APPROVING", "REFUNDING", "RESOLVED"} == codes("case_statuses")
    label = {e["code"]: (e["label_zh"], e["label_en"]) for e in tables["difference_classes"]["entries"]}
    assert label["long"][0] == "长款"
    # business types: the known ones and those configured (the test HIS names its own)
    assert {"registration", "outpatient", "inpatient_deposit"} <= codes("business_types")


async def test_departments_are_kept_under_campuses_and_logged(cgw: ConsoleGateway) -> None:
    admin = await cgw.login("admin")
    status, _ = await admin.call("PUT", "/console/api/admin/campuses/east", {"name": "东院区"})
    assert status == 200
    status, dep = await admin.call("PUT", "/console/api/system/departments/fin",
                                   {"name": "财务科", "campus_id": "east"})
    assert status == 200 and dep["name"] == "财务科" and dep["campus_id"] == "east", dep
    status, sub = await admin.call("PUT", "/console/api/system/departments/fin-cash",
                                   {"name": "门诊收费处", "campus_id": "east", "parent_id": "fin"})
    assert status == 200, sub
    # a campus or parent that does not exist, a loop: refused
    for body in ({"name": "x", "campus_id": "nowhere"}, {"name": "x", "parent_id": "nope"},
                 {"name": "财务科", "parent_id": "fin-cash"}):
        status, problem = await admin.call("PUT", "/console/api/system/departments/fin", body)
        assert status == 400 and problem["code"] == "VALIDATION_FAILED", (body, problem)
    status, problem = await admin.call("PUT", "/console/api/system/departments/bad id", {"name": "x"})
    assert status == 400
    # a user in it: listed with the count, and the department cannot go
    status, _ = await admin.call("PUT", "/console/api/system/users/cashier-li", {"department": "fin-cash"})
    assert status == 200
    status, listed = await admin.get("/console/api/system/departments")
    assert status == 200
    by_id = {d["id"]: d for d in listed["items"]}
    assert by_id["fin-cash"]["users"] == 1 and by_id["fin-cash"]["parent_id"] == "fin"
    status, problem = await admin.call("DELETE", "/console/api/system/departments/fin-cash")
    assert status == 409 and problem["users"] == ["cashier-li"], problem
    status, problem = await admin.call("DELETE", "/console/api/system/departments/fin")
    assert status == 409 and problem["departments"] == ["fin-cash"], problem
    await admin.call("PUT", "/console/api/system/users/cashier-li", {"department": None})
    assert (await admin.call("DELETE", "/console/api/system/departments/fin-cash"))[0] == 200
    assert (await admin.call("DELETE", "/console/api/system/departments/fin-cash"))[0] == 404
    # who may: reading with config.view, changing with config.edit
    auditor = await cgw.login("audit-sun")
    assert (await auditor.get("/console/api/system/departments"))[0] == 200
    status, problem = await auditor.call("PUT", "/console/api/system/departments/x", {"name": "x"})
    assert status == 403 and problem["permission"] == "config.edit"
    cashier = await cgw.login("cashier-li")
    status, problem = await cashier.get("/console/api/system/departments")
    assert status == 403 and problem["permission"] == "config.view"
    actions = [(e["action"], e["target"]) for e in await oplog(admin, action="department.")]
    assert actions[:3] == [("department.delete", "fin-cash"), ("department.put", "fin-cash"), ("department.put", "fin")]
    assert (await oplog(admin, action="department.put"))[0]["action_zh"] == "保存科室/部门"


async def test_bill_and_statement_files_pass_the_session_and_csrf_check(cgw: ConsoleGateway) -> None:
    fin = await cgw.login("fin-zhao")
    path = "/console/api/admin/recon/bank-statements?account=6222-01&filename=statement.csv"
    status, problem = await fin.upload(path, STATEMENT, csrf=False)
    assert status == 403 and problem["code"] == "CONSOLE_CSRF_FAILED"
    status, out = await fin.upload(path, STATEMENT)
    assert status == 200, out
    assert out["account"] == "6222-01"
    days = {d["day"]: d for d in out["days"]}
    assert set(days) == {"2026-11-30", "2026-12-01"}
    assert days["2026-11-30"]["total_paid"] == 100000 and days["2026-12-01"]["total_paid"] == 5050
    assert days["2026-12-01"]["line_count"] == 1  # the debit is not an arrival
    # a statement that is not one: the problem is answered, nothing stored
    status, problem = await fin.upload(path, b"hello,world\n1,2\n")
    assert status == 400 and problem["code"] == "VALIDATION_FAILED"
    sample = (ROOT / "configs/his/samples/his-bill-sample.csv").read_bytes()
    status, bills = await fin.upload("/console/api/admin/his/systems/his/bill-import?date=2024-05-20"
                                     "&filename=his-bill-sample.csv", sample)
    assert status == 200, bills
    assert bills["system"] == "his" and bills["bills"] and all(b["count"] > 0 for b in bills["bills"])
    xlsx = (ROOT / "configs/his/samples/his-bill-sample.xlsx").read_bytes()
    status, bills_x = await fin.upload("/console/api/admin/his/systems/his/bill-import?date=2024-05-20"
                                       "&filename=his-bill-sample.xlsx", xlsx,
                                       "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert status == 200 and bills_x["bills"] == bills["bills"], bills_x
    # a cashier may not import
    cashier = await cgw.login("cashier-li")
    status, problem = await cashier.upload(path, STATEMENT)
    assert status == 403 and problem["permission"] == "recon.handle"
    # the operation log keeps what was imported, not the file
    admin = await cgw.login("admin")
    logged = await oplog(admin, action="POST /admin/recon/bank-statements")
    assert [e["detail"]["status"] for e in logged] == [400, 200], logged
    body = logged[1]["detail"]["body"]
    assert body["bytes"] == len(STATEMENT) and body["filename"] == "statement.csv" and len(body["sha256"]) == 64
    assert "财付通" not in str(logged)
    imported = await oplog(admin, action="POST /admin/his/systems/{id}/bill-import")
    assert imported[0]["detail"]["body"]["filename"] == "his-bill-sample.xlsx" and imported[0]["target"] == "his"


async def test_write_back_exceptions_are_searched_and_refunded_from_the_console(cgw: ConsoleGateway) -> None:
    patient, charges = _patient_with_charges(cgw.his_sim)
    await _his_fault(cgw.his_sim, "write_back", "refuse")
    status, p = await cgw.gw.client.post("/v1/payments", his_pay_body(patient, [charges[0]]))
    assert status == 200 and p["status"] == "SUCCEEDED", p
    cashier = await cgw.login("cashier-li")
    pid = p["payment_id"]

    async def listed() -> dict | None:
        _, body = await cashier.get(f"/console/api/admin/his/writebacks?trade_no={pid}")
        return body["items"][0] if body["items"] and body["items"][0]["case_id"] else None

    row = await wait_for(listed, timeout=10)
    assert row["status"] == "REJECTED" and row["patient_name"] != patient.name  # masked
    for query in (f"charge_id={charges[0].charge_id}", f"visit_no={charges[0].visit_no}",
                  f"patient_id={patient.patient_id}", f"trade_no={p['out_trade_no']}"):
        status, body = await cashier.get(f"/console/api/admin/his/writebacks?{query}")
        assert status == 200 and [r["payment_id"] for r in body["items"]] == [pid], query
    status, applied = await cashier.post(f"/console/api/admin/his/writebacks/{pid}/refund", {"reason": "患者要求原路退款"})
    assert status == 202 and applied["case"]["status"] == "APPROVING", applied
    status, again = await cashier.post(f"/console/api/admin/his/writebacks/{pid}/refund", {"reason": "再次申请"})
    assert status == 202 and again["approval_id"] == applied["approval_id"]
    auditor = await cgw.login("audit-sun")
    status, problem = await auditor.post(f"/console/api/admin/his/writebacks/{pid}/refund", {"reason": "x"})
    assert status == 403 and problem["permission"] == "cases.handle"


async def test_merchants_and_entries_are_edited_with_credentials_write_only(cgw: ConsoleGateway) -> None:
    admin = await cgw.login("admin")
    status, merchants = await admin.get("/console/api/admin/merchants")
    m = merchants["items"][0]
    status, changed = await admin.call("PATCH", f"/console/api/admin/merchants/{m['id']}",
                                       {"name": "微信 门诊商户", "priority": 5, "enabled": False})
    assert status == 200 and (changed["name"], changed["priority"], changed["enabled"]) == ("微信 门诊商户", 5, False)
    assert changed["config_secrets"] and not any("key" in k.lower() or "secret" in k.lower() for k in changed["config"])
    status, problem = await admin.call("PATCH", f"/console/api/admin/merchants/{m['id']}", {"config": {"mchid": "1"}})
    assert status == 400 and problem["code"] == "VALIDATION_FAILED"  # a whole, valid configuration or nothing
    await admin.call("PATCH", f"/console/api/admin/merchants/{m['id']}", {"enabled": True})
    status, apps = await admin.get("/console/api/admin/apps")
    app_id = apps["items"][0]["app_id"]
    status, entry = await admin.post("/console/api/admin/entries", {
        "code": "kiosk-09", "name": "门诊楼自助机9", "app_id": app_id, "business_type": "outpatient",
        "channels": ["wechatpay"], "methods": ["code", "qr"]})
    assert status == 201, entry
    status, edited = await admin.call("PATCH", f"/console/api/admin/entries/{entry['id']}",
                                      {"name": "门诊楼自助机九", "methods": ["qr"], "enabled": False})
    assert status == 200 and edited["methods"] == ["qr"] and edited["enabled"] is False, edited
    fin = await cgw.login("fin-zhao")
    status, problem = await fin.call("PATCH", f"/console/api/admin/entries/{entry['id']}", {"name": "x"})
    assert status == 403 and problem["permission"] == "config.edit"
    changes = await oplog(admin, action="PATCH /admin/merchants/")
    assert changes[1]["detail"]["body"]["config"] == "<omitted>"  # credentials never reach the log
