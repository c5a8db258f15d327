"""Single-sided cases (单边账): money received that its business system has not recorded.

A case opens the moment a write-back is rejected, exhausts its quick retries, or a
success arrives after the caller gave up. It is resolved by exactly one of:

- **written_back**: a later write-back (automatic slow retry, or retried by staff)
  landed; any pending refund application is withdrawn;
- **refunded**: an original-route refund (原路退回). Small amounts are refunded
  automatically ``single_sided_auto_refund_minutes`` after opening; larger ones need
  an approval by the role of their amount tier (single or batch). Before any refund
  the write-back is stopped and, where the adapter can say, the business system is
  asked whether it recorded the payment after all (a timed-out write-back may have
  landed): then the case resolves as written back and no money moves;
- **manual**: handled at the window (cash refund registered, recorded by hand), with a note.

Every step is appended to the case's history and the audit log, and notices go to
staff and to the patient.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from ..db.models import Approval, CaseEvent, Payment, SingleSidedCase, utcnow
from ..errors import CaseNotFound, HisError, InvalidState, YinyiError
from ..his import HisCapability, WriteBackStatus
from ..money import fen_to_yuan
from ..schemas import RefundCreate
from ..statemachine import PAYMENT_PAID, RefundStatus
from .worker import PeriodicWorker, claim_due

if TYPE_CHECKING:
    from ..core import Core

log = logging.getLogger("yinyi.cases")
_C = SingleSidedCase.__table__
STATUS_ZH = {"OPEN": "待处理", "APPROVING": "退款审核中", "REFUNDING": "退款中", "RESOLVED": "已处理"}
REASON_ZH = {"writeback_failed": "回写HIS失败", "writeback_rejected": "HIS拒绝入账", "late_success": "调用方放弃后支付成功",
             "recon_long": "对账长款(渠道有款, HIS无记录)", "recon_duplicate": "对账重复支付"}
RESOLUTION_ZH = {"written_back": "已补回写入账", "refunded": "已原路退款", "manual": "人工处理"}
OPEN_STATES = ("OPEN", "APPROVING", "REFUNDING")


def case_out(c: Any) -> dict[str, Any]:
    return {"id": c.id, "payment_id": c.payment_id, "system": c.system_id, "app_id": c.app_id,
            "channel": c.channel, "amount": c.amount, "amount_yuan": fen_to_yuan(c.amount), "reason": c.reason,
            "reason_zh": REASON_ZH.get(c.reason, c.reason), "reason_detail": c.reason_detail, "status": c.status,
            "status_zh": STATUS_ZH.get(c.status, c.status), "resolution": c.resolution,
            "resolution_zh": RESOLUTION_ZH.get(c.resolution or "", None), "refund_id": c.refund_id,
            "approval_id": c.approval_id, "next_check_at": c.next_check_at.isoformat() if c.next_check_at else None,
            "resolved_by": c.resolved_by, "note": c.note, "opened_at": c.opened_at.isoformat(),
            "resolved_at": c.resolved_at.isoformat() if c.resolved_at else None, "updated_at": c.updated_at.isoformat()}


class CaseService(PeriodicWorker):
    name = "single-sided-cases"

    def __init__(self, core: Core) -> None:
        super().__init__(core, core.settings.his_worker_interval_seconds)
        core.approvals.register("case_refund", self._on_decision)

    # --- opening ------------------------------------------------------------------------------
    async def open(self, payment: Payment, writeback: Any, *, reason: str, detail: str | None) -> SingleSidedCase | None:
        """Open the payment's case unless it already has one (one case per payment)."""
        s = self.core.settings
        now = utcnow()
        auto = (s.single_sided_auto_refund_max > 0 and payment.amount <= s.single_sided_auto_refund_max)
        row = SingleSidedCase(
            id="C" + payment.id[1:], payment_id=payment.id, writeback_id=writeback.id, system_id=writeback.system_id,
            app_id=payment.app_id, channel=payment.channel, amount=payment.amount, reason=reason,
            reason_detail=detail, status="OPEN", resolution=None, refund_id=None, approval_id=None,
            next_check_at=now + dt.timedelta(minutes=s.single_sided_auto_refund_minutes) if auto else None,
            lease_until=None, resolved_by=None, note=None, opened_at=now, resolved_at=None, updated_at=now)
        values = {c.key: getattr(row, c.key) for c in _C.columns}

        def tx(conn: Connection) -> None:
            conn.execute(_C.insert().values(**values))
            _history(conn, row.id, "opened", "system", {"reason": reason, "detail": detail, "auto_refund": auto})

        try:
            await self.core.writer.run(tx)
        except IntegrityError:
            return None  # already open (or handled) for this payment
        log.warning("single-sided case %s opened: payment %s, %s fen, %s", row.id, payment.id, payment.amount, reason)
        await self._notify("single_sided.opened", row, audience="staff")
        self.wake()
        return row

    # --- resolution paths -----------------------------------------------------------------------
    async def written_back(self, payment_id: str, *, actor: str) -> bool:
        """The write-back landed: resolve the payment's open case, withdraw its refund application."""
        case = await self._by_payment(payment_id)
        if case is None or case.status not in ("OPEN", "APPROVING"):
            return False
        if not await self._resolve(case, "written_back", actor, expect=("OPEN", "APPROVING")):
            return False
        if case.approval_id:
            try:
                await self.core.approvals.withdraw(case.approval_id, actor=actor, comment="已补回写入账，申请自动撤回",
                                                   system=True)
            except YinyiError:
                pass  # decided meanwhile; the decision handler sees the case resolved
        return True

    async def request_refund(self, case_id: str, *, actor: str, reason: str | None) -> dict[str, Any]:
        """退款申请: an original-route refund, after approval by the amount tier's role."""
        case = await self.get_row(case_id)
        if case.status != "OPEN":
            raise InvalidState("only an open case can be refunded", current_status=case.status)
        approval = await self.core.approvals.request("case_refund", case.id, case.amount, applicant=actor,
                                                     reason=reason, payload={"payment_id": case.payment_id})
        ok = await self._move(case.id, ("OPEN",), "APPROVING", actor, "refund_requested",
                              {"approval_id": approval.id, "reason": reason}, approval_id=approval.id)
        if not ok:
            await self.core.approvals.withdraw(approval.id, actor=actor, comment="case moved meanwhile", system=True)
            raise InvalidState("the case changed meanwhile; reload it")
        return {"case": case_out(await self.get_row(case.id)), "approval_id": approval.id}

    async def _on_decision(self, approval: Approval, approved: bool, actor: str) -> None:
        case = await self.get_row(approval.target_id)
        if approved:
            if await self._move(case.id, ("APPROVING",), "REFUNDING", actor, "refund_approved",
                                {"approval_id": approval.id}, next_check_at=utcnow()):
                await self._notify("single_sided.refunding", case, audience="staff")
                self.wake()
        else:
            action = "refund_rejected" if approval.status == "REJECTED" else "refund_withdrawn"
            await self._move(case.id, ("APPROVING",), "OPEN", actor, action,
                             {"approval_id": approval.id, "comment": approval.comment}, approval_id=None)

    async def resolve_manually(self, case_id: str, *, actor: str, note: str) -> dict[str, Any]:
        """人工处理: e.g. cash refunded at the window or recorded by hand in the HIS."""
        case = await self.get_row(case_id)
        if case.status not in ("OPEN",):
            raise InvalidState("only an open case can be handled manually (withdraw its refund application first)",
                               current_status=case.status)
        await self.core.writebacks.cancel(case.payment_id)
        if not await self._resolve(case, "manual", actor, expect=("OPEN",), note=note):
            raise InvalidState("the case changed meanwhile; reload it")
        return case_out(await self.get_row(case_id))

    async def retry_write_back(self, case_id: str, *, actor: str) -> dict[str, Any]:
        case = await self.get_row(case_id)
        if case.status not in ("OPEN", "APPROVING"):
            raise InvalidState("the case is not open", current_status=case.status)
        await self.core.writebacks.retry_now(case.payment_id, actor)
        await self._history(case.id, "writeback_retry", actor, {})
        return case_out(case)

    # --- the worker: automatic refunds and refund progress --------------------------------------------
    async def run_once(self) -> int:
        s = self.core.settings
        rows = await claim_due(self.core, _C, _C.c.status.in_(("OPEN", "REFUNDING")), due_column="next_check_at",
                               lease=dt.timedelta(seconds=60), limit=20)
        for row in rows:
            try:
                if row.status == "OPEN":  # an automatic refund is due
                    if row.amount <= s.single_sided_auto_refund_max and await self._move(
                            row.id, ("OPEN",), "REFUNDING", "system:auto", "auto_refund",
                            {"after_minutes": s.single_sided_auto_refund_minutes}, next_check_at=utcnow()):
                        await self._refund_step(await self.get_row(row.id))
                    else:
                        await self._release(row.id, None)
                else:
                    await self._refund_step(row)
            except Exception:
                log.exception("case %s step failed", row.id)
                await self._release(row.id, utcnow() + dt.timedelta(seconds=30))
        return len(rows)

    async def _refund_step(self, case: Any) -> None:
        core = self.core
        if case.refund_id:  # waiting for the refund's final state
            refund = await core.ledger.get_refund(case.refund_id)
            assert refund is not None
            if refund.status == RefundStatus.SUCCEEDED:
                await self._resolve(case, "refunded", "system", expect=("REFUNDING",))
            elif refund.status == RefundStatus.FAILED:
                await self._move(case.id, ("REFUNDING",), "OPEN", "system", "refund_failed",
                                 {"refund_id": refund.id, "error": refund.error_code}, refund_id=None,
                                 next_check_at=None)
            else:
                await self._release(case.id, utcnow() + dt.timedelta(seconds=2))
            return
        stopped = await core.writebacks.cancel(case.payment_id)
        if stopped == "LEASED":  # a write-back attempt is in flight: decide after it
            await self._release(case.id, utcnow() + dt.timedelta(seconds=2))
            return
        if stopped == "RECORDED" or await self._recorded_after_all(case):
            await self._resolve(case, "written_back", "system", expect=("REFUNDING",))
            return
        payment = await core.ledger.get_payment(case.payment_id)
        assert payment is not None
        refundable = payment.amount - payment.refund_reserved
        if payment.status not in PAYMENT_PAID or refundable <= 0:
            await self._resolve(case, "manual", "system", expect=("REFUNDING",),
                                note=f"payment is {payment.status}, refundable {refundable} fen; nothing to refund")
            return
        refund = await core.refunds.create(None, payment.id, RefundCreate(
            out_refund_no=f"SS-{case.id}", amount=refundable,
            reason="单边账退款(未入账原路退回)", operator="system:single-sided"))
        await self._move(case.id, ("REFUNDING",), "REFUNDING", "system", "refund_started",
                         {"refund_id": refund.id, "amount": refund.amount}, refund_id=refund.id,
                         next_check_at=utcnow() + dt.timedelta(seconds=1))

    async def _recorded_after_all(self, case: Any) -> bool:
        """Ask the business system whether it recorded the payment; an unreachable system postpones."""
        adapter = await self.core.his.adapter(case.system_id)
        if not adapter.supports(HisCapability.WRITE_BACK_QUERY):
            return False
        try:
            found = await adapter.query_write_back(case.payment_id)
        except HisError:
            await self._history(case.id, "his_query_unavailable", "system", {})
            raise
        return found is not None and found.status == WriteBackStatus.RECORDED

    # --- reading -----------------------------------------------------------------------------------
    async def get_row(self, case_id: str) -> SingleSidedCase:
        async with self.core.rsm() as s:
            row = await s.get(SingleSidedCase, case_id)
        if row is None:
            raise CaseNotFound(f"case {case_id} not found")
        return row

    async def _by_payment(self, payment_id: str) -> SingleSidedCase | None:
        async with self.core.rsm() as s:
            return (await s.execute(select(SingleSidedCase).where(SingleSidedCase.payment_id == payment_id))).scalar()

    async def for_payment(self, payment_id: str) -> SingleSidedCase | None:
        """The payment's case (one per payment), in any state, or None."""
        return await self._by_payment(payment_id)

    async def detail(self, case_id: str, *, reveal: bool = False) -> dict[str, Any]:
        """The case with its payment, write-back, history and notices; personal data masked unless ``reveal``."""
        from ..schemas import payment_out
        from ..vault import mask
        from .writeback import writeback_out

        case = await self.get_row(case_id)
        async with self.core.rsm() as s:
            events = (await s.execute(select(CaseEvent).where(CaseEvent.case_id == case_id)
                                      .order_by(CaseEvent.id))).scalars().all()
        payment = await self.core.ledger.get_payment(case.payment_id)
        wb = await self.core.writebacks.get_for_payment(case.payment_id)
        notices = await self.core.notices.search(subject_id=case_id)
        return {**case_out(case), "payment": payment_out(payment).model_dump(mode="json") if payment else None,
                "writeback": writeback_out(wb, self.core.vault, reveal=reveal) if wb else None,
                "history": [{"action": e.action, "actor": e.actor, "detail": e.detail,
                             "created_at": e.created_at.isoformat()} for e in events],
                "notices": notices["items"] if reveal else [{**n, "payload": mask(n["payload"])}
                                                            for n in notices["items"]]}

    async def search(self, *, status: list[str] | None = None, system: str | None = None,
                     day: dt.date | None = None, limit: int = 200) -> dict[str, Any]:
        from sqlalchemy import func

        q = select(SingleSidedCase).order_by(SingleSidedCase.opened_at.desc()).limit(min(max(limit, 1), 1000))
        if status:
            q = q.where(SingleSidedCase.status.in_(status))
        if system:
            q = q.where(SingleSidedCase.system_id == system)
        if day is not None:
            from ..timeutil import local_day_bounds

            start, end = local_day_bounds(day)
            q = q.where(SingleSidedCase.opened_at >= start, SingleSidedCase.opened_at < end)
        async with self.core.rsm() as s:
            rows = (await s.execute(q)).scalars().all()
            counts = dict((await s.execute(select(SingleSidedCase.status, func.count())
                                           .group_by(SingleSidedCase.status))).all())
        return {"items": [case_out(r) for r in rows], "counts": counts}

    # --- state changes --------------------------------------------------------------------------------
    async def _move(self, case_id: str, frm: tuple[str, ...], to: str, actor: str, action: str,
                    detail: dict[str, Any], **fields: Any) -> bool:
        now = utcnow()

        def tx(conn: Connection) -> bool:
            res = conn.execute(update(_C).where(_C.c.id == case_id, _C.c.status.in_(frm))
                               .values(status=to, updated_at=now, lease_until=None, **fields))
            if res.rowcount != 1:
                return False
            _history(conn, case_id, action, actor, detail)
            return True

        moved = await self.core.writer.run(tx)
        if moved:
            await self.core.ledger.audit(actor, f"case.{action}", case_id, detail)
        return moved

    async def _resolve(self, case: Any, resolution: str, actor: str, *, expect: tuple[str, ...],
                       note: str | None = None) -> bool:
        ok = await self._move(case.id, expect, "RESOLVED", actor, f"resolved_{resolution}", {"note": note},
                              resolution=resolution, resolved_by=actor, resolved_at=utcnow(), note=note,
                              next_check_at=None)
        if ok:
            fresh = await self.get_row(case.id)
            await self._notify("single_sided.resolved", fresh, audience="staff")
            await self._notify("single_sided.resolved", fresh, audience="patient")
        return ok

    async def _release(self, case_id: str, next_check_at: dt.datetime | None) -> None:
        await self.core.writer.run(lambda conn: conn.execute(
            update(_C).where(_C.c.id == case_id).values(lease_until=None, next_check_at=next_check_at)), durable=False)

    async def _history(self, case_id: str, action: str, actor: str, detail: dict[str, Any]) -> None:
        await self.core.writer.run(lambda conn: _history(conn, case_id, action, actor, detail))

    async def _notify(self, event: str, case: Any, *, audience: str) -> None:
        payload = case_out(case)
        if audience == "patient":
            wb = await self.core.writebacks.get_for_payment(case.payment_id)
            vault = self.core.vault
            payload = {"payment_id": case.payment_id, "amount": case.amount, "amount_yuan": fen_to_yuan(case.amount),
                       "resolution": case.resolution, "resolution_zh": RESOLUTION_ZH.get(case.resolution or ""),
                       "patient_phone": vault.decrypt(wb.patient_phone_enc) if wb and wb.patient_phone_enc else None,
                       "patient_name": vault.decrypt(wb.patient_name_enc) if wb and wb.patient_name_enc else None}
        n = await self.core.notices.emit(event, audience=audience, subject_id=case.id, payload=payload)
        await self._history(case.id, "notified", "system", {"event": event, "audience": audience, "notifiers": n})


def _history(conn: Connection, case_id: str, action: str, actor: str, detail: dict[str, Any]) -> None:
    conn.execute(insert(CaseEvent).values(case_id=case_id, action=action, actor=actor, detail=detail,
                                          created_at=utcnow()))
