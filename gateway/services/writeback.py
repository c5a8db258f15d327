"""Write-back of payments and refunds to their business system (确认收费 / 退费回写).

The payment's intent carries its write-back row (WAITING); the ledger makes it
PENDING in the very transaction that records the success, whatever brought the
success (the API's answer, a channel notify, the resolver's query, a bill). This
worker then calls the adapter with a few quick retries (tenacity, bounded). What
still fails becomes a single-sided case (单边账) within seconds, and the worker
keeps retrying on a slower schedule until the write-back lands or the case is
refunded. The adapter call is idempotent by payment id, so a retry after a timeout
never records a payment twice.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_chain, wait_fixed

from ..db.models import HisWriteback, Payment, Refund, utcnow
from ..errors import HisAmountMismatch, HisError, HisNotSupported, InvalidState, NotFound, YinyiError
from ..his import BillType, HisCapability, PatientQuery, RefundWriteBack, WriteBack, WriteBackStatus
from ..money import fen_to_yuan
from ..schemas import HisLink
from .worker import PeriodicWorker, claim_due

if TYPE_CHECKING:
    from ..core import Core
    from .his_systems import SystemInfo

log = logging.getLogger("yinyi.writeback")
_W = HisWriteback.__table__
LEASE = dt.timedelta(seconds=120)
STATUS_ZH = {"WAITING": "待支付", "PENDING": "待回写", "RECORDED": "已回写", "FAILED": "回写失败",
             "REJECTED": "业务系统拒绝", "CANCELLED": "已取消"}
_BUSINESS_BILL_TYPE = {"registration": BillType.OUTPATIENT_REGISTRATION, "outpatient": BillType.OUTPATIENT_SETTLEMENT,
                       "inpatient_deposit": BillType.INPATIENT_DEPOSIT, "inpatient": BillType.INPATIENT_SETTLEMENT,
                       "exam": BillType.EXAM}


def writeback_out(w: Any, vault: Any = None, *, reveal: bool = False) -> dict[str, Any]:
    from ..vault import mask_value

    patient = vault.decrypt(w.patient_enc) if vault is not None else None
    name = vault.decrypt(w.patient_name_enc) if vault is not None and w.patient_name_enc else None
    return {"id": w.id, "kind": w.kind, "payment_id": w.payment_id, "refund_id": w.refund_id or None,
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
                      business_type: str) -> tuple[SystemInfo, dict[str, Any]] | None:
        """Resolve the business system and check the bill; returns the write-back row to insert."""
        his = self.core.his
        system = await his.get(link.system) if link.system else await his.for_business_type(business_type)
        if system is None:
            from ..errors import HisSystemUnknown

            raise HisSystemUnknown(f"no business system owns business type {business_type!r}; name one in his.system",
                                   business_type=business_type, available=await his.enabled_ids())
        if not system.options.write_back:
            return None
        adapter = await his.adapter(system.id)
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
                raise HisAmountMismatch(f"the charges total {due} fen, the payment is {amount} fen",
                                        due=due, amount=amount)
            if link.bill_type is None:
                bill_type = by_id[link.charge_ids[0]].bill_type
        vault = self.core.vault
        now = utcnow()
        row = {"id": "W" + payment_id[1:], "kind": "payment", "payment_id": payment_id, "refund_id": "",
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
        core = self.core
        payment = await core.ledger.get_payment(row.payment_id)
        assert payment is not None
        if row.kind == "payment" and row.late:
            await core.cases.open(payment, row, reason="late_success",
                                  detail="支付成功时调用方已放弃(关单/撤销)，需确认是否入账")
        quick = [wait_fixed(w) for w in core.settings.his_writeback_retry_waits]
        try:
            adapter = await core.his.adapter(row.system_id)
            call = self._payment_call(adapter, row, payment) if row.kind == "payment" else \
                self._refund_call(adapter, row, payment, await core.ledger.get_refund(row.refund_id))
            result = None
            async for attempt in AsyncRetrying(stop=stop_after_attempt(len(quick) + 1),
                                               wait=wait_chain(*quick) if quick else wait_fixed(0),
                                               retry=retry_if_exception_type(HisError), reraise=True):
                with attempt:
                    result = await self._logged(row, call)
            assert result is not None
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
        return "REJECTED"

    async def _logged(self, row: Any, call: Any) -> Any:
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
                                  request={"system": row.system_id, "amount": row.amount, "kind": row.kind},
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

    async def _failed(self, row: Any, payment: Payment, code: str, message: str) -> str:
        """The quick retries are spent: open the case at once, retry later on the slow schedule."""
        s = self.core.settings
        attempts = row.attempts + 1
        delay = min(s.his_writeback_slow_interval_seconds * (2 ** min(attempts - 1, 10)),
                    s.his_writeback_slow_max_seconds)
        retry_at = utcnow() + dt.timedelta(seconds=delay) if attempts < s.his_writeback_max_rounds else None
        await self._finish(row, "FAILED", error_code=code, error=message, next_attempt_at=retry_at)
        if row.kind == "payment":
            await self.core.cases.open(payment, row, reason="writeback_failed", detail=f"{code}: {message}"[:256])
        return "FAILED"

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

    async def retry_now(self, payment_id: str, actor: str) -> HisWriteback:
        """Queue the payment's write-back again now (after the business system was fixed)."""
        def tx(conn: Connection) -> Any:
            return conn.execute(update(_W).where(
                _W.c.payment_id == payment_id, _W.c.kind == "payment", _W.c.status.in_(("FAILED", "REJECTED")))
                .values(status="PENDING", next_attempt_at=utcnow(), updated_at=utcnow()).returning(*_W.c)).first()

        row = await self.core.writer.run(tx)
        if row is None:
            current = await self.get_for_payment(payment_id)
            if current is None:
                raise NotFound(f"payment {payment_id} has no business-system write-back")
            raise InvalidState("the write-back is not failed or rejected", current_status=current.status)
        await self.core.ledger.audit(actor, "writeback.retry", payment_id, {"system": row.system_id})
        self.wake()
        return HisWriteback(**dict(row._mapping))

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
                     kind: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """回写HIS异常查询: by date, patient, visit number, business serial and trade number."""
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
            q = q.where(HisWriteback.payment_id.in_(sub))
        async with self.core.rsm() as s:
            rows = (await s.execute(q)).scalars().all()
        return [writeback_out(r, self.core.vault) for r in rows]
