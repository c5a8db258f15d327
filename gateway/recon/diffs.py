"""Differences (对账差异) and runs as records: labels, the answer shape, and the one place that
writes them.

A difference is keyed by (day, transaction, kind); kinds are ``payment``/``refund`` (the
three-way match), ``ins`` (insurance details) and ``bank`` (fund arrival). Runs of every
kind start and finish through :func:`start_run` / :func:`finish_run`.
"""
from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from ..db.models import ReconDiff, ReconRun, utcnow
from ..timeutil import local_today
from .bank import ARRIVAL_CLASSES, BANK_KIND
from .matching import CLASSES as MATCH_CLASSES

if TYPE_CHECKING:
    from ..core import Core

INSURANCE_CLASSES: dict[str, tuple[str, str]] = {
    "ins_amount": ("医保金额不符", "Insurance amounts differ"),
    "ins_hospital_only": ("医院有中心无", "Hospital only (the centre has no such settlement)"),
    "ins_centre_only": ("中心有医院无", "Centre only (the hospital has no such settlement)"),
}
INS_KIND = "ins"

_D = ReconDiff.__table__
_R = ReconRun.__table__
CLASSES = {**MATCH_CLASSES, **INSURANCE_CLASSES, **ARRIVAL_CLASSES}

# Marks that close a difference without moving money here; refunds go through cases.
MARKS = {
    "balanced": ("平账/调账", "Balanced (adjusted)"),
    "cash_refund": ("已登记现金退款", "Cash refund registered"),
    "written_back": ("已补录HIS", "Recorded in the HIS by hand"),
    "ignored": ("忽略", "Ignored"),
}
RESOLUTIONS_ZH = {**{k: v[0] for k, v in MARKS.items()}, "refunded": "已原路退款", "manual": "人工处理",
                  "reversed": "已冲正"}
DIFF_STATUS_ZH = {"OPEN": "待处理", "RESOLVED": "已处理", "CLEARED": "已自动消除"}


def diff_out(d: Any, window_days: int = 1) -> dict[str, Any]:
    """``confirmed``: the matching window has passed (ageing), so the difference can no longer
    resolve itself by a neighbouring day's bill (待确认 until then)."""
    zh, en = CLASSES.get(d.cls, (d.cls, d.cls))
    confirmed = (local_today() - d.day).days > window_days
    bank = d.kind == BANK_KIND  # a settlement's arrival: the credit is kept in platform_amount
    return {"id": d.id, "day": d.day.isoformat(), "txn_id": d.txn_key, "kind": d.kind, "class": d.cls,
            "bank_amount": d.platform_amount if bank else None,
            "class_zh": zh, "class_en": en, "his_amount": d.his_amount,
            "platform_amount": None if bank else d.platform_amount,
            "channel_amount": d.channel_amount, "in_his": d.in_his, "in_platform": d.in_platform and not bank,
            "in_channel": d.in_channel, "other_day": d.other_day.isoformat() if d.other_day else None,
            "channel": d.channel, "his_serial": d.his_serial, "channel_trade_no": d.channel_trade_no,
            "order_ref": d.order_ref, "platform_status": d.platform_status, "his_status": d.his_status,
            "status": d.status, "status_zh": DIFF_STATUS_ZH.get(d.status, d.status), "resolution": d.resolution,
            "confirmed": confirmed, "confirmed_zh": "已确认差异" if confirmed else "待确认(窗口期内)",
            "resolution_zh": RESOLUTIONS_ZH.get(d.resolution or "", d.resolution), "note": d.note,
            "case_id": d.case_id, "resolved_by": d.resolved_by, "first_run_id": d.first_run_id,
            "last_run_id": d.last_run_id, "created_at": d.created_at.isoformat(),
            "updated_at": d.updated_at.isoformat()}


def diff_amount(row: dict[str, Any]) -> int | None:
    for key in ("channel_amount", "platform_amount", "his_amount"):
        if row.get(key) is not None:
            return int(row[key])
    return None


NEW_DIFF_DEFAULTS: dict[str, Any] = {
    "status": "OPEN", "resolution": None, "note": None, "case_id": None, "resolved_by": None, "his_amount": None,
    "platform_amount": None, "channel_amount": None, "in_his": False, "in_platform": False, "in_channel": False,
    "other_day": None, "channel": None, "his_serial": None, "channel_trade_no": None, "order_ref": None,
    "platform_status": None, "his_status": None}


async def upsert_diffs(core: Core, day: dt.date, run_id: str, kinds: tuple[str, ...], found: list[dict[str, Any]],
                       scope: Callable[[Any], bool] = lambda d: True,
                       extra: Callable[[Connection], None] | None = None) -> dict[str, int]:
    """Record the differences of ``kinds`` found for a day, keyed by (``txn_key``, ``kind``): new ones
    OPEN (or as their ``initial`` values say), open or cleared ones updated, open ones in ``scope``
    that are no longer found CLEARED. ``found`` items carry ``txn_key``, ``kind``, ``cls`` and other
    ``recon_diffs`` columns; ``extra`` runs in the same transaction."""
    now = utcnow()
    async with core.rsm() as s:
        existing = {(d.txn_key, d.kind): d for d in (await s.execute(select(ReconDiff).where(
            ReconDiff.day == day, ReconDiff.kind.in_(kinds)))).scalars()}
    new, changed = [], []
    for f in found:
        values = {k: v for k, v in f.items() if k not in ("txn_key", "kind", "initial")}
        values.update(last_run_id=run_id, updated_at=now)
        old = existing.get((f["txn_key"], f["kind"]))
        if old is None:
            new.append({**NEW_DIFF_DEFAULTS, "id": "D" + secrets.token_hex(8), "day": day, "txn_key": f["txn_key"],
                        "kind": f["kind"], "first_run_id": run_id, "created_at": now, **values,
                        **(f.get("initial") or {})})
        elif old.status in ("OPEN", "CLEARED"):
            changed.append({"id": old.id, "status": "OPEN", **values})
    keys = {(f["txn_key"], f["kind"]) for f in found}
    cleared = [d.id for k, d in existing.items() if k not in keys and d.status == "OPEN" and scope(d)]

    def tx(conn: Connection) -> None:
        if new:
            conn.execute(insert(_D), new)
        for v in changed:
            conn.execute(update(_D).where(_D.c.id == v["id"]).values(**{k: x for k, x in v.items() if k != "id"}))
        if cleared:
            conn.execute(update(_D).where(_D.c.id.in_(cleared), _D.c.status == "OPEN")
                         .values(status="CLEARED", last_run_id=run_id, updated_at=now))
        if extra is not None:
            extra(conn)

    await core.writer.run(tx)
    return {"new_differences": len(new), "updated_differences": len(changed), "cleared_differences": len(cleared)}


async def start_run(core: Core, run_id: str, day: dt.date, mode: str, window_days: int, actor: str) -> None:
    await core.writer.run(lambda c: c.execute(insert(_R).values(
        id=run_id, day=day, mode=mode, status="RUNNING", window_days=window_days, summary={}, error=None,
        actor=actor, started_at=utcnow(), finished_at=None)))


async def finish_run(core: Core, run_id: str, *, summary: dict[str, Any] | None = None,
                     exc: BaseException | None = None) -> None:
    """DONE with its summary, or FAILED with the error (the run row is the fetch's visible log)."""
    values: dict[str, Any] = {"finished_at": utcnow()}
    if exc is not None:
        values.update(status="FAILED", error=f"{type(exc).__name__}: {exc}"[:256])
    else:
        values.update(status="DONE", summary=summary or {})
    await core.writer.run(lambda c: c.execute(update(_R).where(_R.c.id == run_id).values(**values)))


