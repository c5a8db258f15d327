"""The reference bank's e-CNY acquiring wire format: paths, messages, codes, statuses.

JSON over HTTPS. Every call is a ``POST`` of a UTF-8 JSON object to one path; every
answer is a signed JSON envelope ``{"code", "message", "data"}`` (the bill download
answers the file itself, signed the same way). Amounts are yuan strings with two
decimals (``"12.30"``); times are ``yyyyMMddHHmmss`` in China time (UTC+8). The full
description is ``docs/channels/ecny.md``.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict

from gateway.channel import RefundStatus, TradeStatus
from gateway.money import MoneyFormatError, fen_to_yuan, yuan_to_fen

BANK_ID = "refbank"
CST = dt.timezone(dt.timedelta(hours=8), "CST")
TIME_FORMAT = "%Y%m%d%H%M%S"
DATE_FORMAT = "%Y%m%d"
AUTH_CODE_RE = r"^01\d{17}$"

PATH_CODEPAY = "/ecny/v1/trade/codepay"
PATH_PRECREATE = "/ecny/v1/trade/precreate"
PATH_QUERY = "/ecny/v1/trade/query"
PATH_CLOSE = "/ecny/v1/trade/close"
PATH_REVOKE = "/ecny/v1/trade/revoke"
PATH_REFUND = "/ecny/v1/refund/apply"
PATH_REFUND_QUERY = "/ecny/v1/refund/query"
PATH_BILL = "/ecny/v1/bill/download"
API_PREFIX = "/ecny/v1/"

SUCCESS = "SUCCESS"
NOTIFY_ANSWER = b'{"code":"SUCCESS","message":"\xe6\x88\x90\xe5\x8a\x9f"}'  # {"code":"SUCCESS","message":"成功"}


# --- times and amounts --------------------------------------------------------------------


def format_time(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=CST)
    return value.astimezone(CST).strftime(TIME_FORMAT)


def parse_time(text: str | None) -> dt.datetime | None:
    """``yyyyMMddHHmmss`` (China time) → aware datetime; empty → None; malformed → ValueError."""
    if not text:
        return None
    if len(text) != 14 or not text.isdigit():
        raise ValueError(f"not a yyyyMMddHHmmss time: {text!r}")
    return dt.datetime.strptime(text, TIME_FORMAT).replace(tzinfo=CST)


def format_date(value: dt.date) -> str:
    return value.strftime(DATE_FORMAT)


def parse_date(text: str) -> dt.date:
    if len(text) != 8 or not text.isdigit():
        raise ValueError(f"not a yyyyMMdd date: {text!r}")
    return dt.datetime.strptime(text, DATE_FORMAT).date()


def yuan(fen: int) -> str:
    """Fen → the wire's yuan string (``"0.01"``)."""
    return fen_to_yuan(fen)


_YUAN = re.compile(r"-?\d{1,13}(\.\d{1,2})?")


def fen(text: object) -> int:
    """The wire's yuan string → fen. Only plain decimal strings: no JSON numbers, no separators."""
    if not isinstance(text, str) or not _YUAN.fullmatch(text):
        raise MoneyFormatError(f"an amount must be a plain yuan string, got {text!r}")
    return yuan_to_fen(text)


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON, non-ASCII kept as is: the exact bytes that are signed and sent."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


# --- messages ---------------------------------------------------------------------------------


class Wire(BaseModel):
    """Base of the wire models: unknown fields are kept (the bank may add fields)."""

    model_config = ConfigDict(extra="allow")

    def dump(self) -> bytes:
        return dumps(self.model_dump(exclude_none=True))


class CodePayRequest(Wire):
    out_trade_no: str
    auth_code: str
    amount: str
    currency: str = "CNY"
    subject: str
    attach: str | None = None
    notify_url: str | None = None
    device_id: str | None = None
    store_id: str | None = None
    client_ip: str | None = None


class PrecreateRequest(Wire):
    out_trade_no: str
    amount: str
    currency: str = "CNY"
    subject: str
    attach: str | None = None
    notify_url: str
    expire_time: str | None = None
    device_id: str | None = None
    store_id: str | None = None


class TradeRef(Wire):
    """Body of query, close and revoke."""

    out_trade_no: str


class RefundApply(Wire):
    out_trade_no: str
    out_refund_no: str
    refund_amount: str
    total_amount: str
    reason: str | None = None
    notify_url: str | None = None


class RefundRef(Wire):
    out_refund_no: str


class BillRequest(Wire):
    bill_date: str  # yyyyMMdd
    compress: str = "NONE"  # NONE | GZIP


class Envelope(Wire):
    """Every JSON answer: ``code`` is ``SUCCESS`` or an error code; ``data`` on success."""

    code: str
    message: str = ""
    data: dict[str, Any] | None = None


class Trade(Wire):
    merchant_id: str
    out_trade_no: str
    bank_trade_no: str | None = None
    trade_type: str | None = None  # CODEPAY | QRPAY
    trade_status: str
    sub_status: str | None = None  # PAYING: USER_CONFIRMING | PROCESSING
    amount: str
    refunded_amount: str | None = None
    currency: str | None = "CNY"
    subject: str | None = None
    attach: str | None = None
    create_time: str | None = None
    pay_time: str | None = None
    expire_time: str | None = None
    wallet_id: str | None = None  # masked payer wallet id
    wallet_level: str | None = None
    wallet_operator: str | None = None
    fail_code: str | None = None
    fail_reason: str | None = None
    qr_code: str | None = None
    device_id: str | None = None
    store_id: str | None = None


class RefundRecord(Wire):
    merchant_id: str
    out_trade_no: str
    bank_trade_no: str | None = None
    out_refund_no: str
    bank_refund_no: str
    refund_amount: str
    total_amount: str | None = None
    refund_status: str
    fail_code: str | None = None
    fail_reason: str | None = None
    apply_time: str | None = None
    refund_time: str | None = None
    reason: str | None = None


class Notice(Wire):
    """A callback body: ``notify_type`` is ``TRADE.SUCCESS``, ``REFUND.SUCCESS`` or ``REFUND.FAIL``."""

    notify_id: str
    notify_type: str
    notify_time: str | None = None
    merchant_id: str
    data: dict[str, Any]


# --- vocabularies ------------------------------------------------------------------------------

TRADE_STATES: dict[str, TradeStatus] = {
    "WAIT_PAY": TradeStatus.PENDING,  # QR order created, not paid
    "PAYING": TradeStatus.PAYING,  # the patient confirms, or the e-CNY system is processing
    "SUCCESS": TradeStatus.SUCCEEDED,
    "REFUND": TradeStatus.REFUNDED,  # paid, then (partly) refunded
    "FAIL": TradeStatus.FAILED,  # proven failed: nothing charged
    "CLOSED": TradeStatus.CLOSED,
    "REVOKED": TradeStatus.REVERSED,
}


def trade_status(state: str | None) -> TradeStatus:
    """Wire ``trade_status`` → core status; an unknown status is PENDING, never FAILED."""
    return TRADE_STATES.get((state or "").upper(), TradeStatus.PENDING)


REFUND_STATES: dict[str, RefundStatus] = {
    "PROCESSING": RefundStatus.PROCESSING,
    "SUCCESS": RefundStatus.SUCCEEDED,
    "FAIL": RefundStatus.FAILED,
}


def refund_status(state: str | None) -> RefundStatus:
    return REFUND_STATES.get((state or "").upper(), RefundStatus.PROCESSING)


SUB_STATUS_TEXT = {
    "USER_CONFIRMING": "用户确认中，请稍候",
    "PROCESSING": "交易处理中，请稍候",
}

# The bank's answer codes: code -> (HTTP status, message). Business outcomes answer
# HTTP 200; authentication failures 401; unknown paths 404; overload 429; 5xx means
# the outcome is unknown. Every answer is signed.
ERRORS: dict[str, tuple[int, str]] = {
    "SUCCESS": (200, "成功"),
    "PARAM_ERROR": (200, "参数错误"),
    "SIGN_INVALID": (401, "签名验证失败"),
    "REQUEST_EXPIRED": (401, "请求时间戳超出允许范围，请校准系统时间"),
    "NONCE_REPLAYED": (401, "请求随机串重复使用，疑似重放"),
    "KEY_NOT_FOUND": (401, "商户密钥编号不存在"),
    "MERCHANT_NOT_FOUND": (401, "商户不存在或未开通数字人民币收单"),
    "NOT_FOUND": (404, "接口不存在"),
    "PAYCODE_INVALID": (200, "付款码无效，请出示数字人民币付款码（01开头的19位数字）"),
    "DUPLICATE_ORDER": (200, "商户订单号重复，且订单信息不一致"),
    "ORDER_NOT_FOUND": (200, "订单不存在"),
    "ORDER_PAID": (200, "订单已支付"),
    "ORDER_CLOSED": (200, "订单已关闭"),
    "ORDER_REVOKED": (200, "订单已撤销"),
    "TRADE_PROCESSING": (200, "交易处理中，请稍后再试"),
    "REVOKE_NOT_ALLOWED": (200, "订单已发生退款，不允许撤销"),
    "REVOKE_EXPIRED": (200, "已超过撤销期限（仅限交易当日），请使用退款"),
    "REFUND_NOT_ALLOWED": (200, "订单状态不允许退款"),
    "AMOUNT_EXCEEDS_REFUNDABLE": (200, "退款金额超过订单可退金额"),
    "TOTAL_AMOUNT_MISMATCH": (200, "订单金额与原交易不一致"),
    "DUPLICATE_REFUND": (200, "退款单号重复，且退款信息不一致"),
    "REFUND_NOT_FOUND": (200, "退款单不存在"),
    "MERCHANT_BALANCE_NOT_ENOUGH": (200, "商户待结算资金不足，暂无法退款"),
    "BILL_NOT_READY": (200, "对账文件尚未生成，请稍后再试"),
    "CENTER_TIMEOUT": (200, "数字人民币系统处理超时，交易结果未知，请查询"),
    "RATE_LIMITED": (429, "请求过于频繁，请稍后再试"),
    "SYSTEM_ERROR": (500, "系统繁忙，请稍后再试"),
}

# ``fail_code`` of a FAIL trade: the wallet side declined; nothing was charged.
FAIL_CODES: dict[str, str] = {
    "BALANCE_NOT_ENOUGH": "钱包余额不足",
    "PAYCODE_EXPIRED": "付款码已过期，请刷新付款码后重试",
    "WALLET_LIMIT_EXCEEDED": "超出钱包单笔或日累计支付限额",
    "WALLET_FROZEN": "钱包状态异常（冻结或挂失）",
    "RISK_REJECTED": "交易存在风险，已被拒绝",
    "USER_CANCELLED": "用户取消支付",
    "CONFIRM_TIMEOUT": "用户未在规定时间内确认支付",
    "CENTER_ERROR": "数字人民币系统处理失败",
}
# ``fail_code`` of a FAIL refund.
REFUND_FAIL_CODES: dict[str, str] = {
    "WALLET_CLOSED": "收款钱包已注销，退款失败，请线下处理",
    "REFUND_REJECTED": "退款被拒绝",
}

# Answers after which the outcome is unknown: query later.
UNKNOWN_CODES = frozenset({"SYSTEM_ERROR", "CENTER_TIMEOUT", "RATE_LIMITED"})
# Payment-code answers in which the bank refused the request before acting: nothing was charged.
CODEPAY_DECLINES = frozenset({
    "PARAM_ERROR", "PAYCODE_INVALID", "DUPLICATE_ORDER", "SIGN_INVALID", "REQUEST_EXPIRED", "KEY_NOT_FOUND",
    "MERCHANT_NOT_FOUND", "ORDER_CLOSED", "ORDER_REVOKED",
})
# Refund answers that prove no refund was made.
REFUND_DECLINES = frozenset({
    "PARAM_ERROR", "ORDER_NOT_FOUND", "REFUND_NOT_ALLOWED", "AMOUNT_EXCEEDS_REFUNDABLE", "TOTAL_AMOUNT_MISMATCH",
    "DUPLICATE_REFUND", "MERCHANT_BALANCE_NOT_ENOUGH", "SIGN_INVALID", "REQUEST_EXPIRED", "KEY_NOT_FOUND",
    "MERCHANT_NOT_FOUND", "ORDER_REVOKED",
})


def message_of(code: str) -> str:
    return ERRORS.get(code, (200, code))[1]
