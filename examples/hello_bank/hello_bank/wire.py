"""Hello Bank's wire protocol and its mapping to core types.

The simulator shares only the signing and the names (headers, states, bill columns);
the mapping to ``PayResult``, ``RefundResult`` and ``Bill`` is the adapter's.

JSON over HTTP, every message signed with HMAC-SHA256 under the merchant's API key.
The string to sign is a purpose word and the message's parts joined by newlines
(see ``sign``); the three purposes keep a request, an answer and a notify from ever
being mistaken for one another. Amounts travel as yuan strings ("10.00"); inside
yinyi they are integer fen, and ``gateway.money`` converts between the two.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import csv
import hmac
import io
import json
from typing import Any

from gateway.channel import Bill, BillLine, PayResult, RefundResult, RefundStatus, TradeStatus
from gateway.errors import UpstreamProtocolError
from gateway.money import yuan_to_fen

CHANNEL = "hello_bank"
CST = dt.timezone(dt.timedelta(hours=8), "CST")  # the bank's clock and bill dates
MERCHANT, TIMESTAMP, NONCE, SIGNATURE = "X-HB-Merchant", "X-HB-Timestamp", "X-HB-Nonce", "X-HB-Signature"
CLOCK_SKEW_SECONDS = 300  # requests and notifies older or newer than this are refused
BILL_HEADER = ["trade_time", "trade_no", "out_trade_no", "type", "amount", "fee", "refund_no", "out_refund_no",
               "method", "status"]
BILL_TIME = "%Y-%m-%d %H:%M:%S"

# The bank's order states and what they mean to yinyi. Anything else is PENDING:
# a state we cannot read must never be taken for "no money moved".
TRADE_STATES = {
    "WAITING": TradeStatus.PENDING,  # QR order created, nobody has paid yet
    "CONFIRMING": TradeStatus.PAYING,  # payment code scanned, the patient is confirming on the phone
    "SUCCESS": TradeStatus.SUCCEEDED,
    "FAILED": TradeStatus.FAILED,  # declined (fail_code says why)
    "CLOSED": TradeStatus.CLOSED,
    "REVERSED": TradeStatus.REVERSED,
    "REFUNDED": TradeStatus.REFUNDED,  # paid, then refunded in part or in full
}
REFUND_STATES = {"PROCESSING": RefundStatus.PROCESSING, "SUCCESS": RefundStatus.SUCCEEDED,
                 "FAILED": RefundStatus.FAILED}


def sign(key: str, purpose: str, *parts: str | bytes) -> str:
    """Hex HMAC-SHA256 of ``purpose \\n part1 \\n part2 …`` under ``key``."""
    message = purpose.encode() + b"".join(b"\n" + (p if isinstance(p, bytes) else p.encode()) for p in parts)
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def verify(key: str, signature: str | None, purpose: str, *parts: str | bytes) -> bool:
    return hmac.compare_digest(sign(key, purpose, *parts).encode(), (signature or "").encode())


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def format_time(value: dt.datetime) -> str:
    return value.astimezone(CST).isoformat(timespec="seconds")


def _time(value: Any) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def trade_result(trade: Any, raw: dict[str, Any] | None = None) -> PayResult:
    """A wire ``trade`` object as a core ``PayResult``."""
    try:
        status = TRADE_STATES.get(trade["state"], TradeStatus.PENDING)
        paid = status in (TradeStatus.SUCCEEDED, TradeStatus.REFUNDED)
        return PayResult(
            status=status, channel_trade_no=trade.get("trade_no") or None, code_url=trade.get("qr_url") or None,
            paid_at=_time(trade.get("paid_at")), payer_id=trade.get("payer") or None,
            paid_amount=yuan_to_fen(trade["amount"]) if paid else None,
            error_code=trade.get("fail_code") or ("FAILED" if status is TradeStatus.FAILED else None),
            error_message=trade.get("fail_reason"), raw=raw or trade,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # pydantic and money errors are ValueErrors
        raise UpstreamProtocolError(f"unreadable trade: {exc}", channel=CHANNEL) from exc


def refund_result(refund: Any, raw: dict[str, Any] | None = None) -> RefundResult:
    """A wire ``refund`` object as a core ``RefundResult`` (unknown states stay PROCESSING)."""
    try:
        return RefundResult(
            status=REFUND_STATES.get(refund["state"], RefundStatus.PROCESSING),
            channel_refund_no=refund.get("refund_no") or None, refunded_at=_time(refund.get("refunded_at")),
            error_code=refund.get("fail_code"), error_message=refund.get("fail_reason"), raw=raw or refund,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UpstreamProtocolError(f"unreadable refund: {exc}", channel=CHANNEL) from exc


def json_answer(op: str, raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise UpstreamProtocolError(f"{op}: the answer is not JSON", channel=CHANNEL) from exc
    if not isinstance(data, dict):
        raise UpstreamProtocolError(f"{op}: the answer is not a JSON object", channel=CHANNEL)
    return data


def parse_bill(raw: bytes, bill_date: dt.date, merchant_no: str) -> Bill:
    """Parse the CSV bill and check it against its own TOTAL line (raises ValueError)."""
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8"))))
    if len(rows) < 2 or rows[0] != BILL_HEADER or rows[-1][0] != "TOTAL" or len(rows[-1]) != 5:
        raise ValueError("header or TOTAL line missing")
    lines = []
    for row in rows[1:-1]:
        r = dict(zip(BILL_HEADER, row, strict=True))
        if r["type"] not in ("PAY", "REFUND", "REVERSE"):
            raise ValueError(f"unknown line type {r['type']!r}")
        lines.append(BillLine(
            trade_time=dt.datetime.strptime(r["trade_time"], BILL_TIME).replace(tzinfo=CST),
            channel_trade_no=r["trade_no"], out_trade_no=r["out_trade_no"],
            kind="payment" if r["type"] == "PAY" else "refund",  # REFUND and REVERSE give money back
            amount=yuan_to_fen(r["amount"]), fee=yuan_to_fen(r["fee"]),
            channel_refund_no=r["refund_no"] or None, out_refund_no=r["out_refund_no"] or None,
            status=r["status"], trade_type=r["method"], merchant_id=merchant_no, raw=r,
        ))
    count, paid, refunded, fee = int(rows[-1][1]), *(yuan_to_fen(v) for v in rows[-1][2:])
    if (count, paid, refunded, fee) != (len(lines), sum(x.amount for x in lines if x.kind == "payment"),
                                        -sum(x.amount for x in lines if x.kind == "refund"),
                                        sum(x.fee for x in lines)):
        raise ValueError("the lines do not add up to the TOTAL line")
    return Bill(bill_date=bill_date, lines=lines, total_count=count, total_paid=paid, total_refunded=refunded,
                total_fee=fee)
