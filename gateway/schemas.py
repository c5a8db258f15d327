"""Pydantic models of the unified API (``/v1``): what callers send and receive."""
from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from .channel import Method

_KEY = r"^[A-Za-z0-9_\-|*.]{1,64}$"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class HisLink(_In):
    """The business-system bill a payment pays: the gateway writes the payment back to it (确认收费)."""

    system: str | None = Field(default=None, max_length=40,
                               description="Configured business system; by default the one owning business_type")
    patient_id: str = Field(min_length=1, max_length=64, description="The system's patient id")
    patient_name: str | None = Field(default=None, max_length=64)
    patient_phone: str | None = Field(default=None, max_length=20, description="For notices to the patient")
    visit_no: str | None = Field(default=None, max_length=64, description="门诊号/住院号")
    charge_ids: list[str] = Field(default_factory=list, max_length=200,
                                  description="Pending charges paid (from /v1/his/pending-charges)")
    bill_type: str | None = Field(default=None, max_length=40,
                                  description="outpatient_registration, outpatient_settlement, inpatient_deposit …")


class PaymentCreate(_In):
    """统一下单: create a payment."""

    out_trade_no: str = Field(pattern=_KEY, description="The caller's business key; idempotent per app")
    amount: StrictInt = Field(gt=0, le=10_000_000_000, description="Integer fen")
    subject: str = Field(min_length=1, max_length=128)
    business_type: str = Field(min_length=1, max_length=40, description="e.g. outpatient, inpatient_deposit, exam")
    method: Method
    channel: str | None = Field(default=None, description="Optional with method=code: detected from auth_code")
    auth_code: str | None = Field(default=None, pattern=r"^[0-9A-Za-z]{10,64}$")
    openid: str | None = Field(default=None, max_length=128)
    campus: str | None = Field(default=None, max_length=40)
    entry: str | None = Field(default=None, max_length=64, description="收费入口, e.g. kiosk-01, window-3")
    operator: str | None = Field(default=None, max_length=64)
    notify_url: str | None = Field(default=None, max_length=512, pattern=r"^https?://")
    client_ip: str = Field(default="127.0.0.1", max_length=45)
    device_id: str | None = Field(default=None, max_length=32)
    expire_minutes: int | None = Field(default=None, ge=1, le=1440)
    wait_seconds: int = Field(default=0, ge=0, le=60,
                              description="Hold the answer up to this long while a payment-code payment is PAYING")
    his: HisLink | None = Field(default=None, description="Write the payment back to this business-system bill")

    @model_validator(mode="after")
    def _method_fields(self) -> PaymentCreate:
        if self.method == Method.CODE and not self.auth_code:
            raise ValueError("auth_code is required with method=code")
        if self.method == Method.JSAPI and not self.openid:
            raise ValueError("openid is required with method=jsapi")
        if self.method != Method.CODE and not self.channel:
            raise ValueError("channel is required unless method=code")
        return self


class RefundCreate(_In):
    out_refund_no: str = Field(pattern=_KEY)
    amount: StrictInt = Field(gt=0, le=10_000_000_000)
    reason: str | None = Field(default=None, max_length=80)
    operator: str | None = Field(default=None, max_length=64)
    notify_url: str | None = Field(default=None, max_length=512, pattern=r"^https?://")
    his_write_back: bool = Field(default=False, description="Record the refund in the business system "
                                 "(the caller is not that system itself)")


class PaymentOut(BaseModel):
    payment_id: str
    out_trade_no: str
    status: str
    channel: str
    merchant_id: str
    method: str
    amount: int
    refunded_amount: int
    subject: str
    business_type: str
    campus: str | None = None
    entry: str | None = None
    operator: str | None = None
    channel_trade_no: str | None = None
    code_url: str | None = None
    h5_url: str | None = None
    jsapi_params: dict[str, Any] | None = None
    paid_at: dt.datetime | None = None
    error_code: str | None = None
    error_message: str | None = None
    needs_review: bool = False
    his_system: str | None = None
    created_at: dt.datetime
    updated_at: dt.datetime


class RefundOut(BaseModel):
    refund_id: str
    payment_id: str
    out_refund_no: str
    amount: int
    status: str
    reason: str | None = None
    channel_refund_no: str | None = None
    refunded_at: dt.datetime | None = None
    error_code: str | None = None
    error_message: str | None = None
    needs_review: bool = False
    created_at: dt.datetime
    updated_at: dt.datetime


class EventOut(BaseModel):
    from_status: str | None
    to_status: str
    source: str
    refund_id: str | None = None
    operator: str | None = None
    detail: dict[str, Any]
    created_at: dt.datetime


class ReviewResolve(_In):
    """An authorised user's decision on an item the resolver could not settle."""

    action: str = Field(pattern=r"^(set_status|requeue)$")
    status: str | None = Field(default=None, description="Final status with action=set_status")
    comment: str = Field(min_length=2, max_length=500)
    operator: str = Field(min_length=1, max_length=64)


def payment_out(p: Any) -> PaymentOut:
    return PaymentOut(
        payment_id=p.id, out_trade_no=p.out_trade_no, status=p.status, channel=p.channel,
        merchant_id=p.merchant_id, method=p.method, amount=p.amount, refunded_amount=p.refunded_amount,
        subject=p.subject, business_type=p.business_type, campus=p.campus_id, entry=p.entry,
        operator=p.operator, channel_trade_no=p.channel_trade_no, code_url=p.code_url, h5_url=p.h5_url,
        jsapi_params=p.jsapi_params, paid_at=p.paid_at, error_code=p.error_code,
        error_message=p.error_message, needs_review=p.needs_review, his_system=p.his_system,
        created_at=p.created_at,
        updated_at=p.updated_at)


def refund_out(r: Any) -> RefundOut:
    return RefundOut(
        refund_id=r.id, payment_id=r.payment_id, out_refund_no=r.out_refund_no, amount=r.amount,
        status=r.status, reason=r.reason, channel_refund_no=r.channel_refund_no, refunded_at=r.refunded_at,
        error_code=r.error_code, error_message=r.error_message, needs_review=r.needs_review,
        created_at=r.created_at, updated_at=r.updated_at)
