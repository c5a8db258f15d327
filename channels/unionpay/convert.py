"""Verified ACP answers and notifies → core results (``PayResult``, ``RefundResult``, events).

A *query* answer has two levels: ``respCode`` tells whether the query itself worked
(``00``; ``34`` = no such transaction) and ``origRespCode``/``origRespMsg`` tell the
state of the transaction asked about. A *notify* carries the transaction's own result
in ``respCode``. In both, ``00`` is success, ``03``/``04``/``05`` mean still processing
or unknown, and any other code is a failure.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from gateway.channel import (
    NotifyEvent,
    NotifyKind,
    PayResult,
    RefundResult,
    RefundStatus,
    TradeStatus,
)
from gateway.errors import UpstreamProtocolError, UpstreamUnavailable

from .client import CHANNEL
from .wire import (
    BUSY,
    IN_DOUBT,
    NOT_FOUND,
    OK,
    TXN_CONSUME,
    TXN_QUERY,
    TXN_REFUND,
    TXN_UNDO,
    UNDO_SUFFIX,
    infer_year,
    parse_amount,
    parse_txn_time,
    resp_message,
)


def plain(ans: Mapping[str, str]) -> dict[str, str]:
    """An answer without its signature and certificate (what results keep as ``raw``)."""
    return {k: v for k, v in ans.items() if k not in ("signature", "signPubKeyCert")}


def protocol_error(what: str, exc: Exception | None = None) -> UpstreamProtocolError:
    return UpstreamProtocolError(f"{what}{f': {exc}' if exc else ''}", channel=CHANNEL)


def completed_at(ans: Mapping[str, str]) -> dt.datetime | None:
    """When the transaction went through: ``traceTime`` (MMDDhhmmss, year from ``txnTime``)."""
    try:
        order_time = parse_txn_time(ans.get("txnTime", ""))
    except ValueError:
        order_time = None
    trace = ans.get("traceTime", "")
    if order_time is not None and trace:
        try:
            return infer_year(trace, order_time.date())
        except ValueError:
            pass
    return order_time


def query_status(ans: Mapping[str, str], order_id: str, expect_types: tuple[str, ...]) -> str | None:
    """The transaction's status code from a query answer, or None when there is no such transaction.

    Raises ``UpstreamUnavailable`` when the query itself could not be served and
    ``UpstreamProtocolError`` for an answer that is not about what was asked.
    """
    code = ans.get("respCode", "")
    if code == NOT_FOUND:
        return None
    if code in IN_DOUBT or code in BUSY:
        raise UpstreamUnavailable(f"query {order_id}: respCode {code} {ans.get('respMsg', '')}".strip(),
                                  channel=CHANNEL, upstream_code=code)
    if code != OK:
        raise protocol_error(f"query {order_id}: refused with respCode {code} {ans.get('respMsg', '')}".strip())
    if ans.get("orderId") not in (None, order_id):
        raise protocol_error(f"query answer is for order {ans.get('orderId')}, not {order_id}")
    if ans.get("txnType") not in (None, TXN_QUERY, *expect_types):
        raise protocol_error(f"order {order_id} is a txnType {ans.get('txnType')} transaction")
    orig = ans.get("origRespCode", "")
    if not orig:
        raise protocol_error(f"query {order_id}: answer has no origRespCode")
    return orig


def trade_result(code: str, message: str | None, ans: Mapping[str, str]) -> PayResult:
    """A consume whose status code is ``code`` (origRespCode of a query, respCode of a notify)."""
    raw = plain(ans)
    if code == OK:
        return PayResult(status=TradeStatus.SUCCEEDED, channel_trade_no=ans.get("queryId") or None,
                         paid_at=completed_at(ans), paid_amount=parse_amount(ans.get("txnAmt")),
                         payer_id=ans.get("accNo") or None, raw=raw)
    if code in IN_DOUBT:
        return PayResult(status=TradeStatus.PAYING, channel_trade_no=ans.get("queryId") or None,
                         error_code=code, error_message=message or resp_message(code), raw=raw)
    return PayResult(status=TradeStatus.FAILED, channel_trade_no=ans.get("queryId") or None,
                     error_code=code, error_message=message or resp_message(code), raw=raw)


def refund_result(code: str, message: str | None, ans: Mapping[str, str]) -> RefundResult:
    raw = plain(ans)
    if code == OK:
        return RefundResult(status=RefundStatus.SUCCEEDED, channel_refund_no=ans.get("queryId") or None,
                            refunded_at=completed_at(ans), raw=raw)
    if code in IN_DOUBT:
        return RefundResult(status=RefundStatus.PROCESSING, channel_refund_no=ans.get("queryId") or None,
                            raw=raw)
    return RefundResult(status=RefundStatus.FAILED, channel_refund_no=ans.get("queryId") or None,
                        error_code=code, error_message=message or resp_message(code), raw=raw)


def original_order(ans: Mapping[str, str]) -> str:
    """The consume an undo or refund belongs to: ``reqReserved`` (echoed back), else the undo id."""
    reserved = ans.get("reqReserved", "")
    if reserved:
        return reserved
    order_id = ans.get("orderId", "")
    if ans.get("txnType") == TXN_UNDO and order_id.endswith(UNDO_SUFFIX):
        return order_id[: -len(UNDO_SUFFIX)]
    return ""


def notify_event(ans: Mapping[str, str]) -> NotifyEvent:
    """A verified back-end notify as a core event; ``ValueError`` for what it cannot be."""
    txn_type, order_id, code = ans.get("txnType", ""), ans.get("orderId", ""), ans.get("respCode", "")
    if not order_id or not code:
        raise ValueError("notify lacks orderId or respCode")
    event_id = f"{ans.get('queryId', '')}:{code}" if ans.get("queryId") else None
    if txn_type == TXN_CONSUME:
        return NotifyEvent(kind=NotifyKind.PAYMENT, out_trade_no=order_id, event_id=event_id,
                           trade=trade_result(code, ans.get("respMsg"), ans))
    if txn_type == TXN_REFUND:
        return NotifyEvent(kind=NotifyKind.REFUND, out_trade_no=original_order(ans), out_refund_no=order_id,
                           event_id=event_id, refund=refund_result(code, ans.get("respMsg"), ans))
    if txn_type == TXN_UNDO:
        original = original_order(ans)
        if not original:
            raise ValueError("undo notify names no original order")
        trade = None
        if code == OK:  # the consume is revoked; a failed undo says nothing new about it
            trade = PayResult(status=TradeStatus.REVERSED, channel_trade_no=ans.get("origQryId") or None,
                              raw=plain(ans))
        return NotifyEvent(kind=NotifyKind.PAYMENT, out_trade_no=original, event_id=event_id, trade=trade)
    raise ValueError(f"unsupported notify txnType {txn_type!r}")
