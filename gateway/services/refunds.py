"""Refunds along the original route (原路退回).

The amount is reserved against the payment in the same transaction that records the
refund's intent, by a conditional UPDATE, so concurrent refunds (in any number of
processes) can never together exceed what was paid.
"""
from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from ..channel import Capability, RefundRequest, RefundResult, RefundStatus as ChanRefund
from ..db.models import Refund, utcnow
from ..errors import (IdempotencyConflict, InvalidState, RefundExceedsPaid, RefundNotFound,
                      UpstreamError, YinyiError)
from ..schemas import RefundCreate
from ..statemachine import PAYMENT_PAID, RefundStatus
from .payments import new_id, request_hash
from .upstream import call_upstream

if TYPE_CHECKING:
    from ..core import Core

RS = RefundStatus
_CHAN = {ChanRefund.SUCCEEDED: RS.SUCCEEDED, ChanRefund.FAILED: RS.FAILED}


class RefundService:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.ledger = core.ledger

    async def create(self, app_id: str | None, payment_id: str, req: RefundCreate) -> Refund:
        core = self.core
        payment = await core.payments.get(app_id, payment_id)
        owner = payment.app_id
        cls = core.registry.require(payment.channel, Capability.REFUND)
        fingerprint = request_hash({"payment_id": payment_id, "amount": req.amount, "out_refund_no": req.out_refund_no,
                                    **({"his_write_back": True} if req.his_write_back else {})})
        existing = await self.ledger.refund_by_out_refund_no(owner, req.out_refund_no)
        if existing is not None:
            return self._same_or_conflict(existing, fingerprint)
        if payment.status not in PAYMENT_PAID:
            raise InvalidState(f"payment is {payment.status}; only paid payments can be refunded",
                               current_status=payment.status)
        if req.amount < payment.amount and not cls.supports(Capability.PARTIAL_REFUND):
            core.registry.require(payment.channel, Capability.PARTIAL_REFUND)
        now = utcnow()
        row = Refund(id=new_id("R"), payment_id=payment.id, app_id=owner, out_refund_no=req.out_refund_no,
                     request_hash=fingerprint, amount=req.amount, reason=req.reason, operator=req.operator,
                     notify_url=req.notify_url, status=RS.PROCESSING.value, check_count=0, needs_review=False,
                     his_write_back=req.his_write_back,
                     next_check_at=now + dt.timedelta(seconds=30), created_at=now, updated_at=now)
        refund, created, reserved = await self.ledger.insert_refund(row)
        if not reserved:
            fresh = await core.payments.get(None, payment.id)
            raise RefundExceedsPaid(
                f"refundable {fresh.amount - fresh.refund_reserved} fen, asked {req.amount}",
                refundable=fresh.amount - fresh.refund_reserved, requested=req.amount)
        if not created:
            return self._same_or_conflict(refund, fingerprint)

        adapter = await core.directory.adapter_for(payment.merchant_id)
        rreq = RefundRequest(out_trade_no=payment.id, channel_trade_no=payment.channel_trade_no,
                             out_refund_no=refund.id, amount=req.amount, total=payment.amount, reason=req.reason,
                             notify_url=f"{core.settings.effective_public_base_url}/v1/notify/"
                                        f"{payment.channel}/{payment.merchant_id}")
        try:
            result = await call_upstream(core.ilog, adapter, "refund", adapter.refund(rreq),
                                         merchant_id=payment.merchant_id, payment_id=payment.id, request=rreq,
                                         timeout=core.settings.upstream_timeout_seconds)
        except UpstreamError as exc:
            await self.ledger.transition_refund(refund.id, RS.PROCESSING, RS.UNKNOWN, source="api",
                                                detail={"error": exc.code}, error_code=exc.code,
                                                next_check_at=utcnow() + dt.timedelta(seconds=5))
            return await self.get(None, refund.id)
        except YinyiError as exc:
            await self.ledger.transition_refund(refund.id, RS.PROCESSING, RS.FAILED, source="api",
                                                detail={"error": exc.code}, error_code=exc.code,
                                                error_message=str(exc)[:256])
            raise
        await self.apply_refund(refund, result, source="api")
        return await self.get(None, refund.id)

    @staticmethod
    def _same_or_conflict(refund: Refund, fingerprint: str) -> Refund:
        if refund.request_hash != fingerprint:
            raise IdempotencyConflict(f"out_refund_no {refund.out_refund_no!r} was used with a different request",
                                      refund_id=refund.id)
        return refund

    async def apply_refund(self, refund: Refund, result: RefundResult, *, source: str) -> bool:
        target = _CHAN.get(result.status)
        if target is None:  # still processing at the channel
            fields = {"channel_refund_no": result.channel_refund_no or refund.channel_refund_no,
                      "next_check_at": utcnow() + dt.timedelta(
                          seconds=self.core.registry.channel((await self.core.payments.get(None, refund.payment_id)).channel).query_interval)}
            if refund.status == RS.UNKNOWN:
                return await self.ledger.transition_refund(refund.id, RS.UNKNOWN, RS.PROCESSING, source=source,
                                                           detail={"channel_status": result.status.value}, **fields)
            await self.ledger.update_refund(refund.id, **fields)
            return False
        if refund.status == target.value or refund.status not in (RS.PROCESSING, RS.UNKNOWN):
            return False
        fields = {"channel_refund_no": result.channel_refund_no or refund.channel_refund_no}
        if target == RS.SUCCEEDED:
            fields["refunded_at"] = result.refunded_at or utcnow()
        else:
            fields.update(error_code=result.error_code, error_message=(result.error_message or "")[:256])
        return await self.ledger.transition_refund(
            refund.id, refund.status, target, source=source,
            detail={"channel_status": result.status.value, "error_code": result.error_code}, **fields)

    async def get(self, app_id: str | None, refund_id: str) -> Refund:
        r = await self.ledger.get_refund(refund_id)
        if r is None or (app_id is not None and r.app_id != app_id):
            raise RefundNotFound(f"refund {refund_id!r} not found")
        return r
