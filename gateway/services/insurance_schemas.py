"""What callers send to ``/v1/insurance/…`` and what they get back.

Requests reuse the core insurance types of :mod:`gateway.insurance` (amounts in
integer fen) with the centre to use; answers keep every money bucket apart and
mask personal data (names, ID numbers).
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StrictInt, model_validator

from ..channel import Method
from ..insurance import (AdmissionRequest, CertType, DischargeRequest, FeeLine, OutpatientRegistration, VisitInfo,
                         VisitRef)
from ..insurance_state import REASON_ZH, STATUS_ZH
from ..money import fen_to_yuan
from ..schemas import HisLink
from ..vault import mask_value

_KEY = r"^[A-Za-z0-9_\-|*.]{1,64}$"
_CENTRE = Field(default=None, max_length=40, description="Configured insurance centre; default the only one")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# --- identify ---------------------------------------------------------------------------------------


class IdentifyIn(_In):
    """Identify a person: e-voucher QR code (or its token), ID card, or social-security card as read."""

    centre: str | None = _CENTRE
    method: Literal["evoucher", "id_card", "social_card"]
    qr_code: str | None = Field(default=None, max_length=512, description="The scanned e-voucher QR code")
    ec_token: str | None = Field(default=None, max_length=128, description="An already decoded e-voucher token")
    id_no: str | None = Field(default=None, pattern=r"^[0-9]{17}[0-9Xx]$")
    card_no: str | None = Field(default=None, max_length=40)
    card_sn: str | None = Field(default=None, max_length=64, description="卡识别码 as read by the kiosk")
    business_type: str = Field(default="01101", pattern=r"^\d{5}$", description="e-voucher business: 01101 挂号 …")
    operator_id: str = Field(default="KIOSK", max_length=40)
    operator_name: str = Field(default="自助机", max_length=40)

    @model_validator(mode="after")
    def _fields(self) -> IdentifyIn:
        if self.method == "evoucher" and not (self.qr_code or self.ec_token):
            raise ValueError("qr_code or ec_token is required with method=evoucher")
        if self.method == "id_card" and not self.id_no:
            raise ValueError("id_no is required with method=id_card")
        if self.method == "social_card" and not (self.card_no and self.card_sn):
            raise ValueError("card_no and card_sn are required with method=social_card")
        return self


# --- visits (thin wrappers of the core types, plus the centre) ----------------------------------


class VisitIn(VisitRef):
    centre: str | None = _CENTRE


class RegisterIn(OutpatientRegistration):
    centre: str | None = _CENTRE


class CancelRegisterIn(_In):
    centre: str | None = _CENTRE
    visit: VisitRef
    ipt_otp_no: str = Field(min_length=1, max_length=40)


class VisitInfoIn(VisitInfo):
    centre: str | None = _CENTRE


class FeesIn(_In):
    centre: str | None = _CENTRE
    visit: VisitRef
    lines: list[FeeLine] = Field(min_length=1, max_length=500)


class RevokeFeesIn(_In):
    centre: str | None = _CENTRE
    visit: VisitRef
    batch: str = Field(default="0000", max_length=40, description="chrg_bchno (outpatient) or feedetl_sn "
                                                                   "(inpatient); 0000 = every unsettled line")


class AdmissionIn(AdmissionRequest):
    centre: str | None = _CENTRE


class DischargeIn(DischargeRequest):
    centre: str | None = _CENTRE


class ReverseCallIn(_In):
    """2601: undo a call whose outcome was unknown, by its msgid."""

    centre: str | None = _CENTRE
    psn_no: str = Field(min_length=1, max_length=40)
    insuplc_admdvs: str = Field(pattern=r"^\d{6}$")
    omsgid: str = Field(min_length=1, max_length=40)
    oinfno: str = Field(pattern=r"^\d{4}$")


# --- settlement -------------------------------------------------------------------------------------


class SettleInputs(_In):
    """What pre-settlement (2206/2303) and settlement (2207/2304) need."""

    centre: str | None = _CENTRE
    kind: Literal["outpatient", "inpatient"]
    visit: VisitRef
    med_type: str = Field(pattern=r"^\d{2,4}$")
    cert_type: CertType
    cert_no: str = Field(min_length=1, max_length=128)
    card_sn: str | None = Field(default=None, max_length=64)
    total: StrictInt = Field(ge=0, le=10_000_000_000, description="medfee_sumamt, fen: the unsettled fees")
    chrg_bchno: str | None = Field(default=None, max_length=40, description="Outpatient charge batch")
    use_account: bool = Field(default=True, description="Personal account (and wallet) may pay")
    psn_setlway: str = Field(default="01", pattern=r"^\d{2}$")
    invono: str | None = Field(default=None, max_length=40)
    mid_settlement: bool = False
    discharge_time: dt.datetime | None = None
    password: SecretStr | None = Field(default=None, max_length=32, description="Card password; never stored")
    extra: dict[str, Any] = Field(default_factory=dict)

    @property
    def insutype(self) -> str:
        return self.visit.insutype or "310"


class TopUpIn(_In):
    """How the patient pays the self-pay part (补缴): as in ``POST /v1/payments``."""

    method: Method
    channel: str | None = Field(default=None, max_length=40)
    auth_code: str | None = Field(default=None, pattern=r"^[0-9A-Za-z]{10,64}$")
    openid: str | None = Field(default=None, max_length=128)
    subject: str = Field(default="医保结算自付部分", min_length=1, max_length=128)
    campus: str | None = Field(default=None, max_length=40)
    entry: str | None = Field(default=None, max_length=64)
    client_ip: str = Field(default="127.0.0.1", max_length=45)
    device_id: str | None = Field(default=None, max_length=32)
    expire_minutes: int | None = Field(default=None, ge=1, le=1440)
    wait_seconds: int = Field(default=0, ge=0, le=60)

    @model_validator(mode="after")
    def _method_fields(self) -> TopUpIn:
        if self.method == Method.CODE and not self.auth_code:
            raise ValueError("auth_code is required with method=code")
        if self.method == Method.JSAPI and not self.openid:
            raise ValueError("openid is required with method=jsapi")
        if self.method != Method.CODE and not self.channel:
            raise ValueError("channel is required unless method=code")
        return self


class SettlementCreate(SettleInputs):
    """A mixed settlement: insurance at the centre, and the cash part by ``top_up``."""

    out_settle_no: str = Field(pattern=_KEY, description="The caller's business key; idempotent per app")
    business_type: str | None = Field(default=None, max_length=40, description="Of the top-up payment; "
                                                                                "default the kind")
    notify_url: str | None = Field(default=None, max_length=512, pattern=r"^https?://")
    operator: str | None = Field(default=None, max_length=64)
    top_up: TopUpIn | None = Field(default=None, description="Required when the patient owes cash")
    his: HisLink | None = Field(default=None, description="The business-system bill the settlement pays: the "
                                "gateway writes the completed settlement (and a reversal) back to it, buckets apart")


# --- answers ----------------------------------------------------------------------------------------

FUND_ZH = {"hifp_pay": "统筹基金", "cvlserv_pay": "公务员医疗补助", "hifes_pay": "企业补充医疗保险",
           "hifmi_pay": "居民大病保险", "hifob_pay": "职工大额医疗费用补助", "maf_pay": "医疗救助",
           "oth_pay": "其他基金", "hifdm_pay": "伤残人员医疗保障基金"}
BUCKETS: tuple[tuple[str, str, str], ...] = (
    ("fund", "fund_total", "医保统筹"), ("personal_account", "acct_pay", "个人账户"),
    ("mutual_aid_account", "acct_mulaid_pay", "共济账户"), ("wallet", "wallet_pay", "医保钱包"),
    ("cash", "cash_pay", "现金/自付"), ("hospital", "hosp_part", "医院负担"))


def mask_name(name: str) -> str:
    if len(name) <= 1:
        return "*"
    return name[0] + "*" if len(name) == 2 else name[0] + "*" * (len(name) - 2) + name[-1]


def _yuan(v: int | None) -> str | None:
    return None if v is None else fen_to_yuan(v)


def amounts_out(r: Any) -> dict[str, Any] | None:
    if r.total is None:
        return None
    out: dict[str, Any] = {"total": r.total, "total_yuan": _yuan(r.total), "psn_part": r.psn_part}
    for key, col, _ in BUCKETS:
        out[key] = getattr(r, col)
        out[f"{key}_yuan"] = _yuan(getattr(r, col))
    out["funds"] = dict(r.funds or {})
    out["insurance_paid"] = (r.fund_total or 0) + (r.acct_pay or 0) + (r.acct_mulaid_pay or 0) + (r.wallet_pay or 0)
    return out


def payment_brief(p: Any) -> dict[str, Any] | None:
    if p is None:
        return None
    return {"payment_id": p.id, "status": p.status, "amount": p.amount, "channel": p.channel, "method": p.method,
            "code_url": p.code_url, "h5_url": p.h5_url, "jsapi_params": p.jsapi_params,
            "refunded_amount": p.refunded_amount, "error_code": p.error_code, "error_message": p.error_message}


def settlement_out(r: Any, payment: Any, vault: Any = None) -> dict[str, Any]:
    name = vault.decrypt(r.psn_name_enc) if vault is not None and r.psn_name_enc else None
    return {
        "settlement_id": r.id, "out_settle_no": r.out_settle_no, "status": r.status,
        "status_zh": STATUS_ZH.get(r.status, r.status), "reason": r.reason,
        "reason_zh": REASON_ZH.get(r.reason or "", None), "kind": r.kind, "centre": r.centre_id,
        "psn_no": r.psn_no, "psn_name": mask_name(name) if name else None, "mdtrt_id": r.mdtrt_id,
        "insutype": r.insutype, "med_type": r.med_type, "setl_id": r.setl_id,
        "setl_time": r.setl_time.isoformat() if r.setl_time else None, "clr_type": r.clr_type,
        "clr_way": r.clr_way, "setl_optins": r.setl_optins, "msgid": r.msgid, "amounts": amounts_out(r),
        "balance_after": r.balance_after, "business_type": r.business_type,
        "top_up": payment_brief(payment), "payment_id": r.payment_id,
        "topup_deadline": r.topup_deadline.isoformat() if r.topup_deadline else None, "refund_id": r.refund_id,
        "reversal": {"setl_id": r.rev_setl_id, "msgid": r.rev_msgid,
                     "time": r.rev_time.isoformat() if r.rev_time else None} if r.rev_setl_id else None,
        "error_code": r.error_code, "error_message": r.error_message, "needs_review": r.needs_review,
        "created_at": r.created_at.isoformat(), "updated_at": r.updated_at.isoformat(),
        "completed_at": r.completed_at.isoformat() if r.completed_at else None}


def his_writeback_out(rows: list[Any]) -> dict[str, Any] | None:
    """The settlement's business-system write-back (医保结算回写) and its reversal's, if any."""
    from .writeback import INSURANCE_REVERSAL, INSURANCE_SETTLEMENT, STATUS_ZH as WB_STATUS_ZH

    def one(w: Any) -> dict[str, Any]:
        return {"writeback_id": w.id, "status": w.status, "status_zh": WB_STATUS_ZH.get(w.status, w.status),
                "his_serial": w.his_serial, "attempts": w.attempts, "last_error_code": w.last_error_code,
                "last_error": w.last_error, "recorded_at": w.recorded_at.isoformat() if w.recorded_at else None}

    own = next((w for w in rows if w.kind == INSURANCE_SETTLEMENT), None)
    if own is None:
        return None
    rev = next((w for w in rows if w.kind == INSURANCE_REVERSAL), None)
    return {"system": own.system_id, "bill_type": own.bill_type, "visit_no": own.visit_no,
            "charge_ids": list(own.charge_ids), **one(own), "reversal": one(rev) if rev else None}


def receipt_out(r: Any, payment: Any, vault: Any) -> dict[str, Any]:
    """票据分栏: the receipt's columns by bucket, Chinese labels and English keys."""
    name = vault.decrypt(r.psn_name_enc) if r.psn_name_enc else None
    columns = []
    for key, col, label in BUCKETS:
        value = getattr(r, col)
        if value is None and key == "wallet":
            continue
        columns.append({"key": key, "label_zh": label, "amount": value or 0, "amount_yuan": _yuan(value or 0)})
    funds = [{"key": k, "label_zh": FUND_ZH.get(k, k), "amount": v, "amount_yuan": _yuan(v)}
             for k, v in sorted((r.funds or {}).items()) if v]
    return {"settlement_id": r.id, "out_settle_no": r.out_settle_no, "status": r.status,
            "status_zh": STATUS_ZH.get(r.status, r.status), "setl_id": r.setl_id, "mdtrt_id": r.mdtrt_id,
            "psn_no": r.psn_no, "psn_name": mask_name(name) if name else None, "insutype": r.insutype,
            "med_type": r.med_type, "setl_time": r.setl_time.isoformat() if r.setl_time else None,
            "total": {"label_zh": "医疗费总额", "amount": r.total, "amount_yuan": _yuan(r.total)},
            "columns": columns, "funds": funds, "scope": dict(r.scope or {}),
            "balance_after": {"label_zh": "个人账户余额", "amount": r.balance_after,
                              "amount_yuan": _yuan(r.balance_after)},
            "cash_paid_by": {"channel": payment.channel, "payment_id": payment.id, "status": payment.status}
            if payment is not None else None}


def person_out(person: Any, cert: dict[str, Any] | None) -> dict[str, Any]:
    insurances = []
    for ins in person.insurances:
        insurances.append({"insutype": ins.insutype, "psn_type": ins.psn_type, "insuplc_admdvs": ins.insuplc_admdvs,
                           "insured_status": ins.insured_status, "civil_servant": ins.civil_servant,
                           "balance": ins.balance, "balance_yuan": fen_to_yuan(ins.balance),
                           "wallet_balance": ins.wallet_balance,
                           "wallet_balance_yuan": _yuan(ins.wallet_balance)})
    return {"psn_no": person.psn_no, "name": mask_name(person.name),
            "certno": mask_value(person.certno) if person.certno else None, "gender": person.gender,
            "birthday": person.birthday.isoformat() if person.birthday else None,
            "age": str(person.age) if person.age is not None else None, "insurances": insurances,
            "identities": person.identities, "mdtrt_cert": cert, "msgid": person.msgid, "warn_msg": person.warn_msg}
