"""Alipay wire vocabulary: times, result codes, trade statuses, answer models.

The signing helpers live in ``crypto.py``. This module holds what both the adapter
and the simulator must agree on about the *meaning* of the wire.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict

from gateway.channel import TradeStatus

CST = dt.timezone(dt.timedelta(hours=8), "CST")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def format_time(value: dt.datetime) -> str:
    """``yyyy-MM-dd HH:mm:ss`` in China time, as every Alipay time field is written."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=CST)
    return value.astimezone(CST).strftime(TIME_FORMAT)


def parse_time(text: str | None) -> dt.datetime | None:
    """Parse a wire time; notifies' ``gmt_refund`` carries milliseconds (``….320``)."""
    if not text:
        return None
    text = text.strip()
    fmt = TIME_FORMAT + ".%f" if "." in text else TIME_FORMAT
    return dt.datetime.strptime(text, fmt).replace(tzinfo=CST)


def response_key(method: str) -> str:
    """``alipay.trade.pay`` → ``alipay_trade_pay_response``."""
    return method.replace(".", "_") + "_response"


# --- result codes -------------------------------------------------------------------

SUCCESS = "10000"
IN_PROCESS = "10003"  # alipay.trade.pay only: the patient is confirming; poll the query
UNKNOWN = "20000"
BUSINESS_FAILED = "40004"

CODE_MESSAGES: dict[str, str] = {
    "10000": "Success",
    "10003": " order success pay inprocess",  # the leading space is the service's own
    "20000": "Service Currently Unavailable",
    "20001": "Insufficient Token Permissions",
    "40001": "Missing Required Arguments",
    "40002": "Invalid Arguments",
    "40004": "Business Failed",
    "40006": "Insufficient Permissions",
}
# Codes that say the request was refused before anything happened.
REFUSAL_CODES = frozenset({"20001", "40001", "40002", "40004", "40006"})
# Sub-codes after which the outcome is unknown: query (or retry) later.
UNKNOWN_SUB_CODES = frozenset({"ACQ.SYSTEM_ERROR", "isp.unknow-error", "isp.unknown-error", "ACQ.RETRY_LATER"})


def normalise_sub_code(sub_code: str | None) -> str:
    """Some answers prefix business sub-codes with ``aop.`` (``aop.ACQ.SYSTEM_ERROR``)."""
    text = (sub_code or "").strip()
    return text[4:] if text.startswith("aop.ACQ.") else text


@dataclass(frozen=True)
class Answer:
    """A verified sync answer: the ``…_response`` (or ``error_response``) object."""

    method: str
    data: dict[str, Any]
    raw: str = ""  # the signed text
    error_response: bool = False
    http_status: int = 200
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def code(self) -> str:
        return str(self.data.get("code", ""))

    @property
    def msg(self) -> str:
        return str(self.data.get("msg", ""))

    @property
    def sub_code(self) -> str:
        return normalise_sub_code(self.data.get("sub_code"))

    @property
    def sub_msg(self) -> str:
        return str(self.data.get("sub_msg", ""))

    @property
    def ok(self) -> bool:
        return self.code == SUCCESS and not self.error_response

    @property
    def in_process(self) -> bool:
        return self.code == IN_PROCESS and not self.error_response

    @property
    def unknown(self) -> bool:
        """The service cannot tell whether the request took effect."""
        sub = self.sub_code
        return self.code == UNKNOWN or sub in UNKNOWN_SUB_CODES or sub.startswith("isp.")

    @property
    def refusal(self) -> bool:
        """A definite "no": the request was refused and nothing happened."""
        return self.code in REFUSAL_CODES and not self.unknown

    @property
    def error_code(self) -> str:
        return self.sub_code or self.code

    @property
    def error_message(self) -> str:
        return self.sub_msg or self.msg.strip()

    def describe(self) -> str:
        return f"{self.method}: {self.code} {self.msg.strip()} {self.sub_code} {self.sub_msg}".strip()


# --- trade statuses -------------------------------------------------------------------


def trade_status(status: str | None, *, paid: bool) -> TradeStatus:
    """Map a wire ``trade_status`` to the core vocabulary.

    ``TRADE_CLOSED`` means either "closed unpaid" (timeout, close, cancel before
    payment) or "paid, then the whole amount went back" (撤销 of a paid code
    payment, or a full refund). ``paid`` tells them apart (the trade has a payment
    time): unpaid → CLOSED; paid → REVERSED, "no money kept". Anything unknown →
    PENDING, never FAILED.
    """
    s = (status or "").upper()
    if s in ("TRADE_SUCCESS", "TRADE_FINISHED"):
        return TradeStatus.SUCCEEDED
    if s == "TRADE_CLOSED":
        return TradeStatus.REVERSED if paid else TradeStatus.CLOSED
    return TradeStatus.PENDING  # WAIT_BUYER_PAY and anything new


# --- answer models --------------------------------------------------------------------


class Wire(BaseModel):
    """Base of the answer models: unknown fields are kept (the service adds fields)."""

    model_config = ConfigDict(extra="allow")


class TradeAnswer(Wire):
    """The trade part of pay / query answers and of trade notifies."""

    out_trade_no: str
    trade_no: str | None = None
    trade_status: str | None = None
    total_amount: str | None = None
    receipt_amount: str | None = None
    buyer_user_id: str | None = None
    buyer_id: str | None = None  # the notify's name for it
    buyer_open_id: str | None = None
    buyer_logon_id: str | None = None
    gmt_payment: str | None = None
    send_pay_date: str | None = None
    gmt_close: str | None = None
    refund_fee: str | None = None
    gmt_refund: str | None = None
    out_biz_no: str | None = None

    @property
    def payer(self) -> str | None:
        return self.buyer_user_id or self.buyer_id or self.buyer_open_id or None

    @property
    def paid_time(self) -> str | None:
        return self.gmt_payment or self.send_pay_date or None


class RefundAnswer(Wire):
    """``alipay.trade.refund``."""

    out_trade_no: str | None = None
    trade_no: str | None = None
    fund_change: str | None = None
    refund_fee: str | None = None
    gmt_refund_pay: str | None = None


class RefundQueryAnswer(Wire):
    """``alipay.trade.fastpay.refund.query``: empty of refund data when there is no such refund."""

    out_trade_no: str | None = None
    trade_no: str | None = None
    out_request_no: str | None = None
    refund_amount: str | None = None
    total_amount: str | None = None
    refund_status: str | None = None
    gmt_refund_pay: str | None = None


class CancelAnswer(Wire):
    """``alipay.trade.cancel``: ``action`` is close | refund, absent when there was no trade."""

    out_trade_no: str | None = None
    trade_no: str | None = None
    retry_flag: str | None = None
    action: str | None = None
    gmt_refund_pay: str | None = None


class BillUrlAnswer(Wire):
    bill_download_url: str
