"""Insurance reconciliation end to end: 3201 totals per insutype + clr_type + clearing
institution against the simulated centre, 3202 details where they differ, and the
reversal (冲正) of a settlement only the centre has, after approval."""
from __future__ import annotations

from typing import Any

from gateway.timeutil import local_today
from insurance.nhsa.simulator import NhsaSimHandle
from tests.conftest import Gateway
from tests.gateway.test_insurance_flow import (identify, igw, nhsa_sim, outpatient_visit, settle_body,  # noqa: F401
                                               sim_call, small_accounts)


async def _settle(g: Gateway) -> dict[str, Any]:
    person = await identify(g)
    visit, total = await outpatient_visit(g, person)
    status, s = await g.client.post("/v1/insurance/settlements", settle_body(person, visit, total))
    assert status == 200 and s["status"] == "COMPLETED", s
    return s


async def test_totals_then_details_find_each_settlement_that_differs(igw: Gateway, nhsa_sim: NhsaSimHandle) -> None:
    await small_accounts(nhsa_sim)
    today = local_today().isoformat()
    first = await _settle(igw)
    status, run = await igw.admin.post("/v1/admin/recon/insurance/runs", {"begin": today})
    assert status == 201, run
    assert run["mode"] == "ins" and run["summary"]["balanced"] is True, run
    assert run["summary"]["groups"][0]["details"] is None  # balanced totals need no detail file

    lost = await _settle(igw)
    centre = nhsa_sim.centre
    await sim_call(nhsa_sim, "DELETE", f"/settlements/{lost['setl_id']}")  # the centre lost it: hospital only
    only = (await sim_call(nhsa_sim, "POST", f"/settlements/{first['setl_id']}/copy"))["setl_id"]  # made elsewhere
    status, run = await igw.admin.post("/v1/admin/recon/insurance/runs", {"begin": today})
    assert status == 201, run
    s = run["summary"]
    assert s["balanced"] is False and s["differences"] == 2, s
    group = next(g for g in s["groups"] if not g["balanced"])
    assert group["details"]["unbalanced"] == 2 and group["description"]
    _, listed = await igw.admin.get(f"/v1/admin/recon/diffs?date={today}&class=ins_hospital_only,ins_centre_only")
    by_class = {d["class"]: d for d in listed["items"]}
    assert by_class["ins_hospital_only"]["txn_id"] == lost["setl_id"]
    assert by_class["ins_hospital_only"]["class_zh"] == "医院有中心无"
    centre_only = by_class["ins_centre_only"]
    assert centre_only["txn_id"] == only and centre_only["channel_amount"] == first["amounts"]["total"]

    # Running again records nothing twice.
    _, again = await igw.admin.post("/v1/admin/recon/insurance/runs", {"begin": today})
    assert again["summary"]["new_differences"] == 0 and again["summary"]["updated_differences"] == 2

    # Only a centre-only settlement can be reversed here, and only after approval.
    status, problem = await igw.admin.post(f"/v1/admin/recon/diffs/{by_class['ins_hospital_only']['id']}/reverse", {})
    assert status == 409 and problem["code"] == "INVALID_STATE"
    status, applied = await igw.admin.post(f"/v1/admin/recon/diffs/{centre_only['id']}/reverse",
                                           {"reason": "中心单边, 医院无此结算"}, operator="fin-li")
    assert status == 202, applied
    assert centre.settlements[only].reversed_by is None
    status, decided = await igw.admin.post(f"/v1/admin/approvals/{applied['approval_id']}/approve",
                                           {"comment": "同意冲正"}, operator="fin-zhao", roles="finance")
    assert status == 200, decided
    assert centre.settlements[only].reversed_by is not None
    _, done = await igw.admin.get(f"/v1/admin/recon/diffs/{centre_only['id']}")
    assert done["status"] == "RESOLVED" and done["resolution"] == "reversed"
    assert [h["action"] for h in done["history"]] == ["reversal_requested", "reversed"]

    _, cal = await igw.admin.get(f"/v1/admin/recon/calendar?month={today[:7]}")
    day = next(d for d in cal["days"] if d["day"] == today)
    assert day["insurance"]["state"] == "differences"

    # The insurance report keeps the wallet apart, by clearing type and insurance type.
    status, rep = await igw.admin.get(f"/v1/admin/reports/insurance?begin={today}")
    assert status == 200, rep
    assert [c["zh"] for c in rep["columns"]][3:11] == ["结算笔数", "已冲正", "医疗费总额", "基金支付", "个人账户",
                                                      "共济账户", "医保钱包", "现金支付"]
    t = rep["totals"]
    a1, a2 = first["amounts"], lost["amounts"]
    assert t["count"] == 2 and t["total"] == a1["total"] + a2["total"]
    assert t["wallet"] == (a1["wallet"] or 0) + (a2["wallet"] or 0) and t["cash"] == a1["cash"] + a2["cash"]
    assert t["differences"] == 2

    # A payment reconciliation of the same day leaves the insurance differences alone.
    status, t1 = await igw.admin.post("/v1/admin/recon/runs", {"date": today})
    assert status == 201, t1
    _, still = await igw.admin.get(f"/v1/admin/recon/diffs/{by_class['ins_hospital_only']['id']}")
    assert still["status"] == "OPEN"
