"""The insurance ledger's writes and reads.

Every status change of an insurance settlement is a conditional UPDATE on its
current status plus an appended event (and, for final states, a caller
notification in the outbox), in one transaction: concurrent actors in any number
of processes (the API, the worker) cannot both apply a change; the loser gets
``None`` and re-reads. The module also answers what reconciliation (3201/3202)
needs: daily totals by insutype + clr_type + setl_optins, and the detail lines.

A settlement that names its bill carries a business-system write-back row
(``his_writebacks``, kind ``ins_setl``), inserted with the intent (WAITING) and
moved in the transaction of each status change: PENDING when the settlement
completes, CANCELLED when it fails or is reversed before the system heard of it;
when a settlement the system may have recorded is reversed, the reversal's row
(kind ``ins_rev``) is queued in that same transaction.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ..db.models import HisWriteback, InsuranceSettlement, InsuranceSettlementEvent, Notification, utcnow
from ..insurance_state import SETTLEMENT_FINAL, SettlementStatus, check_settlement

if TYPE_CHECKING:
    from ..core import Core

_T = InsuranceSettlement.__table__
_E = InsuranceSettlementEvent.__table__
_N = Notification.__table__
_W = HisWriteback.__table__
_COLS = tuple(_T.columns)
CST = dt.timezone(dt.timedelta(hours=8))


def _row(row: Any) -> InsuranceSettlement:
    return InsuranceSettlement(**dict(row._mapping))


def _writebacks(conn: Connection, sid: str, to: SettlementStatus, now: dt.datetime) -> None:
    """Move the settlement's business-system write-back along with its status (same transaction)."""
    mine = (_W.c.payment_id == sid) & (_W.c.kind == "ins_setl")
    if to == SettlementStatus.COMPLETED:
        conn.execute(update(_W).where(mine, _W.c.status == "WAITING")
                     .values(status="PENDING", next_attempt_at=now, updated_at=now))
    elif to == SettlementStatus.FAILED:
        conn.execute(update(_W).where(mine, _W.c.status == "WAITING").values(status="CANCELLED", updated_at=now))
    elif to == SettlementStatus.REVERSED:
        # Never completed, or completed but not yet tried and not in flight: the system never heard of it.
        free = _W.c.lease_until.is_(None) | (_W.c.lease_until < now)
        conn.execute(update(_W).where(mine, (_W.c.status == "WAITING")
                                      | ((_W.c.status == "PENDING") & (_W.c.attempts == 0) & free))
                     .values(status="CANCELLED", next_attempt_at=None, updated_at=now))
        own = conn.execute(select(_W).where(mine)).first()
        if own is None or own.status == "CANCELLED":
            return
        values = dict(own._mapping)
        values.update(id="WIR" + sid[2:], kind="ins_rev", refund_id="", status="PENDING", late=False, attempts=0,
                      next_attempt_at=now, lease_until=None, his_serial=None, last_error_code=None,
                      last_error=None, recorded_at=None, created_at=now, updated_at=now)
        exists = conn.execute(select(_W.c.id).where(_W.c.payment_id == sid, _W.c.kind == "ins_rev")).first()
        if exists is None:
            conn.execute(_W.insert(), values)


def _event(conn: Connection, sid: str, frm: str | None, to: str, action: str, source: str,
           detail: dict[str, Any] | None, now: dt.datetime) -> None:
    conn.execute(_E.insert(), {"settlement_id": sid, "from_status": frm, "to_status": to, "action": action,
                               "source": source, "detail": detail or {}, "created_at": now})


class InsuranceStore:
    def __init__(self, core: Core) -> None:
        self.core = core

    # --- writes ---------------------------------------------------------------------------
    async def insert(self, row: InsuranceSettlement, writeback: dict[str, Any] | None = None
                     ) -> tuple[InsuranceSettlement, bool]:
        """Record the intent (and its business-system write-back, if any); (row, True),
        or the existing one of the same out_settle_no and False."""
        values = {c.key: getattr(row, c.key) for c in _COLS}

        def tx(conn: Connection) -> None:
            conn.execute(_T.insert(), values)
            if writeback is not None:
                conn.execute(_W.insert(), writeback)
            _event(conn, row.id, None, row.status, "created", "api",
                   {"settle_msgids": row.settle_msgids, "kind": row.kind}, row.created_at)

        try:
            await self.core.writer.run(tx)
            return row, True
        except IntegrityError:
            pass
        existing = await self.by_out_settle_no(row.app_id, row.out_settle_no)
        if existing is None:  # pragma: no cover - the unique key just said it exists
            raise RuntimeError("insurance settlement vanished after a unique-key conflict")
        return existing, False

    async def transition(self, sid: str, frm: SettlementStatus | str, to: SettlementStatus | str, *, action: str,
                         source: str, detail: dict[str, Any] | None = None, notify: bool = True,
                         **fields: Any) -> InsuranceSettlement | None:
        """Move ``sid`` from ``frm`` to ``to`` if it is still ``frm``; None when it is not."""
        frm, to = SettlementStatus(frm), SettlementStatus(to)
        check_settlement(frm, to)
        now = utcnow()
        values = {"status": to.value, "updated_at": now, **fields}
        if to in SETTLEMENT_FINAL:
            values.setdefault("completed_at", now)
            values.setdefault("next_attempt_at", None)
            values.setdefault("lease_until", None)

        def tx(conn: Connection) -> InsuranceSettlement | None:
            got = conn.execute(update(_T).where(_T.c.id == sid, _T.c.status == frm.value).values(**values)
                               .returning(*_COLS)).first()
            if got is None:
                return None
            _event(conn, sid, frm.value, to.value, action, source, detail, now)
            _writebacks(conn, sid, to, now)
            row = _row(got)
            if notify and to in SETTLEMENT_FINAL and row.notify_url:
                from .insurance_schemas import settlement_out

                conn.execute(_N.insert(), {
                    "app_id": row.app_id, "payment_id": row.id, "refund_id": None,
                    "event": f"insurance_settlement.{to.value.lower()}", "url": row.notify_url,
                    "body": {"event": f"insurance_settlement.{to.value.lower()}",
                             "settlement": settlement_out(row, None)},
                    "status": "PENDING", "attempts": 0, "next_attempt_at": now, "lease_until": None,
                    "last_error": None, "created_at": now, "delivered_at": None})
            return row

        got = await self.core.writer.run(tx)
        if got is not None and to in (SettlementStatus.COMPLETED, SettlementStatus.REVERSED):
            self.core.writebacks.wake()  # a business-system write-back may be due now
        return got

    async def update(self, sid: str, *, expect_status: SettlementStatus | str | None = None,
                     action: str | None = None, source: str = "api", detail: dict[str, Any] | None = None,
                     **fields: Any) -> InsuranceSettlement | None:
        """Change fields without a status change (a planned msgid, a payment id, a schedule)."""
        now = utcnow()

        def tx(conn: Connection) -> InsuranceSettlement | None:
            stmt = update(_T).where(_T.c.id == sid)
            if expect_status is not None:
                stmt = stmt.where(_T.c.status == SettlementStatus(expect_status).value)
            got = conn.execute(stmt.values(updated_at=now, **fields).returning(*_COLS)).first()
            if got is None:
                return None
            if action:
                _event(conn, sid, got.status, got.status, action, source, detail, now)
            return _row(got)

        return await self.core.writer.run(tx)

    async def note(self, sid: str, status: str, action: str, source: str, detail: dict[str, Any]) -> None:
        await self.core.writer.run(lambda conn: _event(conn, sid, status, status, action, source, detail, utcnow()))

    # --- reads ----------------------------------------------------------------------------
    async def get(self, sid: str) -> InsuranceSettlement | None:
        async with self.core.rsm() as s:
            return await s.get(InsuranceSettlement, sid)

    async def by_out_settle_no(self, app_id: str, out_settle_no: str) -> InsuranceSettlement | None:
        async with self.core.rsm() as s:
            return (await s.execute(select(InsuranceSettlement).where(
                InsuranceSettlement.app_id == app_id,
                InsuranceSettlement.out_settle_no == out_settle_no))).scalar_one_or_none()

    async def events(self, sid: str) -> list[InsuranceSettlementEvent]:
        async with self.core.rsm() as s:
            return list((await s.execute(select(InsuranceSettlementEvent).where(
                InsuranceSettlementEvent.settlement_id == sid).order_by(InsuranceSettlementEvent.id))).scalars())

    # --- reconciliation -------------------------------------------------------------------
    async def ledger_lines(self, begin: dt.date, end: dt.date, centre_id: str | None = None) -> list[dict[str, Any]]:
        """Every settlement and reversal at the centre whose time (China date) is in [begin, end].

        One line per centre-side record: a settlement, and its reversal as a second
        line with ``refund=True`` and negative amounts (``refd_setl_flag``)."""
        lo = dt.datetime.combine(begin, dt.time(), CST).astimezone(dt.UTC)
        hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), CST).astimezone(dt.UTC)
        q = select(InsuranceSettlement).where(or_(
            (InsuranceSettlement.setl_time >= lo) & (InsuranceSettlement.setl_time < hi),
            (InsuranceSettlement.rev_time >= lo) & (InsuranceSettlement.rev_time < hi)))
        if centre_id:
            q = q.where(InsuranceSettlement.centre_id == centre_id)
        async with self.core.rsm() as s:
            rows = list((await s.execute(q)).scalars())
        lines: list[dict[str, Any]] = []
        for r in rows:
            base = {"settlement_id": r.id, "centre": r.centre_id, "mdtrt_id": r.mdtrt_id, "psn_no": r.psn_no,
                    "insutype": r.insutype, "clr_type": r.clr_type, "clr_way": r.clr_way,
                    "setl_optins": r.setl_optins, "med_type": r.med_type}
            if r.setl_id and r.setl_time and lo <= r.setl_time < hi:
                lines.append({**base, "setl_id": r.setl_id, "msgid": r.msgid, "refund": False,
                              "setl_time": r.setl_time.isoformat(), "medfee_sumamt": r.total or 0,
                              "fund_pay_sumamt": r.fund_total or 0, "acct_pay": r.acct_pay or 0,
                              "cash_payamt": r.cash_pay or 0})
            if r.rev_setl_id and r.rev_time and lo <= r.rev_time < hi:
                rev = r.reversal or {}
                lines.append({**base, "setl_id": r.rev_setl_id, "original_setl_id": r.setl_id, "msgid": r.rev_msgid,
                              "refund": True, "setl_time": r.rev_time.isoformat(),
                              "medfee_sumamt": rev.get("total", -(r.total or 0)),
                              "fund_pay_sumamt": rev.get("fund_total", -(r.fund_total or 0)),
                              "acct_pay": rev.get("acct_pay", -(r.acct_pay or 0)),
                              "cash_payamt": rev.get("cash_pay", -(r.cash_pay or 0))})
        return sorted(lines, key=lambda x: x["setl_time"])

    async def daily_totals(self, begin: dt.date, end: dt.date, centre_id: str | None = None) -> list[dict[str, Any]]:
        """What 3201 compares: totals by insutype + clr_type + setl_optins (reversals netted)."""
        groups: dict[tuple[str, str, str], dict[str, int]] = defaultdict(
            lambda: {"medfee_sumamt": 0, "fund_pay_sumamt": 0, "acct_pay": 0, "cash_payamt": 0, "count": 0})
        for line in await self.ledger_lines(begin, end, centre_id):
            g = groups[(line["insutype"], line["clr_type"] or "", line["setl_optins"] or "")]
            for k in ("medfee_sumamt", "fund_pay_sumamt", "acct_pay", "cash_payamt"):
                g[k] += line[k]
            g["count"] += -1 if line["refund"] else 1
        return [{"insutype": k[0], "clr_type": k[1], "setl_optins": k[2], "begin_date": begin.isoformat(),
                 "end_date": end.isoformat(), **v} for k, v in sorted(groups.items())]
