"""The reconciliation service: one-click runs, differences and their handling, the calendar.

A **run** of a day (一键对账):

1. snapshots the platform bill (the ledger) of the day and of the window days around it;
2. fetches every business system's bills and every merchant's channel bill of the day
   (and of past window days not fetched yet), each with retries and a fetch-log row;
3. matches HIS × platform × channel (``t1``; ``t0`` is HIS × platform, run through the
   day) in one vectorised pass (``matching.py``);
4. records each difference in ``recon_diffs`` keyed by (day, transaction, kind): a
   re-run updates the open ones, marks those the sources now agree on as CLEARED, and
   never duplicates. A long entry (money without a HIS record) of a gateway payment
   opens a single-sided case, whose refund goes through approval.

Sources are never edited. A difference is resolved by a compensating action (refund
along the original route, write-back) or a mark (cash refund registered, 平账/调账,
ignored with a reason), each recorded with who, when and why.
"""
from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Callable
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from ..db.models import CaseEvent, ReconDiff, ReconFetch, ReconRun, SingleSidedCase, utcnow
from ..errors import InvalidState, ReconDiffNotFound, ValidationFailed
from ..timeutil import local_today
from . import sources
from .bank import ARRIVAL_CLASSES, BANK_KIND, match_arrivals
from .diffs import CLASSES, MARKS, diff_amount, diff_out, finish_run, start_run, upsert_diffs
from .frames import classify
from .insurance import InsuranceRecon
from .matching import DIFFERENCE_CLASSES

if TYPE_CHECKING:
    from ..core import Core

log = logging.getLogger("yinyi.recon")
_D = ReconDiff.__table__
Progress = Callable[[str, int, int], None]  # (step, done, total)


class ReconService:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.insurance = InsuranceRecon(core)

    # --- runs ------------------------------------------------------------------------------------
    async def run(self, day: dt.date, *, actor: str, mode: str = "t1", window_days: int | None = None,
                  progress: Progress | None = None, fetch: bool = True, run_id: str | None = None) -> dict[str, Any]:
        """Fetch every source of ``day`` (unless ``fetch`` is false: match the bills already stored),
        match, record differences; idempotent."""
        if mode not in ("t0", "t1"):
            raise ValidationFailed("mode is t0 or t1")
        if day > local_today():
            raise ValidationFailed("the day has not begun yet")
        core = self.core
        k = core.settings.recon_window_days if window_days is None else window_days
        run_id = run_id or "R" + secrets.token_hex(8)
        await start_run(core, run_id, day, mode, k, actor)
        step = progress or (lambda *_: None)
        try:
            days = [day + dt.timedelta(days=i) for i in range(-k, k + 1) if day + dt.timedelta(days=i) <= local_today()]
            fetches = await self._fetch_all(day, days, mode, actor, step) if fetch else []
            step("match", 0, 1)
            wanted = ("platform", "his") if mode == "t0" else ("platform", "his", "channel")
            lines = await sources.load_lines(core, days, wanted)
            stand_ins = await self._stand_ins(lines)
            rows, counts = classify({**lines, "his": [*lines["his"], *stand_ins]}, day=day, window_days=k,
                                    two_way=mode == "t0")
            step("match", 1, 1)
            step("record", 0, 1)
            recorded = await self._record(day, run_id, rows)
            arrivals = await self._arrivals(day, run_id, lines.get("channel", [])) if mode == "t1" else None
            step("record", 1, 1)
            totals = {src: {"count": sum(1 for x in lines[src] if x["day"] == day),
                            "paid": sum(x["amount"] for x in lines[src] if x["day"] == day and x["kind"] == "payment"
                                        and x["status"] in ("SUCCEEDED", "normal")),
                            "refunded": sum(x["amount"] for x in lines[src] if x["day"] == day
                                            and x["kind"] == "refund" and x["status"] in ("SUCCEEDED", "normal"))}
                      for src in wanted}
            failed = [f.as_dict() for f in fetches if f.status == "FAILED"]
            summary = {"classes": counts, "totals": totals, "fetches": [f.as_dict() for f in fetches],
                       "complete": not failed, "arrivals": arrivals,
                       "without_business_system": sum(1 for x in stand_ins if x["kind"] == "payment"), **recorded}
        except Exception as exc:
            await finish_run(core, run_id, exc=exc)
            raise
        await finish_run(core, run_id, summary=summary)
        await core.ledger.audit(actor, "recon.run", day.isoformat(), {"run_id": run_id, "mode": mode,
                                                                      "classes": counts})
        await self._notify(run_id, day, mode, summary)
        return await self.run_out(run_id)

    async def _stand_ins(self, lines: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
        """Payments no reconciling business system owns (parking, canteen … without a system) have no
        HIS side: they are matched ledger × channel, with stand-in HIS lines copied from the ledger
        (in memory only, never stored or reported)."""
        systems = [s for s in await self.core.his.enabled_systems() if s.options.reconcile]
        owned = {bt for s in systems for bt in s.business_types}
        if "*" in owned:
            return []
        free = {x["txn_id"] for x in lines["platform"] if x["kind"] == "payment" and not x.get("order_ref")
                and x.get("business_type") not in owned}
        return [{**x, "his_serial": f"-{x['txn_id']}", "status": "normal" if x["status"] == "SUCCEEDED" else "cancelled"}
                for x in lines["platform"]
                if x["txn_id"] in free or (x["kind"] == "refund" and x.get("order_ref") in free)]

    async def _notify(self, run_id: str, day: dt.date, mode: str, summary: dict[str, Any]) -> None:
        """Tell the people responsible of new differences and of bills that could not be fetched."""
        new = summary["new_differences"] + (summary.get("arrivals") or {}).get("new_differences", 0)
        base = {"run_id": run_id, "day": day.isoformat(), "mode": mode}
        if new:
            await self.core.notices.emit("recon.differences", audience="staff", subject_id=run_id, payload={
                **base, "new_differences": new, "classes": {k: v for k, v in summary["classes"].items()
                                                            if k in DIFFERENCE_CLASSES}})
        if not summary["complete"]:
            await self.core.notices.emit("recon.incomplete", audience="staff", subject_id=run_id, payload={
                **base, "failed": [f"{f['source']}:{f['source_id']}:{f['bill_type']}" for f in summary["fetches"]
                                   if f["status"] == "FAILED"]})

    async def _fetch_all(self, day: dt.date, days: list[dt.date], mode: str, actor: str,
                         step: Progress) -> list[sources.FetchOutcome]:
        core = self.core
        fetched, kept = await self._batches(days)  # demo or imported batches are never overwritten by a fetch
        plan: list[tuple[str, Any]] = [("platform", d) for d in days if ("platform", "ledger", "", d) not in kept]
        for info in await core.his.enabled_systems():
            if not info.options.reconcile:
                continue
            for bt in info.options.recon_bill_types:
                for d in days:
                    if (d == day or ("his", info.id, bt, d) not in fetched) and ("his", info.id, bt, d) not in kept:
                        plan.append(("his", (info.id, bt, d)))
        if mode == "t1":
            for m in await core.directory.list_merchants():
                if not m.enabled or m.channel not in core.registry.channels:
                    continue
                for d in days:
                    if (d == day or ("channel", m.id, "", d) not in fetched) and ("channel", m.id, "", d) not in kept:
                        plan.append(("channel", (m.id, m.channel, d)))
        out = []
        for i, (kind, arg) in enumerate(plan):
            step("fetch", i, len(plan))
            if kind == "platform":
                out.append(await sources.snapshot_platform(core, arg, actor))
            elif kind == "his":
                out.append(await sources.fetch_his(core, arg[0], arg[2], arg[1], actor))
            else:
                out.append(await sources.fetch_channel(core, arg[0], arg[1], arg[2], actor))
        step("fetch", len(plan), len(plan))
        return [o for o in out if o.status != "SKIPPED"]

    async def _batches(self, days: list[dt.date]) -> tuple[set[tuple[str, str, str, dt.date]],
                                                            set[tuple[str, str, str, dt.date]]]:
        """The batches of ``days`` loaded successfully, and those whose latest load was an import or
        demo data rather than a fetch."""
        F = ReconFetch
        async with self.core.rsm() as s:
            rows = (await s.execute(select(F.source, F.source_id, F.bill_type, F.day, F.origin)
                                    .where(F.day.in_(days), F.status == "OK").order_by(F.id))).all()
        latest: dict[tuple[str, str, str, dt.date], str] = {}
        for r in rows:
            latest[(r.source, r.source_id, r.bill_type, r.day)] = r.origin
        return set(latest), {k for k, origin in latest.items() if origin in ("demo", "import")}

    async def _record(self, day: dt.date, run_id: str, rows: list[dict[str, Any]]) -> dict[str, int]:
        """Record the run's differences; a difference with a single-sided case follows the case."""
        cols = ("cls", "his_amount", "platform_amount", "channel_amount", "other_day", "channel", "his_serial",
                "channel_trade_no", "order_ref", "platform_status", "his_status")
        found = [{"txn_key": r["txn_key"], "kind": r["kind"], **{c: r.get(c) for c in cols},
                  **{f: bool(r.get(f)) for f in ("in_his", "in_platform", "in_channel")}} for r in rows]
        # The refund that settled a case is its compensating entry, not a new difference.
        refunded_by_case = await self._refunds_of_cases([f["order_ref"] for f in found if f["kind"] == "refund"])
        for f in found:
            case = refunded_by_case.get(f["txn_key"]) if f["kind"] == "refund" else None
            if case is not None:
                f["initial"] = {"status": "RESOLVED", "resolution": "refunded", "case_id": case, "resolved_by": "system",
                                "note": "单边账原路退款 (compensating refund of a single-sided case)"}
        # A difference is resolved when its single-sided case is, the same way.
        async with self.core.rsm() as s:
            linked = list((await s.execute(select(ReconDiff.id, ReconDiff.case_id).where(
                ReconDiff.day == day, ReconDiff.status == "OPEN", ReconDiff.case_id.is_not(None)))).all())
        settled = await self._settled_cases([x.case_id for x in linked])
        closed = [(x.id, settled[x.case_id]) for x in linked if x.case_id in settled]
        now = utcnow()

        def close(conn: Connection) -> None:
            for diff_id, (resolution, by) in closed:
                conn.execute(update(_D).where(_D.c.id == diff_id, _D.c.status == "OPEN").values(
                    status="RESOLVED", resolution=resolution, resolved_by=by, last_run_id=run_id, updated_at=now))

        recorded = await upsert_diffs(self.core, day, run_id, ("payment", "refund"), found,
                                      scope=lambda d: not d.case_id, extra=close)
        return {**recorded, "resolved_by_cases": len(closed), "cases_opened": await self._open_cases(day)}

    async def _arrivals(self, day: dt.date, run_id: str, channel_lines: list[dict[str, Any]]) -> dict[str, Any] | None:
        """Four-way: the day's channel settlements against the bank's credits (when a statement exists)."""
        k = self.core.settings.recon_arrival_days
        later = [day + dt.timedelta(days=i) for i in range(1, 3 * k + 1)]
        bank = (await sources.load_lines(self.core, later, ("bank",)))["bank"]
        if not bank:
            return None
        items = match_arrivals(channel_lines, bank, day, k)
        found = [{"txn_key": f"settle:{x['channel']}", "kind": BANK_KIND, "cls": x["status"], "channel": x["channel"],
                  "channel_amount": x["expected"], "platform_amount": x["arrived"],  # platform_amount: the credit
                  "in_channel": True, "in_platform": x["arrived"] is not None, "other_day": x["bank_day"],
                  "channel_trade_no": x["serial"]}
                 for x in items if x["status"] in ARRIVAL_CLASSES]
        recorded = await upsert_diffs(self.core, day, run_id, (BANK_KIND,), found)
        return {"items": [{**x, "bank_day": x["bank_day"].isoformat() if x["bank_day"] else None} for x in items],
                **recorded}

    async def _settled_cases(self, case_ids: list[str]) -> dict[str, tuple[str, str]]:
        if not case_ids:
            return {}
        async with self.core.rsm() as s:
            rows = (await s.execute(select(SingleSidedCase.id, SingleSidedCase.resolution, SingleSidedCase.resolved_by)
                                    .where(SingleSidedCase.id.in_(case_ids),
                                           SingleSidedCase.status == "RESOLVED"))).all()
        return {r.id: (r.resolution or "manual", r.resolved_by or "system") for r in rows}

    async def _refunds_of_cases(self, payment_ids: list[str]) -> dict[str, str]:
        """Refund id → case id, for refunds made by single-sided cases of these payments."""
        ids = [p for p in payment_ids if p]
        if not ids:
            return {}
        async with self.core.rsm() as s:
            rows = (await s.execute(select(SingleSidedCase.id, SingleSidedCase.refund_id)
                                    .where(SingleSidedCase.payment_id.in_(ids),
                                           SingleSidedCase.refund_id.is_not(None)))).all()
        return {r.refund_id: r.id for r in rows}

    async def _open_cases(self, day: dt.date) -> int:
        """A long entry of a gateway payment is a single-sided case: refund after approval."""
        core = self.core
        async with core.rsm() as s:
            longs = list((await s.execute(select(ReconDiff).where(
                ReconDiff.day == day, ReconDiff.cls.in_(("long", "duplicate")), ReconDiff.kind == "payment",
                ReconDiff.status == "OPEN", ReconDiff.case_id.is_(None)))).scalars())
        opened = 0
        for d in longs:
            payment = await core.ledger.get_payment(d.txn_key)
            if payment is None:
                continue
            system = await self._system_for(payment)
            if system is None:
                continue
            detail = f"对账{CLASSES[d.cls][0]}: {day.isoformat()} 渠道有款, HIS无记录"
            case = await core.cases.open(payment, SimpleNamespace(id=None, system_id=system),
                                         reason="recon_" + d.cls, detail=detail)
            case_id = case.id if case is not None else await self._case_of(payment.id)
            if case_id:
                await core.writer.run(lambda c, i=d.id, cid=case_id: c.execute(
                    update(_D).where(_D.c.id == i).values(case_id=cid, updated_at=utcnow())))
                opened += case is not None
        return opened

    async def _case_of(self, payment_id: str) -> str | None:
        case = await self.core.cases.for_payment(payment_id)
        return case.id if case is not None else None

    async def _system_for(self, payment: Any) -> str | None:
        """The business system a long entry's case belongs to: the one the payment named, else the one
        owning its business type, else the first configured."""
        if payment.his_system:
            return str(payment.his_system)
        owner = await self.core.his.for_business_type(payment.business_type)
        if owner is not None:
            return owner.id
        systems = await self.core.his.enabled_systems()
        return systems[0].id if systems else None

    # --- reading -------------------------------------------------------------------------------------
    async def run_out(self, run_id: str) -> dict[str, Any]:
        async with self.core.rsm() as s:
            r = await s.get(ReconRun, run_id)
        assert r is not None
        return {"id": r.id, "day": r.day.isoformat(), "mode": r.mode, "status": r.status,
                "window_days": r.window_days, "summary": r.summary, "error": r.error, "actor": r.actor,
                "started_at": r.started_at.isoformat(),
                "finished_at": r.finished_at.isoformat() if r.finished_at else None}

    async def runs(self, day: dt.date | None = None, limit: int = 50) -> list[dict[str, Any]]:
        q = select(ReconRun.id).order_by(ReconRun.started_at.desc()).limit(limit)
        if day is not None:
            q = q.where(ReconRun.day == day)
        async with self.core.rsm() as s:
            ids = list((await s.execute(q)).scalars())
        return [await self.run_out(i) for i in ids]

    async def diffs(self, *, day: dt.date | None = None, cls: list[str] | None = None,
                    status: list[str] | None = None, channel: str | None = None, limit: int = 200,
                    offset: int = 0) -> dict[str, Any]:
        q = select(ReconDiff)
        if day is not None:
            q = q.where(ReconDiff.day == day)
        if cls:
            q = q.where(ReconDiff.cls.in_(cls))
        if status:
            q = q.where(ReconDiff.status.in_(status))
        if channel:
            q = q.where(ReconDiff.channel == channel)
        async with self.core.rsm() as s:
            total = (await s.execute(select(func.count()).select_from(q.subquery()))).scalar_one()
            items = list((await s.execute(q.order_by(ReconDiff.day.desc(), ReconDiff.cls, ReconDiff.txn_key)
                                          .limit(limit).offset(offset))).scalars())
        k = self.core.settings.recon_window_days
        return {"total": total, "items": [diff_out(d, k) for d in items]}

    async def diff(self, diff_id: str) -> dict[str, Any]:
        d = await self._diff_row(diff_id)
        async with self.core.rsm() as s:
            events = list((await s.execute(select(CaseEvent).where(CaseEvent.case_id == diff_id)
                                           .order_by(CaseEvent.id))).scalars())
        out = diff_out(d, self.core.settings.recon_window_days)
        out["history"] = [{"action": e.action, "actor": e.actor, "detail": e.detail,
                           "at": e.created_at.isoformat()} for e in events]
        if d.case_id:
            out["case"] = await self.core.cases.detail(d.case_id)
        return out

    async def _diff_row(self, diff_id: str) -> ReconDiff:
        async with self.core.rsm() as s:
            d = await s.get(ReconDiff, diff_id)
        if d is None:
            raise ReconDiffNotFound(f"difference {diff_id} not found")
        return d

    async def mark(self, diff_id: str, *, action: str, note: str | None, actor: str) -> dict[str, Any]:
        """Close a difference with a mark (平账/调账, cash refund registered, recorded by hand, ignored)."""
        if action not in MARKS:
            raise ValidationFailed(f"action must be one of {sorted(MARKS)}", allowed=sorted(MARKS))
        if not (note or "").strip():
            raise ValidationFailed("a note (the reason) is required")
        d = await self._diff_row(diff_id)
        if d.status != "OPEN":
            raise InvalidState("only an open difference can be marked", current_status=d.status)
        if d.case_id:
            case = await self.core.cases.get_row(d.case_id)
            if case.status != "OPEN":
                raise InvalidState("its single-sided case is being handled; finish or withdraw that first",
                                   case_status=case.status)
        now = utcnow()

        def tx(conn: Connection) -> bool:
            ok = conn.execute(update(_D).where(_D.c.id == diff_id, _D.c.status == "OPEN").values(
                status="RESOLVED", resolution=action, note=note, resolved_by=actor, updated_at=now)).rowcount == 1
            if ok:
                conn.execute(insert(CaseEvent).values(case_id=diff_id, action=f"marked_{action}", actor=actor,
                                                      detail={"note": note}, created_at=now))
            return ok

        if not await self.core.writer.run(tx):
            raise InvalidState("the difference changed meanwhile; reload it")
        if d.case_id:
            await self.core.cases.resolve_manually(d.case_id, actor=actor, note=f"对账差异{diff_id}: {note}")
        await self.core.ledger.audit(actor, f"recon.diff.{action}", diff_id,
                                     {"note": note, "amount": diff_amount(diff_out(d)), "class": d.cls})
        return await self.diff(diff_id)

    async def fetch_log(self, day: dt.date | None, limit: int = 200) -> list[dict[str, Any]]:
        q = select(ReconFetch).order_by(ReconFetch.id.desc()).limit(limit)
        if day is not None:
            q = q.where(ReconFetch.day == day)
        async with self.core.rsm() as s:
            rows = list((await s.execute(q)).scalars())
        return [{"id": f.id, "day": f.day.isoformat(), "source": f.source, "source_id": f.source_id,
                 "bill_type": f.bill_type, "origin": f.origin, "status": f.status, "attempts": f.attempts,
                 "line_count": f.line_count, "total_paid": f.total_paid, "total_refunded": f.total_refunded,
                 "error": f.error, "actor": f.actor, "at": f.created_at.isoformat()} for f in rows]

    async def calendar(self, month: dt.date) -> dict[str, Any]:
        """对账日历: each day of the month with its latest run's status and open differences per channel."""
        first = month.replace(day=1)
        nxt = (first + dt.timedelta(days=32)).replace(day=1)
        async with self.core.rsm() as s:
            runs = list((await s.execute(select(ReconRun).where(ReconRun.day >= first, ReconRun.day < nxt)
                                         .order_by(ReconRun.started_at))).scalars())
            open_rows = (await s.execute(select(ReconDiff.day, ReconDiff.channel, ReconDiff.status, func.count())
                                         .where(ReconDiff.day >= first, ReconDiff.day < nxt)
                                         .group_by(ReconDiff.day, ReconDiff.channel, ReconDiff.status))).all()
        latest: dict[dt.date, ReconRun] = {}
        insurance: dict[dt.date, ReconRun] = {}
        for r in runs:
            if r.mode == "ins":
                insurance[r.day] = r
            elif r.mode == "t1" or r.day not in latest or latest[r.day].mode != "t1":
                latest[r.day] = r
        per: dict[dt.date, dict[str, dict[str, int]]] = {}
        for day, channel, status, n in open_rows:
            per.setdefault(day, {}).setdefault(channel or "-", {}).setdefault(status, 0)
            per[day][channel or "-"][status] += n
        days = []
        d = first
        while d < nxt:
            r = latest.get(d)
            channels = per.get(d, {})
            open_n = sum(v.get("OPEN", 0) for v in channels.values())
            if r is None:
                state = "not_run"
            elif r.status != "DONE":
                state = "failed" if r.status == "FAILED" else "running"
            elif not r.summary.get("complete", True):
                state = "incomplete"
            else:
                state = "differences" if open_n else "balanced"
            days.append({"day": d.isoformat(), "state": state, "state_zh": DAY_STATE_ZH[state],
                         "run_id": r.id if r else None, "mode": r.mode if r else None, "open_differences": open_n,
                         "channels": {c: v.get("OPEN", 0) for c, v in sorted(channels.items())},
                         "insurance": _insurance_state(insurance.get(d))})
            d += dt.timedelta(days=1)
        return {"month": first.strftime("%Y-%m"), "days": days}


def _insurance_state(r: ReconRun | None) -> dict[str, Any] | None:
    if r is None:
        return None
    if r.status != "DONE":
        return {"run_id": r.id, "state": r.status.lower()}
    s = r.summary
    return {"run_id": r.id, "state": "balanced" if s.get("balanced") else "differences",
            "end": s.get("end"), "differences": s.get("differences", 0)}


DAY_STATE_ZH = {"not_run": "未对账", "running": "对账中", "failed": "对账失败", "incomplete": "数据不全",
                "differences": "有差异", "balanced": "已平"}
