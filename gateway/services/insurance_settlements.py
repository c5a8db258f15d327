"""Mixed insurance settlements (医保结算 + 自付补缴) and the worker that finishes them.

``create`` records the intent (CREATED, with the settle call's msgids), settles at
the centre, and collects the cash part as one payment through the ordinary payment
flow; ``cancel`` abandons an unpaid top-up; ``reverse`` undoes a completed
settlement. The steps are in :mod:`.insurance_steps`; the state machine in
:mod:`gateway.insurance_state`. A leased worker (several processes may run it on
one database) picks up every settlement left in an intermediate state, by a crash
or a pending top-up, and drives it to a consistent end.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from ..db.models import InsuranceSettlement, Payment, utcnow
from ..errors import (ALL_ERRORS, IdempotencyConflict, InsuranceAlreadyReversed, InsuranceSettlementFailed,
                      InsuranceSettlementNotFound, InsuranceUnknown, InvalidState, YinyiError)
from ..insurance_state import SETTLEMENT_OPEN, SettlementStatus
from .insurance_schemas import SettlementCreate
from .insurance_steps import PLANNED, SettlementSteps
from .insurance_store import InsuranceStore
from .payments import new_id, request_hash
from .worker import PeriodicWorker, claim_due
from .writeback import INSURANCE_SETTLEMENT

if TYPE_CHECKING:
    from ..core import Core

log = logging.getLogger("yinyi.insurance")
S = SettlementStatus
_T = InsuranceSettlement.__table__
_ERRORS = {cls.code: cls for cls in ALL_ERRORS}


def fingerprint(req: SettlementCreate) -> str:
    data = req.model_dump(mode="json", exclude={"password", "notify_url", "operator"})
    if data.get("top_up"):
        data["top_up"].pop("wait_seconds", None)
    return request_hash(data)


class InsuranceSettlements(SettlementSteps, PeriodicWorker):
    name = "insurance-settlements"

    def __init__(self, core: Core) -> None:
        PeriodicWorker.__init__(self, core, core.settings.insurance_worker_interval_seconds)
        self.store = InsuranceStore(core)

    # --- create ---------------------------------------------------------------------------------
    async def create(self, app_id: str, req: SettlementCreate) -> tuple[InsuranceSettlement, Payment | None]:
        core = self.core
        digest = fingerprint(req)
        existing = await self.store.by_out_settle_no(app_id, req.out_settle_no)
        if existing is not None:
            return await self._replay(existing, digest)
        centre = await core.insurance_centres.resolve(req.centre)
        adapter = await core.insurance_centres.adapter(centre)
        if req.top_up is not None:
            await self._check_top_up(req)
        now = utcnow()
        sid = new_id("IS")
        writeback = None
        if req.his is not None:
            # The bill is checked before anything is settled; its write-back row goes in with the intent.
            prepared = await core.writebacks.prepare(app_id, req.his, payment_id=sid, amount=req.total,
                                                     business_type=req.business_type or req.kind,
                                                     kind=INSURANCE_SETTLEMENT)
            writeback = prepared[1] if prepared else None
        top = req.top_up.model_dump(mode="json") if req.top_up else None
        stored = req.model_dump(mode="json", exclude={"password", "top_up"})
        row = InsuranceSettlement(
            id=sid, app_id=app_id, out_settle_no=req.out_settle_no, request_hash=digest, centre_id=centre,
            kind=req.kind, status=S.CREATED.value, reason=None, business_type=req.business_type or req.kind,
            notify_url=req.notify_url, operator=req.operator, request_enc=core.vault.encrypt_json(stored),
            topup_enc=core.vault.encrypt_json(top) if top else None, psn_no=req.visit.psn_no,
            insuplc_admdvs=req.visit.insuplc_admdvs, mdtrt_id=req.visit.mdtrt_id, insutype=req.insutype,
            med_type=req.med_type, settle_infno="2207" if req.kind == "outpatient" else "2304",
            settle_msgids=adapter.allocate_msgids(PLANNED), funds={}, fund_payments=[], scope={},
            stop_requested=False, rev_msgids=[], reversal={}, needs_review=False, attempts=0,
            # the worker leaves the in-flight call alone until it has surely ended
            next_attempt_at=now + dt.timedelta(seconds=core.settings.insurance_call_grace_seconds),
            lease_until=None, created_at=now, updated_at=now)
        row, created = await self.store.insert(row, writeback)
        if not created:
            return await self._replay(row, digest)
        await self.settle(row, req, source="api")
        row = await self._reload(sid)
        if row.status == S.TOPUP_PENDING:
            await self.start_top_up(row, source="api", wait=True)
            row = await self._reload(sid)
        if row.status == S.REVERSING:
            await self.drive_reversal(row, source="api")
            row = await self._reload(sid)
        if row.status == S.FAILED:
            raise self.failure(row)
        return row, await self._payment(row)

    async def _check_top_up(self, req: SettlementCreate) -> None:
        """Refuse a top-up the gateway could never take, before anything is recorded."""
        top = req.top_up
        assert top is not None
        registry = self.core.registry
        off = await self.core.directory.disabled_channels()
        channel = top.channel or registry.detect_channel(top.auth_code or "", also_disabled=off)
        from ..channel import Capability, Method

        caps = {Method.CODE: Capability.CODE, Method.QR: Capability.QR, Method.JSAPI: Capability.JSAPI,
                Method.H5: Capability.H5}
        registry.require(channel, caps[top.method])

    async def _replay(self, row: InsuranceSettlement, digest: str) -> tuple[InsuranceSettlement, Payment | None]:
        if row.request_hash != digest:
            raise IdempotencyConflict(f"out_settle_no {row.out_settle_no!r} was used with a different request",
                                      settlement_id=row.id)
        if row.status == S.FAILED:
            raise self.failure(row)
        return row, await self._payment(row)

    def failure(self, row: InsuranceSettlement) -> YinyiError:
        """The error a FAILED settlement answers with, the same on every retry."""
        extra = {"settlement_id": row.id, "settlement_status": row.status, "reason": row.reason}
        cls = _ERRORS.get(row.error_code or "")
        if row.reason == "centre_refused" and cls is not None and not issubclass(cls, InsuranceUnknown):
            return cls(row.error_message, **extra)
        return InsuranceSettlementFailed(
            f"the settle call's outcome was unknown ({row.error_code}); it was cancelled at the centre with 2601 "
            f"(冲正). Start again with a new out_settle_no", cause=row.error_code, **extra)

    # --- queries --------------------------------------------------------------------------------
    async def _reload(self, sid: str) -> InsuranceSettlement:
        row = await self.store.get(sid)
        if row is None:
            raise InsuranceSettlementNotFound(f"insurance settlement {sid!r} not found")
        return row

    async def _payment(self, row: InsuranceSettlement) -> Payment | None:
        return await self.core.ledger.get_payment(row.payment_id) if row.payment_id else None

    async def get(self, app_id: str | None, sid: str) -> tuple[InsuranceSettlement, Payment | None]:
        row = await self.store.get(sid)
        if row is None or (app_id is not None and row.app_id != app_id):
            raise InsuranceSettlementNotFound(f"insurance settlement {sid!r} not found")
        return row, await self._payment(row)

    async def by_out_settle_no(self, app_id: str, out_settle_no: str) -> tuple[InsuranceSettlement, Payment | None]:
        row = await self.store.by_out_settle_no(app_id, out_settle_no)
        if row is None:
            raise InsuranceSettlementNotFound(f"no insurance settlement with out_settle_no {out_settle_no!r}")
        return row, await self._payment(row)

    # --- cancel and reverse ---------------------------------------------------------------------
    async def cancel(self, app_id: str, sid: str) -> tuple[InsuranceSettlement, Payment | None]:
        """The caller abandons the top-up: stop it and reverse the insurance settlement."""
        row, _ = await self.get(app_id, sid)
        if row.status in (S.REVERSING, S.REVERSED, S.FAILED):
            return await self.get(app_id, sid)
        if row.status != S.TOPUP_PENDING:
            raise InvalidState(f"settlement is {row.status}; only a settlement waiting for its top-up can be "
                               f"cancelled (reverse a completed one)", current_status=row.status)
        got = await self.store.transition(row.id, S.TOPUP_PENDING, S.REVERSING, action="cancel", source="api",
                                          reason="topup_cancelled", next_attempt_at=utcnow())
        if got is not None:
            await self.drive_reversal(got, source="api")
        return await self.get(app_id, sid)

    async def reverse(self, app_id: str, sid: str) -> tuple[InsuranceSettlement, Payment | None]:
        """Undo a completed settlement: reverse at the centre and refund the cash part."""
        row, _ = await self.get(app_id, sid)
        if row.status == S.REVERSED:
            raise InsuranceAlreadyReversed(f"insurance settlement {sid} is already reversed",
                                           settlement_id=sid, settlement_status=row.status)
        if row.status == S.REVERSING:
            return await self.get(app_id, sid)
        if row.status != S.COMPLETED:
            raise InvalidState(f"settlement is {row.status}; only a completed settlement can be reversed",
                               current_status=row.status)
        got = await self.store.transition(row.id, S.COMPLETED, S.REVERSING, action="reverse", source="api",
                                          reason="caller_reversed", next_attempt_at=utcnow()
                                          + dt.timedelta(seconds=self.core.settings.insurance_call_grace_seconds))
        if got is None:
            return await self.get(app_id, sid)
        await self.drive_reversal(got, source="api", caller=True)
        return await self.get(app_id, sid)

    # --- the worker ----------------------------------------------------------------------------------
    async def run_once(self) -> int:
        grace = dt.timedelta(seconds=max(60.0, self.core.settings.insurance_call_grace_seconds))
        rows = await claim_due(self.core, _T, _T.c.status.in_([s.value for s in SETTLEMENT_OPEN]), lease=grace,
                               limit=20)
        for raw in rows:
            row = InsuranceSettlement(**dict(raw._mapping))
            try:
                await self.step(row)
            except Exception:
                log.exception("insurance settlement %s: worker step failed", row.id)
            finally:
                await self._release(row.id)
        return len(rows)

    async def _release(self, sid: str) -> None:
        row = await self.store.get(sid)
        if row is None or row.status not in SETTLEMENT_OPEN:
            return
        due = row.next_attempt_at
        if due is None or due <= utcnow():
            due = self._later(row.attempts)
        await self.store.update(sid, expect_status=row.status, lease_until=None, next_attempt_at=due)

    async def step(self, row: InsuranceSettlement) -> None:
        status = S(row.status)
        if status == S.CREATED:
            # Past its grace the settle call has surely ended, its answer lost (a crash).
            got = await self.store.transition(row.id, S.CREATED, S.SETTLE_UNKNOWN, action="settle_lost",
                                              source="worker", error_code="INSURANCE_UNKNOWN",
                                              error_message="the settle call's answer was never recorded")
            if got is not None:
                await self.undo_unknown(got, source="worker")
        elif status == S.SETTLE_UNKNOWN:
            await self.undo_unknown(row, source="worker")
        elif status == S.TOPUP_PENDING:
            payment = await self._payment(row) if row.payment_id else \
                await self.core.ledger.payment_by_out_trade_no(row.app_id, row.topup_out_trade_no or "")
            if payment is None:
                if row.topup_deadline is not None and utcnow() >= row.topup_deadline:
                    await self.store.transition(row.id, S.TOPUP_PENDING, S.REVERSING, action="topup_timeout",
                                                source="worker", reason="topup_timeout", next_attempt_at=utcnow())
                else:
                    await self.start_top_up(row, source="worker", wait=False)
            else:
                if row.payment_id is None:
                    row = await self.store.update(row.id, payment_id=payment.id) or row
                await self.follow_top_up(row, payment, source="worker")
            row = await self._reload(row.id)
            if row.status == S.REVERSING:
                await self.drive_reversal(row, source="worker")
        elif status == S.REVERSING:
            await self.drive_reversal(row, source="worker")

    # --- reconciliation ----------------------------------------------------------------------------
    async def daily_totals(self, begin: dt.date, end: dt.date, centre: str | None = None) -> list[dict[str, Any]]:
        return await self.store.daily_totals(begin, end, centre)

    async def ledger_lines(self, begin: dt.date, end: dt.date, centre: str | None = None) -> list[dict[str, Any]]:
        return await self.store.ledger_lines(begin, end, centre)
