"""Generated reconciliation history for the demo: past days with differences of every class.

The bills of a few past days are generated (``synth.generate_day``) and stored as if
fetched, with origin ``demo`` so that a later run never overwrites them with the
simulators' empty bills for those days; then each day is reconciled. Today's real
payments through the simulators are reconciled by the same engine
(``yinyi recon run --date <today>``).
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import polars as pl

from ..timeutil import CHINA, local_today
from .sources import store_batch
from .synth import generate_day

if TYPE_CHECKING:
    from ..core import Core

# (days before today of the generated centre day, seed): each covers that day ± 1
CENTRES = ((2, 11), (5, 23))


async def seed_history(core: Core, *, his_system: str, transactions: int = 400) -> dict[str, Any]:
    """Generate and reconcile the days around today-2 and today-5; return what was made."""
    merchants: dict[str, str] = {}
    for m in await core.directory.list_merchants():
        merchants.setdefault(m.channel, m.id)
    today = local_today()
    days: set[dt.date] = set()
    injected = 0
    batches: dict[tuple[dt.date, str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for tag, (offset, seed) in zip("AB", CENTRES, strict=True):
        centre = today - dt.timedelta(days=offset)
        sd = generate_day(transactions, seed, day=centre, window_days=1, per_class=2,
                          adjacent_rows=transactions // 2)
        injected += sum(1 for c in sd.truth.values() if c != "no_money")
        prefix = pl.lit(f"DM{tag}")
        platform = sd.platform.with_columns(txn_id=prefix + pl.col("txn_id"), order_ref=prefix + pl.col("order_ref"))
        his = sd.his.with_columns(txn_id=prefix + pl.col("txn_id"), his_serial=prefix + pl.col("his_serial"))
        channel = sd.channel.with_columns(txn_id=prefix + pl.col("txn_id"))
        channel_of = dict(zip(platform["txn_id"].to_list(), platform["channel"].to_list(), strict=True))
        for r in platform.iter_rows(named=True):
            batches[(r["day"], "platform", "ledger", "")].append({
                "txn_id": r["txn_id"], "kind": r["kind"], "amount": r["amount"], "status": r["status"],
                "his_serial": None, "channel_trade_no": None, "channel": r["channel"], "order_ref": r["order_ref"],
                "method": "code", "operator": "cashier-07", "entry": "window-3", "business_type": "outpatient"})
        for r in his.iter_rows(named=True):
            batches[(r["day"], "his", his_system, "outpatient_settlement")].append({
                "txn_id": r["txn_id"], "kind": r["kind"], "amount": r["amount"], "status": r["status"],
                "his_serial": r["his_serial"], "channel_trade_no": None, "channel": channel_of.get(r["txn_id"]),
                "order_ref": None, "method": None, "operator": "his", "entry": None})
        for r in channel.iter_rows(named=True):
            batches[(r["day"], "channel", merchants.get(r["channel"], r["channel"]), "")].append({
                "txn_id": r["txn_id"], "kind": r["kind"], "amount": r["amount"], "status": "SUCCEEDED",
                "his_serial": None, "channel_trade_no": r["channel_trade_no"], "channel": r["channel"],
                "order_ref": None, "method": None, "operator": None, "entry": None})
    for (day, source, source_id, bill_type), lines in sorted(batches.items()):
        if day >= today:
            continue
        days.add(day)
        noon = dt.datetime.combine(day, dt.time(12), CHINA).astimezone(dt.UTC)
        await store_batch(core, day=day, source=source, source_id=source_id, bill_type=bill_type, origin="demo",
                          actor="demo", lines=[{**x, "occurred_at": noon} for x in lines])
    runs = []
    for day in sorted(days):
        run = await core.recon.run(day, actor="demo", fetch=False)
        runs.append({"day": run["day"], "classes": run["summary"]["classes"]})
    return {"days": [d.isoformat() for d in sorted(days)], "injected_differences": injected, "runs": runs}
