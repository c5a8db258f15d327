"""The ledger: every write to payments, refunds and their event log.

Status changes happen only here. Each is a conditional UPDATE on the row's current
status plus an appended event, in one transaction, so concurrent actors (notify,
resolver, API, several processes) cannot both apply a change: the loser gets
``None`` and re-reads. Writes are synchronous functions run by ``Writer`` (one
transaction each); reads go through the read engine.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

from functools import lru_cache

from sqlalchemy import String, bindparam, cast, exists, false, func, insert, null, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..db.models import AuditLog, HisWriteback, Notification, Payment, PaymentEvent, Refund, Snapshot, utcnow
from ..db.writer import Writer
from ..schemas import payment_out, refund_out
from ..statemachine import (PAYMENT_OPEN, PAYMENT_PAID, REFUND_OPEN, PaymentStatus,
                            RefundStatus, check_payment, check_refund)

EventSink = Callable[[dict[str, Any]], Awaitable[None]]
_PAY = Payment.__table__
_REF = Refund.__table__
_EVT = PaymentEvent.__table__
_PAY_COLS = tuple(_PAY.columns)
_REF_COLS = tuple(_REF.columns)
# Statements on the hot path are built once and reused with bound parameters:
# constructing a statement costs more than compiling it from SQLAlchemy's cache.
_INSERT_PAYMENT = _PAY.insert()
_INSERT_EVENT = _EVT.insert()
_INSERT_CALLBACK = Notification.__table__.insert()
_WB = HisWriteback.__table__
_INSERT_WRITEBACK = _WB.insert()
# A payment's write-back becomes due in the transaction that records its success.
_ACTIVATE_WRITEBACK = (update(_WB).where(_WB.c.payment_id == bindparam("k_pid"), _WB.c.kind == "payment",
                                         _WB.c.status == "WAITING")
                       .values(status="PENDING", next_attempt_at=bindparam("k_now"), late=bindparam("k_late"),
                               updated_at=bindparam("k_now")))
_CANCEL_WRITEBACK = (update(_WB).where(_WB.c.payment_id == bindparam("k_pid"), _WB.c.kind == "payment",
                                       _WB.c.status == "WAITING")
                     .values(status="CANCELLED", updated_at=bindparam("k_now")))

# Final states the calling system is told about (回调通知), by the outbox.
CALLBACK_PAYMENT_STATES = frozenset({PaymentStatus.SUCCEEDED, PaymentStatus.FAILED, PaymentStatus.CLOSED,
                                     PaymentStatus.REVERSED})
CALLBACK_REFUND_STATES = frozenset({RefundStatus.SUCCEEDED, RefundStatus.FAILED})


def _outbox(conn: Connection, *, app_id: str, payment_id: str, refund_id: str | None, event: str, url: str,
            body: dict[str, Any], now: dt.datetime) -> None:
    """Queue a caller notification in the transaction that made the change it reports."""
    conn.execute(_INSERT_CALLBACK, {"app_id": app_id, "payment_id": payment_id, "refund_id": refund_id,
                                    "event": event, "url": url, "body": body, "status": "PENDING", "attempts": 0,
                                    "next_attempt_at": now, "lease_until": None, "last_error": None,
                                    "created_at": now, "delivered_at": None})


@lru_cache(maxsize=256)
def _transition_stmt(fields: tuple[str, ...]) -> Any:
    return (update(_PAY).where(_PAY.c.id == bindparam("k_id"), _PAY.c.status == bindparam("k_from"))
            .values(status=bindparam("k_to"), updated_at=bindparam("k_now"),
                    **{f: bindparam(f"v_{f}", type_=_PAY.c[f].type) for f in fields})
            .returning(*_PAY_COLS))


# --- PostgreSQL: a change and its event in one statement --------------------------------
# Data-modifying statements in WITH run exactly once whether or not the outer statement
# reads them, all under one snapshot, and the whole statement commits or fails as one:
# one round trip instead of BEGIN, two or three statements and COMMIT.
_EVT_COLS = ["payment_id", "refund_id", "from_status", "to_status", "source", "operator", "detail", "created_at"]


def _event_params(prefix: str) -> list[Any]:
    return [bindparam(f"{prefix}from", type_=String), bindparam(f"{prefix}to", type_=String),
            bindparam(f"{prefix}source", type_=String), bindparam(f"{prefix}operator", type_=String),
            bindparam(f"{prefix}detail", type_=_EVT.c.detail.type),
            bindparam(f"{prefix}created_at", type_=_EVT.c.created_at.type)]


@lru_cache(maxsize=16)
def _pg_intent_stmt(writeback_keys: tuple[str, ...] | None) -> Any:
    """INSERT the payment (and its write-back) with its first event."""
    p = _PAY.insert().values({c.key: bindparam(f"p_{c.key}", type_=c.type) for c in _PAY_COLS}).cte("p")
    e = _EVT.insert().from_select(_EVT_COLS, select(
        bindparam("p_id", type_=String), cast(null(), String), *_event_params("e_")))
    e = e.add_cte(p)
    if writeback_keys is not None:  # columns left out take their defaults
        w = _WB.insert().values({k: bindparam(f"w_{k}", type_=_WB.c[k].type) for k in writeback_keys}).cte("w")
        e = e.add_cte(w)
    return e


@lru_cache(maxsize=256)
def _pg_transition_stmt(fields: tuple[str, ...], writeback: str | None) -> Any:
    """UPDATE the payment from its expected status, append the event, and make its
    write-back due (``activate``) or cancel it, returning the updated row (none: lost)."""
    u = _transition_stmt(fields).cte("u")
    e = _EVT.insert().from_select(_EVT_COLS, select(
        u.c.id, cast(null(), String), *_event_params("e_"))).cte("e")
    stmt = select(*u.c).add_cte(e)
    if writeback is not None:
        cond = [_WB.c.payment_id == bindparam("k_id"), _WB.c.kind == "payment", _WB.c.status == "WAITING",
                exists(select(u.c.id))]
        if writeback == "activate":
            # Success after the caller closed or reversed it: the patient may have paid twice.
            late = func.coalesce(select(or_(u.c.gave_up_at.is_not(None), u.c.reverse_requested))
                                 .scalar_subquery(), false())
            w = update(_WB).where(*cond).values(status="PENDING", next_attempt_at=bindparam("k_now"), late=late,
                                                updated_at=bindparam("k_now"))
        else:
            w = update(_WB).where(*cond).values(status="CANCELLED", updated_at=bindparam("k_now"))
        stmt = stmt.add_cte(w.cte("w"))
    return stmt


def _writeback_action(to: str) -> str | None:
    """What a payment's move to ``to`` does to its business-system write-back."""
    if to == PaymentStatus.SUCCEEDED:
        return "activate"
    if PaymentStatus(to) in (PaymentStatus.FAILED, PaymentStatus.CLOSED, PaymentStatus.REVERSED):
        return "cancel"
    return None


def _payment(row: Any) -> Payment:
    return Snapshot(dict(row._mapping))  # type: ignore[return-value]


def _refund(row: Any) -> Refund:
    return Snapshot(dict(row._mapping))  # type: ignore[return-value]


def _event(conn: Connection, *, payment_id: str, to_status: str, source: str, refund_id: str | None = None,
           from_status: str | None = None, operator: str | None = None, detail: dict[str, Any] | None = None,
           created_at: dt.datetime | None = None) -> None:
    conn.execute(_INSERT_EVENT, {"payment_id": payment_id, "refund_id": refund_id, "from_status": from_status,
                                 "to_status": to_status, "source": source, "operator": operator,
                                 "detail": detail or {}, "created_at": created_at or utcnow()})


def _queue_refund_writeback(conn: Connection, refund: Any, now: dt.datetime) -> None:
    """Queue 退费回写 for a refund of a payment its business system recorded."""
    pay_wb = conn.execute(select(_WB).where(_WB.c.payment_id == refund.payment_id, _WB.c.kind == "payment",
                                            _WB.c.status == "RECORDED")).first()
    if pay_wb is None:
        return  # the system never recorded the payment: nothing to reverse there
    values = dict(pay_wb._mapping)
    values.update(id="W" + refund.id[1:], kind="refund", refund_id=refund.id, amount=refund.amount,
                  status="PENDING", late=False, attempts=0, next_attempt_at=now, lease_until=None,
                  last_error_code=None, last_error=None, recorded_at=None, created_at=now, updated_at=now)
    conn.execute(_INSERT_WRITEBACK, values)


class _Lost(Exception):
    """The conditional update matched nothing: roll back and report None."""


class Ledger:
    def __init__(self, writer: Writer, read_sm: async_sessionmaker[AsyncSession],
                 on_event: EventSink | None = None) -> None:
        self.writer = writer
        self.rsm = read_sm
        self._on_event = on_event

    async def _emit(self, event: dict[str, Any]) -> None:
        if self._on_event is not None:
            await self._on_event(event)

    # --- payments -------------------------------------------------------------------
    async def insert_payment(self, row: Payment, writeback: dict[str, Any] | None = None) -> tuple[Payment, bool]:
        """Record the intent (and its business-system write-back, if any).

        Returns (payment, True) or the existing one and False."""
        values = {c.key: getattr(row, c.key) for c in _PAY_COLS}

        def tx(conn: Connection) -> None:
            conn.execute(_INSERT_PAYMENT, values)
            if writeback is not None:
                conn.execute(_INSERT_WRITEBACK, writeback)
            _event(conn, payment_id=row.id, from_status=None, to_status=row.status, source="api",
                   operator=row.operator, detail={"amount": row.amount, "channel": row.channel},
                   created_at=row.created_at)

        try:
            if self.writer.multi_statement_cte:
                params = {f"p_{k}": v for k, v in values.items()}
                params.update(e_from=None, e_to=row.status, e_source="api", e_operator=row.operator,
                              e_detail={"amount": row.amount, "channel": row.channel}, e_created_at=row.created_at)
                if writeback is not None:
                    params.update({f"w_{k}": v for k, v in writeback.items()})
                await self.writer.run_one(_pg_intent_stmt(tuple(sorted(writeback)) if writeback else None), params)
            else:
                await self.writer.run(tx)
            return row, True
        except IntegrityError:
            pass
        existing = await self.payment_by_out_trade_no(row.app_id, row.out_trade_no)
        if existing is None:  # pragma: no cover - the unique key just told us it exists
            raise RuntimeError("payment vanished after a unique-key conflict")
        return existing, False

    async def get_payment(self, payment_id: str) -> Payment | None:
        async with self.rsm() as s:
            return await s.get(Payment, payment_id)

    async def payment_by_out_trade_no(self, app_id: str, out_trade_no: str) -> Payment | None:
        async with self.rsm() as s:
            return (await s.execute(select(Payment).where(
                Payment.app_id == app_id, Payment.out_trade_no == out_trade_no))).scalar_one_or_none()

    async def transition_payment(self, payment_id: str, frm: str, to: str, *, source: str,
                                 operator: str | None = None, detail: dict[str, Any] | None = None,
                                 prior: Payment | None = None, **fields: Any) -> Payment | None:
        """Apply one transition. Returns the updated payment, or None if its status was
        no longer ``frm`` (someone else moved it first).

        ``prior`` is the payment as the caller last read it: its creation-time fields
        (notify URL) tell whether the change queues a callback; without it the ledger
        assumes it may."""
        check_payment(frm, to)
        now = utcnow()
        if PaymentStatus(to) not in PAYMENT_OPEN:
            fields.setdefault("next_check_at", None)
            fields.setdefault("lease_until", None)

        stmt = _transition_stmt(tuple(sorted(fields)))
        params = {"k_id": payment_id, "k_from": frm, "k_to": to, "k_now": now,
                  **{f"v_{k}": v for k, v in fields.items()}}
        if (self.writer.multi_statement_cte and prior is not None
                and not (prior.notify_url and PaymentStatus(to) in CALLBACK_PAYMENT_STATES)):
            wb = _writeback_action(to)
            params.update(e_from=frm, e_to=to, e_source=source, e_operator=operator, e_detail=detail or {},
                          e_created_at=now)
            row = await self.writer.run_one(_pg_transition_stmt(tuple(sorted(fields)),
                                                                wb if prior.his_system else None), params,
                                            durable=source == "manual")
            if row is None:
                return None
            return await self._transitioned(row, payment_id, frm, to, source, operator, detail)

        def tx(conn: Connection) -> Any:
            row = conn.execute(stmt, params).first()
            if row is None:
                raise _Lost
            _event(conn, payment_id=payment_id, from_status=frm, to_status=to, source=source, operator=operator,
                   detail=detail or {}, created_at=now)
            action = _writeback_action(to) if row.his_system else None
            if action == "activate":
                # Success after the caller closed or reversed it: the patient may have paid twice.
                late = row.gave_up_at is not None or bool(row.reverse_requested)
                conn.execute(_ACTIVATE_WRITEBACK, {"k_pid": payment_id, "k_now": now, "k_late": late})
            elif action == "cancel":
                conn.execute(_CANCEL_WRITEBACK, {"k_pid": payment_id, "k_now": now})
            if row.notify_url and PaymentStatus(to) in CALLBACK_PAYMENT_STATES:
                event = f"payment.{to.lower()}"
                _outbox(conn, app_id=row.app_id, payment_id=payment_id, refund_id=None, event=event,
                        url=row.notify_url, now=now,
                        body={"event": event, "payment": payment_out(_payment(row)).model_dump(mode="json")})
            return row

        try:
            row = await self.writer.run(tx, durable=source == "manual")
        except _Lost:
            return None
        return await self._transitioned(row, payment_id, frm, to, source, operator, detail)

    async def _transitioned(self, row: Any, payment_id: str, frm: str, to: str, source: str, operator: str | None,
                            detail: dict[str, Any] | None) -> Payment:
        payment = _payment(row)
        d = detail or {}
        await self._emit({"kind": "payment", "payment_id": payment_id, "refund_id": None, "from_status": frm,
                          "to_status": to, "amount": payment.amount, "channel": payment.channel,
                          "app_id": payment.app_id, "source": source, "operator": operator,
                          "reason": d.get("error_code") or d.get("comment")})
        return payment

    async def update_payment(self, payment_id: str, *, expect_status: str | None = None, **fields: Any) -> bool:
        """Change non-status fields (schedule, review flags, urls)."""
        cond = [Payment.id == payment_id]
        if expect_status is not None:
            cond.append(Payment.status == expect_status)

        def tx(conn: Connection) -> bool:
            return conn.execute(update(Payment).where(*cond).values(updated_at=utcnow(), **fields)).rowcount == 1

        return await self.writer.run(tx, durable=False)

    async def record_payment_note(self, payment_id: str, status: str, *, source: str, detail: dict[str, Any],
                                  operator: str | None = None) -> None:
        """Append an event that records evidence without changing the status."""
        await self.writer.run(lambda conn: _event(conn, payment_id=payment_id, from_status=status, to_status=status,
                                                  source=source, operator=operator, detail=detail),
                              durable=source == "manual")

    async def claim_due_payments(self, now: dt.datetime, lease: dt.timedelta, limit: int) -> list[Payment]:
        """Lease open payments whose next check is due; another process skips leased rows."""
        async with self.rsm() as s:
            ids = (await s.execute(
                select(Payment.id).where(
                    Payment.status.in_([st.value for st in PAYMENT_OPEN]) | Payment.reverse_requested.is_(True),
                    Payment.next_check_at.is_not(None), Payment.next_check_at <= now,
                    Payment.needs_review.is_(False),
                    or_(Payment.lease_until.is_(None), Payment.lease_until < now),
                ).order_by(Payment.next_check_at).limit(limit))).scalars().all()
        if not ids:
            return []

        def tx(conn: Connection) -> list[Any]:
            rows = []
            for pid in ids:
                row = conn.execute(update(Payment).where(
                    Payment.id == pid, or_(Payment.lease_until.is_(None), Payment.lease_until < now))
                    .values(lease_until=now + lease).returning(*_PAY_COLS)).first()
                if row is not None:
                    rows.append(row)
            return rows

        return [_payment(r) for r in await self.writer.run(tx, durable=False)]

    async def payment_events(self, payment_id: str) -> list[PaymentEvent]:
        async with self.rsm() as s:
            return list((await s.execute(select(PaymentEvent).where(PaymentEvent.payment_id == payment_id)
                                         .order_by(PaymentEvent.id))).scalars())

    # --- refunds --------------------------------------------------------------------
    async def insert_refund(self, row: Refund) -> tuple[Refund, bool, bool]:
        """Record the refund intent and reserve its amount against the payment, atomically.

        Returns (refund, created, reserved). ``reserved`` is False when the payment's
        refundable amount is smaller than the refund (nothing is written then).
        """
        values = {c.key: getattr(row, c.key) for c in _REF_COLS}

        def tx(conn: Connection) -> bool:
            res = conn.execute(update(Payment).where(
                Payment.id == row.payment_id,
                Payment.status.in_([st.value for st in PAYMENT_PAID]),
                Payment.amount - Payment.refund_reserved >= row.amount,
            ).values(refund_reserved=Payment.refund_reserved + row.amount, updated_at=utcnow()))
            if res.rowcount != 1:
                return False
            conn.execute(insert(Refund).values(**values))
            _event(conn, payment_id=row.payment_id, refund_id=row.id, from_status=None, to_status=row.status,
                   source="api", operator=row.operator, detail={"amount": row.amount, "reason": row.reason})
            return True

        try:
            reserved = await self.writer.run(tx)
        except IntegrityError:  # the same out_refund_no won meanwhile; its reservation stands, ours rolled back
            reserved = None
        if reserved:
            return row, True, True
        existing = await self.refund_by_out_refund_no(row.app_id, row.out_refund_no)
        if existing is not None:
            return existing, False, True
        if reserved is None:  # pragma: no cover
            raise RuntimeError("refund vanished after a unique-key conflict")
        return row, False, False

    async def get_refund(self, refund_id: str) -> Refund | None:
        async with self.rsm() as s:
            return await s.get(Refund, refund_id)

    async def refund_by_out_refund_no(self, app_id: str, out_refund_no: str) -> Refund | None:
        async with self.rsm() as s:
            return (await s.execute(select(Refund).where(
                Refund.app_id == app_id, Refund.out_refund_no == out_refund_no))).scalar_one_or_none()

    async def transition_refund(self, refund_id: str, frm: str, to: str, *, source: str,
                                operator: str | None = None, detail: dict[str, Any] | None = None,
                                **fields: Any) -> bool:
        """Move a refund; on success count it on the payment, on failure release its reservation."""
        check_refund(frm, to)
        now = utcnow()
        if RefundStatus(to) not in REFUND_OPEN:
            fields.setdefault("next_check_at", None)
            fields.setdefault("lease_until", None)

        def tx(conn: Connection) -> tuple[Any, Any, tuple[str, str] | None]:
            refund = conn.execute(update(Refund).where(Refund.id == refund_id, Refund.status == frm)
                                  .values(status=to, updated_at=now, **fields).returning(*_REF_COLS)).first()
            if refund is None:
                raise _Lost
            _event(conn, payment_id=refund.payment_id, refund_id=refund_id, from_status=frm, to_status=to,
                   source=source, operator=operator, detail=detail or {}, created_at=now)
            pay_change = None
            if RefundStatus(to) in CALLBACK_REFUND_STATES:
                url = refund.notify_url or conn.execute(select(Payment.notify_url).where(
                    Payment.id == refund.payment_id)).scalar()
                if url:
                    event = f"refund.{to.lower()}"
                    _outbox(conn, app_id=refund.app_id, payment_id=refund.payment_id, refund_id=refund_id,
                            event=event, url=url, now=now,
                            body={"event": event, "refund": refund_out(_refund(refund)).model_dump(mode="json")})
            if to == RefundStatus.SUCCEEDED:
                pay = conn.execute(update(Payment).where(Payment.id == refund.payment_id)
                                   .values(refunded_amount=Payment.refunded_amount + refund.amount, updated_at=now)
                                   .returning(Payment.status, Payment.amount, Payment.refunded_amount,
                                              Payment.channel)).one()
                new = PaymentStatus.REFUNDED if pay.refunded_amount >= pay.amount else PaymentStatus.PARTIALLY_REFUNDED
                check_payment(pay.status, new)
                conn.execute(update(Payment).where(Payment.id == refund.payment_id).values(status=new))
                _event(conn, payment_id=refund.payment_id, refund_id=refund_id, from_status=pay.status,
                       to_status=new, source=source, operator=operator,
                       detail={"refunded_amount": pay.refunded_amount}, created_at=now)
                pay_change = (pay.status, new.value)
                if refund.his_write_back:
                    _queue_refund_writeback(conn, refund, now)
                return refund, pay.channel, pay_change
            if to == RefundStatus.FAILED:
                conn.execute(update(Payment).where(Payment.id == refund.payment_id)
                             .values(refund_reserved=Payment.refund_reserved - refund.amount, updated_at=now))
            channel = conn.execute(select(Payment.channel).where(Payment.id == refund.payment_id)).scalar()
            return refund, channel, pay_change

        try:
            refund, channel, pay_change = await self.writer.run(tx, durable=source == "manual")
        except _Lost:
            return False
        base = {"payment_id": refund.payment_id, "channel": channel, "app_id": refund.app_id, "source": source,
                "operator": operator, "reason": refund.reason}
        await self._emit({**base, "kind": "refund", "refund_id": refund_id, "from_status": frm, "to_status": to,
                          "amount": refund.amount})
        if pay_change:
            await self._emit({**base, "kind": "payment", "refund_id": refund_id, "from_status": pay_change[0],
                              "to_status": pay_change[1], "amount": refund.amount})
        return True

    async def update_refund(self, refund_id: str, **fields: Any) -> None:
        await self.writer.run(lambda conn: conn.execute(
            update(Refund).where(Refund.id == refund_id).values(updated_at=utcnow(), **fields)), durable=False)

    async def claim_due_refunds(self, now: dt.datetime, lease: dt.timedelta, limit: int) -> list[Refund]:
        async with self.rsm() as s:
            ids = (await s.execute(select(Refund.id).where(
                Refund.status.in_([st.value for st in REFUND_OPEN]),
                Refund.next_check_at.is_not(None), Refund.next_check_at <= now,
                Refund.needs_review.is_(False),
                or_(Refund.lease_until.is_(None), Refund.lease_until < now),
            ).order_by(Refund.next_check_at).limit(limit))).scalars().all()
        if not ids:
            return []

        def tx(conn: Connection) -> list[Any]:
            rows = []
            for rid in ids:
                row = conn.execute(update(Refund).where(
                    Refund.id == rid, or_(Refund.lease_until.is_(None), Refund.lease_until < now))
                    .values(lease_until=now + lease).returning(*_REF_COLS)).first()
                if row is not None:
                    rows.append(row)
            return rows

        return [_refund(r) for r in await self.writer.run(tx, durable=False)]

    # --- review queue ----------------------------------------------------------------
    async def review_queue(self) -> tuple[list[Payment], list[Refund]]:
        async with self.rsm() as s:
            pays = list((await s.execute(select(Payment).where(Payment.needs_review.is_(True))
                                         .order_by(Payment.updated_at))).scalars())
            refs = list((await s.execute(select(Refund).where(Refund.needs_review.is_(True))
                                         .order_by(Refund.updated_at))).scalars())
        return pays, refs

    async def audit_search(self, *, action: str | None = None, actor: str | None = None, target: str | None = None,
                           limit: int = 200) -> list[dict[str, Any]]:
        q = select(AuditLog).order_by(AuditLog.id.desc()).limit(limit)
        if action:
            q = q.where(AuditLog.action.startswith(action))
        if actor:
            q = q.where(AuditLog.actor == actor)
        if target:
            q = q.where(AuditLog.target == target)
        async with self.rsm() as s:
            rows = list((await s.execute(q)).scalars())
        return [{"id": r.id, "actor": r.actor, "action": r.action, "target": r.target, "detail": r.detail,
                 "at": r.created_at.isoformat()} for r in rows]

    async def audit(self, actor: str, action: str, target: str | None, detail: dict[str, Any]) -> None:
        await self.writer.run(lambda conn: conn.execute(insert(AuditLog).values(
            actor=actor, action=action, target=target, detail=detail, created_at=utcnow())))
