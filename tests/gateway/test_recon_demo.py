"""The demo's generated reconciliation history: every injected difference is found on its
day, none is invented, and a later run with fetching never overwrites the generated bills."""
from __future__ import annotations

import datetime as dt

from gateway.recon.demo_data import CENTRES, seed_history
from gateway.recon.synth import generate_day
from gateway.timeutil import local_today
from tests.conftest import Gateway
from tests.gateway.test_his_flow import hgw, his_sim  # noqa: F401  (a HIS owning outpatient payments)


async def test_generated_days_show_each_class_and_exactly_the_injected_differences(hgw: Gateway) -> None:
    gw = hgw
    made = await seed_history(gw.core, his_system="his", transactions=400)
    today = local_today()
    assert len(made["days"]) == 6
    seen: set[str] = set()
    for tag, (offset, seed) in zip("AB", CENTRES, strict=True):
        centre = today - dt.timedelta(days=offset)
        truth = generate_day(400, seed, day=centre, window_days=1, per_class=2, adjacent_rows=200).truth
        expected = {(f"DM{tag}{k[0]}", k[1]): cls for k, cls in truth.items() if cls != "no_money"}
        _, listed = await gw.admin.get(f"/v1/admin/recon/diffs?date={centre.isoformat()}&limit=1000")
        found = {(d["txn_id"], d["kind"]): d["class"] for d in listed["items"]}
        assert found == expected
        assert all(d["confirmed"] for d in listed["items"])  # two and five days ago: past the window
        seen |= set(found.values())
    assert {"long", "short", "amount_mismatch", "status_mismatch", "duplicate", "cross_day"} <= seen

    # A run that fetches keeps the generated bills (origin demo) and finds the same.
    centre = today - dt.timedelta(days=CENTRES[0][0])
    _, before = await gw.admin.get(f"/v1/admin/recon/diffs?date={centre.isoformat()}&limit=1000")
    status, run = await gw.admin.post("/v1/admin/recon/runs", {"date": centre.isoformat()})
    assert status == 201 and run["summary"]["new_differences"] == 0 and run["summary"]["cleared_differences"] == 0
    _, after = await gw.admin.get(f"/v1/admin/recon/diffs?date={centre.isoformat()}&limit=1000")
    assert after["total"] == before["total"]
    _, cal = await gw.admin.get(f"/v1/admin/recon/calendar?month={centre:%Y-%m}")
    day = next(d for d in cal["days"] if d["day"] == centre.isoformat())
    assert day["state"] == "differences" and day["open_differences"] == before["total"]
