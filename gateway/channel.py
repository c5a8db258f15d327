"""The contract between the core and a payment channel adapter.

The core speaks only these types; each adapter translates them to and from its
wire protocol (see ``channels/<name>/wire.py``). A channel package registers its
adapter *class* through the ``yinyi_register_channels`` hook; the core builds one
instance per merchant, with that merchant's validated configuration.
"""
from __future__ import annotations

import abc
import datetime as dt
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, ClassVar

import aiohttp
from pydantic import BaseModel, ConfigDict, Field

from .errors import NotSupported


class Method(StrEnum):
    """How the patient pays."""

    CODE = "code"  # 付款码/被扫: cashier scans the patient's code
    QR = "qr"  # 主扫: patient scans the gateway's QR
    JSAPI = "jsapi"  # 公众号/小程序
    H5 = "h5"  # mobile web outside the channel's app


class Capability(StrEnum):
    CODE = "code"
    QR = "qr"
    JSAPI = "jsapi"
    H5 = "h5"
    REFUND = "refund"
    PARTIAL_REFUND = "partial_refund"
    REVERSE = "reverse"
    CLOSE = "close"
    BILL = "bill"


class TradeStatus(StrEnum):
    """A channel's view of a payment, mapped to the core's vocabulary.

    Adapters map anything they do not understand to PENDING (not FAILED): a
    status the core cannot interpret must never be taken as "no money moved".
    """

    PENDING = "pending"  # order exists, patient has not paid (NOTPAY, WAIT_BUYER_PAY)
    PAYING = "paying"  # patient is confirming (USERPAYING, 10003)
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # proven failed: declined, PAYERROR
    CLOSED = "closed"
    REVERSED = "reversed"  # revoked/cancelled after a payment-code attempt
    REFUNDED = "refunded"  # paid, then (partly) refunded: money did move
    NOT_FOUND = "not_found"  # the channel has no such order


class RefundStatus(StrEnum):
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PayRequest(_Model):
    out_trade_no: str  # the gateway's own trade number sent to the channel
    amount: int = Field(gt=0)  # fen
    subject: str
    method: Method
    auth_code: str | None = None
    openid: str | None = None
    notify_url: str | None = None
    client_ip: str = "127.0.0.1"
    device_id: str | None = None
    store_id: str | None = None
    expire_at: dt.datetime | None = None
    attach: str | None = None


class PayResult(_Model):
    status: TradeStatus
    channel_trade_no: str | None = None
    code_url: str | None = None  # QR
    h5_url: str | None = None
    jsapi_params: dict[str, str] | None = None
    paid_at: dt.datetime | None = None
    payer_id: str | None = None
    paid_amount: int | None = None
    error_code: str | None = None  # channel's own code for a decline
    error_message: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict)


class RefundRequest(_Model):
    out_trade_no: str
    channel_trade_no: str | None = None
    out_refund_no: str
    amount: int = Field(gt=0)
    total: int = Field(gt=0)
    reason: str | None = None
    notify_url: str | None = None


class RefundResult(_Model):
    status: RefundStatus
    channel_refund_no: str | None = None
    refunded_at: dt.datetime | None = None
    error_code: str | None = None
    error_message: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict)


class ReverseResult(_Model):
    done: bool  # the channel confirms the order is revoked (no money kept)
    retry: bool = False  # the channel asks to try again later (user still paying)
    error_code: str | None = None
    error_message: str | None = None


class NotifyKind(StrEnum):
    PAYMENT = "payment"
    REFUND = "refund"


class NotifyEvent(_Model):
    """A verified, decrypted channel callback."""

    kind: NotifyKind
    out_trade_no: str
    out_refund_no: str | None = None
    trade: PayResult | None = None
    refund: RefundResult | None = None
    event_id: str | None = None


class NotifyAnswer(_Model):
    """What the gateway answers the channel (each channel has its own form)."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"


class BillLine(_Model):
    """One line of a channel bill, in core terms (amounts in fen, refunds negative)."""

    trade_time: dt.datetime
    channel_trade_no: str
    out_trade_no: str
    kind: str  # "payment" | "refund"
    amount: int
    fee: int = 0
    channel_refund_no: str | None = None
    out_refund_no: str | None = None
    status: str = ""
    trade_type: str = ""
    merchant_id: str = ""
    raw: dict[str, str] = Field(default_factory=dict)


class Bill(_Model):
    bill_date: dt.date
    lines: list[BillLine]
    total_count: int  # from the bill's own summary
    total_paid: int  # fen, from the summary
    total_refunded: int  # fen, from the summary (positive)
    total_fee: int = 0


class ChannelAdapter(abc.ABC):
    """Base class of every channel adapter.

    Class attributes describe the channel; an instance serves one merchant.
    Every flow method may raise ``UpstreamError`` subclasses when the outcome is
    unknown; declines are results, not exceptions.
    """

    id: ClassVar[str]  # registry key, e.g. "wechatpay"
    name_zh: ClassVar[str]
    name_en: ClassVar[str]
    capabilities: ClassVar[frozenset[Capability]]
    config_model: ClassVar[type[BaseModel]]
    auth_code_pattern: ClassVar[re.Pattern[str] | None] = None
    auth_code_hint: ClassVar[str] = ""
    # Resolver schedule for a payment-code payment still PAYING/UNKNOWN: seconds
    # after creation at which to query; when it is exhausted the payment is
    # reversed at the channel.
    code_poll_schedule: ClassVar[tuple[float, ...]] = (5, 10, 15, 25, 35, 45)
    # Seconds before retrying a reverse the channel refused because the patient is
    # still confirming (the channel answers "user paying" until its prompt times out).
    reverse_retry_seconds: ClassVar[float] = 10.0
    # Seconds between queries of an UNKNOWN non-code payment or refund.
    query_interval: ClassVar[float] = 30.0
    # Default order lifetime for QR/JSAPI/H5 orders.
    order_ttl: ClassVar[dt.timedelta] = dt.timedelta(minutes=30)

    # The gateway's callback URL for this merchant (``/v1/notify/<channel>/<merchant>``),
    # set by the core after construction; for flows whose request carries no notify URL.
    notify_url: str | None = None

    def __init__(self, config: BaseModel, session: aiohttp.ClientSession) -> None:
        self.config = config
        self.session = session

    @classmethod
    def matches_auth_code(cls, code: str) -> bool:
        return bool(cls.auth_code_pattern and cls.auth_code_pattern.fullmatch(code))

    @classmethod
    def supports(cls, cap: Capability) -> bool:
        return cap in cls.capabilities

    # --- flows ----------------------------------------------------------------
    async def pay(self, req: PayRequest) -> PayResult:
        raise NotSupported(f"pay:{req.method}", self.id)

    async def query(self, out_trade_no: str) -> PayResult:
        raise NotSupported("query", self.id)

    async def close(self, out_trade_no: str) -> None:
        raise NotSupported("close", self.id)

    async def reverse(self, out_trade_no: str) -> ReverseResult:
        raise NotSupported("reverse", self.id)

    async def refund(self, req: RefundRequest) -> RefundResult:
        raise NotSupported("refund", self.id)

    async def query_refund(self, out_refund_no: str, out_trade_no: str) -> RefundResult:
        raise NotSupported("query_refund", self.id)

    async def parse_notify(
        self, headers: Mapping[str, str], body: bytes
    ) -> tuple[NotifyEvent, NotifyAnswer]:
        """Verify and decode a callback. Raise ``NotifyRejected`` if forged."""
        raise NotSupported("notify", self.id)

    def notify_failure_answer(self, message: str) -> NotifyAnswer:
        """The answer that makes the channel retry its callback later."""
        return NotifyAnswer(status=500, body=b'{"code":"FAIL","message":"' + message.encode() + b'"}')

    async def download_bill(self, bill_date: dt.date) -> Bill:
        raise NotSupported("bill", self.id)


class SimulatorInfo(_Model):
    """What a running simulator tells the demo and the tests."""

    channel: str
    base_url: str
    merchants: list[dict[str, Any]]  # channel-specific credentials, for sandbox.json
    control_url: str | None = None
