"""The steps of a mixed settlement, each safe to run again (by the API or the worker).

Every step records what it is about to do before it calls out (planned msgids,
the top-up's out_trade_no, the refund's out_refund_no) and its result after, so a
process that dies at any point leaves a row the worker can finish:

- :meth:`settle` 2207/2304 with planned msgids; unknown → :meth:`undo_unknown`;
- :meth:`undo_unknown` 2601 by every planned msgid of the settle call;
- :meth:`start_top_up` / :meth:`follow_top_up` the cash part as one payment;
- :meth:`drive_reversal` stop an open top-up, reverse at the centre (2208/2305),
  refund cash that was paid, then REVERSED.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from ..errors import (InsuranceAlreadyReversed, InsuranceRejected, InsuranceUnknown, YinyiError)
from ..insurance import (InsuranceAdapter, Settlement, SettlementRef, SettleRequest, SplitInvariantError, VisitRef,
                         planned_msgids)
from ..insurance_state import SettlementStatus
from ..schemas import PaymentCreate, RefundCreate
from ..statemachine import PAYMENT_OPEN, PAYMENT_PAID
from .insurance_schemas import SettleInputs, TopUpIn
from .insurance_store import InsuranceStore

if TYPE_CHECKING:
    from ..core import Core
    from ..db.models import InsuranceSettlement as Row

log = logging.getLogger("yinyi.insurance")
S = SettlementStatus
PLANNED = 3  # first send, a resend after a refused sign_no, a resend after a refused token


def _visit(row: Row) -> VisitRef:
    return VisitRef(psn_no=row.psn_no, insuplc_admdvs=row.insuplc_admdvs, mdtrt_id=row.mdtrt_id,
                    insutype=row.insutype)


def settlement_fields(s: Settlement) -> dict[str, Any]:
    sp = s.split
    return {"setl_id": s.setl_id, "msgid": s.msgid, "setl_time": s.setl_time or dt.datetime.now(dt.UTC),
            "clr_type": s.clr_type, "clr_way": s.clr_way, "setl_optins": s.setl_optins,
            "medins_setl_id": s.medins_setl_id, "total": sp.total, "fund_total": sp.fund_total,
            "funds": dict(sp.funds), "fund_payments": [f.model_dump(mode="json") for f in s.fund_payments],
            "psn_part": sp.psn_part, "acct_pay": sp.acct_pay, "acct_mulaid_pay": sp.acct_mulaid_pay,
            "wallet_pay": sp.wallet_pay, "cash_pay": sp.cash_pay, "hosp_part": sp.hosp_part,
            "scope": {"fulamt_ownpay": sp.fulamt_ownpay, "overlmt_selfpay": sp.overlmt_selfpay,
                      "preselfpay": sp.preselfpay, "inscp_scp": sp.inscp_scp, "deductible": sp.deductible},
            "balance_after": s.balance_after}


class SettlementSteps:
    core: Core
    store: InsuranceStore

    def _now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def _later(self, attempts: int = 0) -> dt.datetime:
        wait = min(self.core.settings.insurance_retry_seconds * (2 ** min(attempts, 6)), 300.0)
        return self._now() + dt.timedelta(seconds=wait)

    async def _adapter(self, row: Row) -> InsuranceAdapter:
        return await self.core.insurance_centres.adapter(row.centre_id, allow_disabled=True)

    # --- settle ---------------------------------------------------------------------------------
    async def settle(self, row: Row, req: SettleInputs, *, source: str) -> None:
        """2207/2304 for a CREATED row whose msgids are recorded."""
        adapter = await self._adapter(row)
        sreq = SettleRequest(visit=req.visit, insutype=req.insutype, med_type=req.med_type, cert_type=req.cert_type,
                             cert_no=req.cert_no, card_sn=req.card_sn, total=req.total, psn_setlway=req.psn_setlway,
                             chrg_bchno=req.chrg_bchno, use_account=req.use_account, invono=req.invono,
                             mid_settlement=req.mid_settlement, discharge_time=req.discharge_time,
                             password=req.password, extra=req.extra)
        call = adapter.settle_outpatient(sreq) if row.kind == "outpatient" else adapter.settle_inpatient(sreq)
        try:
            with planned_msgids(row.settle_msgids):
                s = await self.core.insurance_centres.call(row.centre_id, row.settle_infno, call, request=sreq,
                                                           subject_id=row.id)
            s.split.check()
        except InsuranceRejected as exc:
            await self.store.transition(row.id, S.CREATED, S.FAILED, action="settle_refused", source=source,
                                        detail={"error": exc.code, "msgid": exc.extra.get("msgid")},
                                        reason="centre_refused", error_code=exc.code,
                                        error_message=(exc.detail or str(exc))[:256])
            return
        except (InsuranceUnknown, SplitInvariantError, YinyiError) as exc:
            code = getattr(exc, "code", "INSURANCE_PROTOCOL_ERROR")
            got = await self.store.transition(row.id, S.CREATED, S.SETTLE_UNKNOWN, action="settle_unknown",
                                              source=source, detail={"error": code, "message": str(exc)[:200]},
                                              error_code=code, error_message=str(exc)[:256],
                                              next_attempt_at=self._later())
            if got is not None:
                await self.undo_unknown(got, source=source)
            return
        fields = settlement_fields(s)
        enc = self.core.vault.encrypt(s.psn_name) if s.psn_name else None
        now = self._now()
        if s.split.cash_pay > 0:
            deadline = now + dt.timedelta(seconds=self.core.settings.insurance_topup_timeout_seconds)
            got = await self.store.transition(
                row.id, S.CREATED, S.TOPUP_PENDING, action="settled", source=source,
                detail={"setl_id": s.setl_id, "msgid": s.msgid, "cash_pay": s.split.cash_pay},
                psn_name_enc=enc, topup_deadline=deadline, topup_out_trade_no=f"T{row.id}",
                next_attempt_at=now + dt.timedelta(seconds=5 + self._topup_wait(row)), **fields)
        else:
            got = await self.store.transition(row.id, S.CREATED, S.COMPLETED, action="settled", source=source,
                                              detail={"setl_id": s.setl_id, "msgid": s.msgid, "cash_pay": 0},
                                              psn_name_enc=enc, **fields)
        if got is None:
            # The worker took the call for lost meanwhile and is cancelling it: make
            # sure the settlement this call made does not stand (2601 is idempotent).
            log.warning("settlement %s settled after being given up; reversing by 2601", row.id)
            try:
                await adapter.reverse_call(row.psn_no, row.insuplc_admdvs, s.msgid, row.settle_infno)
            except InsuranceAlreadyReversed:
                pass
            except YinyiError:
                log.exception("2601 of late settlement %s failed; the worker's 2601 by msgid covers it", row.id)

    def _topup_wait(self, row: Row) -> int:
        if not row.topup_enc:
            return 0
        return int(self.core.vault.decrypt_json(row.topup_enc).get("wait_seconds") or 0)

    async def undo_unknown(self, row: Row, *, source: str) -> None:
        """2601 by every planned msgid of the settle call; then FAILED (nothing stands)."""
        adapter = await self._adapter(row)
        results = []
        for msgid in row.settle_msgids:
            try:
                ack = await self.core.insurance_centres.call(
                    row.centre_id, "2601", adapter.reverse_call(row.psn_no, row.insuplc_admdvs, msgid,
                                                                row.settle_infno),
                    request={"omsgid": msgid, "oinfno": row.settle_infno, "psn_no": row.psn_no}, subject_id=row.id)
                results.append({"omsgid": msgid, "result": (ack.output.get("data") or {}).get("rvs_rslt")
                                if isinstance(ack.output.get("data"), dict) else "ok"})
            except InsuranceAlreadyReversed:
                results.append({"omsgid": msgid, "result": "already_reversed"})
            except YinyiError as exc:
                refused = isinstance(exc, InsuranceRejected)
                await self.store.update(row.id, expect_status=S.SETTLE_UNKNOWN, action="reverse_call_failed",
                                        source=source, detail={"omsgid": msgid, "error": exc.code,
                                                               "message": str(exc)[:200]},
                                        attempts=row.attempts + 1, next_attempt_at=self._later(row.attempts + 1),
                                        needs_review=row.needs_review or (refused and row.attempts >= 3))
                return
        await self.store.transition(row.id, S.SETTLE_UNKNOWN, S.FAILED, action="reverse_call", source=source,
                                    detail={"results": results}, reason="settle_unknown")

    # --- top-up ---------------------------------------------------------------------------------
    async def start_top_up(self, row: Row, *, source: str, wait: bool) -> None:
        """Create (or replay, by its out_trade_no) the top-up payment of a TOPUP_PENDING row."""
        if not row.topup_enc:
            await self.store.transition(row.id, S.TOPUP_PENDING, S.REVERSING, action="topup_missing", source=source,
                                        reason="topup_rejected", error_code="VALIDATION_FAILED",
                                        error_message="the patient owes cash but the request has no top_up",
                                        next_attempt_at=self._now())
            return
        top = TopUpIn.model_validate(self.core.vault.decrypt_json(row.topup_enc))
        pc = PaymentCreate(out_trade_no=row.topup_out_trade_no or f"T{row.id}", amount=row.cash_pay or 0,
                           subject=top.subject, business_type=row.business_type, method=top.method,
                           channel=top.channel, auth_code=top.auth_code, openid=top.openid, campus=top.campus,
                           entry=top.entry, operator=row.operator, client_ip=top.client_ip, device_id=top.device_id,
                           expire_minutes=top.expire_minutes, wait_seconds=top.wait_seconds if wait else 0)
        try:
            payment = await self.core.payments.create(row.app_id, pc)
        except YinyiError as exc:
            existing = await self.core.ledger.payment_by_out_trade_no(row.app_id, pc.out_trade_no)
            if existing is None:  # refused before any money could move
                await self.store.transition(row.id, S.TOPUP_PENDING, S.REVERSING, action="topup_rejected",
                                            source=source, detail={"error": exc.code}, reason="topup_rejected",
                                            error_code=exc.code, error_message=str(exc)[:256],
                                            next_attempt_at=self._now())
                return
            payment = existing
        got = await self.store.update(row.id, expect_status=S.TOPUP_PENDING, payment_id=payment.id)
        if got is not None:
            await self.follow_top_up(got, payment, source=source)

    async def follow_top_up(self, row: Row, payment: Any, *, source: str) -> None:
        if payment.status in PAYMENT_PAID:
            await self.store.transition(row.id, S.TOPUP_PENDING, S.COMPLETED, action="topup_paid", source=source,
                                        detail={"payment_id": payment.id})
        elif payment.status not in PAYMENT_OPEN:
            await self.store.transition(row.id, S.TOPUP_PENDING, S.REVERSING, action="topup_failed", source=source,
                                        detail={"payment_id": payment.id, "payment_status": payment.status},
                                        reason="topup_failed", error_code=payment.error_code,
                                        error_message=payment.error_message, next_attempt_at=self._now())
        elif row.topup_deadline is not None and self._now() >= row.topup_deadline:
            await self.store.transition(row.id, S.TOPUP_PENDING, S.REVERSING, action="topup_timeout", source=source,
                                        detail={"payment_id": payment.id}, reason="topup_timeout",
                                        next_attempt_at=self._now())
        else:
            await self.store.update(row.id, expect_status=S.TOPUP_PENDING,
                                    next_attempt_at=min(row.topup_deadline or self._later(),
                                                        self._now() + dt.timedelta(seconds=1)))

    # --- reversal -------------------------------------------------------------------------------
    async def drive_reversal(self, row: Row, *, source: str, caller: bool = False) -> None:
        """Finish a REVERSING row: stop the top-up, reverse at the centre, refund paid cash."""
        payment = None
        if row.payment_id is None and row.topup_out_trade_no:
            payment = await self.core.ledger.payment_by_out_trade_no(row.app_id, row.topup_out_trade_no)
            if payment is not None:
                row = await self.store.update(row.id, payment_id=payment.id) or row
        elif row.payment_id:
            payment = await self.core.payments.get(None, row.payment_id)
        if payment is not None and payment.status in PAYMENT_OPEN:
            if not row.stop_requested:
                row = await self.store.update(row.id, stop_requested=True, action="topup_stop", source=source,
                                              detail={"payment_id": payment.id}) or row
                try:
                    if payment.method == "code":
                        payment = await self.core.payments.reverse(None, payment.id)
                    else:
                        payment = await self.core.payments.close(None, payment.id)
                except YinyiError as exc:
                    log.info("stopping top-up %s of %s: %s", payment.id, row.id, exc)
                    payment = await self.core.payments.get(None, payment.id)
            if payment.status in PAYMENT_OPEN:  # the resolver settles it; come back
                await self.store.update(row.id, expect_status=S.REVERSING, next_attempt_at=self._later())
                return
        if row.rev_time is None and not await self._reverse_at_centre(row, source=source, caller=caller):
            return
        row = await self.store.get(row.id) or row
        if payment is not None:
            payment = await self.core.payments.get(None, payment.id)
            if payment.status in PAYMENT_PAID and not row.refund_id:
                refund_no = f"IR{row.id}"
                refund = await self.core.ledger.refund_by_out_refund_no(payment.app_id, refund_no)
                if refund is None:
                    try:
                        refund = await self.core.refunds.create(None, payment.id, RefundCreate(
                            out_refund_no=refund_no, amount=payment.amount - payment.refund_reserved,
                            reason="医保结算撤销退自付部分", operator=row.operator))
                    except YinyiError as exc:
                        await self.store.update(row.id, expect_status=S.REVERSING, action="refund_failed",
                                                source=source, detail={"error": exc.code},
                                                needs_review=True, next_attempt_at=self._later(row.attempts + 1),
                                                attempts=row.attempts + 1)
                        return
                row = await self.store.update(row.id, refund_id=refund.id, action="cash_refund", source=source,
                                              detail={"refund_id": refund.id, "amount": refund.amount}) or row
        await self.store.transition(row.id, S.REVERSING, S.REVERSED, action="reversed", source=source,
                                    detail={"rev_setl_id": row.rev_setl_id, "refund_id": row.refund_id})

    async def _reverse_at_centre(self, row: Row, *, source: str, caller: bool) -> bool:
        adapter = await self._adapter(row)
        # New msgids on every attempt (the centre refuses a repeated one); recorded first.
        msgids = adapter.allocate_msgids(PLANNED)
        infno = "2208" if row.kind == "outpatient" else "2305"
        row = await self.store.update(row.id, expect_status=S.REVERSING, rev_msgids=msgids, rev_infno=infno,
                                      action="reverse_planned", source=source, detail={"msgids": msgids}) or row
        ref = SettlementRef(setl_id=row.setl_id or "", visit=_visit(row))
        call = adapter.reverse_outpatient_settlement(ref) if row.kind == "outpatient" \
            else adapter.reverse_inpatient_settlement(ref)
        try:
            with planned_msgids(msgids):
                rev = await self.core.insurance_centres.call(row.centre_id, infno, call, request=ref,
                                                             subject_id=row.id)
            sp = rev.split
            fields = {"rev_setl_id": rev.setl_id, "rev_msgid": rev.msgid, "rev_time": rev.setl_time or self._now(),
                      "reversal": {"total": sp.total, "fund_total": sp.fund_total, "funds": dict(sp.funds),
                                   "psn_part": sp.psn_part, "acct_pay": sp.acct_pay,
                                   "acct_mulaid_pay": sp.acct_mulaid_pay, "wallet_pay": sp.wallet_pay,
                                   "cash_pay": sp.cash_pay, "hosp_part": sp.hosp_part}}
        except InsuranceAlreadyReversed as exc:
            # An earlier attempt whose answer was lost did it (or staff did at the centre).
            fields = {"rev_time": self._now(), "reversal": {"already_reversed": True, "message": exc.detail}}
        except InsuranceRejected as exc:
            if caller:
                await self.store.transition(row.id, S.REVERSING, S.COMPLETED, action="reverse_refused", source=source,
                                            detail={"error": exc.code, "message": exc.detail}, notify=False,
                                            reason=None, completed_at=row.completed_at)
                raise
            await self.store.update(row.id, expect_status=S.REVERSING, action="reverse_refused", source=source,
                                    detail={"error": exc.code, "message": exc.detail}, needs_review=True,
                                    error_code=exc.code, error_message=(exc.detail or "")[:256],
                                    attempts=row.attempts + 1, next_attempt_at=self._later(row.attempts + 4))
            return False
        except YinyiError as exc:  # unknown: try again (a reversal that took effect answers "already reversed")
            await self.store.update(row.id, expect_status=S.REVERSING, action="reverse_unknown", source=source,
                                    detail={"error": exc.code, "msgids": msgids}, attempts=row.attempts + 1,
                                    next_attempt_at=self._later(row.attempts + 1))
            return False
        await self.store.update(row.id, expect_status=S.REVERSING, action="reversed_at_centre", source=source,
                                detail={"rev_setl_id": fields.get("rev_setl_id")}, **fields)
        return True
