"""The simulated hospital's domain: patients, visits, charges and what the HIS recorded.

One :class:`SimHospital` is shared by every HIS simulator (REST, SOAP …): each
simulator is only a wire in front of it, so the same business rules (idempotent
write-back by payment id, "bill already paid", "amount differs", over-refund, an
insurance split that does not add up) hold whichever protocol the adapter under
test speaks. Amounts are integer fen; times
are UTC-aware; bill days and the dates inside serial numbers are China days.
"""
from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field

from .faults import FaultPlan

CST = dt.timezone(dt.timedelta(hours=8))
BILL_TYPES = ("outpatient_registration", "outpatient_settlement", "inpatient_deposit", "inpatient_settlement")
# The prefix a HIS prints on each kind of document; the visit kind a bill type needs.
CHARGE_PREFIX = {"outpatient_registration": "GH", "outpatient_settlement": "CF",
                 "inpatient_deposit": "YJ", "inpatient_settlement": "JS"}
VISIT_KIND = {"outpatient_registration": "outpatient", "outpatient_settlement": "outpatient",
              "inpatient_deposit": "inpatient", "inpatient_settlement": "inpatient"}
VISIT_PREFIX = {"outpatient": "MZ", "inpatient": "ZY"}
DEFAULT_OPERATOR = "YINYI"


@dataclass
class Patient:
    patient_id: str
    name: str
    id_no: str
    card_no: str
    phone: str
    insurance_type: str


@dataclass
class Visit:
    visit_no: str
    patient_id: str
    kind: str  # outpatient | inpatient
    department: str
    doctor: str
    opened_at: dt.datetime


@dataclass
class Item:
    name: str
    code: str
    quantity: str
    amount: int  # fen


@dataclass
class Charge:
    charge_id: str
    patient_id: str
    visit_no: str
    bill_type: str
    department: str
    doctor: str
    items: list[Item]
    amount: int
    created_at: dt.datetime
    status: str  # pending | paid | refunded | cancelled
    payment_id: str | None = None


@dataclass
class Record:
    """One line of the HIS's daily bill: a payment it recorded, or a refund."""

    his_serial: str
    kind: str  # payment | refund
    bill_type: str
    payment_id: str
    refund_id: str | None
    channel_trade_no: str | None
    channel: str  # the HIS's own channel code: WX, ZFB, YL, SZRMB, CASH
    amount: int  # fen, positive; ``kind`` tells the direction
    patient_id: str
    patient_name: str
    visit_no: str
    department: str
    operator: str
    charge_ids: list[str]
    occurred_at: dt.datetime
    status: str = "normal"  # normal | cancelled
    reason: str | None = field(default=None, compare=False)


@dataclass
class InsuranceEntry:
    """医保结算登记: an insurance settlement the HIS recorded against its charges, buckets apart.

    The cash part, when there is one, is also a line of the daily bill (``cash_serial``),
    under the id of the payment that collected it, like any other channel payment.
    """

    his_serial: str
    settlement_id: str  # the gateway's settlement id: the idempotency key
    setl_id: str
    mdtrt_id: str
    psn_no: str
    insutype: str
    bill_type: str
    patient_id: str
    patient_name: str
    visit_no: str
    charge_ids: list[str]
    total: int  # fen
    fund_total: int
    funds: dict[str, int]
    acct_pay: int
    acct_mulaid_pay: int
    wallet_pay: int
    cash_pay: int
    hosp_part: int
    cash_payment_id: str | None
    cash_channel: str | None  # the HIS's own channel code
    cash_trade_no: str | None
    cash_serial: str | None
    settled_at: dt.datetime
    operator: str
    status: str = "normal"  # normal | reversed
    reversal_serial: str | None = None
    rev_setl_id: str | None = None
    cash_refund_id: str | None = None
    reversed_at: dt.datetime | None = None
    reason: str | None = None


class SimHisRefusal(Exception):
    """A business refusal of the simulated HIS; each simulator maps ``code`` to its wire."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("times must be timezone-aware")
    return value.astimezone(dt.UTC)


class SimHospital:
    """A seeded hospital whose HIS records payments and refunds."""

    def __init__(self, *, seed: int = 7, patients: int = 20, now: dt.datetime | None = None) -> None:
        self.patients: dict[str, Patient] = {}
        self.visits: dict[str, Visit] = {}
        self.charges: dict[str, Charge] = {}
        self.records: list[Record] = []
        self.insurance: list[InsuranceEntry] = []
        self.faults = FaultPlan()
        self._counters: dict[str, itertools.count[int]] = {}
        # Imported here because the seed builds on the classes above.
        from .seed import populate

        populate(self, seed=seed, patients=patients,
                 now=_utc(now or dt.datetime.now(dt.UTC)).replace(microsecond=0))

    # --- numbering ------------------------------------------------------------------
    def next_number(self, prefix: str, when: dt.datetime) -> str:
        """A HIS-looking document number: prefix + China date + a running number."""
        counter = self._counters.setdefault(prefix, itertools.count(1))
        return f"{prefix}{when.astimezone(CST):%Y%m%d}{next(counter):06d}"

    # --- registration of people and visits --------------------------------------------
    def add_patient(self, patient: Patient) -> Patient:
        if patient.patient_id in self.patients:
            raise ValueError(f"patient {patient.patient_id} exists")
        self.patients[patient.patient_id] = patient
        return patient

    def open_visit(self, patient_id: str, kind: str, *, department: str, doctor: str,
                   opened_at: dt.datetime) -> Visit:
        if kind not in VISIT_PREFIX:
            raise ValueError("kind is outpatient or inpatient")
        self._patient(patient_id)
        visit = Visit(self.next_number(VISIT_PREFIX[kind], opened_at), patient_id, kind, department,
                      doctor, _utc(opened_at))
        self.visits[visit.visit_no] = visit
        return visit

    def _patient(self, patient_id: str) -> Patient:
        patient = self.patients.get(patient_id)
        if patient is None:
            raise SimHisRefusal("PATIENT_NOT_FOUND", "患者信息不存在")
        return patient

    # --- queries --------------------------------------------------------------------
    def find_patient(self, *, card_no: str | None = None, id_no: str | None = None,
                     visit_no: str | None = None, patient_id: str | None = None) -> Patient | None:
        if patient_id:
            return self.patients.get(patient_id)
        if visit_no:
            visit = self.visits.get(visit_no)
            return self.patients.get(visit.patient_id) if visit else None
        for patient in self.patients.values():
            if (card_no and patient.card_no == card_no) or (id_no and patient.id_no.upper() == id_no.upper()):
                return patient
        return None

    def pending(self, patient_id: str, visit_no: str | None = None) -> list[Charge]:
        return [c for c in self.charges.values() if c.patient_id == patient_id and c.status == "pending"
                and (visit_no is None or c.visit_no == visit_no)]

    def add_charge(self, patient_id: str, amount: int, *, bill_type: str = "outpatient_settlement",
                   items: list[Item] | None = None, department: str | None = None,
                   visit_no: str | None = None, created_at: dt.datetime | None = None) -> Charge:
        """A new pending charge, on the patient's latest visit of the right kind (opened if none)."""
        self._patient(patient_id)
        if bill_type not in CHARGE_PREFIX:
            raise ValueError(f"bill_type must be one of {', '.join(BILL_TYPES)}")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise ValueError("amount must be a positive integer number of fen")
        if items is not None and sum(i.amount for i in items) != amount:
            raise ValueError("the items do not add up to the amount")
        when = _utc(created_at or dt.datetime.now(dt.UTC))
        visit = self._visit_for(patient_id, VISIT_KIND[bill_type], visit_no, department, when)
        charge = Charge(
            charge_id=self.next_number(CHARGE_PREFIX[bill_type], when), patient_id=patient_id,
            visit_no=visit.visit_no, bill_type=bill_type, department=department or visit.department,
            doctor=visit.doctor, items=list(items) if items else [Item("诊疗费用", "999999", "1", amount)],
            amount=amount, created_at=when, status="pending")
        self.charges[charge.charge_id] = charge
        return charge

    def _visit_for(self, patient_id: str, kind: str, visit_no: str | None, department: str | None,
                   when: dt.datetime) -> Visit:
        if visit_no:
            visit = self.visits.get(visit_no)
            if visit is None or visit.patient_id != patient_id:
                raise SimHisRefusal("VISIT_NOT_FOUND", "就诊记录不存在")
            return visit
        mine = [v for v in self.visits.values() if v.patient_id == patient_id and v.kind == kind]
        if mine:
            return mine[-1]
        return self.open_visit(patient_id, kind, department=department or "综合门诊", doctor="值班医生",
                               opened_at=when)

    # --- write-back -----------------------------------------------------------------
    def find_record(self, payment_id: str) -> Record | None:
        return next((r for r in self.records if r.kind == "payment" and r.payment_id == payment_id), None)

    def find_refund(self, refund_id: str) -> Record | None:
        return next((r for r in self.records if r.kind == "refund" and r.refund_id == refund_id), None)

    def record_payment(self, *, payment_id: str, charge_ids: list[str], amount: int, channel: str,
                       channel_trade_no: str | None, paid_at: dt.datetime,
                       operator: str | None = None) -> Record:
        """确认收费: mark the charges paid, once per ``payment_id``."""
        existing = self.find_record(payment_id)
        if existing is not None:
            return existing
        if not charge_ids:
            raise SimHisRefusal("CHARGE_NOT_FOUND", "未指定收费单")
        charges = []
        for charge_id in charge_ids:
            charge = self.charges.get(charge_id)
            if charge is None or charge.status == "cancelled":
                raise SimHisRefusal("CHARGE_NOT_FOUND", f"收费单{charge_id}不存在或已作废")
            if charge.status != "pending":
                raise SimHisRefusal("BILL_PAID", f"收费单{charge_id}已缴费")
            charges.append(charge)
        if len({c.patient_id for c in charges}) != 1 or len({c.bill_type for c in charges}) != 1:
            raise SimHisRefusal("MIXED_CHARGES", "收费单不属于同一患者或同一业务类型")
        due = sum(c.amount for c in charges)
        if amount != due:
            raise SimHisRefusal("AMOUNT_MISMATCH", f"支付金额与应收金额不符(应收{due}分)")
        first = charges[0]
        paid_at = _utc(paid_at)
        record = Record(
            his_serial=self.next_number("SF", paid_at), kind="payment", bill_type=first.bill_type,
            payment_id=payment_id, refund_id=None, channel_trade_no=channel_trade_no, channel=channel,
            amount=amount, patient_id=first.patient_id, patient_name=self.patients[first.patient_id].name,
            visit_no=first.visit_no, department=first.department, operator=operator or DEFAULT_OPERATOR,
            charge_ids=list(charge_ids), occurred_at=paid_at)
        for charge in charges:
            charge.status, charge.payment_id = "paid", payment_id
        self.records.append(record)
        return record

    def refunded(self, payment_id: str) -> int:
        return sum(r.amount for r in self.records
                   if r.kind == "refund" and r.payment_id == payment_id and r.status == "normal")

    def record_refund(self, *, refund_id: str, payment_id: str, amount: int, refunded_at: dt.datetime,
                      reason: str | None = None) -> Record:
        """退费回写: record a (partial) refund of a payment, once per ``refund_id``."""
        existing = self.find_refund(refund_id)
        if existing is not None:
            return existing
        paid = self.find_record(payment_id)
        if paid is None or paid.status != "normal":
            raise SimHisRefusal("PAYMENT_NOT_FOUND", "原收费记录不存在")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            raise SimHisRefusal("INVALID_AMOUNT", "退费金额必须大于0")
        left = paid.amount - self.refunded(payment_id)
        if amount > left:
            raise SimHisRefusal("REFUND_EXCEEDS", f"退费金额超过可退金额(可退{left}分)")
        refunded_at = _utc(refunded_at)
        record = Record(
            his_serial=self.next_number("TF", refunded_at), kind="refund", bill_type=paid.bill_type,
            payment_id=payment_id, refund_id=refund_id, channel_trade_no=paid.channel_trade_no,
            channel=paid.channel, amount=amount, patient_id=paid.patient_id, patient_name=paid.patient_name,
            visit_no=paid.visit_no, department=paid.department, operator=paid.operator,
            charge_ids=list(paid.charge_ids), occurred_at=refunded_at, reason=reason)
        self.records.append(record)
        if amount == left:
            for charge_id in paid.charge_ids:
                self.charges[charge_id].status = "refunded"
        return record

    def cancel_record(self, his_serial: str) -> Record:
        """作废: the cashier voids a line; it stays in the bill with status ``cancelled``."""
        record = next((r for r in self.records if r.his_serial == his_serial), None)
        if record is None:
            raise SimHisRefusal("RECORD_NOT_FOUND", "收费记录不存在")
        record.status = "cancelled"
        return record

    # --- insurance settlements (医保结算回写) ----------------------------------------------
    def find_insurance(self, settlement_id: str) -> InsuranceEntry | None:
        return next((e for e in self.insurance if e.settlement_id == settlement_id), None)

    def record_insurance(self, *, settlement_id: str, charge_ids: list[str], setl_id: str, mdtrt_id: str,
                         psn_no: str, insutype: str, total: int, fund_total: int, funds: dict[str, int],
                         acct_pay: int, acct_mulaid_pay: int, wallet_pay: int, cash_pay: int, hosp_part: int,
                         cash_payment_id: str | None, cash_channel: str | None, cash_trade_no: str | None,
                         settled_at: dt.datetime, operator: str | None = None) -> InsuranceEntry:
        """医保结算回写: mark the charges settled, once per ``settlement_id``, each bucket apart."""
        existing = self.find_insurance(settlement_id)
        if existing is not None:
            return existing
        amounts = {"total": total, "fund_total": fund_total, "acct_pay": acct_pay,
                   "acct_mulaid_pay": acct_mulaid_pay, "wallet_pay": wallet_pay, "cash_pay": cash_pay,
                   "hosp_part": hosp_part, **{f"funds.{k}": v for k, v in funds.items()}}
        for name, value in amounts.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise SimHisRefusal("INVALID_AMOUNT", f"{name}金额无效")
        if total != fund_total + acct_pay + acct_mulaid_pay + wallet_pay + cash_pay + hosp_part:
            raise SimHisRefusal("SPLIT_MISMATCH", "医保结算分割金额不平(总额≠统筹+个人账户+共济+钱包+现金+医院负担)")
        if sum(funds.values()) != fund_total:
            raise SimHisRefusal("SPLIT_MISMATCH", "基金分项合计与统筹支付金额不符")
        if cash_pay > 0 and not cash_payment_id:
            raise SimHisRefusal("INVALID_PARAMETER", "现金部分缺少支付订单号")
        charges = self._payable(charge_ids)
        due = sum(c.amount for c in charges)
        if total != due:
            raise SimHisRefusal("AMOUNT_MISMATCH", f"医疗费总额与应收金额不符(应收{due}分)")
        first = charges[0]
        settled_at = _utc(settled_at)
        name = self.patients[first.patient_id].name
        entry = InsuranceEntry(
            his_serial=self.next_number("YB", settled_at), settlement_id=settlement_id, setl_id=setl_id,
            mdtrt_id=mdtrt_id, psn_no=psn_no, insutype=insutype, bill_type=first.bill_type,
            patient_id=first.patient_id, patient_name=name, visit_no=first.visit_no, charge_ids=list(charge_ids),
            total=total, fund_total=fund_total, funds=dict(funds), acct_pay=acct_pay,
            acct_mulaid_pay=acct_mulaid_pay, wallet_pay=wallet_pay, cash_pay=cash_pay, hosp_part=hosp_part,
            cash_payment_id=cash_payment_id if cash_pay > 0 else None,
            cash_channel=cash_channel if cash_pay > 0 else None,
            cash_trade_no=cash_trade_no if cash_pay > 0 else None, cash_serial=None, settled_at=settled_at,
            operator=operator or DEFAULT_OPERATOR)
        if cash_pay > 0 and cash_payment_id:
            # The cash part is a channel payment like any other: a line of the daily bill.
            line = Record(
                his_serial=self.next_number("SF", settled_at), kind="payment", bill_type=first.bill_type,
                payment_id=cash_payment_id, refund_id=None, channel_trade_no=cash_trade_no,
                channel=cash_channel or "CASH", amount=cash_pay, patient_id=first.patient_id, patient_name=name,
                visit_no=first.visit_no, department=first.department, operator=entry.operator,
                charge_ids=list(charge_ids), occurred_at=settled_at, reason="医保结算自付部分")
            self.records.append(line)
            entry.cash_serial = line.his_serial
        for charge in charges:
            charge.status, charge.payment_id = "paid", settlement_id
        self.insurance.append(entry)
        return entry

    def reverse_insurance(self, *, settlement_id: str, total: int, rev_setl_id: str | None,
                          cash_refund_id: str | None, reversed_at: dt.datetime,
                          reason: str | None = None) -> InsuranceEntry:
        """医保结算撤销回写: the settlement is undone, its charges payable again; once per settlement."""
        entry = self.find_insurance(settlement_id)
        if entry is None:
            raise SimHisRefusal("SETTLEMENT_NOT_FOUND", "原医保结算记录不存在")
        if entry.status == "reversed":
            return entry
        if total != entry.total:
            raise SimHisRefusal("AMOUNT_MISMATCH", f"撤销金额与原结算金额不符(原结算{entry.total}分)")
        reversed_at = _utc(reversed_at)
        if entry.cash_pay > 0 and entry.cash_payment_id:
            if not cash_refund_id:
                raise SimHisRefusal("INVALID_PARAMETER", "现金部分缺少退款单号")
            self.record_refund(refund_id=cash_refund_id, payment_id=entry.cash_payment_id, amount=entry.cash_pay,
                               refunded_at=reversed_at, reason=reason or "医保结算撤销退自付部分")
        entry.status, entry.reversal_serial = "reversed", self.next_number("YC", reversed_at)
        entry.rev_setl_id, entry.cash_refund_id, entry.reversed_at = rev_setl_id, cash_refund_id, reversed_at
        entry.reason = reason
        for charge_id in entry.charge_ids:  # the bill can be settled again
            charge = self.charges[charge_id]
            charge.status, charge.payment_id = "pending", None
        return entry

    def _payable(self, charge_ids: list[str]) -> list[Charge]:
        if not charge_ids:
            raise SimHisRefusal("CHARGE_NOT_FOUND", "未指定收费单")
        charges = []
        for charge_id in charge_ids:
            charge = self.charges.get(charge_id)
            if charge is None or charge.status == "cancelled":
                raise SimHisRefusal("CHARGE_NOT_FOUND", f"收费单{charge_id}不存在或已作废")
            if charge.status != "pending":
                raise SimHisRefusal("BILL_PAID", f"收费单{charge_id}已缴费")
            charges.append(charge)
        if len({c.patient_id for c in charges}) != 1 or len({c.bill_type for c in charges}) != 1:
            raise SimHisRefusal("MIXED_CHARGES", "收费单不属于同一患者或同一业务类型")
        return charges

    # --- reconciliation ---------------------------------------------------------------
    def bill(self, day: dt.date, bill_type: str) -> list[Record]:
        return [r for r in self.records
                if r.bill_type == bill_type and r.occurred_at.astimezone(CST).date() == day]
