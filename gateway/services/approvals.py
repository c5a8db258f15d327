"""Approvals (审核): money-moving actions wait for a person holding the right role.

The role an application needs comes from ``approval_tiers`` by amount (审核区间).
Nobody decides their own application; ``admin`` may decide any tier. A decision is
a conditional update of a PENDING row, so two approvers racing cannot both decide,
and each kind of application registers the handler that carries it out.
Views: my applications, waiting for me (by my roles), done by me.
"""
from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select, update
from sqlalchemy.engine import Connection

from ..db.models import Approval, utcnow
from ..errors import ApprovalForbidden, ApprovalNotFound, InvalidState, YinyiError
from ..money import fen_to_yuan

if TYPE_CHECKING:
    from ..core import Core

log = logging.getLogger("yinyi.approvals")
Handler = Callable[[Approval, bool, str], Awaitable[None]]
_A = Approval.__table__
STATUS_ZH = {"PENDING": "待审核", "APPROVED": "已通过", "REJECTED": "已驳回", "WITHDRAWN": "已撤回"}
KIND_ZH = {"case_refund": "单边账退款", "ins_centre_reversal": "医保中心单边冲正",
           "payment_refund": "退款申请(原路退回)"}


def approval_out(a: Approval) -> dict[str, Any]:
    return {"id": a.id, "kind": a.kind, "kind_zh": KIND_ZH.get(a.kind, a.kind), "target_id": a.target_id,
            "amount": a.amount, "amount_yuan": fen_to_yuan(a.amount), "applicant": a.applicant, "reason": a.reason,
            "required_role": a.required_role, "status": a.status, "status_zh": STATUS_ZH.get(a.status, a.status),
            "decided_by": a.decided_by, "comment": a.comment, "created_at": a.created_at.isoformat(),
            "decided_at": a.decided_at.isoformat() if a.decided_at else None}


class ApprovalService:
    def __init__(self, core: Core) -> None:
        self.core = core
        self._handlers: dict[str, Handler] = {}

    def register(self, kind: str, handler: Handler) -> None:
        self._handlers[kind] = handler

    def required_role(self, amount: int) -> str:
        for tier in self.core.settings.approval_tiers:
            limit = tier.get("max_amount")
            if limit is None or amount <= int(limit):
                return str(tier["role"])
        return "admin"

    async def request(self, kind: str, target_id: str, amount: int, *, applicant: str, reason: str | None,
                      payload: dict[str, Any] | None = None) -> Approval:
        """File an application; an identical PENDING one for the same target is returned instead."""
        async with self.core.rsm() as s:
            existing = (await s.execute(select(Approval).where(
                Approval.kind == kind, Approval.target_id == target_id, Approval.status == "PENDING"))).scalar()
        if existing is not None:
            return existing
        row = Approval(id="ap" + utcnow().strftime("%Y%m%d%H%M%S") + secrets.token_hex(4), kind=kind,
                       target_id=target_id, amount=amount, applicant=applicant, reason=reason,
                       required_role=self.required_role(amount), status="PENDING", payload=payload or {},
                       created_at=utcnow())
        values = {c.key: getattr(row, c.key) for c in _A.columns}
        values["decided_by"] = values["comment"] = values["decided_at"] = None
        await self.core.writer.run(lambda conn: conn.execute(_A.insert().values(**values)))
        await self.core.ledger.audit(applicant, "approval.request", row.id,
                                     {"kind": kind, "target_id": target_id, "amount": amount, "reason": reason})
        await self.core.notices.emit("approval.requested", audience="staff", subject_id=target_id,
                                     payload={"approval_id": row.id, "kind": kind, "kind_zh": KIND_ZH.get(kind, kind),
                                              "amount": amount, "amount_yuan": fen_to_yuan(amount),
                                              "required_role": row.required_role, "applicant": applicant})
        return row

    async def get(self, approval_id: str) -> Approval:
        async with self.core.rsm() as s:
            row = await s.get(Approval, approval_id)
        if row is None:
            raise ApprovalNotFound(f"approval {approval_id} not found")
        return row

    def may_decide(self, a: Approval, actor: str, roles: list[str]) -> bool:
        return actor != a.applicant and (a.required_role in roles or "admin" in roles)

    async def decide(self, approval_id: str, *, actor: str, roles: list[str], approve: bool,
                     comment: str | None = None) -> Approval:
        a = await self.get(approval_id)
        if a.status != "PENDING":
            raise InvalidState("the application is no longer waiting for a decision", current_status=a.status)
        if not self.may_decide(a, actor, roles):
            raise ApprovalForbidden(
                "one may not decide one's own application" if actor == a.applicant
                else f"this application needs the role {a.required_role!r}", required_role=a.required_role)
        status = "APPROVED" if approve else "REJECTED"
        row = await self._finish(approval_id, status, actor, comment)
        await self.core.ledger.audit(actor, f"approval.{status.lower()}", approval_id,
                                     {"kind": row.kind, "target_id": row.target_id, "amount": row.amount,
                                      "comment": comment, "roles": roles})
        await self.core.notices.emit("approval.decided", audience="staff", subject_id=row.target_id,
                                     payload={"approval_id": row.id, "kind": row.kind, "status": status,
                                              "status_zh": STATUS_ZH[status], "decided_by": actor,
                                              "amount_yuan": fen_to_yuan(row.amount)})
        handler = self._handlers.get(row.kind)
        if handler is not None:
            await handler(row, approve, actor)
        return row

    async def _finish(self, approval_id: str, status: str, actor: str, comment: str | None) -> Approval:
        def tx(conn: Connection) -> Any:
            return conn.execute(update(_A).where(_A.c.id == approval_id, _A.c.status == "PENDING").values(
                status=status, decided_by=actor, comment=comment, decided_at=utcnow()).returning(*_A.c)).first()

        row = await self.core.writer.run(tx)
        if row is None:
            current = await self.get(approval_id)
            raise InvalidState("the application was decided meanwhile", current_status=current.status)
        return Approval(**dict(row._mapping))

    async def withdraw(self, approval_id: str, *, actor: str, comment: str | None = None,
                       system: bool = False) -> Approval:
        """The applicant takes the application back (or the system does, when it became moot)."""
        a = await self.get(approval_id)
        if not system and actor != a.applicant:
            raise ApprovalForbidden("only the applicant may withdraw an application")
        if a.status != "PENDING":
            raise InvalidState("the application is no longer waiting for a decision", current_status=a.status)
        row = await self._finish(approval_id, "WITHDRAWN", actor, comment)
        await self.core.ledger.audit(actor, "approval.withdraw", approval_id, {"comment": comment})
        handler = self._handlers.get(row.kind)
        if handler is not None and not system:
            await handler(row, False, actor)
        return row

    async def batch(self, ids: list[str], *, actor: str, roles: list[str], approve: bool,
                    comment: str | None) -> list[dict[str, Any]]:
        """批量审核: each decided on its own; one failure does not stop the others."""
        results = []
        for aid in ids:
            try:
                row = await self.decide(aid, actor=actor, roles=roles, approve=approve, comment=comment)
                results.append({"id": aid, "ok": True, "status": row.status})
            except YinyiError as exc:
                results.append({"id": aid, "ok": False, "code": exc.code, "detail": exc.detail})
        return results

    async def list(self, *, view: str, actor: str, roles: list[str], status: str | None = None,
                   limit: int = 200) -> list[dict[str, Any]]:
        q = select(Approval).order_by(Approval.created_at.desc()).limit(min(max(limit, 1), 1000))
        if view == "mine":
            q = q.where(Approval.applicant == actor)
        elif view == "waiting":
            q = q.where(Approval.status == "PENDING", Approval.applicant != actor)
            if "admin" not in roles:
                q = q.where(or_(*(Approval.required_role == r for r in roles)) if roles else Approval.id.is_(None))
        elif view == "done":
            q = q.where(Approval.decided_by == actor)
        if status:
            q = q.where(Approval.status == status)
        async with self.core.rsm() as s:
            return [approval_out(a) for a in (await s.execute(q)).scalars()]
