"""The resolver: settles every payment and refund whose outcome is not yet known.

It runs in every gateway process; rows are leased before work so that processes
sharing one database never work the same item at once. Per channel schedule:
- payment-code payments still PAYING/UNKNOWN are queried at the channel's
  ``code_poll_schedule`` offsets and reversed (撤销) when the schedule ends;
- QR/JSAPI/H5 orders are queried every ``query_interval`` and closed at the
  channel (then locally) once expired;
- an intent with no channel answer (the process died mid-call) is queried; an
  order the channel has never seen is FAILED once a grace period has passed;
- anything still unsettled after ``resolver_max_attempts`` goes to the review queue.
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from typing import TYPE_CHECKING

from ..channel import ChannelAdapter, Method, TradeStatus
from ..db.models import Payment, Refund, utcnow
from ..errors import UpstreamError, YinyiError
from ..metrics import RESOLVER_RUNS
from ..statemachine import PAYMENT_OPEN, PaymentStatus, RefundStatus
from .upstream import call_upstream

if TYPE_CHECKING:
    from ..core import Core

log = logging.getLogger("yinyi.resolver")
PS = PaymentStatus
LEASE = dt.timedelta(seconds=60)


class Resolver:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.ledger = core.ledger
        self._task: asyncio.Task[None] | None = None

    # --- schedule -----------------------------------------------------------------------
    def next_check(self, p: Payment, cls: type[ChannelAdapter], now: dt.datetime) -> dt.datetime:
        if p.method == Method.CODE.value:
            for offset in cls.code_poll_schedule:
                at = p.created_at + dt.timedelta(seconds=offset)
                if at > now:
                    return at
            return now  # schedule exhausted: the next pass reverses
        nxt = now + dt.timedelta(seconds=cls.query_interval)
        if p.expire_at is not None and p.expire_at < nxt:
            return max(p.expire_at, now)
        return nxt

    def _backoff(self, attempts: int) -> dt.timedelta:
        return dt.timedelta(seconds=min(300.0, 2.0 * (2 ** min(attempts, 8))))

    # --- loop ---------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="resolver")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        interval = self.core.settings.resolver_interval_seconds
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("resolver pass failed")
            await asyncio.sleep(interval)

    async def run_once(self, now: dt.datetime | None = None) -> int:
        """One pass over due items. Returns how many were handled."""
        now = now or utcnow()
        batch = self.core.settings.resolver_batch
        pays = await self.ledger.claim_due_payments(now, LEASE, batch)
        refs = await self.ledger.claim_due_refunds(now, LEASE, batch)
        for p in pays:
            await self._guard(self.settle_payment(p), "payment", p.id)
        for r in refs:
            await self._guard(self.settle_refund(r), "refund", r.id)
        return len(pays) + len(refs)

    async def _guard(self, coro, kind: str, ident: str) -> None:  # type: ignore[no-untyped-def]
        try:
            await coro
        except Exception:
            log.exception("resolver could not settle %s %s", kind, ident)
            RESOLVER_RUNS.labels(kind=kind, result="error").inc()

    # --- payments -----------------------------------------------------------------------
    async def settle_payment(self, p: Payment) -> None:
        core = self.core
        cls = core.registry.channel(p.channel)
        adapter = await core.directory.adapter_for(p.merchant_id)
        now = utcnow()
        if p.reverse_requested and p.status in (*PAYMENT_OPEN, PS.SUCCEEDED):
            await self.reverse_at_channel(p, source="resolver")
            return
        try:
            result = await call_upstream(core.ilog, adapter, "query", adapter.query(p.id), merchant_id=p.merchant_id,
                                         payment_id=p.id, timeout=core.settings.upstream_timeout_seconds)
        except UpstreamError as exc:
            await self._retry_later(p, f"query failed: {exc.code}")
            return
        RESOLVER_RUNS.labels(kind="payment", result=result.status.value).inc()
        if result.status == TradeStatus.NOT_FOUND and p.method != Method.CODE.value:
            # Some channels create a QR/H5 order only when the patient opens it: absent is
            # not failed until the order expires, and then it is closed at the channel.
            if p.expire_at is not None and now < p.expire_at:
                await self.ledger.update_payment(p.id, lease_until=None, check_count=p.check_count + 1,
                                                 next_check_at=self.next_check(p, cls, now))
            else:
                await self.close_at_channel(p, source="resolver")
            return
        if result.status == TradeStatus.NOT_FOUND:
            if now - p.created_at >= dt.timedelta(seconds=core.settings.not_found_grace_seconds):
                await self.ledger.transition_payment(
                    p.id, p.status, PS.FAILED, source="resolver", error_code="CHANNEL_ORDER_NOT_FOUND",
                    error_message="the channel has no such order", detail={"channel_status": "not_found"})
            else:
                await self.ledger.update_payment(p.id, lease_until=None, check_count=p.check_count + 1,
                                                 next_check_at=now + dt.timedelta(seconds=10))
            return
        if result.status in (TradeStatus.PENDING, TradeStatus.PAYING):
            if p.method == Method.CODE.value and now >= p.created_at + dt.timedelta(seconds=cls.code_poll_schedule[-1]):
                await self.reverse_at_channel(p, source="resolver")
                return
            if p.method != Method.CODE.value and p.expire_at is not None and now >= p.expire_at:
                await self.close_at_channel(p, source="resolver")
                return
        await core.payments.apply_trade(p, result, source="query")
        fresh = await self.ledger.get_payment(p.id)
        if fresh is not None and fresh.status in PAYMENT_OPEN:
            await self.ledger.update_payment(p.id, lease_until=None, check_count=fresh.check_count + 1,
                                             next_check_at=self.next_check(fresh, cls, now))

    async def _retry_later(self, p: Payment, reason: str) -> None:
        attempts = p.check_count + 1
        if attempts >= self.core.settings.resolver_max_attempts:
            await self.ledger.update_payment(p.id, lease_until=None, check_count=attempts, needs_review=True,
                                             review_reason=f"unsettled after {attempts} attempts; last: {reason}")
            await self.ledger.record_payment_note(p.id, p.status, source="resolver",
                                                  detail={"review": True, "reason": reason, "attempts": attempts})
            RESOLVER_RUNS.labels(kind="payment", result="review").inc()
            return
        await self.ledger.update_payment(p.id, lease_until=None, check_count=attempts,
                                         next_check_at=utcnow() + self._backoff(attempts))

    async def reverse_at_channel(self, p: Payment, *, source: str) -> None:
        core = self.core
        adapter = await core.directory.adapter_for(p.merchant_id)
        try:
            res = await call_upstream(core.ilog, adapter, "reverse", adapter.reverse(p.id), merchant_id=p.merchant_id,
                                      payment_id=p.id, timeout=core.settings.upstream_timeout_seconds)
        except UpstreamError as exc:
            await self.ledger.update_payment(p.id, reverse_requested=True)
            await self._retry_later(p, f"reverse failed: {exc.code}")
            return
        if res.done:
            await self.ledger.transition_payment(p.id, p.status, PS.REVERSED, source=source,
                                                 detail={"action": "reverse"}, reverse_requested=False)
            return
        await self.ledger.update_payment(p.id, reverse_requested=True)
        if res.retry:
            retry_in = core.registry.channel(p.channel).reverse_retry_seconds
            await self.ledger.update_payment(p.id, lease_until=None, check_count=p.check_count + 1,
                                             next_check_at=utcnow() + dt.timedelta(seconds=retry_in))
        else:
            await self._retry_later(p, f"reverse refused: {res.error_code} {res.error_message}")

    async def close_at_channel(self, p: Payment, *, source: str, operator: str | None = None) -> None:
        """Close at the channel, then confirm by query: a patient may have paid in between."""
        core = self.core
        adapter = await core.directory.adapter_for(p.merchant_id)
        try:
            await call_upstream(core.ilog, adapter, "close", adapter.close(p.id), merchant_id=p.merchant_id,
                                payment_id=p.id, timeout=core.settings.upstream_timeout_seconds)
            result = await call_upstream(core.ilog, adapter, "query", adapter.query(p.id), merchant_id=p.merchant_id,
                                         payment_id=p.id, timeout=core.settings.upstream_timeout_seconds)
        except UpstreamError as exc:
            await self._retry_later(p, f"close failed: {exc.code}")
            return
        except YinyiError as exc:  # e.g. the channel refuses to close because it is paid
            log.info("close of %s refused: %s", p.id, exc)
            result = None
        if result is None or result.status in (TradeStatus.PENDING, TradeStatus.PAYING):
            await self.ledger.update_payment(p.id, lease_until=None, next_check_at=utcnow() + dt.timedelta(seconds=5))
            return
        if result.status == TradeStatus.NOT_FOUND:
            await self.ledger.transition_payment(p.id, p.status, PS.CLOSED, source=source, operator=operator,
                                                 detail={"action": "close", "channel_status": "not_found"})
            return
        await core.payments.apply_trade(p, result, source="query")

    # --- refunds ------------------------------------------------------------------------
    async def settle_refund(self, r: Refund) -> None:
        core = self.core
        payment = await self.ledger.get_payment(r.payment_id)
        if payment is None:
            return
        adapter = await core.directory.adapter_for(payment.merchant_id)
        try:
            result = await call_upstream(core.ilog, adapter, "query_refund", adapter.query_refund(r.id, payment.id),
                                         merchant_id=payment.merchant_id, payment_id=payment.id,
                                         timeout=core.settings.upstream_timeout_seconds)
        except UpstreamError as exc:
            attempts = r.check_count + 1
            if attempts >= core.settings.resolver_max_attempts:
                await self.ledger.update_refund(r.id, lease_until=None, check_count=attempts, needs_review=True,
                                                review_reason=f"unsettled after {attempts} attempts: {exc.code}")
            else:
                await self.ledger.update_refund(r.id, lease_until=None, check_count=attempts,
                                                next_check_at=utcnow() + self._backoff(attempts))
            return
        RESOLVER_RUNS.labels(kind="refund", result=result.status.value).inc()
        await core.refunds.apply_refund(r, result, source="query")
        fresh = await self.ledger.get_refund(r.id)
        if fresh is not None and fresh.status in (RefundStatus.PROCESSING, RefundStatus.UNKNOWN):
            await self.ledger.update_refund(r.id, lease_until=None, check_count=fresh.check_count + 1)
