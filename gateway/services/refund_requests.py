"""Refund applications for any paid payment (退款申请): an approval of kind ``payment_refund``.

Staff apply for an original-route refund of a payment with an amount and a reason; the
approval tier's role decides; on approval the refund is made along the original route
(``RefundService``) with the out_refund_no ``RQ-<approval id>``, so it happens once. Where
the business system recorded the payment, the refund is written back to it too.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from ..db.models import Approval
from ..errors import InvalidState, RefundExceedsPaid, YinyiError
from ..schemas import RefundCreate
from ..statemachine import PAYMENT_PAID

if TYPE_CHECKING:
    from ..core import Core

log = logging.getLogger("yinyi.refund_requests")
KIND = "payment_refund"


class RefundRequests:
    def __init__(self, core: Core) -> None:
        self.core = core
        core.approvals.register(KIND, self._on_decision)

    async def request(self, payment_id: str, *, amount: int, reason: str | None, actor: str) -> dict[str, Any]:
        from .approvals import approval_out

        core = self.core
        p = await core.payments.get(None, payment_id)
        if p.status not in PAYMENT_PAID:
            raise InvalidState(f"payment is {p.status}; only paid payments can be refunded", current_status=p.status)
        refundable = p.amount - p.refund_reserved
        if amount > refundable:
            raise RefundExceedsPaid(f"refundable {refundable} fen, asked {amount}", refundable=refundable,
                                    requested=amount)
        async with core.rsm() as s:
            waiting = (await s.execute(select(Approval).where(Approval.kind == KIND, Approval.target_id == p.id,
                                                              Approval.status == "PENDING"))).scalar()
        if waiting is not None:
            raise InvalidState("a refund application for this payment is already waiting for approval",
                               current_status="PENDING", approval_id=waiting.id)
        row = await core.approvals.request(KIND, p.id, amount, applicant=actor, reason=reason,
                                           payload={"payment_id": p.id, "amount": amount, "reason": reason})
        return approval_out(row)

    async def _on_decision(self, approval: Approval, approved: bool, actor: str) -> None:
        if not approved:
            return
        core = self.core
        payload = approval.payload or {}
        wb = await core.writebacks.get_for_payment(approval.target_id)
        req = RefundCreate(out_refund_no=f"RQ-{approval.id}", amount=int(payload.get("amount", approval.amount)),
                           reason=(payload.get("reason") or "退款申请(已审核)")[:80], operator=approval.applicant[:64],
                           his_write_back=bool(wb is not None and wb.status == "RECORDED"))
        try:
            refund = await core.refunds.create(None, approval.target_id, req)
        except YinyiError as exc:
            log.warning("approved refund %s of payment %s was refused: %s", approval.id, approval.target_id, exc)
            await core.ledger.audit(actor, "payment_refund.failed", approval.id,
                                    {"payment_id": approval.target_id, "code": exc.code, "detail": exc.detail})
            raise
        await core.ledger.audit(actor, "payment_refund.started", approval.id,
                                {"payment_id": approval.target_id, "refund_id": refund.id, "amount": refund.amount,
                                 "status": refund.status})
