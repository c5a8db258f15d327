"""The contract between the core and a business-system adapter (HIS 适配器).

A payment is done for the hospital only when the system that owns the bill has
recorded it: the HIS for registration, outpatient and inpatient charges; the
physical-exam, reproductive, nutrition, parking or canteen system for theirs. Each
such *business system* is configured once in the gateway (``his_systems``) with an
adapter id and the adapter's configuration; the core then

- asks it for a patient's pending charges (待缴费) on behalf of kiosks, clinic-room
  QR codes and mini-programs;
- writes every successful payment and refund back to it (确认收费 / 退费回写),
  idempotently, retrying with backoff and opening a single-sided case (单边账)
  when it cannot;
- writes every completed insurance settlement that names its bill, and the
  settlement's reversal, back to it with the buckets apart (医保结算回写);
- fetches its daily bills (the four HIS bill types and any other the system has)
  for reconciliation.

Adapters are *generic* and driven by configuration, not coded per hospital: a REST
adapter with a declarative field mapping, a SOAP adapter with request templates
and XPath mappings, a database-view adapter with SQL in configuration. The shared
mapping vocabulary lives in :mod:`gateway.mapping`.

Rules every adapter follows
===========================

- Amounts are integer fen in and out; yuan strings are converted only through
  :mod:`gateway.money` (the mapping does it when ``amount_unit = "yuan"``).
- Times are UTC-aware ``datetime``; a HIS's local wall-clock times are converted by
  the mapping (``utc_offset``, default +08:00).
- **A refusal is a result, not an exception**: a write-back the system answers with
  "bill already paid", "unknown patient", "amount differs" is
  ``WriteBackResult(status=REJECTED, error_code=<its code>, error_message=<its text>)``.
- **An unknown outcome is an exception**: a timeout raises ``HisTimeout``; a refused
  or reset connection or a 5xx raises ``HisUnavailable``; an answer that does not
  parse, lacks a mapped field or carries a status code the mapping does not know
  raises ``HisProtocolError``. The core retries a write-back with the same
  ``payment_id`` (the idempotency key every adapter must pass on), so a retry after a
  timeout never records a payment twice.
- For queries (pending charges, bills) a refusal raises ``HisRejected`` with the
  system's code and message.
"""
from __future__ import annotations

import abc
import datetime as dt
from enum import StrEnum
from typing import Any, ClassVar

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .errors import HisNotSupported


class HisCapability(StrEnum):
    PENDING = "pending"  # pending charges of a patient
    WRITE_BACK = "write_back"  # record a payment (确认收费)
    WRITE_BACK_QUERY = "write_back_query"  # ask whether a payment was recorded
    REFUND_WRITE_BACK = "refund_write_back"  # record a refund (退费回写)
    BILLS = "bills"  # daily bills for reconciliation
    INSURANCE_WRITE_BACK = "insurance_write_back"  # record an insurance settlement (医保结算回写)
    INSURANCE_REVERSAL_WRITE_BACK = "insurance_reversal_write_back"  # record its reversal (医保结算撤销回写)


class BillType(StrEnum):
    """The four HIS bill types of the requirement documents, plus the others'."""

    OUTPATIENT_REGISTRATION = "outpatient_registration"  # 门诊挂号
    OUTPATIENT_SETTLEMENT = "outpatient_settlement"  # 门诊结算(缴费)
    INPATIENT_DEPOSIT = "inpatient_deposit"  # 住院预交金
    INPATIENT_SETTLEMENT = "inpatient_settlement"  # 住院结算
    EXAM = "exam"  # 体检
    OTHER = "other"  # 营养餐、停车、食堂、生殖 …


BILL_TYPE_ZH = {
    BillType.OUTPATIENT_REGISTRATION: "门诊挂号", BillType.OUTPATIENT_SETTLEMENT: "门诊缴费",
    BillType.INPATIENT_DEPOSIT: "住院预交金", BillType.INPATIENT_SETTLEMENT: "住院结算",
    BillType.EXAM: "体检", BillType.OTHER: "其他",
}

HIS_BILL_TYPES = (BillType.OUTPATIENT_REGISTRATION, BillType.OUTPATIENT_SETTLEMENT,
                  BillType.INPATIENT_DEPOSIT, BillType.INPATIENT_SETTLEMENT)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PatientQuery(_Model):
    """Who is asking what to pay: at least one identifier."""

    card_no: str | None = None  # 就诊卡号 / 医保卡号 / 电子健康卡
    id_no: str | None = None  # 身份证号
    visit_no: str | None = None  # 门诊/住院号
    patient_id: str | None = None  # the HIS's own patient id

    @model_validator(mode="after")
    def _one(self) -> PatientQuery:
        if not any((self.card_no, self.id_no, self.visit_no, self.patient_id)):
            raise ValueError("give card_no, id_no, visit_no or patient_id")
        return self


class ChargeItem(_Model):
    name: str
    amount: int  # fen
    quantity: str | None = None
    code: str | None = None


class PendingCharge(_Model):
    """One payable bill (处方/申请单/预交金/结算单) the business system is waiting for."""

    charge_id: str  # the system's id for this payable; written back with the payment
    bill_type: str = BillType.OUTPATIENT_SETTLEMENT.value
    patient_id: str
    patient_name: str | None = None
    visit_no: str | None = None
    department: str | None = None
    doctor: str | None = None
    amount: int = Field(gt=0)  # fen
    items: list[ChargeItem] = Field(default_factory=list)
    created_at: dt.datetime | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


class WriteBack(_Model):
    """A successful payment to record (确认收费). ``payment_id`` is the idempotency key."""

    payment_id: str
    out_trade_no: str
    app_id: str
    amount: int  # fen
    channel: str
    method: str
    channel_trade_no: str | None = None
    paid_at: dt.datetime
    patient_id: str
    visit_no: str | None = None
    charge_ids: list[str] = Field(default_factory=list)
    bill_type: str = BillType.OUTPATIENT_SETTLEMENT.value
    business_type: str = ""
    campus_id: str | None = None
    operator: str | None = None
    entry: str | None = None


class RefundWriteBack(_Model):
    """A refund to record (退费回写). ``refund_id`` is the idempotency key."""

    refund_id: str
    payment_id: str
    amount: int  # fen
    total: int  # fen paid
    refunded_at: dt.datetime
    patient_id: str
    visit_no: str | None = None
    his_serial: str | None = None  # the system's serial of the original payment
    channel: str
    channel_refund_no: str | None = None
    reason: str | None = None
    bill_type: str = BillType.OUTPATIENT_SETTLEMENT.value


class InsuranceWriteBack(_Model):
    """A completed insurance settlement to record (医保结算回写). ``settlement_id`` is the idempotency key.

    Every bucket stays apart, in fen: ``total = fund_total + acct_pay + acct_mulaid_pay
    + wallet_pay + cash_pay + hosp_part`` and the sub-funds add up to ``fund_total``.
    ``funds`` holds every sub-fund of :data:`gateway.insurance.FUND_FIELDS` (0 when it
    paid nothing) and any the region adds. The ``topup_*`` fields describe the payment
    that collected the cash part; they are None when insurance covered everything.
    """

    settlement_id: str
    out_settle_no: str
    app_id: str
    kind: str  # outpatient | inpatient
    centre: str
    setl_id: str
    mdtrt_id: str
    psn_no: str
    insutype: str
    med_type: str
    clr_type: str | None = None
    setl_time: dt.datetime
    total: int  # medfee_sumamt
    fund_total: int
    funds: dict[str, int] = Field(default_factory=dict)
    acct_pay: int = 0  # personal account
    acct_mulaid_pay: int = 0  # mutual-aid (family) account
    wallet_pay: int = 0  # insurance wallet; 0 where the region has none
    cash_pay: int = 0  # collected by the top-up payment
    hosp_part: int = 0
    psn_part: int = 0  # acct_pay + acct_mulaid_pay + wallet_pay + cash_pay
    balance_after: int | None = None  # personal account balance after the settlement
    topup_payment_id: str | None = None
    topup_channel: str | None = None
    topup_method: str | None = None
    topup_channel_trade_no: str | None = None
    topup_paid_at: dt.datetime | None = None
    patient_id: str
    visit_no: str | None = None
    charge_ids: list[str] = Field(default_factory=list)
    bill_type: str = BillType.OUTPATIENT_SETTLEMENT.value
    business_type: str = ""
    operator: str | None = None


class InsuranceReversalWriteBack(_Model):
    """The reversal of a recorded insurance settlement (医保结算撤销回写).

    The idempotency key is ``settlement_id`` (a settlement is reversed at most once).
    Amounts are what goes back, positive, bucket by bucket as in the settlement; the
    cash part is refunded along the top-up's original route (``refund_*``).
    """

    settlement_id: str
    setl_id: str  # the settlement reversed
    rev_setl_id: str | None = None  # the centre's id of the reversal, where it answered one
    mdtrt_id: str
    psn_no: str
    insutype: str
    reversed_at: dt.datetime
    total: int
    fund_total: int
    funds: dict[str, int] = Field(default_factory=dict)
    acct_pay: int = 0
    acct_mulaid_pay: int = 0
    wallet_pay: int = 0
    cash_pay: int = 0
    hosp_part: int = 0
    psn_part: int = 0
    refund_id: str | None = None  # the refund of the cash part, when cash was paid
    refund_channel: str | None = None
    topup_payment_id: str | None = None
    his_serial: str | None = None  # the system's serial of the settlement
    patient_id: str
    visit_no: str | None = None
    charge_ids: list[str] = Field(default_factory=list)
    bill_type: str = BillType.OUTPATIENT_SETTLEMENT.value
    reason: str | None = None


class WriteBackStatus(StrEnum):
    RECORDED = "recorded"
    REJECTED = "rejected"


class WriteBackResult(_Model):
    status: WriteBackStatus
    his_serial: str | None = None  # the system's business serial / receipt number
    error_code: str | None = None
    error_message: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict)


class HisBillLine(_Model):
    """One line of a business system's daily bill, in core terms."""

    bill_type: str
    his_serial: str  # 业务流水号 in the system
    trade_no: str | None = None  # the gateway's payment id (or the caller's out_trade_no) as the system recorded it
    channel_trade_no: str | None = None
    refund_no: str | None = None
    kind: str = "payment"  # payment | refund
    amount: int  # fen, positive; ``kind`` tells the direction
    patient_id: str | None = None
    patient_name: str | None = None
    visit_no: str | None = None
    department: str | None = None
    operator: str | None = None
    channel: str | None = None  # mapped to a gateway channel id where known, else the system's own code
    status: str = "normal"  # normal | cancelled, after mapping
    occurred_at: dt.datetime
    raw: dict[str, Any] = Field(default_factory=dict)


class HisBill(_Model):
    day: dt.date
    bill_type: str
    lines: list[HisBillLine]
    # The system's own summary where it gives one; checked against the lines.
    total_count: int | None = None
    total_amount: int | None = None  # fen, payments minus refunds


class HisAdapter(abc.ABC):
    """Base class of business-system adapters. One instance serves one configured system."""

    id: ClassVar[str]  # registry key, e.g. "rest"
    name_zh: ClassVar[str]
    name_en: ClassVar[str]
    capabilities: ClassVar[frozenset[HisCapability]]
    config_model: ClassVar[type[BaseModel]]

    def __init__(self, config: BaseModel, session: aiohttp.ClientSession) -> None:
        self.config = config
        self.session = session

    @classmethod
    def supports(cls, cap: HisCapability) -> bool:
        return cap in cls.capabilities

    async def pending_charges(self, query: PatientQuery) -> list[PendingCharge]:
        raise HisNotSupported("pending", self.id)

    async def write_back(self, wb: WriteBack) -> WriteBackResult:
        raise HisNotSupported("write_back", self.id)

    async def query_write_back(self, payment_id: str) -> WriteBackResult | None:
        """Whether the system recorded this payment: ``None`` if it has no record."""
        raise HisNotSupported("write_back_query", self.id)

    async def write_back_refund(self, rwb: RefundWriteBack) -> WriteBackResult:
        raise HisNotSupported("refund_write_back", self.id)

    async def write_back_insurance(self, iwb: InsuranceWriteBack) -> WriteBackResult:
        """Record a completed insurance settlement, buckets apart, idempotently by ``settlement_id``."""
        raise HisNotSupported("insurance_write_back", self.id)

    async def write_back_insurance_reversal(self, irwb: InsuranceReversalWriteBack) -> WriteBackResult:
        """Record the reversal of a recorded insurance settlement, idempotently by ``settlement_id``."""
        raise HisNotSupported("insurance_reversal_write_back", self.id)

    async def daily_bill(self, day: dt.date, bill_type: str) -> HisBill:
        raise HisNotSupported("bills", self.id)

    async def aclose(self) -> None:
        """Release what the adapter holds (database engines …). Called at shutdown."""
