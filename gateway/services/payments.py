"""Payment flows: create (统一下单), query, close (关单), reverse (撤销), channel notify.

Rule of the money: the intent is in the ledger before the channel is called, and the
result after. An exception from the channel leaves the payment UNKNOWN for the
resolver; only a channel's answer (or a query) makes it FAILED.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from ..channel import Capability, Method, NotifyKind, PayRequest, PayResult, TradeStatus
from ..db.models import Payment, Refund, snapshot, utcnow
from ..errors import (IdempotencyConflict, InvalidState, NotifyRejected, PaymentNotFound,
                      UpstreamError, ValidationFailed, YinyiError)
from ..schemas import PaymentCreate
from ..statemachine import PAYMENT_OPEN, PAYMENT_TRANSITIONS, PaymentStatus
from ..vault import mask_value
from .upstream import call_upstream

if TYPE_CHECKING:
    from ..core import Core

log = logging.getLogger("yinyi.payments")
PS = PaymentStatus

_METHOD_CAP = {Method.CODE: Capability.CODE, Method.QR: Capability.QR, Method.JSAPI: Capability.JSAPI,
               Method.H5: Capability.H5}


def new_id(prefix: str) -> str:
    """Ledger ids double as the channel's out_trade_no: short, alphanumeric, time-ordered."""
    return prefix + utcnow().strftime("%Y%m%d%H%M%S") + secrets.token_hex(5)


def request_hash(payload: Mapping[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(dict(payload), option=orjson.OPT_SORT_KEYS)).hexdigest()


# What a channel's trade status means for the ledger.
_SETTLED: dict[TradeStatus, PaymentStatus] = {
    TradeStatus.SUCCEEDED: PS.SUCCEEDED,
    TradeStatus.REFUNDED: PS.SUCCEEDED,  # money moved; refunds are counted by our own refund rows
    TradeStatus.FAILED: PS.FAILED,
    TradeStatus.CLOSED: PS.CLOSED,
    TradeStatus.REVERSED: PS.REVERSED,
}


class PaymentService:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.ledger = core.ledger

    # --- create -----------------------------------------------------------------------
    async def create(self, app_id: str, req: PaymentCreate, *, collection_mode: str = "online",
                     merchant_id: str | None = None) -> Payment:
        """Create a payment. ``merchant_id`` pins the merchant (fixed collection codes)."""
        core = self.core
        app = await core.directory.get_app(app_id)
        fingerprint = request_hash({k: v for k, v in req.model_dump(mode="json").items()
                                    if k not in ("wait_seconds", "notify_url", "operator", "client_ip")})
        try:
            off = await core.directory.disabled_channels()
            channel = req.channel or core.registry.detect_channel(req.auth_code or "", also_disabled=off)
            cls = core.registry.require(channel, _METHOD_CAP[req.method])
            if req.method == Method.CODE and req.channel and req.auth_code and not cls.matches_auth_code(req.auth_code):
                # The code's digits contradict the named channel: refuse before any money moves.
                core.registry.detect_channel(req.auth_code, also_disabled=off)
            await core.directory.check_switch(channel, req.method.value)
            entry, campus = await core.directory.resolve_entry(
                app, req.entry, business_type=req.business_type, campus=req.campus, channel=channel,
                method=req.method.value)
            if merchant_id is not None:
                merchant = await core.directory.merchant(merchant_id, channel)
            else:
                merchant = await core.directory.select_merchant(app, channel, req.business_type, campus, entry)
        except YinyiError:
            # A retry of a payment made before a channel or merchant was reconfigured
            # still gets its payment; only new payments are refused.
            existing = await self.ledger.payment_by_out_trade_no(app.id, req.out_trade_no)
            if existing is not None:
                return await self._replay(existing, fingerprint, req)
            raise
        now = utcnow()
        pid = new_id("P")
        writeback = None
        if req.his is not None:
            # A retry must replay, not re-check the bill (its charges are paid by then).
            existing = await self.ledger.payment_by_out_trade_no(app.id, req.out_trade_no)
            if existing is not None:
                return await self._replay(existing, fingerprint, req)
            prepared = await core.writebacks.prepare(app.id, req.his, payment_id=pid, amount=req.amount,
                                                     business_type=req.business_type)
            writeback = prepared[1] if prepared else None
        ttl = dt.timedelta(minutes=req.expire_minutes) if req.expire_minutes else cls.order_ttl
        row: Payment = snapshot(
            Payment.__table__, id=pid, app_id=app.id, out_trade_no=req.out_trade_no, request_hash=fingerprint,
            channel=channel, merchant_id=merchant.id, method=req.method.value, amount=req.amount,
            subject=req.subject, business_type=req.business_type, campus_id=campus, entry=req.entry,
            operator=req.operator, notify_url=req.notify_url,
            auth_code_masked=mask_value(req.auth_code) if req.auth_code else None, openid=req.openid,
            status=PS.CREATED.value, refunded_amount=0, refund_reserved=0,
            expire_at=None if req.method == Method.CODE else now + ttl,
            # If this process dies before recording the channel's answer, the
            # resolver picks the intent up after this delay and asks the channel.
            next_check_at=now + dt.timedelta(seconds=cls.code_poll_schedule[0] if req.method == Method.CODE else 30),
            check_count=0, needs_review=False, reverse_requested=False, collection_mode=collection_mode,
            his_system=writeback["system_id"] if writeback else None, gave_up_at=None,
            created_at=now, updated_at=now)
        payment, created = await self.ledger.insert_payment(row, writeback)
        if not created:  # a concurrent identical request won the unique key
            return await self._replay(payment, fingerprint, req)

        adapter = await core.directory.adapter_for(merchant.id)
        pay_req = PayRequest(
            out_trade_no=payment.id, amount=req.amount, subject=req.subject, method=req.method,
            auth_code=req.auth_code, openid=req.openid,
            notify_url=f"{core.settings.effective_public_base_url}/v1/notify/{channel}/{merchant.id}",
            client_ip=req.client_ip, device_id=req.device_id, store_id=req.entry, expire_at=payment.expire_at)
        try:
            result = await call_upstream(core.ilog, adapter, f"pay.{req.method.value}", adapter.pay(pay_req),
                                         merchant_id=merchant.id, payment_id=payment.id, request=pay_req,
                                         timeout=core.settings.upstream_timeout_seconds)
        except UpstreamError as exc:
            await self.ledger.transition_payment(
                payment.id, PS.CREATED, PS.UNKNOWN, source="api", detail={"error": exc.code, "message": str(exc)},
                prior=payment,
                error_code=exc.code, next_check_at=utcnow() + dt.timedelta(seconds=2))
            return await self._maybe_wait(await self._reload(payment.id), req.wait_seconds)
        except YinyiError as exc:
            # Refused before the channel did anything (capability, configuration).
            await self.ledger.transition_payment(payment.id, PS.CREATED, PS.FAILED, source="api", prior=payment,
                                                 detail={"error": exc.code}, error_code=exc.code,
                                                 error_message=str(exc)[:256])
            raise
        updated = await self.apply_trade(payment, result, source="api")
        return await self._maybe_wait(updated or await self._reload(payment.id), req.wait_seconds)

    async def _replay(self, payment: Payment, fingerprint: str, req: PaymentCreate) -> Payment:
        if payment.request_hash != fingerprint:
            raise IdempotencyConflict(f"out_trade_no {req.out_trade_no!r} was used with a different request",
                                      payment_id=payment.id)
        return await self._maybe_wait(payment, req.wait_seconds)

    async def _reload(self, payment_id: str) -> Payment:
        p = await self.ledger.get_payment(payment_id)
        if p is None:
            raise PaymentNotFound(payment_id)
        return p

    async def _maybe_wait(self, payment: Payment, wait_seconds: int) -> Payment:
        """Hold the answer while a payment-code payment is open, settling it as the resolver would."""
        if wait_seconds <= 0 or payment.status not in PAYMENT_OPEN:
            return payment
        deadline = asyncio.get_running_loop().time() + wait_seconds
        while payment.status in PAYMENT_OPEN and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(min(2.0, max(0.1, deadline - asyncio.get_running_loop().time())))
            payment = await self._reload(payment.id)
            if payment.status in PAYMENT_OPEN:
                await self.core.resolver.settle_payment(payment)
                payment = await self._reload(payment.id)
        return payment

    # --- apply a channel's answer ---------------------------------------------------------
    async def apply_trade(self, payment: Payment, result: PayResult, *, source: str) -> Payment | None:
        """Record what the channel said about a payment. Returns the payment as changed by
        this call, or None when nothing changed (already there, stale, or raced)."""
        cls = self.core.registry.channel(payment.channel)
        now = utcnow()
        target = _SETTLED.get(result.status)
        if target is not None:
            current = PS(payment.status)
            if current == target or (target == PS.SUCCEEDED and current in (PS.PARTIALLY_REFUNDED, PS.REFUNDED)):
                return None
            if target not in PAYMENT_TRANSITIONS[current]:
                await self._contradiction(payment, result, source)
                return None
            fields: dict[str, Any] = {}
            if target == PS.SUCCEEDED:
                fields.update(channel_trade_no=result.channel_trade_no or payment.channel_trade_no,
                              paid_at=result.paid_at or now, payer_id=result.payer_id,
                              error_code=None, error_message=None)
            elif target == PS.FAILED:
                fields.update(error_code=result.error_code, error_message=(result.error_message or "")[:256])
            ok = await self.ledger.transition_payment(
                payment.id, payment.status, target, source=source, prior=payment,
                detail={"channel_status": result.status.value, "channel_trade_no": result.channel_trade_no,
                        "error_code": result.error_code}, **fields)
            if not ok:
                log.info("payment %s changed concurrently; %s answer from %s not applied", payment.id,
                         result.status, source)
            return ok
        if result.status == TradeStatus.NOT_FOUND:
            return None  # the resolver decides what an absent order means
        # PENDING / PAYING: the order exists at the channel and is open.
        fields = {"channel_trade_no": result.channel_trade_no or payment.channel_trade_no}
        if result.code_url:
            fields["code_url"] = result.code_url
        if result.h5_url:
            fields["h5_url"] = result.h5_url
        if result.jsapi_params:
            fields["jsapi_params"] = result.jsapi_params
        fields["next_check_at"] = self.core.resolver.next_check(payment, cls, now)
        if payment.status == PS.PAYING:
            await self.ledger.update_payment(payment.id, expect_status=PS.PAYING, **fields)
            return None
        return await self.ledger.transition_payment(payment.id, payment.status, PS.PAYING, source=source,
                                                    prior=payment,
                                                    detail={"channel_status": result.status.value}, **fields)

    async def _contradiction(self, payment: Payment, result: PayResult, source: str) -> None:
        """The channel says something the ledger's final state forbids (e.g. paid after FAILED).

        A late notify may simply be stale, so ask the channel for its current truth; if it
        still contradicts the ledger, money and ledger disagree and a person must look.
        """
        truth = result
        if source != "query":
            adapter = await self.core.directory.adapter_for(payment.merchant_id)
            try:
                truth = await call_upstream(self.core.ilog, adapter, "query", adapter.query(payment.id),
                                            merchant_id=payment.merchant_id, payment_id=payment.id,
                                            timeout=self.core.settings.upstream_timeout_seconds)
            except UpstreamError:
                truth = result
        target = _SETTLED.get(truth.status)
        detail = {"conflict": True, "ledger_status": payment.status, "channel_status": truth.status.value,
                  "reported_by": source}
        await self.ledger.record_payment_note(payment.id, payment.status, source=source, detail=detail)
        if target is not None and target.value != payment.status and not (
                target == PS.SUCCEEDED and payment.status in (PS.PARTIALLY_REFUNDED, PS.REFUNDED)):
            await self.ledger.update_payment(
                payment.id, needs_review=True,
                review_reason=f"channel reports {truth.status.value}, ledger has {payment.status}")

    # --- queries ------------------------------------------------------------------------
    async def get(self, app_id: str | None, payment_id: str) -> Payment:
        p = await self.ledger.get_payment(payment_id)
        if p is None or (app_id is not None and p.app_id != app_id):
            raise PaymentNotFound(f"payment {payment_id!r} not found")
        return p

    async def by_out_trade_no(self, app_id: str, out_trade_no: str) -> Payment:
        p = await self.ledger.payment_by_out_trade_no(app_id, out_trade_no)
        if p is None:
            raise PaymentNotFound(f"no payment with out_trade_no {out_trade_no!r}")
        return p

    async def by_out_trade_no_any(self, out_trade_no: str, app_id: str | None = None) -> Payment:
        """A payment by its business number whatever app made it (staff look-ups); ambiguous numbers
        need ``app_id``."""
        from sqlalchemy import select

        q = select(Payment).where(Payment.out_trade_no == out_trade_no).limit(2)
        if app_id:
            q = q.where(Payment.app_id == app_id)
        async with self.core.rsm() as s:
            rows = (await s.execute(q)).scalars().all()
        if not rows:
            raise PaymentNotFound(f"no payment with out_trade_no {out_trade_no!r}")
        if len(rows) > 1:
            raise ValidationFailed(f"several apps used out_trade_no {out_trade_no!r}; add app_id")
        return rows[0]

    # --- close and reverse ----------------------------------------------------------------
    async def close(self, app_id: str | None, payment_id: str, operator: str | None = None) -> Payment:
        """关单: stop an unpaid QR/JSAPI/H5 order from being paid, at the channel first."""
        p = await self.get(app_id, payment_id)
        if p.status in (PS.CLOSED,):
            return p
        if p.status not in PAYMENT_OPEN:
            raise InvalidState(f"payment is {p.status}; only unpaid orders can be closed", current_status=p.status)
        if p.method == Method.CODE:
            raise InvalidState("payment-code payments are reversed, not closed; use /reverse", current_status=p.status)
        self.core.registry.require(p.channel, Capability.CLOSE)
        # The caller gave up: a success arriving after this is a single-sided case at once.
        await self.ledger.update_payment(p.id, gave_up_at=utcnow())
        await self.core.resolver.close_at_channel(p, source="api", operator=operator)
        return await self._reload(p.id)

    async def reverse(self, app_id: str | None, payment_id: str, operator: str | None = None) -> Payment:
        """撤销: revoke a payment-code payment at the channel (returns the money if it was taken)."""
        p = await self.get(app_id, payment_id)
        if p.status == PS.REVERSED:
            return p
        self.core.registry.require(p.channel, Capability.REVERSE)
        if p.method != Method.CODE:
            raise InvalidState("only payment-code payments can be reversed; close or refund instead", current_status=p.status)
        if p.status not in (*PAYMENT_OPEN, PS.SUCCEEDED) or p.refund_reserved > 0:
            raise InvalidState(f"payment is {p.status}; it cannot be reversed", current_status=p.status)
        await self.ledger.update_payment(p.id, reverse_requested=True, gave_up_at=utcnow())
        await self.ledger.record_payment_note(p.id, p.status, source="api", operator=operator,
                                              detail={"action": "reverse_requested"})
        p = await self._reload(p.id)
        await self.core.resolver.reverse_at_channel(p, source="api")
        return await self._reload(p.id)

    # --- channel notify ------------------------------------------------------------------
    async def handle_notify(self, channel: str, merchant_id: str, headers: Mapping[str, str],
                            body: bytes) -> tuple[int, bytes, str]:
        adapter = await self.core.directory.adapter_for(merchant_id)
        if adapter.id != channel:
            raise NotifyRejected(f"merchant {merchant_id} is not a {channel} merchant")
        event, answer = await adapter.parse_notify(headers, body)
        try:
            if event.kind == NotifyKind.PAYMENT and event.trade is not None:
                p = await self.ledger.get_payment(event.out_trade_no)
                if p is None or p.merchant_id != merchant_id:
                    raise NotifyRejected(f"notify for unknown payment {event.out_trade_no}")
                await self.apply_trade(p, event.trade, source="notify")
            elif event.kind == NotifyKind.REFUND and event.refund is not None and event.out_refund_no:
                r: Refund | None = await self.ledger.get_refund(event.out_refund_no)
                if r is None:
                    raise NotifyRejected(f"notify for unknown refund {event.out_refund_no}")
                await self.core.refunds.apply_refund(r, event.refund, source="notify")
        except NotifyRejected:
            raise
        except Exception:
            log.exception("notify from %s/%s could not be applied; asking the channel to retry", channel, merchant_id)
            fail = adapter.notify_failure_answer("retry later")
            return fail.status, fail.body, fail.content_type
        return answer.status, answer.body, answer.content_type
