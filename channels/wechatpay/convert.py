"""Verified wire answers → core results (``PayResult``, ``RefundResult``)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from gateway.channel import PayResult, RefundResult, RefundStatus, TradeStatus
from gateway.errors import UpstreamProtocolError

from .client import CHANNEL
from .wire import Refund, Transaction, parse_time, refund_status, trade_status

_PAID = (TradeStatus.SUCCEEDED, TradeStatus.REFUNDED)
_REFUND_NOTES = {
    "ABNORMAL": "退款异常，需在商户平台手动处理 / refund abnormal, to be handled by hand",
    "CLOSED": "退款关闭 / refund closed",
}


def protocol_error(what: str, exc: Exception | None = None) -> UpstreamProtocolError:
    return UpstreamProtocolError(f"{what}{f': {exc}' if exc else ''}", channel=CHANNEL)


def check_merchant(data: Mapping[str, Any], mchid: str) -> None:
    """An answer about another merchant is not an answer to us."""
    got = data.get("sp_mchid") or data.get("mchid")
    if got and got != mchid:
        raise protocol_error(f"answer is for merchant {got}, not {mchid}")


def trade_result(data: dict[str, Any], mchid: str, out_trade_no: str | None = None) -> PayResult:
    """A transaction object (query, codepay, notify resource) as a ``PayResult``."""
    try:
        tx = Transaction.model_validate(data)
    except ValidationError as exc:
        raise protocol_error("unreadable transaction", exc) from exc
    check_merchant(data, mchid)
    if out_trade_no is not None and tx.out_trade_no != out_trade_no:
        raise protocol_error(f"answer is for order {tx.out_trade_no}, not {out_trade_no}")
    status = trade_status(tx.trade_state)
    paid = status in _PAID
    failed = status is TradeStatus.FAILED
    payer = tx.payer
    return PayResult(
        status=status,
        channel_trade_no=tx.transaction_id or None,
        paid_at=parse_time(tx.success_time) if paid else None,
        payer_id=(payer.openid or payer.sp_openid or payer.sub_openid) if payer else None,
        paid_amount=tx.amount.total if paid and tx.amount else None,
        error_code=tx.trade_state if failed else None,
        error_message=tx.trade_state_desc if failed else None,
        raw=data,
    )


def refund_state_result(state: str, refund_id: str, success_time: str | None,
                        raw: dict[str, Any]) -> RefundResult:
    status = refund_status(state)
    note = _REFUND_NOTES.get(state.upper())
    return RefundResult(
        status=status,
        channel_refund_no=refund_id,
        refunded_at=parse_time(success_time) if status is RefundStatus.SUCCEEDED else None,
        error_code=state.upper() if note else None,
        error_message=note,
        raw=raw,
    )


def refund_result(data: dict[str, Any]) -> RefundResult:
    """A refund object (create, query) as a ``RefundResult``."""
    try:
        r = Refund.model_validate(data)
    except ValidationError as exc:
        raise protocol_error("unreadable refund", exc) from exc
    return refund_state_result(r.status, r.refund_id, r.success_time, data)
