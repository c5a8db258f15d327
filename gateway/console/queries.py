"""Read models for the console: payment search and detail, the overview, the scheduled jobs."""
from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, literal_column, or_, select

from ..db.models import Approval, HisWriteback, Payment, ReconDiff, Refund, SingleSidedCase
from ..schemas import EventOut, payment_out, refund_out
from ..timeutil import CHINA, local_day_bounds, local_today

if TYPE_CHECKING:
    from ..core import Core

PAID = ("SUCCEEDED", "PARTIALLY_REFUNDED", "REFUNDED")
OPEN_CASE_STATES = ("OPEN", "APPROVING", "REFUNDING")


def payment_row(p: Any) -> dict[str, Any]:
    return {**payment_out(p).model_dump(mode="json"), "app_id": p.app_id, "collection_mode": p.collection_mode}


async def search_payments(core: Core, *, begin: dt.date | None = None, end: dt.date | None = None,
                          status: list[str] | None = None, channel: str | None = None, method: str | None = None,
                          entry: str | None = None, campus: str | None = None, out_trade_no: str | None = None,
                          channel_trade_no: str | None = None, patient: str | None = None, limit: int = 50,
                          offset: int = 0) -> dict[str, Any]:
    """交易查询: newest first. ``begin``/``end`` are business days (China) of creation, both included;
    ``out_trade_no`` also matches the gateway's payment id; ``patient`` is a patient id or name, found
    through the write-back's blind index (the value itself is never stored in clear)."""
    conds: list[Any] = []
    if begin is not None:
        conds.append(Payment.created_at >= local_day_bounds(begin)[0])
    if end is not None:
        conds.append(Payment.created_at < local_day_bounds(end)[1])
    if status:
        conds.append(Payment.status.in_(status))
    for col, value in ((Payment.channel, channel), (Payment.method, method), (Payment.entry, entry),
                       (Payment.campus_id, campus), (Payment.channel_trade_no, channel_trade_no)):
        if value:
            conds.append(col == value)
    if out_trade_no:
        conds.append(or_(Payment.out_trade_no == out_trade_no, Payment.id == out_trade_no))
    if patient:
        h = core.vault.blind_index(patient)
        conds.append(Payment.id.in_(select(HisWriteback.payment_id).where(
            HisWriteback.kind == "payment", or_(HisWriteback.patient_hash == h, HisWriteback.patient_name_hash == h))))
    limit = min(max(limit, 1), 500)
    q = select(Payment).where(*conds).order_by(Payment.created_at.desc(), Payment.id.desc()).limit(limit).offset(
        max(offset, 0))
    async with core.rsm() as s:
        rows = (await s.execute(q)).scalars().all()
        total, amount, refunded = (await s.execute(select(
            func.count(), func.coalesce(func.sum(Payment.amount), 0),
            func.coalesce(func.sum(Payment.refunded_amount), 0)).where(*conds))).one()
    return {"items": [payment_row(p) for p in rows], "total": int(total), "total_amount": int(amount),
            "total_refunded": int(refunded), "limit": limit, "offset": max(offset, 0)}


async def payment_detail(core: Core, payment_id: str, *, reveal: bool = False) -> dict[str, Any]:
    """One payment with its events, interface-log calls, write-back, refunds, case and approvals."""
    from ..services.approvals import approval_out
    from ..services.cases import case_out
    from ..services.writeback import writeback_out

    p = await core.payments.get(None, payment_id)
    events = await core.ledger.payment_events(p.id)
    calls = await core.ilog.search(payment_id=p.id, limit=200)
    wb = await core.writebacks.get_for_payment(p.id)
    case = await core.cases.for_payment(p.id)
    async with core.rsm() as s:
        refunds = (await s.execute(select(Refund).where(Refund.payment_id == p.id)
                                   .order_by(Refund.created_at))).scalars().all()
        targets = [p.id] + ([case.id] if case else [])
        approvals = (await s.execute(select(Approval).where(Approval.target_id.in_(targets))
                                     .order_by(Approval.created_at))).scalars().all()
    return {"payment": payment_row(p),
            "events": [EventOut(from_status=e.from_status, to_status=e.to_status, source=e.source,
                                refund_id=e.refund_id, operator=e.operator, detail=e.detail,
                                created_at=e.created_at).model_dump(mode="json") for e in events],
            "calls": calls, "writeback": writeback_out(wb, core.vault, reveal=reveal) if wb else None,
            "refunds": [refund_out(r).model_dump(mode="json") for r in refunds],
            "case": case_out(case) if case else None, "approvals": [approval_out(a) for a in approvals]}


def _local_day(core: Core, col: Any) -> Any:
    # Literals, not bound parameters: GROUP BY must repeat the very same expression.
    if core.settings.is_sqlite:  # stored as naive UTC text; China has no daylight saving
        return func.date(col, literal_column("'+8 hours'"))
    return func.date(func.timezone(literal_column("'Asia/Shanghai'"), col))


async def overview(core: Core, *, begin: dt.date | None, end: dt.date | None, actor: str,
                   roles: list[str]) -> dict[str, Any]:
    """首页概览 for ``begin``..``end`` (business days, both included; default today): payments by the
    day they were paid, refunds by the day they succeeded, net = paid - refunded."""
    end = end or begin or local_today()
    begin = begin or end
    if end < begin:
        begin, end = end, begin
    start, stop = local_day_bounds(begin)[0], local_day_bounds(end)[1]
    paid_where = (Payment.status.in_(PAID), Payment.paid_at >= start, Payment.paid_at < stop)
    ref_where = (Refund.status == "SUCCEEDED", Refund.refunded_at >= start, Refund.refunded_at < stop)
    pday, rday = _local_day(core, Payment.paid_at), _local_day(core, Refund.refunded_at)
    async with core.rsm() as s:
        pays = (await s.execute(select(pday, func.count(), func.sum(Payment.amount)).where(*paid_where)
                                .group_by(pday))).all()
        refs = (await s.execute(select(rday, func.count(), func.sum(Refund.amount)).where(*ref_where)
                                .group_by(rday))).all()
        groups = {}
        for key, col in (("method", Payment.method), ("channel", Payment.channel), ("entry", Payment.entry)):
            gp = (await s.execute(select(col, func.count(), func.sum(Payment.amount)).where(*paid_where)
                                  .group_by(col))).all()
            gr = (await s.execute(select(col, func.sum(Refund.amount)).join(Payment, Payment.id == Refund.payment_id)
                                  .where(*ref_where).group_by(col))).all()
            groups[key] = _merge(gp, gr)
        cases_n, cases_amount = (await s.execute(
            select(func.count(), func.coalesce(func.sum(SingleSidedCase.amount), 0))
            .where(SingleSidedCase.status.in_(OPEN_CASE_STATES)))).one()
        diffs = (await s.execute(select(func.count()).select_from(ReconDiff)
                                 .where(ReconDiff.status == "OPEN"))).scalar_one()
        aq = select(func.count()).select_from(Approval).where(Approval.status == "PENDING", Approval.applicant != actor)
        if "admin" not in roles:
            aq = aq.where(Approval.required_role.in_(roles)) if roles else aq.where(Approval.id.is_(None))
        approvals = (await s.execute(aq)).scalar_one()
    by_day: dict[str, dict[str, int]] = {}
    d = begin
    while d <= end:
        by_day[d.isoformat()] = {"count": 0, "paid": 0, "refunded": 0}
        d += dt.timedelta(days=1)
    for day, n, amount in pays:
        slot = by_day.setdefault(str(day)[:10], {"count": 0, "paid": 0, "refunded": 0})
        slot["count"] += int(n)
        slot["paid"] += int(amount or 0)
    for day, _n, amount in refs:
        by_day.setdefault(str(day)[:10], {"count": 0, "paid": 0, "refunded": 0})["refunded"] += int(amount or 0)
    count = sum(v["count"] for v in by_day.values())
    paid = sum(v["paid"] for v in by_day.values())
    refunded = sum(v["refunded"] for v in by_day.values())
    return {"begin": begin.isoformat(), "end": end.isoformat(),
            "totals": {"count": count, "paid": paid, "refunded": refunded, "net": paid - refunded},
            "trend": [{"day": k, **v, "net": v["paid"] - v["refunded"]} for k, v in sorted(by_day.items())],
            "by_method": groups["method"], "by_channel": groups["channel"], "by_entry": groups["entry"],
            "open_cases": int(cases_n), "open_cases_amount": int(cases_amount), "open_differences": int(diffs),
            "pending_approvals_for_me": int(approvals)}


def _merge(paid: list[Any], refunded: list[Any]) -> list[dict[str, Any]]:
    out: dict[Any, dict[str, Any]] = {}
    for key, n, amount in paid:
        out[key] = {"key": key, "count": int(n), "paid": int(amount or 0), "refunded": 0}
    for key, amount in refunded:
        out.setdefault(key, {"key": key, "count": 0, "paid": 0, "refunded": 0})["refunded"] += int(amount or 0)
    rows = [{**v, "net": v["paid"] - v["refunded"]} for v in out.values()]
    return sorted(rows, key=lambda r: (-r["paid"], str(r["key"])))


WORKERS_ZH = {"resolver": "支付结果查询、撤销与关单", "callback-dispatcher": "调用方回调通知",
              "his-writeback": "业务系统回写", "single-sided-cases": "单边账自动退款与退款进度",
              "notice-dispatcher": "人员通知发送", "insurance-settlements": "医保结算补偿",
              "recon-scheduler": "定时对账(T+0/T+1)"}


def _running(worker: Any) -> bool:
    task = getattr(worker, "_task", None)
    return task is not None and not task.done()


async def jobs(core: Core, *, limit: int = 20) -> dict[str, Any]:
    """The scheduled work: this process's background workers, the reconciliation schedule, recent
    reconciliation runs and the bill fetch log (both from the database, i.e. of every process)."""
    s = core.settings
    workers = [("resolver", core.resolver, s.resolver_interval_seconds),
               ("callback-dispatcher", core.callbacks, s.resolver_interval_seconds),
               ("his-writeback", core.writebacks, s.his_worker_interval_seconds),
               ("single-sided-cases", core.cases, s.his_worker_interval_seconds),
               ("notice-dispatcher", core.notices, s.resolver_interval_seconds),
               ("insurance-settlements", core.insurance_settlements, s.insurance_worker_interval_seconds),
               ("recon-scheduler", core.recon_scheduler, getattr(core.recon_scheduler, "interval", None))]
    return {"now": dt.datetime.now(CHINA).isoformat(),
            "workers": [{"name": name, "name_zh": WORKERS_ZH.get(name, name), "interval_seconds": interval,
                         "running": _running(w)} for name, w, interval in workers],
            "recon_schedule": {"enabled": s.recon_scheduler_enabled, "t0_interval_seconds": s.recon_t0_interval_seconds,
                               "t1_after": s.recon_t1_after, "window_days": s.recon_window_days},
            "recon_runs": await core.recon.runs(None, limit), "fetches": await core.recon.fetch_log(None, limit)}
