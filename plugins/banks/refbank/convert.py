"""Verified wire objects (trade, refund) → core results (``PayResult``, ``RefundResult``)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from gateway.channel import PayResult, RefundResult, RefundStatus, TradeStatus
from gateway.money import MoneyFormatError

from .client import protocol_error
from .wire import (
    FAIL_CODES,
    REFUND_FAIL_CODES,
    SUB_STATUS_TEXT,
    RefundRecord,
    Trade,
    fen,
    parse_time,
    refund_status,
    trade_status,
)

_PAID = (TradeStatus.SUCCEEDED, TradeStatus.REFUNDED)


def check_merchant(data: Mapping[str, Any], merchant_id: str) -> None:
    """An answer about another merchant is not an answer to us."""
    got = data.get("merchant_id")
    if got != merchant_id:
        raise protocol_error(f"answer is for merchant {got!r}, not {merchant_id!r}")


def trade_result(data: dict[str, Any], merchant_id: str, out_trade_no: str | None = None) -> PayResult:
    """A trade object (codepay, precreate, query, revoke, callback) as a ``PayResult``."""
    try:
        t = Trade.model_validate(data)
    except ValidationError as exc:
        raise protocol_error("unreadable trade", exc) from exc
    check_merchant(data, merchant_id)
    if out_trade_no is not None and t.out_trade_no != out_trade_no:
        raise protocol_error(f"answer is for order {t.out_trade_no!r}, not {out_trade_no!r}")
    status = trade_status(t.trade_status)
    paid = status in _PAID
    try:
        paid_at = parse_time(t.pay_time) if paid else None
        paid_amount = fen(t.amount) if paid else None
    except (ValueError, MoneyFormatError) as exc:
        raise protocol_error("unreadable trade time or amount", exc) from exc
    if paid and paid_at is None:
        raise protocol_error(f"paid trade {t.out_trade_no} without pay_time")
    code = message = None
    if status is TradeStatus.FAILED:
        code = t.fail_code or "FAIL"
        message = t.fail_reason or FAIL_CODES.get(code, "支付失败")
    elif status is TradeStatus.PAYING:
        code = t.sub_status or "PAYING"
        message = SUB_STATUS_TEXT.get(code, "交易处理中")
    return PayResult(
        status=status,
        channel_trade_no=t.bank_trade_no or None,
        paid_at=paid_at,
        payer_id=t.wallet_id if paid else None,
        paid_amount=paid_amount,
        error_code=code,
        error_message=message,
        raw=data,
    )


def refund_result(data: dict[str, Any], merchant_id: str, out_refund_no: str | None = None,
                  out_trade_no: str | None = None) -> RefundResult:
    """A refund object (apply, query, callback) as a ``RefundResult``."""
    try:
        r = RefundRecord.model_validate(data)
    except ValidationError as exc:
        raise protocol_error("unreadable refund", exc) from exc
    check_merchant(data, merchant_id)
    if out_refund_no is not None and r.out_refund_no != out_refund_no:
        raise protocol_error(f"answer is for refund {r.out_refund_no!r}, not {out_refund_no!r}")
    if out_trade_no is not None and r.out_trade_no != out_trade_no:
        raise protocol_error(f"refund {r.out_refund_no} belongs to order {r.out_trade_no!r}, not {out_trade_no!r}")
    status = refund_status(r.refund_status)
    try:
        refunded_at = parse_time(r.refund_time) if status is RefundStatus.SUCCEEDED else None
        fen(r.refund_amount)
    except (ValueError, MoneyFormatError) as exc:
        raise protocol_error("unreadable refund time or amount", exc) from exc
    failed = status is RefundStatus.FAILED
    code = (r.fail_code or "FAIL") if failed else None
    return RefundResult(
        status=status,
        channel_refund_no=r.bank_refund_no,
        refunded_at=refunded_at,
        error_code=code,
        error_message=(r.fail_reason or REFUND_FAIL_CODES.get(code or "", "退款失败")) if failed else None,
        raw=data,
    )
