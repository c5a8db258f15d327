"""The review queue (人工核查): items the resolver's schedule could not settle.

An authorised user sees the evidence (events and interface-log calls) and either
sets the final status the channel's records prove, or puts the item back in the
resolver's queue. Every decision is audited.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..db.models import utcnow
from ..errors import InvalidState, ValidationFailed
from ..schemas import ReviewResolve, payment_out, refund_out
from ..statemachine import (PAYMENT_TRANSITIONS, REFUND_TRANSITIONS, PaymentStatus, RefundStatus)

if TYPE_CHECKING:
    from ..core import Core


class ReviewService:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.ledger = core.ledger

    async def queue(self) -> dict[str, Any]:
        pays, refs = await self.ledger.review_queue()
        out_p = []
        for p in pays:
            events = await self.ledger.payment_events(p.id)
            calls = await self.core.ilog.search(payment_id=p.id, limit=50)
            out_p.append({"payment": payment_out(p).model_dump(mode="json"), "reason": p.review_reason,
                          "events": [{"from": e.from_status, "to": e.to_status, "source": e.source,
                                      "detail": e.detail, "at": e.created_at.isoformat()} for e in events],
                          "interface_calls": calls})
        out_r = [{"refund": refund_out(r).model_dump(mode="json"), "reason": r.review_reason} for r in refs]
        return {"payments": out_p, "refunds": out_r}

    async def resolve_payment(self, payment_id: str, decision: ReviewResolve) -> dict[str, Any]:
        p = await self.core.payments.get(None, payment_id)
        if not p.needs_review:
            raise InvalidState("payment is not in the review queue", current_status=p.status)
        if decision.action == "requeue":
            await self.ledger.update_payment(p.id, needs_review=False, review_reason=None, check_count=0,
                                             next_check_at=utcnow(), lease_until=None)
        else:
            try:
                target = PaymentStatus(decision.status or "")
            except ValueError as exc:
                raise ValidationFailed(f"unknown status {decision.status!r}") from exc
            if target not in PAYMENT_TRANSITIONS[PaymentStatus(p.status)]:
                raise InvalidState(f"a payment may not go from {p.status} to {target}", current_status=p.status)
            ok = await self.ledger.transition_payment(
                p.id, p.status, target, source="manual", operator=decision.operator,
                detail={"comment": decision.comment, "review_reason": p.review_reason},
                needs_review=False, review_reason=None, reverse_requested=False)
            if not ok:
                raise InvalidState("payment changed while being reviewed; reload and decide again")
        await self.ledger.audit(decision.operator, f"review.payment.{decision.action}", p.id,
                                {"status": decision.status, "comment": decision.comment, "was": p.status})
        return payment_out(await self.core.payments.get(None, p.id)).model_dump(mode="json")

    async def resolve_refund(self, refund_id: str, decision: ReviewResolve) -> dict[str, Any]:
        r = await self.core.refunds.get(None, refund_id)
        if not r.needs_review:
            raise InvalidState("refund is not in the review queue", current_status=r.status)
        if decision.action == "requeue":
            await self.ledger.update_refund(r.id, needs_review=False, review_reason=None, check_count=0,
                                            next_check_at=utcnow(), lease_until=None)
        else:
            try:
                target = RefundStatus(decision.status or "")
            except ValueError as exc:
                raise ValidationFailed(f"unknown status {decision.status!r}") from exc
            if target not in REFUND_TRANSITIONS[RefundStatus(r.status)]:
                raise InvalidState(f"a refund may not go from {r.status} to {target}", current_status=r.status)
            ok = await self.ledger.transition_refund(
                r.id, r.status, target, source="manual", operator=decision.operator,
                detail={"comment": decision.comment}, needs_review=False, review_reason=None)
            if not ok:
                raise InvalidState("refund changed while being reviewed; reload and decide again")
        await self.ledger.audit(decision.operator, f"review.refund.{decision.action}", r.id,
                                {"status": decision.status, "comment": decision.comment, "was": r.status})
        return refund_out(await self.core.refunds.get(None, r.id)).model_dump(mode="json")
