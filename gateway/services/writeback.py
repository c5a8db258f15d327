"""Write-back of payments and refunds to their business system (确认收费 / 退费回写).

The payment's intent carries its write-back row (WAITING); the ledger makes it
PENDING in the very transaction that records the success, whatever brought the
success (the API's answer, a channel notify, the resolver's query, a bill). This
worker then calls the adapter with a few quick retries (tenacity, bounded). What
still fails becomes a single-sided case (单边账) within seconds, and the worker
keeps retrying on a slower schedule until the write-back lands or the case is
refunded. The adapter call is idempotent by payment id, so a retry after a timeout
never records a payment twice.

Insurance settlements that name their bill (``his`` in ``POST /v1/insurance/settlements``)
use the same rows and the same worker, with two more kinds: ``ins_setl`` (医保结算回写,
keyed by the settlement id, written WAITING with the settlement's intent and made
PENDING in the transaction that completes it) and ``ins_rev`` (医保结算撤销回写, queued
in the transaction that records the reversal of a settlement the system may have
recorded). The buckets are read from the insurance ledger at each attempt. A reversal
waits until the settlement's own write-back has landed, is given up, or was never
sent (then nothing is sent at all). Single-sided cases stay with payments: a
settlement the system does not record is listed with the write-back exceptions and
in the settlement's history, and retried like any other.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
from typing import TYPE_CHECKING, Any

from sqlalchemy import String, cast, select, update
from sqlalchemy.engine import Connection
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_chain, wait_fixed

from ..db.models import HisWriteback, Payment, Refund, SingleSidedCase, utcnow
from ..errors import HisAmountMismatch, HisError, HisNotSupported, InvalidState, NotFound, YinyiError
from ..his import (BillType, HisCapability, InsuranceReversalWriteBack, InsuranceWriteBack, PatientQuery,
                   RefundWriteBack, WriteBack, WriteBackResult, WriteBackStatus)
from ..money import fen_to_yuan
from ..schemas import HisLink
from ..vault import mask_value
from .worker import PeriodicWorker, claim_due

if TYPE_CHECKING:
    from ..core import Core
    from .his_systems import SystemInfo

log = logging.getLogger("yinyi.writeback")
_W = HisWriteback.__table__
LEASE = dt.timedelta(seconds=120)
STATUS_ZH = {"WAITING": "待支付", "PENDING": "待回写", "RECORDED": "已回写", "FAILED": "回写失败",
             "REJECTED": "业务系统拒绝", "CANCELLED": "已取消"}
# Write-back kinds of insurance settlements (the row's payment_id holds the settlement id).
INSURANCE_SETTLEMENT, INSURANCE_REVERSAL = "ins_setl", "ins_rev"
INSURANCE_KINDS = (INSURANCE_SETTLEMENT, INSURANCE_REVERSAL)
NOT_RECORDED = "NOT_RECORDED"  # a reversal not sent: the system never recorded the settlement
_BUSINESS_BILL_TYPE = {"registration": BillType.OUTPATIENT_REGISTRATION, "outpatient": BillType.OUTPATIENT_SETTLEMENT,
                       "inpatient_deposit": BillType.INPATIENT_DEPOSIT, "inpatient": BillType.INPATIENT_SETTLEMENT,
                       "exam": BillType.EXAM}


def writeback_out(w: Any, vault: Any = None, *, reveal: bool = False) -> dict[str, Any]:
    patient = vault.decrypt(w.patient_enc) if vault is not None else None
    name = vault.decrypt(w.patient_name_enc) if vault is not None and w.patient_name_enc else None
    return {"id": w.id, "kind": w.kind, "payment_id": w.payment_id, "refund_id": w.refund_id or None,
            "settlement_id": w.payment_id if w.kind in INSURANCE_KINDS else None,
            "system": w.system_id, "amount": w.amount, "amount_yuan": fen_to_yuan(w.amount),
            "bill_type": w.bill_type, "visit_no": w.visit_no, "charge_ids": w.charge_ids,
            "patient_id": (patient if reveal else mask_value(patient)) if patient else None,
            "patient_name": (name if reveal else _mask_name(name)) if name else None,
            "status": w.status, "status_zh": STATUS_ZH.get(w.status, w.status), "late": w.late,
            "attempts": w.attempts, "his_serial": w.his_serial, "last_error_code": w.last_error_code,
            "last_error": w.last_error, "next_attempt_at": w.next_attempt_at.isoformat() if w.next_attempt_at else None,
            "recorded_at": w.recorded_at.isoformat() if w.recorded_at else None,
            "created_at": w.created_at.isoformat(), "updated_at": w.updated_at.isoformat()}


def _mask_name(name: str) -> str:
    """张三 → 张*, 欧阳娜娜 → 欧**娜: the way Chinese hospital screens show a name."""
    if len(name) <= 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


class WritebackService(PeriodicWorker):
    name = "his-writeback"

    def __init__(self, core: Core) -> None:
        super().__init__(core, core.settings.his_worker_interval_seconds)

    # --- at payment creation ---------------------------------------------------------------
    async def prepare(self, app_id: str, link: HisLink, *, payment_id: str, amount: int,
                      business_type: str, kind: str = "payment") -> tuple[SystemInfo, dict[str, Any]] | None:
        """Resolve the business system and check the bill; returns the write-back row to insert.

        ``kind`` is ``payment``, or ``ins_setl`` for an insurance settlement (``payment_id``
        is then the settlement id and ``amount`` its total, which the charges must equal)."""
        his = self.core.his
        system = await his.get(link.system) if link.system else await his.for_business_type(business_type)
        if system is None:
            from ..errors import HisSystemUnknown

            raise HisSystemUnknown(f"no business system owns business type {business_type!r}; name one in his.system",
                                   business_type=business_type, available=await his.enabled_ids())
        if not system.options.write_back:
            return None
        adapter = await his.adapter(system.id)
        what = "payment"
        if kind == INSURANCE_SETTLEMENT:
            what = "settlement total"
            if not adapter.supports(HisCapability.INSURANCE_WRITE_BACK):
                raise HisNotSupported("insurance_write_back", adapter.id)
        bill_type = link.bill_type or _BUSINESS_BILL_TYPE.get(business_type, BillType.OTHER).value
        if system.options.verify_amount and link.charge_ids and adapter.supports(HisCapability.PENDING):
            # The bill as the system sees it now: paying a different amount would be refused at write-back.
            charges = await adapter.pending_charges(PatientQuery(patient_id=link.patient_id, visit_no=link.visit_no))
            by_id = {c.charge_id: c for c in charges}
            missing = [c for c in link.charge_ids if c not in by_id]
            if missing:
                raise HisAmountMismatch("some charges are not pending in the business system (paid or cancelled)",
                                        missing_charges=missing)
            due = sum(by_id[c].amount for c in link.charge_ids)
            if due != amount:
                raise HisAmountMismatch(f"the charges total {due} fen, the {what} is {amount} fen",
                                        due=due, amount=amount)
            if link.bill_type is None:
                bill_type = by_id[link.charge_ids[0]].bill_type
        vault = self.core.vault
        now = utcnow()
        row_id = "W" + payment_id if kind == INSURANCE_SETTLEMENT else "W" + payment_id[1:]
        row = {"id": row_id, "kind": kind, "payment_id": payment_id, "refund_id": "",
               "system_id": system.id, "app_id": app_id, "amount": amount, "bill_type": bill_type,
               "patient_enc": vault.encrypt(link.patient_id), "patient_hash": vault.blind_index(link.patient_id),
               "patient_name_enc": vault.encrypt(link.patient_name) if link.patient_name else None,
               "patient_name_hash": vault.blind_index(link.patient_name) if link.patient_name else None,
               "patient_phone_enc": vault.encrypt(link.patient_phone) if link.patient_phone else None,
               "visit_no": link.visit_no, "charge_ids": link.charge_ids, "status": "WAITING", "late": False,
               "attempts": 0, "next_attempt_at": None, "lease_until": None, "his_serial": None,
               "last_error_code": None, "last_error": None, "recorded_at": None, "created_at": now, "updated_at": now}
        return system, row

    # --- the worker ----------------------------------------------------------------------------
    async def run_once(self) -> int:
        rows = await claim_due(self.core, _W, _W.c.status.in_(("PENDING", "FAILED")), lease=LEASE, limit=50)
        if rows:
            sem = asyncio.Semaphore(10)

            async def one(row: Any) -> None:
                async with sem:
                    try:
                        await self.attempt(row)
                    except Exception:
                        log.exception("write-back %s failed unexpectedly", row.id)

            await asyncio.gather(*(one(r) for r in rows))
        return len(rows)

    async def attempt(self, row: Any) -> str:
        """One round of write-back for a leased row: quick retries, then the outcome recorded."""
        if row.kind in INSURANCE_KINDS:
            return await self._attempt_insurance(row)
        core = self.core
        payment = await core.ledger.get_payment(row.payment_id)
        assert payment is not None
        if row.kind == "payment" and row.late:
            await core.cases.open(payment, row, reason="late_success",
                                  detail="支付成功时调用方已放弃(关单/撤销)，需确认是否入账")
        try:
            adapter = await core.his.adapter(row.system_id)
            call = self._payment_call(adapter, row, payment) if row.kind == "payment" else \
                self._refund_call(adapter, row, payment, await core.ledger.get_refund(row.refund_id))
            result = await self._with_retries(row, call)
        except HisNotSupported as exc:
            await self._finish(row, "CANCELLED", error_code=exc.code, error=str(exc))
            return "CANCELLED"
        except (HisError, YinyiError) as exc:
            return await self._failed(row, payment, exc.code, str(exc))
        if result.status == WriteBackStatus.RECORDED:
            await self._finish(row, "RECORDED", his_serial=result.his_serial)
            if row.kind == "payment":
                await core.cases.written_back(payment.id, actor="system:writeback")
            return "RECORDED"
        await self._finish(row, "REJECTED", error_code=result.error_code, error=result.error_message)
        if row.kind == "payment":
            await core.cases.open(payment, row, reason="writeback_rejected",
                                  detail=f"{result.error_code}: {result.error_message}"[:256])
        elif row.kind == "refund":
            await self._refund_notice(row, "REJECTED", result.error_code, result.error_message, retrying=False)
        return "REJECTED"

    async def _with_retries(self, row: Any, call: Any, log_detail: dict[str, Any] | None = None) -> WriteBackResult:
        quick = [wait_fixed(w) for w in self.core.settings.his_writeback_retry_waits]
        result = None
        async for attempt in AsyncRetrying(stop=stop_after_attempt(len(quick) + 1),
                                           wait=wait_chain(*quick) if quick else wait_fixed(0),
                                           retry=retry_if_exception_type(HisError), reraise=True):
            with attempt:
                result = await self._logged(row, call, log_detail)
        assert result is not None
        return result

    # --- insurance settlements ------------------------------------------------------------------
    async def _attempt_insurance(self, row: Any) -> str:
        """医保结算回写 / 医保结算撤销回写 of a leased row, from the insurance ledger."""
        core = self.core
        store = core.insurance_settlements.store
        setl = await store.get(row.payment_id)
        if setl is None:  # pragma: no cover - the row is written with its settlement
            await self._finish(row, "CANCELLED", error_code="NOT_FOUND", error="insurance settlement not found")
            return "CANCELLED"
        his_serial = None
        if row.kind == INSURANCE_REVERSAL:
            original = await self._row_of(setl.id, INSURANCE_SETTLEMENT)
            if original is None or original.status in ("CANCELLED", "REJECTED", "WAITING"):
                await self._finish(row, "CANCELLED", error_code=NOT_RECORDED,
                                   error="业务系统未记录该医保结算，无需撤销回写 / the business system never recorded "
                                         "the settlement: no reversal to write back")
                return "CANCELLED"
            if original.status in ("PENDING", "FAILED") and (original.status == "PENDING"
                                                             or original.next_attempt_at is not None):
                # The settlement's own write-back is still being tried: the reversal follows it.
                await self._defer(row, original.next_attempt_at)
                return "DEFERRED"
            his_serial = original.his_serial
        detail = {"setl_id": setl.setl_id, "mdtrt_id": setl.mdtrt_id, "psn_no": mask_value(setl.psn_no),
                  "insutype": setl.insutype}
        try:
            adapter = await core.his.adapter(row.system_id)
            call = await self._insurance_call(adapter, row, setl, his_serial)
            result = await self._with_retries(row, call, detail)
        except HisNotSupported as exc:
            await self._finish(row, "CANCELLED", error_code=exc.code, error=str(exc))
            await self._note(setl, row, "his_not_supported", {"error": exc.code})
            return "CANCELLED"
        except (HisError, YinyiError) as exc:
            outcome = await self._failed(row, None, exc.code, str(exc))
            await self._note(setl, row, "his_failed", {"error": exc.code, "message": str(exc)[:200]})
            return outcome
        if result.status == WriteBackStatus.RECORDED:
            await self._finish(row, "RECORDED", his_serial=result.his_serial)
            await self._note(setl, row, "his_recorded", {"his_serial": result.his_serial})
            return "RECORDED"
        await self._finish(row, "REJECTED", error_code=result.error_code, error=result.error_message)
        await self._note(setl, row, "his_rejected", {"error": result.error_code, "message": result.error_message})
        return "REJECTED"

    async def _insurance_call(self, adapter: Any, row: Any, setl: Any, his_serial: str | None) -> Any:
        from ..insurance import FUND_FIELDS

        core = self.core
        payment = await core.ledger.get_payment(setl.payment_id) if setl.payment_id else None
        funds = {name: 0 for name in FUND_FIELDS}
        funds.update({k: int(v) for k, v in (setl.funds or {}).items()})
        common: dict[str, Any] = {
            "settlement_id": setl.id, "mdtrt_id": setl.mdtrt_id, "psn_no": setl.psn_no, "insutype": setl.insutype,
            "total": setl.total or 0, "fund_total": setl.fund_total or 0, "funds": funds,
            "acct_pay": setl.acct_pay or 0, "acct_mulaid_pay": setl.acct_mulaid_pay or 0,
            "wallet_pay": setl.wallet_pay or 0, "cash_pay": setl.cash_pay or 0, "hosp_part": setl.hosp_part or 0,
            "psn_part": setl.psn_part or 0, "patient_id": core.vault.decrypt(row.patient_enc),
            "visit_no": row.visit_no, "charge_ids": list(row.charge_ids), "bill_type": row.bill_type}
        topup = payment if payment is not None and (setl.cash_pay or 0) > 0 else None
        if row.kind == INSURANCE_SETTLEMENT:
            iwb = InsuranceWriteBack(
                **common, out_settle_no=setl.out_settle_no, app_id=setl.app_id, kind=setl.kind,
                centre=setl.centre_id, setl_id=setl.setl_id or "", med_type=setl.med_type, clr_type=setl.clr_type,
                setl_time=setl.setl_time or setl.completed_at or setl.updated_at, balance_after=setl.balance_after,
                topup_payment_id=topup.id if topup else None, topup_channel=topup.channel if topup else None,
                topup_method=topup.method if topup else None,
                topup_channel_trade_no=topup.channel_trade_no if topup else None,
                topup_paid_at=(topup.paid_at or topup.updated_at) if topup else None,
                business_type=setl.business_type, operator=setl.operator)
            return lambda: adapter.write_back_insurance(iwb)
        refund = await core.ledger.get_refund(setl.refund_id) if setl.refund_id else None
        irwb = InsuranceReversalWriteBack(
            **common, setl_id=setl.setl_id or "", rev_setl_id=setl.rev_setl_id,
            reversed_at=setl.rev_time or setl.completed_at or setl.updated_at,
            refund_id=refund.id if refund else None, refund_channel=topup.channel if refund and topup else None,
            topup_payment_id=topup.id if topup else None, his_serial=his_serial, reason=setl.reason)
        return lambda: adapter.write_back_insurance_reversal(irwb)

    async def _note(self, setl: Any, row: Any, action: str, detail: dict[str, Any]) -> None:
        """Append the write-back's outcome to the settlement's history."""
        current = await self.core.insurance_settlements.store.get(setl.id) or setl
        await self.core.insurance_settlements.store.note(
            setl.id, current.status, f"{action}:{row.kind}", "worker", {"system": row.system_id, **detail})

    async def _row_of(self, target_id: str, kind: str) -> HisWriteback | None:
        async with self.core.rsm() as s:
            return (await s.execute(select(HisWriteback).where(
                HisWriteback.payment_id == target_id, HisWriteback.kind == kind))).scalar_one_or_none()

    async def _defer(self, row: Any, until: dt.datetime | None) -> None:
        """Put a leased row back, due again later, without counting an attempt."""
        now = utcnow()
        due = max(until or now, now + dt.timedelta(seconds=self.core.settings.his_writeback_slow_interval_seconds))

        def tx(conn: Connection) -> None:
            conn.execute(update(_W).where(_W.c.id == row.id, _W.c.status.in_(("PENDING", "FAILED")))
                         .values(lease_until=None, next_attempt_at=due, updated_at=now))

        await self.core.writer.run(tx, durable=False)

    async def for_settlement(self, settlement_id: str) -> list[HisWriteback]:
        """The write-backs of an insurance settlement: its own and its reversal's."""
        async with self.core.rsm() as s:
            return list((await s.execute(select(HisWriteback).where(
                HisWriteback.payment_id == settlement_id, HisWriteback.kind.in_(INSURANCE_KINDS))
                .order_by(HisWriteback.created_at))).scalars())

    async def _logged(self, row: Any, call: Any, detail: dict[str, Any] | None = None) -> Any:
        import time

        start = time.perf_counter()
        outcome, code, result = "normal", None, None
        try:
            result = await call()
            if result.status != WriteBackStatus.RECORDED:
                outcome, code = "abnormal", result.error_code
            return result
        except YinyiError as exc:
            outcome, code = "abnormal", exc.code
            raise
        finally:
            self.core.ilog.record(direction="out", interface=f"his.{row.kind}_write_back", channel=None,
                                  merchant_id=row.system_id, payment_id=row.payment_id, outcome=outcome,
                                  error_code=code, latency_ms=(time.perf_counter() - start) * 1000,
                                  request={"system": row.system_id, "amount": row.amount, "kind": row.kind,
                                           **(detail or {})},
                                  response={"status": result.status.value, "his_serial": result.his_serial}
                                  if result is not None else None)

    def _payment_call(self, adapter: Any, row: Any, payment: Payment) -> Any:
        wb = WriteBack(payment_id=payment.id, out_trade_no=payment.out_trade_no, app_id=payment.app_id,
                       amount=payment.amount, channel=payment.channel, method=payment.method,
                       channel_trade_no=payment.channel_trade_no, paid_at=payment.paid_at or payment.updated_at,
                       patient_id=self.core.vault.decrypt(row.patient_enc), visit_no=row.visit_no,
                       charge_ids=list(row.charge_ids), bill_type=row.bill_type, business_type=payment.business_type,
                       campus_id=payment.campus_id, operator=payment.operator, entry=payment.entry)
        return lambda: adapter.write_back(wb)

    def _refund_call(self, adapter: Any, row: Any, payment: Payment, refund: Refund | None) -> Any:
        assert refund is not None
        rwb = RefundWriteBack(refund_id=refund.id, payment_id=payment.id, amount=refund.amount, total=payment.amount,
                              refunded_at=refund.refunded_at or refund.updated_at,
                              patient_id=self.core.vault.decrypt(row.patient_enc), visit_no=row.visit_no,
                              his_serial=row.his_serial, channel=payment.channel,
                              channel_refund_no=refund.channel_refund_no, reason=refund.reason,
                              bill_type=row.bill_type)
        return lambda: adapter.write_back_refund(rwb)

    async def _failed(self, row: Any, payment: Payment | None, code: str, message: str) -> str:
        """The quick retries are spent: open the case at once, retry later on the slow schedule."""
        s = self.core.settings
        attempts = row.attempts + 1
        delay = min(s.his_writeback_slow_interval_seconds * (2 ** min(attempts - 1, 10)),
                    s.his_writeback_slow_max_seconds)
        retry_at = utcnow() + dt.timedelta(seconds=delay) if attempts < s.his_writeback_max_rounds else None
        await self._finish(row, "FAILED", error_code=code, error=message, next_attempt_at=retry_at)
        if row.kind == "payment" and payment is not None:
            await self.core.cases.open(payment, row, reason="writeback_failed", detail=f"{code}: {message}"[:256])
        elif row.kind == "refund" and (row.status == "PENDING" or retry_at is None):
            # Once per failure (not every slow round), and again when only staff may retry.
            await self._refund_notice(row, "FAILED", code, message, retrying=retry_at is not None)
        return "FAILED"

    async def _refund_notice(self, row: Any, status: str, code: str | None, message: str | None, *,
                             retrying: bool) -> None:
        """退费回写失败: the money went back but the business system has not recorded the refund;
        staff fix the cause and retry (``POST /v1/admin/his/writebacks/{refund_id}/retry``)."""
        log.warning("refund write-back %s of refund %s %s: %s %s", row.id, row.refund_id, status, code, message)
        await self.core.notices.emit("refund_writeback.failed", audience="staff", subject_id=row.refund_id, payload={
            "writeback_id": row.id, "refund_id": row.refund_id, "payment_id": row.payment_id,
            "system": row.system_id, "amount": row.amount, "amount_yuan": fen_to_yuan(row.amount),
            "status": status, "status_zh": STATUS_ZH.get(status, status), "error_code": code,
            "error": (message or "")[:256] or None, "auto_retry": retrying})

    async def _finish(self, row: Any, status: str, *, his_serial: str | None = None, error_code: str | None = None,
                      error: str | None = None, next_attempt_at: dt.datetime | None = None) -> None:
        now = utcnow()
        values: dict[str, Any] = {"status": status, "attempts": row.attempts + 1, "lease_until": None,
                                  "next_attempt_at": next_attempt_at, "updated_at": now}
        if status == "RECORDED":
            values.update(his_serial=his_serial, recorded_at=now, last_error_code=None, last_error=None)
        else:
            values.update(last_error_code=(error_code or "")[:64] or None, last_error=(error or "")[:256] or None)

        def tx(conn: Connection) -> None:
            # Only while still ours and not cancelled meanwhile (a case refund cancels it).
            conn.execute(update(_W).where(_W.c.id == row.id, _W.c.status.in_(("PENDING", "FAILED")))
                         .values(**values))

        await self.core.writer.run(tx, durable=status == "RECORDED")

    # --- administration ---------------------------------------------------------------------------
    async def get_for_payment(self, payment_id: str) -> HisWriteback | None:
        async with self.core.rsm() as s:
            return (await s.execute(select(HisWriteback).where(
                HisWriteback.payment_id == payment_id, HisWriteback.kind == "payment"))).scalar_one_or_none()

    async def retry_now(self, target_id: str, actor: str) -> HisWriteback:
        """Queue a write-back again now (after the business system was fixed).

        ``target_id`` is a payment id (its 确认收费 write-back), a refund id (its 退费回写)
        or a write-back id, as the exception search lists them.
        """
        which = ((_W.c.kind == "payment") & (_W.c.payment_id == target_id)) \
            | ((_W.c.kind == "refund") & (_W.c.refund_id == target_id)) | (_W.c.id == target_id) \
            | (_W.c.kind.in_(INSURANCE_KINDS) & (_W.c.payment_id == target_id))  # an insurance settlement id

        def tx(conn: Connection) -> Any:
            return conn.execute(update(_W).where(which, _W.c.status.in_(("FAILED", "REJECTED")))
                                .values(status="PENDING", next_attempt_at=utcnow(), updated_at=utcnow())
                                .returning(*_W.c)).first()

        row = await self.core.writer.run(tx)
        if row is None:
            async with self.core.rsm() as s:
                current = (await s.execute(select(HisWriteback).where(which))).scalars().first()
            if current is None:
                raise NotFound(f"{target_id} has no business-system write-back")
            raise InvalidState("the write-back is not failed or rejected", current_status=current.status)
        await self.core.ledger.audit(actor, "writeback.retry", row.refund_id or row.payment_id,
                                     {"system": row.system_id, "kind": row.kind, "writeback_id": row.id})
        self.wake()
        return HisWriteback(**dict(row._mapping))

    async def request_refund(self, payment_id: str, *, actor: str, reason: str | None) -> dict[str, Any]:
        """原路退款 from the exception search: through the payment's single-sided case.

        Reuses the case the failure or rejection opened (opening it if it is missing)
        and applies for its refund on the usual approval path; an application already
        waiting is returned as it is. A write-back the system recorded is not a
        single-sided payment: its refund is the caller's, with ``his_write_back``.
        """
        from .cases import case_out

        core = self.core
        row = await self.get_for_payment(payment_id)
        if row is None:
            raise NotFound(f"payment {payment_id} has no business-system write-back")
        case = await core.cases.for_payment(payment_id)
        if case is None:
            if row.status not in ("FAILED", "REJECTED"):
                raise InvalidState("only a failed or rejected write-back can be refunded from here",
                                   current_status=row.status)
            payment = await core.ledger.get_payment(payment_id)
            assert payment is not None
            reason_code = "writeback_rejected" if row.status == "REJECTED" else "writeback_failed"
            await core.cases.open(payment, row, reason=reason_code,
                                  detail=f"{row.last_error_code}: {row.last_error}"[:256])
            case = await core.cases.for_payment(payment_id)
            assert case is not None
        if case.status == "APPROVING" and case.approval_id:
            return {"case": case_out(case), "approval_id": case.approval_id}
        return await core.cases.request_refund(case.id, actor=actor, reason=reason)

    async def cancel(self, payment_id: str) -> str | None:
        """Stop retrying a payment's write-back (its case is being refunded).

        Returns the status found: CANCELLED when stopped, RECORDED if it landed
        meanwhile, LEASED if a write-back attempt is in flight right now (try again).
        """
        now = utcnow()

        def tx(conn: Connection) -> str | None:
            res = conn.execute(update(_W).where(
                _W.c.payment_id == payment_id, _W.c.kind == "payment",
                _W.c.status.in_(("PENDING", "FAILED", "REJECTED", "WAITING")),
                (_W.c.lease_until.is_(None)) | (_W.c.lease_until < now))
                .values(status="CANCELLED", next_attempt_at=None, updated_at=now))
            if res.rowcount == 1:
                return "CANCELLED"
            row = conn.execute(select(_W.c.status, _W.c.lease_until).where(
                _W.c.payment_id == payment_id, _W.c.kind == "payment")).first()
            if row is None:
                return None
            return "LEASED" if row.status in ("PENDING", "FAILED") else row.status

        return await self.core.writer.run(tx)

    async def search(self, *, day: dt.date | None = None, patient_id: str | None = None,
                     patient_name: str | None = None, visit_no: str | None = None, his_serial: str | None = None,
                     trade_no: str | None = None, status: list[str] | None = None, system: str | None = None,
                     kind: str | None = None, charge_id: str | None = None,
                     limit: int = 200, reveal: bool = False) -> list[dict[str, Any]]:
        """回写HIS异常查询: by date, patient, visit number, business serial, trade number and charge.

        Each row carries ``case_id`` and ``case_status``: the single-sided case of a
        payment's write-back, if one was opened (refund write-backs have none).
        """
        q = select(HisWriteback).order_by(HisWriteback.created_at.desc()).limit(min(max(limit, 1), 1000))
        if status:
            q = q.where(HisWriteback.status.in_(status))
        if day is not None:
            from ..timeutil import local_day_bounds

            start, end = local_day_bounds(day)
            q = q.where(HisWriteback.created_at >= start, HisWriteback.created_at < end)
        if patient_id:
            q = q.where(HisWriteback.patient_hash == self.core.vault.blind_index(patient_id))
        if patient_name:
            q = q.where(HisWriteback.patient_name_hash == self.core.vault.blind_index(patient_name))
        if visit_no:
            q = q.where(HisWriteback.visit_no == visit_no)
        if his_serial:
            q = q.where(HisWriteback.his_serial == his_serial)
        if system:
            q = q.where(HisWriteback.system_id == system)
        if kind:
            q = q.where(HisWriteback.kind == kind)
        if trade_no:
            sub = select(Payment.id).where((Payment.id == trade_no) | (Payment.out_trade_no == trade_no)
                                           | (Payment.channel_trade_no == trade_no))
            rsub = select(Refund.id).where((Refund.id == trade_no) | (Refund.out_refund_no == trade_no)
                                           | (Refund.channel_refund_no == trade_no))
            from ..db.models import InsuranceSettlement

            ssub = select(InsuranceSettlement.id).where(
                (InsuranceSettlement.id == trade_no) | (InsuranceSettlement.out_settle_no == trade_no)
                | (InsuranceSettlement.setl_id == trade_no))
            q = q.where(HisWriteback.payment_id.in_(sub) | HisWriteback.refund_id.in_(rsub)
                        | (HisWriteback.kind.in_(INSURANCE_KINDS) & HisWriteback.payment_id.in_(ssub)))
        if charge_id:
            # charge_ids is a JSON list: match one element, quotes included, on every database.
            q = q.where(cast(HisWriteback.charge_ids, String).contains(f'"{charge_id}"', autoescape=True))
        async with self.core.rsm() as s:
            rows = (await s.execute(q)).scalars().all()
            pids = {r.payment_id for r in rows if r.kind == "payment"}
            cases = {c.payment_id: c for c in (await s.execute(
                select(SingleSidedCase).where(SingleSidedCase.payment_id.in_(pids)))).scalars()} if pids else {}
        out = []
        for r in rows:
            case = cases.get(r.payment_id) if r.kind == "payment" else None
            out.append({**writeback_out(r, self.core.vault, reveal=reveal), "case_id": case.id if case else None,
                        "case_status": case.status if case else None})
        return out
