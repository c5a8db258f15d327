"""``yinyi demo``: a small day of real activity, so that a fresh console has something to show.

At start-up, once the sandbox is configured and the gateway listens, the demo makes today's
payments through the gateway's own services against the running simulators, exactly as
callers would: payment codes each channel's simulator pays at once (the conformance drivers'
``success`` codes), QR and mini-program orders paid as the patient through the simulator's
control surface, every one paying a pending charge of a sandbox patient and written back to
the business system. Then a few refunds (written back too), one write-back the REST HIS
simulator refuses (a single-sided case, whose original-route refund ``cashier-li`` applies
for, so that an approval waits for ``fin-zhao``), and today's T+0 reconciliation.

Idempotent: each payment and refund has a fixed ``out_trade_no`` / ``out_refund_no`` of
the day and is made only when it is not in the ledger yet. The simulated hospitals keep
what they recorded in memory only, so on a restart the demo first tells them again what
the ledger says they recorded (yesterday and today), and today's reconciliation still
balances.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from .core import Core
from .db.models import HisWriteback, Payment, Refund
from .schemas import HisLink, PaymentCreate, RefundCreate
from .timeutil import local_day_bounds, local_today

log = logging.getLogger("yinyi.demo")

APP_ID = "app_sandbox_kiosk"
CAMPUS = "main"
CASHIER = "cashier-li"  # the console user who applies for the case refund (and the window's cashier)
REST_HIS, SOAP_HIS = "his-rest", "his-soap"  # simulator names (registry)
# Payment codes each simulator pays at once: prefix, digits in between, the drivers' "success" ending.
CODE_FORMAT = {"wechatpay": ("13", 12), "alipay": ("28", 12), "unionpay": ("62", 13), "ecny": ("01", 13)}
SUCCESS_ENDING = "1234"
# The HIS's own channel codes (what a hospital's HIS prints on its bill).
HIS_CHANNEL = {"wechatpay": "WX", "alipay": "ZFB", "unionpay": "YL", "ecny": "SZRMB"}
BUSINESS_TYPE = {"outpatient_registration": "registration", "outpatient_settlement": "outpatient",
                 "inpatient_deposit": "inpatient_deposit", "inpatient_settlement": "inpatient_settlement"}
SUBJECT = {"outpatient_registration": "挂号费", "outpatient_settlement": "门诊缴费",
           "inpatient_deposit": "住院预交金", "inpatient_settlement": "住院结算"}
REG, OUT, DEP, SET = ("outpatient_registration", "outpatient_settlement", "inpatient_deposit",
                      "inpatient_settlement")


@dataclass(frozen=True)
class Planned:
    no: int  # out_trade_no DEMO-<day>-<no>
    entry: str
    channel: str
    method: str  # code | qr | jsapi
    his: str  # simulator name
    bill_types: tuple[str, ...]  # which charge to pay, in order of preference
    operator: str | None = None


# The day: four entries, the four channels, codes at the window and the kiosk, QR codes at the kiosk
# and in the clinic rooms, the mini-program; the REST HIS and the SOAP HIS.
PLAN: tuple[Planned, ...] = (
    Planned(1, "window-3", "wechatpay", "code", REST_HIS, (REG,), CASHIER),
    Planned(2, "window-3", "alipay", "code", REST_HIS, (OUT,), CASHIER),
    Planned(3, "window-3", "unionpay", "code", REST_HIS, (DEP,), CASHIER),
    Planned(4, "window-3", "ecny", "code", REST_HIS, (SET,), CASHIER),
    Planned(5, "kiosk-01", "wechatpay", "code", REST_HIS, (OUT,)),
    Planned(6, "kiosk-01", "alipay", "code", REST_HIS, (REG,)),
    Planned(7, "kiosk-01", "wechatpay", "qr", REST_HIS, (OUT,)),
    Planned(8, "kiosk-01", "alipay", "qr", REST_HIS, (SET,)),
    Planned(9, "clinic-qr", "wechatpay", "qr", REST_HIS, (OUT,)),
    Planned(10, "clinic-qr", "alipay", "qr", REST_HIS, (OUT, REG)),
    Planned(11, "clinic-qr", "ecny", "qr", REST_HIS, (REG,)),
    Planned(12, "mini-program", "wechatpay", "jsapi", REST_HIS, (REG,)),
    Planned(13, "mini-program", "wechatpay", "jsapi", REST_HIS, (SET, OUT)),
    Planned(14, "mini-program", "alipay", "jsapi", REST_HIS, (REG, OUT)),
    Planned(15, "window-3", "unionpay", "code", REST_HIS, (SET, OUT), CASHIER),
    Planned(16, "window-3", "wechatpay", "code", SOAP_HIS, (DEP,), CASHIER),
    Planned(17, "window-3", "alipay", "code", SOAP_HIS, (REG,), CASHIER),
    Planned(18, "kiosk-01", "ecny", "code", SOAP_HIS, (OUT,)),
    Planned(19, "kiosk-01", "unionpay", "code", SOAP_HIS, (SET,)),
    Planned(20, "clinic-qr", "wechatpay", "qr", SOAP_HIS, (OUT, REG)),
    Planned(21, "mini-program", "wechatpay", "jsapi", SOAP_HIS, (REG,)),
    Planned(22, "kiosk-01", "alipay", "code", SOAP_HIS, (SET, OUT)),
)
# Refunds of the day: (payment no, refund no, amount: "full" or the fraction refunded, reason).
REFUNDS: tuple[tuple[int, int, str, str], ...] = (
    (1, 1, "full", "患者退号"),
    (2, 2, "half", "退药"),
    (3, 3, "half", "出院结算后退预交金余额"),
)
CASE_NO = 23  # the payment whose write-back the REST HIS refuses: a single-sided case
CASE_ENTRY, CASE_CHANNEL = "window-3", "wechatpay"
CASE_REASON = "HIS拒绝入账，患者要求原路退款"
WAIT_SECONDS = 10.0


def trade_no(day: dt.date, no: int) -> str:
    return f"DEMO-{day:%Y%m%d}-{no:02d}"


def refund_no(day: dt.date, no: int) -> str:
    return f"DEMO-{day:%Y%m%d}-R{no}"


def auth_code(channel: str, day: dt.date, no: int) -> str:
    prefix, width = CODE_FORMAT[channel]
    middle = f"{day:%Y%m%d}{no:04d}".rjust(width, "0")[-width:]
    return f"{prefix}{middle}{SUCCESS_ENDING}"


async def make_day(core: Core, simulators: dict[str, Any], his_sims: dict[str, Any],
                   his: dict[str, Any]) -> dict[str, Any]:
    """Make today's activity (what is missing of it) and reconcile today; return what the day holds."""
    day = local_today()
    systems = {name: info["systems"][0] for name, info in his.items() if info.get("systems")}
    hospitals = {name: handle.hospital for name, handle in his_sims.items() if hasattr(handle, "hospital")}
    by_system = {systems[name]: hospitals[name] for name in systems if name in hospitals}
    await replay_his_records(core, by_system, day)
    if REST_HIS not in hospitals or REST_HIS not in systems:
        return {"day": day.isoformat(), "skipped": "no REST HIS simulator"}
    day_ = _Day(core, simulators, his_sims, systems, day)
    made = 0
    for planned in PLAN:
        made += await day_.pay(planned)
    await day_.wait_write_backs()
    # some channels take a moment to carry a refund out: the refunds run side by side
    made += sum(await asyncio.gather(*(day_.refund(*r) for r in REFUNDS)))
    await day_.wait_write_backs()
    made += await day_.single_sided_case()
    if made:
        await core.recon.run(day, actor="demo", mode="t0")
    return await day_.summary()


async def replay_his_records(core: Core, hospitals: dict[str, Any], day: dt.date) -> int:
    """Tell the simulated hospitals again what the ledger says they recorded yesterday and today
    (their memory ends with the process): payments first, then refunds."""
    if not hospitals:
        return 0
    start, end = local_day_bounds(day - dt.timedelta(days=1))[0], local_day_bounds(day)[1]
    W = HisWriteback
    async with core.rsm() as s:
        rows = (await s.execute(
            select(W, Payment.paid_at, Payment.channel, Payment.channel_trade_no, Refund.refunded_at)
            .join(Payment, Payment.id == W.payment_id)
            .outerjoin(Refund, Refund.id == W.refund_id)
            .where(W.status == "RECORDED", W.kind.in_(("payment", "refund")), W.system_id.in_(list(hospitals)),
                   W.recorded_at >= start, W.recorded_at < end)
            .order_by(W.kind, W.recorded_at))).all()
    done = 0
    for w, paid_at, channel, channel_trade_no, refunded_at in rows:
        hospital = hospitals[w.system_id]
        try:
            if w.kind == "payment":
                done += _replay_payment(core, hospital, w, paid_at or w.recorded_at, channel, channel_trade_no)
            elif hospital.find_refund(w.refund_id) is None and hospital.find_record(w.payment_id) is not None:
                hospital.record_refund(refund_id=w.refund_id, payment_id=w.payment_id, amount=w.amount,
                                       refunded_at=refunded_at or w.recorded_at)
                done += 1
        except Exception as exc:  # a record the fresh hospital cannot take: leave it to reconciliation
            log.warning("could not replay write-back %s into the simulated HIS: %s", w.id, exc)
    return done


def _replay_payment(core: Core, hospital: Any, w: Any, paid_at: dt.datetime, channel: str,
                    channel_trade_no: str | None) -> int:
    if hospital.find_record(w.payment_id) is not None:
        return 0
    charges = [hospital.charges.get(c) for c in w.charge_ids]
    charge_ids = list(w.charge_ids)
    if not charges or any(c is None or c.status != "pending" for c in charges) \
            or sum(c.amount for c in charges) != w.amount:
        # Seeded again under other numbers (the seed follows the clock): a charge of the same
        # amount on the same patient stands for the one paid.
        patient_id = core.vault.decrypt(w.patient_enc)
        if patient_id not in hospital.patients or w.bill_type not in SUBJECT:
            return 0
        charge_ids = [hospital.add_charge(patient_id, w.amount, bill_type=w.bill_type, created_at=paid_at).charge_id]
    hospital.record_payment(payment_id=w.payment_id, charge_ids=charge_ids, amount=w.amount,
                            channel=HIS_CHANNEL.get(channel, channel), channel_trade_no=channel_trade_no,
                            paid_at=paid_at)
    return 1


class _Day:
    def __init__(self, core: Core, simulators: dict[str, Any], his_sims: dict[str, Any], systems: dict[str, str],
                 day: dt.date) -> None:
        from .demo import _sample_patient

        self.core, self.simulators, self.systems, self.day = core, simulators, systems, day
        self.hospitals = {name: h.hospital for name, h in his_sims.items() if hasattr(h, "hospital")}
        self.control_urls = {name: h.info.control_url for name, h in his_sims.items()}
        # never the charge the banner prints for people to try
        self.keep = {s["charge_id"] for h in self.hospitals.values() if (s := _sample_patient(h))}
        self.payments: dict[int, str] = {}  # plan no → payment id
        self.taken: set[tuple[str, str]] = set()

    # --- payments ------------------------------------------------------------------------------
    async def _existing(self, no: int) -> Payment | None:
        return await self.core.ledger.payment_by_out_trade_no(APP_ID, trade_no(self.day, no))

    def _charge(self, his: str, bill_types: tuple[str, ...], low: int = 0, high: int | None = None) -> Any:
        hospital = self.hospitals[his]
        pending = sorted((c for c in hospital.charges.values() if c.status == "pending"
                          and c.charge_id not in self.keep and (his, c.charge_id) not in self.taken
                          and low < c.amount and (high is None or c.amount <= high)),
                         key=lambda c: (c.patient_id, c.charge_id))
        for bill_type in bill_types:
            found = next((c for c in pending if c.bill_type == bill_type), None)
            if found is not None:
                self.taken.add((his, found.charge_id))  # still pending until its write-back lands
                return found
        return None

    async def pay(self, planned: Planned) -> int:
        existing = await self._existing(planned.no)
        if existing is not None:
            self.payments[planned.no] = existing.id
            return 0
        if planned.channel not in self.simulators or planned.his not in self.hospitals:
            return 0
        limit = self.core.settings.single_sided_auto_refund_max
        # up to the automatic-refund limit (deposits apart): the charges above it are the case's to pay
        charge = self._charge(planned.his, planned.bill_types, high=None if planned.bill_types == (DEP,) else limit)
        if charge is None:
            return 0
        payment = await self._pay_charge(planned.no, planned.entry, planned.channel, planned.method, planned.his,
                                         charge, planned.operator)
        self.payments[planned.no] = payment.id
        return 1

    async def _pay_charge(self, no: int, entry: str, channel: str, method: str, his: str, charge: Any,
                          operator: str | None) -> Payment:
        core = self.core
        patient = self.hospitals[his].patients[charge.patient_id]
        req = PaymentCreate(
            out_trade_no=trade_no(self.day, no), amount=charge.amount, subject=SUBJECT[charge.bill_type],
            business_type=BUSINESS_TYPE[charge.bill_type], method=method, channel=channel,
            auth_code=auth_code(channel, self.day, no) if method == "code" else None,
            openid=f"oDemo{self.day:%Y%m%d}{no:04d}" if method == "jsapi" else None,
            campus=CAMPUS, entry=entry, operator=operator,
            his=HisLink(system=self.systems[his], patient_id=patient.patient_id, patient_name=patient.name,
                        visit_no=charge.visit_no, charge_ids=[charge.charge_id]))
        payment = await core.payments.create(APP_ID, req)
        if method != "code" and payment.status not in ("SUCCEEDED", "FAILED", "CLOSED"):
            payment = await self._paid_by_patient(payment, channel)
        return payment

    async def _paid_by_patient(self, payment: Payment, channel: str) -> Payment:
        """The patient scans the QR code (or pays in the mini-program): the simulator's control surface."""
        core = self.core
        assert core.http is not None
        control = self.simulators[channel].info.control_url
        async with core.http.post(f"{control}/orders/{payment.id}/pay", json={}) as r:
            if r.status >= 300:
                log.warning("the %s simulator did not pay %s: %s", channel, payment.id, await r.text())
                return payment
        deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
        while asyncio.get_running_loop().time() < deadline:
            current = await core.ledger.get_payment(payment.id)
            assert current is not None
            if current.status == "SUCCEEDED":
                return current
            await core.resolver.settle_payment(current)  # as the resolver would, without its delay
            await asyncio.sleep(0.05)
        return payment

    async def wait_write_backs(self) -> None:
        """Until every write-back of the day's payments and refunds is done (recorded or refused)."""
        self.core.writebacks.wake()
        ids = list(self.payments.values())
        deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
        while ids and asyncio.get_running_loop().time() < deadline:
            async with self.core.rsm() as s:
                waiting = (await s.execute(select(HisWriteback.id).where(
                    HisWriteback.payment_id.in_(ids), HisWriteback.status.in_(("WAITING", "PENDING"))))).all()
            if not waiting:
                return
            self.core.writebacks.wake()
            await asyncio.sleep(0.1)

    # --- refunds -------------------------------------------------------------------------------
    async def refund(self, pay_no: int, no: int, how: str, reason: str) -> int:
        core = self.core
        pid = self.payments.get(pay_no)
        if pid is None or await core.ledger.refund_by_out_refund_no(APP_ID, refund_no(self.day, no)) is not None:
            return 0
        payment = await core.ledger.get_payment(pid)
        if payment is None or payment.status != "SUCCEEDED":
            return 0
        amount = payment.amount if how == "full" else max(100, payment.amount // 200 * 100)  # half, whole yuan
        refund = await core.refunds.create(APP_ID, pid, RefundCreate(
            out_refund_no=refund_no(self.day, no), amount=min(amount, payment.amount), reason=reason,
            operator=payment.operator, his_write_back=True))
        deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
        while refund.status not in ("SUCCEEDED", "FAILED") and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
            await core.resolver.settle_refund(refund)  # the channel processes refunds: ask, as the resolver would
            refund = await core.refunds.get(None, refund.id)
        return 1

    # --- the single-sided case -----------------------------------------------------------------
    async def single_sided_case(self) -> int:
        """The REST HIS refuses one write-back (its fault control), then the fault is cleared; the
        case's original-route refund is applied for by the cashier, to be approved by finance."""
        core = self.core
        existing = await self._existing(CASE_NO)
        made = 0
        if existing is None:
            tiers = [t for t in core.settings.approval_tiers if t.get("role") == "finance"]
            high = int(tiers[0].get("max_amount", 100_000)) if tiers else 100_000
            charge = self._charge(REST_HIS, (SET, OUT, REG), low=core.settings.single_sided_auto_refund_max, high=high)
            if charge is None or CASE_CHANNEL not in self.simulators:
                return 0
            await self._fault({"op": "write_back", "kind": "refuse", "count": 1})
            try:
                existing = await self._pay_charge(CASE_NO, CASE_ENTRY, CASE_CHANNEL, "code", REST_HIS, charge, CASHIER)
                self.payments[CASE_NO] = existing.id
                await self.wait_write_backs()
            finally:
                await self._fault(None)
            made = 1
        self.payments[CASE_NO] = existing.id
        case = None
        deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
        while asyncio.get_running_loop().time() < deadline:
            case = await core.cases.for_payment(existing.id)
            if case is not None:
                break
            await asyncio.sleep(0.1)
        if case is not None and case.status == "OPEN" and not case.approval_id:
            await core.writebacks.request_refund(existing.id, actor=f"console:{CASHIER}", reason=CASE_REASON)
            made = 1
        return made

    async def _fault(self, spec: dict[str, Any] | None) -> None:
        core = self.core
        assert core.http is not None
        control = self.control_urls[REST_HIS]  # planned through the control surface, as a tester would
        call = core.http.post(f"{control}/faults", json=spec) if spec else core.http.delete(f"{control}/faults")
        async with call as r:
            if r.status >= 300:
                log.warning("HIS simulator fault control answered %s: %s", r.status, await r.text())

    # --- what the day holds --------------------------------------------------------------------
    async def summary(self) -> dict[str, Any]:
        core = self.core
        ids = list(self.payments.values())
        async with core.rsm() as s:
            pays = (await s.execute(select(Payment.status, Payment.amount).where(Payment.id.in_(ids)))).all()
            refs = (await s.execute(select(Refund.amount).where(Refund.payment_id.in_(ids),
                                                                 Refund.status == "SUCCEEDED"))).all()
        case_payment = self.payments.get(CASE_NO)
        case = await core.cases.for_payment(case_payment) if case_payment else None
        return {"day": self.day.isoformat(), "payments": len(pays),
                "paid": sum(a for st, a in pays if st in ("SUCCEEDED", "PARTIALLY_REFUNDED", "REFUNDED")),
                "refunds": len(refs), "refunded": sum(a for (a,) in refs),
                "case": {"id": case.id, "status": case.status, "payment_id": case.payment_id, "amount": case.amount,
                         "approval_id": case.approval_id} if case else None}
