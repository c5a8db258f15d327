"""Reconciliation sources: one business day's bill of each source, stored as lines.

Every source ends up as rows of ``recon_lines`` in core terms (gateway id, kind,
amount in fen, status), so the matcher reads one shape whatever the origin:

- ``platform``: the gateway's own ledger (平台账单), snapshotted from payments and refunds;
- ``his``: each business system's daily bills (the four HIS bill types by default),
  through its adapter, or imported from a CSV/Excel file;
- ``channel``: each merchant's bill from its channel (WeChat tradebill, Alipay bill,
  UnionPay file …), checked against the bill's own summary lines.

A fetch (or import) of the same day and source **replaces** that batch's lines in one
transaction, so fetching again never duplicates. Every attempt is written to the
fetch log (``recon_fetches``) with its outcome, counts and totals. Fetches are retried
with back-off, bounded.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, or_, and_, select
from sqlalchemy.engine import Connection
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from ..channel import Bill, Capability
from ..db.models import HisWriteback, Payment, ReconFetch, ReconLine, Refund, utcnow
from ..errors import BillSummaryMismatch, HisNotSupported
from ..his import HisBill, HisCapability
from ..statemachine import PAYMENT_PAID
from ..timeutil import CHINA, local_day_bounds

if TYPE_CHECKING:
    from ..core import Core

log = logging.getLogger("yinyi.recon")
_L = ReconLine.__table__
_F = ReconFetch.__table__
MONEY_MOVED = "SUCCEEDED"
PAID_STATUSES = frozenset({*(s.value for s in PAYMENT_PAID), "REFUNDED"})


@dataclass
class FetchOutcome:
    source: str
    source_id: str
    bill_type: str
    status: str  # OK | FAILED | SKIPPED
    line_count: int = 0
    total_paid: int = 0
    total_refunded: int = 0
    attempts: int = 0
    error: str | None = None
    day: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def local_day(ts: dt.datetime | None) -> dt.date | None:
    return ts.astimezone(CHINA).date() if ts is not None else None


async def store_batch(core: Core, *, day: dt.date, source: str, source_id: str, bill_type: str, origin: str,
                      lines: list[dict[str, Any]], actor: str, attempts: int = 1) -> FetchOutcome:
    """Replace one batch's lines and log the fetch, in one transaction."""
    paid = sum(x["amount"] for x in lines if x["kind"] == "payment")
    refunded = sum(x["amount"] for x in lines if x["kind"] == "refund")
    rows = [{"day": day, "source": source, "source_id": source_id, "bill_type": bill_type, "fee": 0, **x}
            for x in lines]

    def tx(conn: Connection) -> None:
        conn.execute(delete(_L).where(_L.c.day == day, _L.c.source == source, _L.c.source_id == source_id,
                                      _L.c.bill_type == bill_type))
        for i in range(0, len(rows), 5000):
            conn.execute(insert(_L), rows[i:i + 5000])
        conn.execute(insert(_F).values(day=day, source=source, source_id=source_id, bill_type=bill_type,
                                       origin=origin, status="OK", attempts=attempts, line_count=len(rows),
                                       total_paid=paid, total_refunded=refunded, error=None, actor=actor,
                                       created_at=utcnow()))

    await core.writer.run(tx)
    return FetchOutcome(source, source_id, bill_type, "OK", len(rows), paid, refunded, attempts, day=day.isoformat())


async def log_failure(core: Core, *, day: dt.date, source: str, source_id: str, bill_type: str, origin: str,
                      error: str, actor: str, attempts: int) -> FetchOutcome:
    def tx(conn: Connection) -> None:
        conn.execute(insert(_F).values(day=day, source=source, source_id=source_id, bill_type=bill_type,
                                       origin=origin, status="FAILED", attempts=attempts, line_count=0,
                                       total_paid=0, total_refunded=0, error=error[:256], actor=actor,
                                       created_at=utcnow()))

    await core.writer.run(tx)
    return FetchOutcome(source, source_id, bill_type, "FAILED", attempts=attempts, error=error, day=day.isoformat())


# --- the platform bill -------------------------------------------------------------------------------
async def platform_lines(core: Core, day: dt.date) -> list[dict[str, Any]]:
    """The ledger's payments and refunds of ``day``: by the time money moved, else by creation."""
    start, end = local_day_bounds(day)
    wb = HisWriteback.__table__
    async with core.rsm() as s:
        pays = (await s.execute(
            select(Payment.id, Payment.amount, Payment.status, Payment.channel, Payment.channel_trade_no,
                   Payment.paid_at, Payment.created_at, Payment.method, Payment.operator, Payment.entry,
                   Payment.his_system, Payment.business_type)
            .where(or_(and_(Payment.paid_at >= start, Payment.paid_at < end),
                       and_(Payment.paid_at.is_(None), Payment.created_at >= start, Payment.created_at < end))))).all()
        refs = (await s.execute(
            select(Refund.id, Refund.payment_id, Refund.amount, Refund.status, Refund.channel_refund_no,
                   Refund.refunded_at, Refund.created_at, Refund.operator, Payment.channel, Payment.method,
                   Payment.entry, Payment.business_type)
            .join(Payment, Payment.id == Refund.payment_id)
            .where(or_(and_(Refund.refunded_at >= start, Refund.refunded_at < end),
                       and_(Refund.refunded_at.is_(None), Refund.created_at >= start, Refund.created_at < end))))).all()
        ids = [p.id for p in pays]
        charges: dict[str, str] = {}
        for i in range(0, len(ids), 900):
            for pid, system, charge_ids in (await s.execute(
                    select(wb.c.payment_id, wb.c.system_id, wb.c.charge_ids)
                    .where(wb.c.kind == "payment", wb.c.payment_id.in_(ids[i:i + 900])))).all():
                if charge_ids:
                    charges[pid] = f"{system}:{','.join(sorted(charge_ids))}"
    lines = [{"txn_id": p.id, "kind": "payment", "amount": p.amount,
              "status": MONEY_MOVED if p.status in PAID_STATUSES else p.status,
              "his_serial": None, "channel_trade_no": p.channel_trade_no, "channel": p.channel,
              "order_ref": charges.get(p.id), "method": p.method, "operator": p.operator, "entry": p.entry,
              "business_type": p.business_type, "occurred_at": p.paid_at or p.created_at} for p in pays]
    lines += [{"txn_id": r.id, "kind": "refund", "amount": r.amount, "status": r.status, "his_serial": None,
               "channel_trade_no": r.channel_refund_no, "channel": r.channel, "order_ref": r.payment_id,
               "method": r.method, "operator": r.operator, "entry": r.entry, "business_type": r.business_type,
               "occurred_at": r.refunded_at or r.created_at} for r in refs]
    return lines


async def snapshot_platform(core: Core, day: dt.date, actor: str) -> FetchOutcome:
    lines = await platform_lines(core, day)
    return await store_batch(core, day=day, source="platform", source_id="ledger", bill_type="", origin="fetch",
                             lines=lines, actor=actor)


# --- business systems ----------------------------------------------------------------------------------
def his_bill_lines(bill: HisBill) -> list[dict[str, Any]]:
    out = []
    for x in bill.lines:
        txn = x.refund_no if x.kind == "refund" else x.trade_no
        out.append({"txn_id": txn or None, "kind": x.kind, "amount": x.amount, "status": x.status,
                    "his_serial": x.his_serial, "channel_trade_no": x.channel_trade_no, "channel": x.channel,
                    "order_ref": None, "method": None, "operator": x.operator, "entry": None,
                    "occurred_at": x.occurred_at})
    return out


def check_his_summary(bill: HisBill) -> None:
    if bill.total_count is not None and bill.total_count != len(bill.lines):
        raise BillSummaryMismatch(f"{bill.bill_type}: {len(bill.lines)} lines, the summary says {bill.total_count}")
    if bill.total_amount is not None:
        net = sum(x.amount if x.kind == "payment" else -x.amount for x in bill.lines if x.status == "normal")
        if net != bill.total_amount:
            raise BillSummaryMismatch(f"{bill.bill_type}: lines net {net} fen, the summary says {bill.total_amount}")


async def _retrying(core: Core, fn: Any) -> tuple[Any, int]:
    s = core.settings
    attempts = 0
    async for attempt in AsyncRetrying(stop=stop_after_attempt(max(1, s.recon_fetch_attempts)),
                                       wait=wait_exponential(multiplier=s.recon_fetch_backoff_seconds, max=30),
                                       retry=retry_if_exception_type(Exception), reraise=True):
        with attempt:
            attempts = attempt.retry_state.attempt_number
            return await fn(), attempts
    raise AssertionError("unreachable")  # pragma: no cover


async def fetch_his(core: Core, system_id: str, day: dt.date, bill_type: str, actor: str) -> FetchOutcome:
    t0 = time.perf_counter()
    attempts = 0
    try:
        adapter = await core.his.adapter(system_id)
        if not adapter.supports(HisCapability.BILLS):
            return FetchOutcome("his", system_id, bill_type, "SKIPPED", error="the adapter gives no bills")

        async def once() -> HisBill:
            bill = await adapter.daily_bill(day, bill_type)
            check_his_summary(bill)
            return bill

        bill, attempts = await _retrying(core, once)
    except HisNotSupported:
        return FetchOutcome("his", system_id, bill_type, "SKIPPED", error="the adapter gives no bills")
    except Exception as exc:  # every failure is logged and shown; the day stays incomplete
        core.ilog.record(direction="out", interface=f"his.{system_id}.bill", outcome="abnormal",
                         latency_ms=(time.perf_counter() - t0) * 1000, error_code=getattr(exc, "code", None),
                         request={"day": day.isoformat(), "bill_type": bill_type}, response=None)
        return await log_failure(core, day=day, source="his", source_id=system_id, bill_type=bill_type,
                                 origin="fetch", error=f"{type(exc).__name__}: {exc}", actor=actor,
                                 attempts=attempts or core.settings.recon_fetch_attempts)
    core.ilog.record(direction="out", interface=f"his.{system_id}.bill", outcome="normal",
                     latency_ms=(time.perf_counter() - t0) * 1000, request={"day": day.isoformat(),
                     "bill_type": bill_type}, response={"lines": len(bill.lines)})
    return await store_batch(core, day=day, source="his", source_id=system_id, bill_type=bill_type,
                             origin="fetch", lines=his_bill_lines(bill), actor=actor, attempts=attempts)


async def import_his_bills(core: Core, system_id: str, day: dt.date, bills: Iterable[HisBill],
                          actor: str) -> list[FetchOutcome]:
    """Store bills imported from a file (replacing that day's lines of each bill type)."""
    out = []
    for bill in bills:
        check_his_summary(bill)
        out.append(await store_batch(core, day=day, source="his", source_id=system_id, bill_type=bill.bill_type,
                                     origin="import", lines=his_bill_lines(bill), actor=actor))
    return out


# --- channel bills -----------------------------------------------------------------------------------
def _revoked_same_day(bill: Bill) -> set[str]:
    """Orders paid and revoked (撤销) within the bill: they net to nothing, and the ledger
    holds them as REVERSED, which moved no money."""
    paid = {x.out_trade_no: x.amount for x in bill.lines if x.kind == "payment"}
    return {x.out_trade_no for x in bill.lines
            if x.kind == "refund" and not x.out_refund_no and x.status.upper() in ("REVOKED", "REVOKE")
            and paid.get(x.out_trade_no) == abs(x.amount)}


def channel_bill_lines(bill: Bill, channel: str) -> list[dict[str, Any]]:
    out = []
    revoked = _revoked_same_day(bill)
    for x in bill.lines:
        if x.out_trade_no in revoked and (x.kind == "payment" or not x.out_refund_no):
            continue
        refund = x.kind == "refund"
        out.append({"txn_id": (x.out_refund_no if refund else x.out_trade_no) or None, "kind": x.kind,
                    "amount": abs(x.amount), "fee": x.fee, "status": MONEY_MOVED, "his_serial": None,
                    "channel_trade_no": (x.channel_refund_no if refund else x.channel_trade_no),
                    "channel": channel, "order_ref": x.out_trade_no if refund else None,
                    "method": x.trade_type or None, "operator": None, "entry": None, "occurred_at": x.trade_time})
    return out


def check_channel_summary(bill: Bill) -> None:
    paid = sum(x.amount for x in bill.lines if x.kind == "payment")
    refunded = sum(-x.amount if x.amount < 0 else x.amount for x in bill.lines if x.kind == "refund")
    if len(bill.lines) != bill.total_count:
        raise BillSummaryMismatch(f"{len(bill.lines)} lines, the summary says {bill.total_count}")
    if paid != bill.total_paid or refunded != bill.total_refunded:
        raise BillSummaryMismatch(f"lines paid {paid}/refunded {refunded} fen, the summary says "
                                  f"{bill.total_paid}/{bill.total_refunded}")


async def fetch_channel(core: Core, merchant_id: str, channel: str, day: dt.date, actor: str) -> FetchOutcome:
    t0 = time.perf_counter()
    attempts = 0
    try:
        adapter = await core.directory.adapter_for(merchant_id)
        if not adapter.supports(Capability.BILL):
            return FetchOutcome("channel", merchant_id, "", "SKIPPED", error="the channel gives no bill")

        async def once() -> Bill:
            bill = await adapter.download_bill(day)
            check_channel_summary(bill)
            return bill

        bill, attempts = await _retrying(core, once)
    except Exception as exc:
        core.ilog.record(direction="out", interface=f"{channel}.download_bill", outcome="abnormal",
                         latency_ms=(time.perf_counter() - t0) * 1000, channel=channel, merchant_id=merchant_id,
                         error_code=getattr(exc, "code", None), request={"day": day.isoformat()}, response=None)
        return await log_failure(core, day=day, source="channel", source_id=merchant_id, bill_type="",
                                 origin="fetch", error=f"{type(exc).__name__}: {exc}", actor=actor,
                                 attempts=attempts or core.settings.recon_fetch_attempts)
    core.ilog.record(direction="out", interface=f"{channel}.download_bill", outcome="normal",
                     latency_ms=(time.perf_counter() - t0) * 1000, channel=channel, merchant_id=merchant_id,
                     request={"day": day.isoformat()}, response={"lines": len(bill.lines)})
    return await store_batch(core, day=day, source="channel", source_id=merchant_id, bill_type="",
                             origin="fetch", lines=channel_bill_lines(bill, channel), actor=actor, attempts=attempts)


async def load_lines(core: Core, days: list[dt.date], sources: tuple[str, ...]) -> dict[str, list[dict[str, Any]]]:
    """Stored lines of ``days`` per source, as plain dicts (with their day)."""
    cols = [_L.c.day, _L.c.source, _L.c.source_id, _L.c.bill_type, _L.c.txn_id, _L.c.kind, _L.c.amount, _L.c.fee,
            _L.c.status, _L.c.his_serial, _L.c.channel_trade_no, _L.c.channel, _L.c.order_ref, _L.c.method,
            _L.c.operator, _L.c.entry, _L.c.business_type, _L.c.occurred_at]
    out: dict[str, list[dict[str, Any]]] = {s: [] for s in sources}
    async with core.rsm() as s:
        res = await s.execute(select(*cols).where(_L.c.day.in_(days), _L.c.source.in_(sources)))
        for row in res.mappings():
            out[row["source"]].append(dict(row))
    return out
