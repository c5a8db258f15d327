"""The contract between the core and a medical-insurance platform adapter (医保适配器).

Patients with insurance pay in two parts: the insurance centre (医保中心, a regional
deployment of the national platform, 国家医保信息平台) settles what its funds and
the patient's accounts cover, and the patient tops up the rest (补缴) by WeChat,
Alipay, bank card or cash. The gateway drives both halves; an insurance adapter
speaks one platform's wire protocol and answers in the core types of this module.

Adapters are plugins: register the class with ``yinyi_register_insurance_adapters``
(``register.add_insurance_adapter(cls)``); the registry keys it by ``id``. The
national platform is ``insurance/nhsa`` (``id="nhsa"``); regional differences
(endpoint paths, channel security, extra fields) are profiles of that one adapter.

Rules every adapter follows
===========================

- Amounts are integer fen in and out. Yuan on the wire is converted only through
  :mod:`gateway.money`, exactly (parse JSON numbers as ``Decimal``, never float).
- Times are UTC-aware ``datetime``; the platform's wall-clock times are China
  local time (+08:00) and are converted at the wire.
- **The centre's "no" is an exception with the centre's words**: an answer with
  ``infcode=-1`` raises :class:`~gateway.errors.InsuranceRejected` whose detail is
  the centre's ``err_msg`` and whose extras carry ``infno`` and ``msgid``. Known
  refusals raise subclasses, recognised from ``err_msg`` by patterns that each
  region configures: :class:`~gateway.errors.InsurancePasswordFailed`,
  :class:`~gateway.errors.InsuranceBalanceInsufficient`,
  :class:`~gateway.errors.InsuranceAlreadyReversed`. A refusal means the centre did
  nothing: the caller may correct and try again.
- **An unknown outcome is an exception from the** :class:`~gateway.errors.InsuranceUnknown`
  **family** (a subclass of ``UpstreamError``): a timeout raises ``InsuranceTimeout``;
  a refused or reset connection, a 5xx, or an ``err_msg`` the region marks as a
  system error raises ``InsuranceUnavailable``; an answer that does not parse,
  whose signature does not verify, or whose settlement split does not add up
  raises ``InsuranceProtocolError``. Their extras carry ``infno`` and ``msgid``.
  After an unknown outcome of a money call the caller must undo it with
  :meth:`InsuranceAdapter.reverse_call` (2601 冲正, by the original ``msgid``) before
  anything else; 2601 is idempotent and succeeds when nothing was done.
- **Every money call returns the msgid it used** (``Visit.msgid``, ``Ack.msgid``,
  ``FeeUploadResult.msgid``, ``Settlement.msgid``), so the caller can store it
  before it moves on and reverse with 2601 later.
- Verify the centre's signature (where the region signs) on every answer,
  refusals included, before reading it.
- Never retry a write on your own, with one exception: when the centre refuses a
  call because the sign-in number (``sign_no``) expired, sign in again once and
  send the call again under a new ``msgid`` (the refused call did nothing).
- A settlement's money is split in separate buckets (:class:`SettlementSplit`):
  the funds, the personal account, the mutual-aid account, the insurance wallet,
  cash and the hospital's share. Adapters never fold one into another (the wallet
  is not ``acct_pay``, and it is not cash) and check the invariants before
  returning.
"""
from __future__ import annotations

import abc
import contextlib
import datetime as dt
from collections.abc import Iterator
from contextvars import ContextVar
from collections.abc import Mapping
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CertType(StrEnum):
    """``mdtrt_cert_type``: what identifies the patient at the visit (就诊凭证类型)."""

    EVOUCHER = "01"  # 医保电子凭证, cert_no = ecToken
    ID_CARD = "02"  # 居民身份证
    SOCIAL_CARD = "03"  # 社会保障卡 (physical card), needs card_sn


class SplitInvariantError(ValueError):
    """A settlement split whose buckets do not add up to its totals."""


# --- identity ------------------------------------------------------------------------


class SignIn(_Model):
    sign_no: str
    sign_time: dt.datetime


class Ack(_Model):
    """A call the centre accepted that carries no other result."""

    infno: str
    msgid: str
    warn_msg: str | None = None
    output: dict[str, Any] = Field(default_factory=dict)


class EVoucherRequest(_Model):
    """Decode an e-voucher (医保电子凭证) QR code shown at a kiosk or window."""

    qr_code: str | None = None  # the scanned code, when the device does not decode itself
    business_type: str = "01101"  # 01101 registration, 01301 settlement …
    operator_id: str
    operator_name: str
    office_id: str = ""
    office_name: str = ""
    device_type: str = "SelfService"


class EVoucher(_Model):
    ec_token: str
    id_no: str
    id_type: str
    name: str
    insu_org: str | None = None  # insured place admdvs
    ec_index_no: str | None = None
    gender: str | None = None
    birthday: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


class PersonQuery(_Model):
    """1101: look a person up by e-voucher token, ID card, or card number + card_sn."""

    cert_type: CertType
    cert_no: str
    card_sn: str | None = None  # 卡识别码, required for a social-security card
    psn_cert_type: str = "01"
    certno: str | None = None
    psn_name: str | None = None
    begin_time: dt.datetime | None = None

    @model_validator(mode="after")
    def _card(self) -> PersonQuery:
        if self.cert_type is CertType.SOCIAL_CARD and not self.card_sn:
            raise ValueError("card_sn is required for a social-security card")
        return self


class InsuranceRecord(_Model):
    """One insurance a person holds (``insuinfo``)."""

    insutype: str
    psn_type: str | None = None
    balance: int = 0  # personal account balance, fen
    wallet_balance: int | None = None  # insurance wallet, fen, where the region has it
    insured_status: str | None = None  # psn_insu_stas, 1 = insured
    insured_since: dt.date | None = None
    paused_since: dt.date | None = None
    civil_servant: bool = False
    insuplc_admdvs: str
    employer: str | None = None


class PersonInfo(_Model):
    psn_no: str
    psn_cert_type: str | None = None
    certno: str | None = None
    name: str
    gender: str | None = None
    nation: str | None = None
    birthday: dt.date | None = None
    age: Decimal | None = None
    insurances: list[InsuranceRecord]
    identities: list[dict[str, Any]] = Field(default_factory=list)
    msgid: str
    warn_msg: str | None = None

    def insurance(self, insutype: str | None = None) -> InsuranceRecord:
        """The record of ``insutype``, or the first one when not given."""
        for rec in self.insurances:
            if insutype is None or rec.insutype == insutype:
                return rec
        raise KeyError(f"person {self.psn_no} holds no insurance {insutype}")


# --- visits and fees ------------------------------------------------------------------


class VisitRef(_Model):
    """Who and which visit (就诊): enough to address any call about it."""

    psn_no: str
    insuplc_admdvs: str  # where insured, from 1101
    mdtrt_id: str
    insutype: str | None = None  # chooses the receiving system (recer_sys_code)


class Diagnosis(_Model):
    diag_type: str = "1"  # 1 western, 2 TCM
    diag_srt_no: int = 1
    diag_code: str
    diag_name: str
    diag_dept: str | None = None
    dise_dor_no: str | None = None
    dise_dor_name: str | None = None
    diag_time: dt.datetime | None = None
    vali_flag: str = "1"
    maindiag_flag: str | None = None  # inpatient: 1 main diagnosis


class OutpatientRegistration(_Model):
    """2201 outpatient registration (门诊挂号)."""

    psn_no: str
    insuplc_admdvs: str
    insutype: str
    cert_type: CertType
    cert_no: str
    ipt_otp_no: str  # the hospital's outpatient number
    begin_time: dt.datetime
    doctor_code: str
    doctor_name: str
    dept_code: str
    dept_name: str
    caty: str  # department category code
    extra: dict[str, Any] = Field(default_factory=dict)


class Visit(_Model):
    mdtrt_id: str
    psn_no: str
    ipt_otp_no: str | None = None
    msgid: str
    warn_msg: str | None = None


class VisitInfo(_Model):
    """2203 visit information (就诊信息上传): med_type and diagnoses."""

    visit: VisitRef
    med_type: str
    begin_time: dt.datetime
    main_cond_dscr: str | None = None
    dise_codg: str | None = None
    dise_name: str | None = None
    diagnoses: list[Diagnosis] = Field(default_factory=list)
    extra: dict[str, Any] = Field(default_factory=dict)


class FeeLine(_Model):
    """One fee detail (费用明细) for 2204 (outpatient) or 2301 (inpatient)."""

    feedetl_sn: str
    fee_time: dt.datetime
    med_list_codg: str  # national catalogue code
    medins_list_codg: str  # the hospital's own code
    amount: int  # det_item_fee_sumamt, fen; negative for inpatient returns
    quantity: Decimal  # cnt
    # pric: a unit price, not an amount; the wire carries up to six decimals of yuan
    unit_price: Decimal
    chrg_bchno: str | None = None  # outpatient charge batch
    rxno: str | None = None
    init_feedetl_sn: str | None = None  # inpatient return: the line it returns
    drord_no: str | None = None
    med_type: str | None = None  # inpatient
    dept_code: str | None = None
    doctor_code: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


class FeeLineResult(_Model):
    feedetl_sn: str
    amount: int
    quantity: Decimal
    unit_price: Decimal
    price_limit: Decimal | None = None
    selfpay_prop: Decimal = Decimal(0)
    fulamt_ownpay: int = 0  # wholly self-paid
    overlmt: int = 0  # over the price limit
    preselfpay: int = 0  # self-paid first (乙类先行自付)
    inscp_scp: int = 0  # within policy scope
    chrgitm_lv: str | None = None
    med_chrgitm_type: str | None = None


class FeeUploadResult(_Model):
    lines: list[FeeLineResult]
    msgid: str
    warn_msg: str | None = None

    @property
    def total(self) -> int:
        return sum(line.amount for line in self.lines)


class AdmissionRequest(_Model):
    """2401 admission (入院办理)."""

    psn_no: str
    insuplc_admdvs: str
    insutype: str
    cert_type: CertType
    cert_no: str
    med_type: str  # 21 general, 22 trauma, 26 single disease, 52 maternity …
    begin_time: dt.datetime
    ipt_no: str
    medrcdno: str | None = None
    atddr_no: str
    chfpdr_name: str
    adm_diag_dscr: str
    adm_dept_codg: str
    adm_dept_name: str
    adm_bed: str | None = None
    dise_codg: str
    dise_name: str
    diagnoses: list[Diagnosis] = Field(default_factory=list)
    extra: dict[str, Any] = Field(default_factory=dict)


class DischargeRequest(_Model):
    """2402 discharge (出院办理)."""

    visit: VisitRef
    end_time: dt.datetime
    dise_codg: str
    dise_name: str
    dscg_dept_codg: str
    dscg_dept_name: str
    dscg_way: str = "1"
    diagnoses: list[Diagnosis] = Field(default_factory=list)
    extra: dict[str, Any] = Field(default_factory=dict)


# --- settlement ------------------------------------------------------------------------


class SettleRequest(_Model):
    """2206/2207 (outpatient) and 2303/2304 (inpatient) pre-settlement and settlement."""

    visit: VisitRef
    insutype: str
    med_type: str
    cert_type: CertType
    cert_no: str
    card_sn: str | None = None
    total: int  # medfee_sumamt, fen: must equal the uploaded, unsettled fees
    psn_setlway: str = "01"
    chrg_bchno: str | None = None  # outpatient: the charge batch to settle
    use_account: bool = True  # acct_used_flag: personal account (and wallet) may pay
    invono: str | None = None
    fulamt_ownpay: int | None = None
    overlmt_selfpay: int | None = None
    preselfpay: int | None = None
    inscp_scp: int | None = None
    mid_settlement: bool = False  # inpatient mid_setl_flag
    discharge_time: dt.datetime | None = None
    password: SecretStr | None = None  # card password, where the region sends it
    extra: dict[str, Any] = Field(default_factory=dict)


class SettlementRef(_Model):
    """What addresses a settlement for reversal (2208/2305)."""

    setl_id: str
    visit: VisitRef


# The sub-fund fields of ``setlinfo``; regions may add more (``hifdm_pay`` …).
FUND_FIELDS: tuple[str, ...] = ("hifp_pay", "cvlserv_pay", "hifes_pay", "hifmi_pay", "hifob_pay",
                                "maf_pay", "oth_pay")


class SettlementSplit(_Model):
    """Who pays what, in fen, each bucket apart (结算费用分割).

    ``total = fund_total + psn_part + hosp_part`` and
    ``psn_part = acct_pay + acct_mulaid_pay + wallet_pay + cash_pay``; the sub-funds
    add up to ``fund_total``. Reversals carry the same buckets, negative.
    """

    total: int  # medfee_sumamt
    fulamt_ownpay: int = 0  # wholly self-paid items
    overlmt_selfpay: int = 0  # over the price limit
    preselfpay: int = 0  # self-paid first
    inscp_scp: int = 0  # within policy scope
    deductible: int = 0  # act_pay_dedc, 起付线
    fund_total: int  # fund_pay_sumamt
    funds: dict[str, int] = Field(default_factory=dict)  # hifp_pay, cvlserv_pay, …
    psn_part: int  # psn_part_amt
    acct_pay: int = 0  # personal account
    acct_mulaid_pay: int = 0  # mutual-aid (family) account
    wallet_pay: int | None = None  # insurance wallet (wltpay_amt); None where absent
    cash_pay: int  # psn_cash_pay, what the patient still pays (top-up)
    hosp_part: int = 0  # hosp_part_amt

    def check(self, tolerance_fen: int = 0) -> SettlementSplit:
        """Raise :class:`SplitInvariantError` unless the buckets add up."""
        wallet = self.wallet_pay or 0
        problems = []
        if abs(self.total - (self.fund_total + self.psn_part + self.hosp_part)) > tolerance_fen:
            problems.append(f"total {self.total} != fund {self.fund_total} + personal {self.psn_part}"
                            f" + hospital {self.hosp_part}")
        parts = self.acct_pay + self.acct_mulaid_pay + wallet + self.cash_pay
        if abs(self.psn_part - parts) > tolerance_fen:
            problems.append(f"personal {self.psn_part} != account {self.acct_pay} + mutual-aid "
                            f"{self.acct_mulaid_pay} + wallet {wallet} + cash {self.cash_pay}")
        if self.funds and abs(sum(self.funds.values()) - self.fund_total) > tolerance_fen:
            problems.append(f"sub-funds {sum(self.funds.values())} != fund total {self.fund_total}")
        if problems:
            raise SplitInvariantError("; ".join(problems))
        return self

    @property
    def insurance_paid(self) -> int:
        """What insurance covers in total: funds, both accounts and the wallet."""
        return self.fund_total + self.acct_pay + self.acct_mulaid_pay + (self.wallet_pay or 0)


class FundPayment(_Model):
    """One line of ``setldetail``: a fund's payment."""

    fund_pay_type: str
    name: str | None = None
    amount: int
    inscp_scp_amt: int | None = None
    crt_payb_lmt_amt: int | None = None
    setl_proc_info: str | None = None


class Settlement(_Model):
    """A (pre-)settlement or its reversal, as the centre answered it."""

    setl_id: str | None  # None for a pre-settlement
    mdtrt_id: str
    psn_no: str
    psn_name: str | None = None
    certno: str | None = None
    insutype: str
    psn_type: str | None = None
    med_type: str | None = None
    clr_type: str | None = None
    clr_way: str | None = None
    setl_optins: str | None = None  # clearing institution (clr_optins)
    setl_time: dt.datetime | None = None
    split: SettlementSplit
    balance_after: int | None = None  # balc
    fund_payments: list[FundPayment] = Field(default_factory=list)
    infno: str
    msgid: str  # the msgid of this call: undo with 2601 by it
    medins_setl_id: str | None = None
    pre_settlement: bool = False
    warn_msg: str | None = None


# --- reconciliation ----------------------------------------------------------------------


class ReconTotals(_Model):
    """3201: the hospital's totals for one insutype + clr_type + clearing institution."""

    insutype: str
    clr_type: str
    setl_optins: str
    begin_date: dt.date
    end_date: dt.date
    medfee_sumamt: int
    fund_pay_sumamt: int
    acct_pay: int
    count: int  # fixmedins_setl_cnt


class ReconTotalsResult(_Model):
    setl_optins: str
    balanced: bool
    description: str | None = None
    msgid: str


class DetailReconLine(_Model):
    """One settlement as the hospital recorded it (a row of the 3202 upload)."""

    setl_id: str
    mdtrt_id: str
    psn_no: str
    medfee_sumamt: int
    fund_pay_sumamt: int
    acct_pay: int
    refund: bool = False  # refd_setl_flag: the line is a reversal


class DetailReconRequest(_Model):
    setl_optins: str
    begin_date: dt.date
    end_date: dt.date
    clr_type: str | None = None
    lines: list[DetailReconLine]
    cash_payamt: int | None = None  # defaults to total − fund − account over the lines


class DetailReconResultLine(_Model):
    psn_no: str
    mdtrt_id: str
    setl_id: str
    msgid: str | None = None
    balanced: bool
    stmt_rslt: str
    refund: bool = False
    memo: str | None = None
    medfee_sumamt: int | None = None  # the centre's figures
    fund_pay_sumamt: int | None = None
    acct_pay: int | None = None


class DetailReconResult(_Model):
    file_qury_no: str
    lines: list[DetailReconResultLine]
    msgid: str

    @property
    def unbalanced(self) -> list[DetailReconResultLine]:
        return [line for line in self.lines if not line.balanced]


# --- the adapter ---------------------------------------------------------------------------


class InsuranceAdapter(abc.ABC):
    """Base of every adapter registered with ``yinyi_register_insurance_adapters``.

    An instance serves one hospital (定点医药机构) at one platform. The constructor
    takes the validated configuration (a mapping is validated against
    ``config_model``) and the gateway's shared ``aiohttp.ClientSession``; it does no
    I/O. One method per transaction group; all follow the module's rules.
    """

    id: ClassVar[str]
    name_zh: ClassVar[str]
    name_en: ClassVar[str]
    config_model: ClassVar[type[BaseModel]]

    def __init__(self, config: BaseModel | Mapping[str, Any], session: aiohttp.ClientSession) -> None:
        if not isinstance(config, self.config_model):
            raw = config.model_dump() if isinstance(config, BaseModel) else dict(config)
            config = self.config_model.model_validate(raw)
        self.config = config
        self.session = session

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {"id": cls.id, "name_zh": cls.name_zh, "name_en": cls.name_en}

    def allocate_msgids(self, n: int) -> list[str]:
        """``n`` fresh msgids for :func:`planned_msgids`, so a caller can record the
        msgid of a money call *before* sending it (and reverse it with 2601 after a
        crash). Adapters whose platform has no msgid return an empty list."""
        return []

    # --- session and identity ------------------------------------------------------
    @abc.abstractmethod
    async def sign_in(self) -> SignIn:
        """9001 sign-in. Adapters sign in on their own before the first call and
        whenever the centre refuses an expired ``sign_no``; call this to force it."""

    @abc.abstractmethod
    async def person_info(self, query: PersonQuery) -> PersonInfo:
        """1101 person information by e-voucher token (after :meth:`decode_evoucher`),
        ID card, or social-security card number + ``card_sn``."""

    @abc.abstractmethod
    async def decode_evoucher(self, req: EVoucherRequest) -> EVoucher:
        """Decode an e-voucher QR code into its ``ecToken`` and identity."""

    # --- outpatient ----------------------------------------------------------------
    @abc.abstractmethod
    async def register_outpatient(self, req: OutpatientRegistration) -> Visit:
        """2201 outpatient registration; ``Visit.mdtrt_id`` addresses the visit."""

    @abc.abstractmethod
    async def cancel_outpatient(self, visit: VisitRef, ipt_otp_no: str) -> Ack:
        """2202 cancel an outpatient registration."""

    @abc.abstractmethod
    async def upload_visit_info(self, info: VisitInfo) -> Ack:
        """2203 visit information: med_type and diagnoses (before 2206)."""

    @abc.abstractmethod
    async def upload_outpatient_fees(self, visit: VisitRef, lines: list[FeeLine]) -> FeeUploadResult:
        """2204 fee detail upload; the result tells each line's self-pay class."""

    @abc.abstractmethod
    async def revoke_outpatient_fees(self, visit: VisitRef, chrg_bchno: str = "0000") -> Ack:
        """2205 revoke uploaded fees of a batch (``"0000"``: all unsettled lines)."""

    @abc.abstractmethod
    async def pre_settle_outpatient(self, req: SettleRequest) -> Settlement:
        """2206 pre-settlement: the split without committing (``setl_id`` None)."""

    @abc.abstractmethod
    async def settle_outpatient(self, req: SettleRequest) -> Settlement:
        """2207 settlement. ``split.cash_pay`` is what the patient must top up."""

    @abc.abstractmethod
    async def reverse_outpatient_settlement(self, ref: SettlementRef) -> Settlement:
        """2208 settlement reversal; answers the reversal with negative buckets.
        A settlement already reversed raises ``InsuranceAlreadyReversed``."""

    # --- inpatient -----------------------------------------------------------------
    @abc.abstractmethod
    async def admit(self, req: AdmissionRequest) -> Visit:
        """2401 admission."""

    @abc.abstractmethod
    async def cancel_admission(self, visit: VisitRef) -> Ack:
        """2404 reverse an admission (no fees may remain)."""

    @abc.abstractmethod
    async def discharge(self, req: DischargeRequest) -> Ack:
        """2402 discharge."""

    @abc.abstractmethod
    async def cancel_discharge(self, visit: VisitRef) -> Ack:
        """2405 reverse a discharge (not after settlement)."""

    @abc.abstractmethod
    async def upload_inpatient_fees(self, visit: VisitRef, lines: list[FeeLine]) -> FeeUploadResult:
        """2301 inpatient fee upload (negative quantities return a line)."""

    @abc.abstractmethod
    async def revoke_inpatient_fees(self, visit: VisitRef, feedetl_sn: str = "0000") -> Ack:
        """2302 revoke inpatient fees (``"0000"``: all unsettled lines)."""

    @abc.abstractmethod
    async def pre_settle_inpatient(self, req: SettleRequest) -> Settlement:
        """2303 inpatient pre-settlement."""

    @abc.abstractmethod
    async def settle_inpatient(self, req: SettleRequest) -> Settlement:
        """2304 inpatient settlement."""

    @abc.abstractmethod
    async def reverse_inpatient_settlement(self, ref: SettlementRef) -> Settlement:
        """2305 inpatient settlement reversal."""

    # --- recovery --------------------------------------------------------------------
    @abc.abstractmethod
    async def reverse_call(self, psn_no: str, insuplc_admdvs: str, omsgid: str, oinfno: str) -> Ack:
        """2601 冲正: undo whatever the call ``omsgid`` (transaction ``oinfno``) did.
        Idempotent; succeeds when the centre never acted on it."""

    # --- reconciliation -----------------------------------------------------------------
    @abc.abstractmethod
    async def reconcile_totals(self, req: ReconTotals) -> ReconTotalsResult:
        """3201 totals reconciliation (对总账)."""

    @abc.abstractmethod
    async def reconcile_details(self, req: DetailReconRequest) -> DetailReconResult:
        """3202 detail reconciliation (对明细账): upload the hospital's lines (9101),
        ask for the comparison, download and parse the result file (9102)."""


# --- pre-allocated message ids -------------------------------------------------------------

_PLANNED_MSGIDS: ContextVar[list[str] | None] = ContextVar("yinyi_planned_msgids", default=None)


@contextlib.contextmanager
def planned_msgids(msgids: list[str]) -> Iterator[None]:
    """Within the block, the adapter's calls in this task (sign-in excepted) use these
    msgids, in order, before generating new ones: the first send uses the first, a
    resend after a refused ``sign_no`` or token the next. Record them all before the
    call; 2601 by a msgid the centre never saw succeeds and does nothing."""
    token = _PLANNED_MSGIDS.set(list(msgids))
    try:
        yield
    finally:
        _PLANNED_MSGIDS.reset(token)


def take_planned_msgid() -> str | None:
    """For adapters: the next planned msgid of this task, or None."""
    plan = _PLANNED_MSGIDS.get()
    return plan.pop(0) if plan else None
