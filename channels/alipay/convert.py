"""Verified wire answers → core results (``PayResult``, ``RefundResult``)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from gateway.channel import PayResult, RefundResult, RefundStatus, TradeStatus
from gateway.errors import UpstreamProtocolError
from gateway.money import MoneyFormatError, yuan_to_fen

from .client import CHANNEL
from .wire import RefundQueryAnswer, TradeAnswer, parse_time, trade_status


def protocol_error(what: str, exc: Exception | None = None) -> UpstreamProtocolError:
    return UpstreamProtocolError(f"{what}{f': {exc}' if exc else ''}", channel=CHANNEL)


def fen(text: str | None, what: str) -> int | None:
    if text is None or text == "":
        return None
    try:
        return yuan_to_fen(text)
    except MoneyFormatError as exc:
        raise protocol_error(f"{what} is not a yuan amount", exc) from exc


def time_of(text: str | None, what: str):  # noqa: ANN201 - datetime | None
    try:
        return parse_time(text)
    except ValueError as exc:
        raise protocol_error(f"{what} is not a time", exc) from exc


def trade_answer(data: Mapping[str, Any], out_trade_no: str | None = None) -> TradeAnswer:
    try:
        tx = TradeAnswer.model_validate(dict(data))
    except ValidationError as exc:
        raise protocol_error("unreadable trade answer", exc) from exc
    if out_trade_no is not None and tx.out_trade_no != out_trade_no:
        raise protocol_error(f"the answer is for order {tx.out_trade_no}, not {out_trade_no}")
    return tx


def trade_result(data: Mapping[str, Any], out_trade_no: str | None = None, *,
                 status: TradeStatus | None = None) -> PayResult:
    """A trade object (pay, query, notify) as a ``PayResult``.

    ``status`` overrides the mapping of ``trade_status`` (a 10000 pay answer has no
    ``trade_status``: it means paid).
    """
    tx = trade_answer(data, out_trade_no)
    paid_time = time_of(tx.paid_time, "gmt_payment/send_pay_date")
    mapped = status or trade_status(tx.trade_status, paid=paid_time is not None)
    money_moved = mapped in (TradeStatus.SUCCEEDED, TradeStatus.REVERSED)
    return PayResult(
        status=mapped,
        channel_trade_no=tx.trade_no or None,
        paid_at=paid_time if money_moved else None,
        payer_id=tx.payer if money_moved else None,
        paid_amount=fen(tx.total_amount, "total_amount") if money_moved else None,
        raw=dict(data),
    )


def refund_query_result(data: Mapping[str, Any], out_refund_no: str, out_trade_no: str) -> RefundResult:
    """``alipay.trade.fastpay.refund.query`` (a 10000 answer) as a ``RefundResult``.

    - ``refund_status`` REFUND_SUCCESS → SUCCEEDED;
    - the refund's data (``refund_amount``) without a status → accepted, still PROCESSING;
    - no refund data at all → there is no such refund: FAILED (``REFUND_NOT_EXIST``),
      nothing was returned to the patient and the refund may be tried again.
    """
    try:
        ans = RefundQueryAnswer.model_validate(dict(data))
    except ValidationError as exc:
        raise protocol_error("unreadable refund query answer", exc) from exc
    if ans.out_trade_no not in (None, out_trade_no):
        raise protocol_error(f"refund {out_refund_no} answer is for order {ans.out_trade_no}")
    if ans.out_request_no not in (None, "", out_refund_no):
        raise protocol_error(f"refund query answered for {ans.out_request_no}, not {out_refund_no}")
    if (ans.refund_status or "").upper() == "REFUND_SUCCESS":
        return RefundResult(status=RefundStatus.SUCCEEDED,
                            refunded_at=time_of(ans.gmt_refund_pay, "gmt_refund_pay"), raw=dict(data))
    if ans.refund_amount:
        fen(ans.refund_amount, "refund_amount")
        return RefundResult(status=RefundStatus.PROCESSING, raw=dict(data))
    return RefundResult(status=RefundStatus.FAILED, error_code="REFUND_NOT_EXIST",
                        error_message="退款不存在 / no such refund at Alipay", raw=dict(data))
