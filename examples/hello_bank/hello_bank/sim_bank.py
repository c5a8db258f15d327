"""Hello Bank's books: merchants, orders, refunds and the bill, as the simulator keeps them.

The last four digits of a payment code script the patient: ``1001`` insufficient
funds, ``1002`` code expired (both declined), ``2001`` confirms on the phone and pays
after ``CONFIRM_SECONDS``, ``2002`` keeps confirming until told (``/_sim``) or reversed;
anything else pays at once. Refunds settle after ``REFUND_SECONDS``. Each operation
takes a merchant and the request's JSON object and returns the answer; HTTP,
signatures, faults and notify delivery are ``simulator.py``'s business.
"""
from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.money import MoneyFormatError, fen_to_yuan, yuan_to_fen

from .wire import BILL_HEADER, BILL_TIME, CST, dumps, format_time

CONFIRM_SECONDS, REFUND_SECONDS = 2.0, 0.3
DECLINES = {"1001": ("INSUFFICIENT_FUNDS", "余额不足 / insufficient funds"),
            "1002": ("CODE_EXPIRED", "付款码已过期 / payment code expired")}


def now() -> dt.datetime:
    return dt.datetime.now(CST).replace(microsecond=0)


def fee_of(fen: int) -> int:
    """The bank's fee on a bill line: 0.6 %, rounded half up, with the line's sign."""
    return (abs(fen) * 6 + 500) // 1000 * (1 if fen >= 0 else -1)


def fen_of(value: Any) -> int:
    """A wire amount (a yuan string) in fen; 0 if it is not one."""
    try:
        return yuan_to_fen(value) if isinstance(value, str) else 0
    except MoneyFormatError:
        return 0


@dataclass
class Refund:
    out_refund_no: str
    out_trade_no: str
    amount: int
    refund_no: str = field(default_factory=lambda: "HBR" + secrets.token_hex(8).upper())
    state: str = "PROCESSING"
    refunded_at: dt.datetime | None = None
    notify_url: str | None = None

    def wire(self) -> dict[str, Any]:
        return {"out_refund_no": self.out_refund_no, "out_trade_no": self.out_trade_no, "refund_no": self.refund_no,
                "amount": fen_to_yuan(self.amount), "state": self.state,
                "refunded_at": format_time(self.refunded_at) if self.refunded_at else None}


@dataclass
class Order:
    out_trade_no: str
    amount: int = 0
    method: str = ""
    auth_code: str | None = None
    state: str = "WAITING"
    trade_no: str = field(default_factory=lambda: "HB" + secrets.token_hex(8).upper())
    notify_url: str | None = None
    qr_url: str | None = None
    expire_at: dt.datetime | None = None
    paid_at: dt.datetime | None = None
    reversed_at: dt.datetime | None = None
    fail: tuple[str, str] | None = None
    refunds: list[Refund] = field(default_factory=list)

    @property
    def refundable(self) -> int:
        return self.amount - sum(r.amount for r in self.refunds if r.state != "FAILED")

    def wire(self) -> dict[str, Any]:
        if self.state == "WAITING" and self.expire_at and now() >= self.expire_at:
            self.state = "CLOSED"  # an unpaid QR order lapses
        return {"out_trade_no": self.out_trade_no, "trade_no": self.trade_no, "state": self.state,
                "amount": fen_to_yuan(self.amount), "method": self.method, "qr_url": self.qr_url,
                "paid_at": format_time(self.paid_at) if self.paid_at else None,
                "payer": f"hb-{self.auth_code[-6:]}" if self.paid_at and self.auth_code else None,
                "fail_code": self.fail[0] if self.fail else None, "fail_reason": self.fail[1] if self.fail else None}


@dataclass
class Merchant:
    merchant_no: str
    api_key: str
    orders: dict[str, Order] = field(default_factory=dict)
    refunds: dict[str, Refund] = field(default_factory=dict)
    nonces: set[str] = field(default_factory=set)


class HelloBank:
    def __init__(self, merchants: list[Merchant]) -> None:
        self.merchants = {m.merchant_no: m for m in merchants}
        self.base_url = ""
        self.tasks: set[asyncio.Task[Any]] = set()
        # how a signed notify reaches the merchant: set by the HTTP side (simulator.py)
        self.deliver: Callable[[Merchant, str, bytes], Awaitable[None]] | None = None
        self.ops: dict[str, Callable[[Merchant, dict[str, Any]], Any]] = {
            "/api/pay": self.pay, "/api/query": self.query, "/api/close": self.close, "/api/reverse": self.reverse,
            "/api/refund": self.refund, "/api/refund/query": self.query_refund, "/api/bill": self.bill}

    # --- timers and notifies -------------------------------------------------------------
    def later(self, delay: float, fn: Callable[[], Awaitable[None] | None]) -> None:
        """Run ``fn`` (a function or a coroutine function) after ``delay`` seconds."""
        async def run() -> None:
            await asyncio.sleep(delay)
            if (result := fn()) is not None:
                await result
        task = asyncio.create_task(run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def notify(self, m: Merchant, url: str | None, payload: dict[str, Any]) -> None:
        if url:
            body = dumps({"notify_id": secrets.token_hex(8), "merchant_no": m.merchant_no, **payload})
            self.later(0, lambda: self.deliver(m, url, body))

    async def stop(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    # --- the bank's operations: each answers a JSON object (or, for the bill, CSV) ------------------
    def pay(self, m: Merchant, b: dict[str, Any]) -> dict[str, Any]:
        out, method, code = b.get("out_trade_no"), b.get("method"), b.get("auth_code")
        amount = fen_of(b.get("amount"))
        if not isinstance(out, str) or not out or amount <= 0 or method not in ("code", "qr") or (
                method == "code" and not (isinstance(code, str) and code.isdigit() and len(code) == 18)):
            return {"code": "INVALID_REQUEST", "message": "out_trade_no, amount, method or auth_code is invalid"}
        if (old := m.orders.get(out)) is not None:  # a retry gets the same order; a reversed number stays dead
            if (old.amount, old.method, old.auth_code) == (amount, method, code) or not old.method:
                return {"code": "OK", "trade": old.wire()}
            return {"code": "DUPLICATE_ORDER", "message": "out_trade_no is used by another order"}
        order = m.orders[out] = Order(out, amount, method, code, notify_url=b.get("notify_url"))
        if method == "qr":
            order.qr_url = f"{self.base_url}/qr/{order.trade_no}"
            order.expire_at = dt.datetime.fromisoformat(b["expire_at"]) if b.get("expire_at") else \
                now() + dt.timedelta(minutes=30)
        elif code[-4:] in DECLINES:
            order.state, order.fail = "FAILED", DECLINES[code[-4:]]
        elif code[-4:] in ("2001", "2002"):
            order.state = "CONFIRMING"
            if code.endswith("2001"):
                self.later(CONFIRM_SECONDS, lambda: self.settle(m, order))
        else:
            self.settle(m, order)
        return {"code": "OK", "trade": order.wire()}

    def settle(self, m: Merchant, order: Order) -> bool:
        """The patient pays (a QR order, or a payment code being confirmed)."""
        if order.wire()["state"] not in ("WAITING", "CONFIRMING"):
            return False
        order.state, order.paid_at = "SUCCESS", now()
        self.notify(m, order.notify_url, {"event": "TRADE_SUCCESS", "trade": order.wire()})
        return True

    def query(self, m: Merchant, b: dict[str, Any]) -> dict[str, Any]:
        order = m.orders.get(b.get("out_trade_no") or "")
        return {"code": "OK", "trade": order.wire()} if order else {"code": "ORDER_NOT_FOUND"}

    def close(self, m: Merchant, b: dict[str, Any]) -> dict[str, Any]:
        if (order := m.orders.get(b.get("out_trade_no") or "")) is None:
            return {"code": "ORDER_NOT_FOUND"}
        state = order.wire()["state"]
        if state in ("SUCCESS", "REFUNDED"):
            return {"code": "ORDER_PAID", "message": "paid orders are refunded, not closed"}
        if state in ("WAITING", "CONFIRMING"):
            order.state = "CLOSED"
        return {"code": "OK", "trade": order.wire()}

    def reverse(self, m: Merchant, b: dict[str, Any]) -> dict[str, Any]:
        out = b.get("out_trade_no") or ""
        if (order := m.orders.get(out)) is None:  # never seen: remember it, so a late pay is refused
            order = m.orders[out] = Order(out, state="REVERSED")
        elif order.refunds:
            return {"code": "ORDER_REFUNDED", "message": "refunded orders cannot be reversed"}
        elif order.wire()["state"] in ("WAITING", "CONFIRMING", "SUCCESS"):
            order.reversed_at = now() if order.state == "SUCCESS" else None
            order.state = "REVERSED"
        return {"code": "OK", "trade": order.wire()}

    def refund(self, m: Merchant, b: dict[str, Any]) -> dict[str, Any]:
        out, no = b.get("out_trade_no") or "", b.get("out_refund_no") or ""
        amount = fen_of(b.get("amount"))
        if not no or amount <= 0:
            return {"code": "INVALID_REQUEST", "message": "out_refund_no or amount is invalid"}
        if (old := m.refunds.get(no)) is not None:  # a retry gets the same refund
            if (old.out_trade_no, old.amount) == (out, amount):
                return {"code": "OK", "refund": old.wire()}
            return {"code": "DUPLICATE_REFUND", "message": "out_refund_no is used by another refund"}
        if (order := m.orders.get(out)) is None or not order.method:
            return {"code": "ORDER_NOT_FOUND"}
        if order.state not in ("SUCCESS", "REFUNDED"):
            return {"code": "ORDER_NOT_PAID", "message": f"the order is {order.state}"}
        if amount > order.refundable:
            return {"code": "REFUND_EXCEEDS_PAID", "message": f"only {fen_to_yuan(order.refundable)} left"}
        refund = m.refunds[no] = Refund(no, out, amount, notify_url=b.get("notify_url"))
        order.refunds.append(refund)

        def done() -> None:
            refund.state, refund.refunded_at, order.state = "SUCCESS", now(), "REFUNDED"
            self.notify(m, refund.notify_url, {"event": "REFUND_SUCCESS", "refund": refund.wire()})
        self.later(REFUND_SECONDS, done)
        return {"code": "OK", "refund": refund.wire()}

    def query_refund(self, m: Merchant, b: dict[str, Any]) -> dict[str, Any]:
        refund = m.refunds.get(b.get("out_refund_no") or "")
        if refund is None or refund.out_trade_no != b.get("out_trade_no"):
            return {"code": "REFUND_NOT_FOUND"}
        return {"code": "OK", "refund": refund.wire()}

    def bill(self, m: Merchant, b: dict[str, Any]) -> dict[str, Any] | bytes:
        try:
            day = dt.date.fromisoformat(b.get("bill_date") or "")
        except ValueError:
            return {"code": "INVALID_REQUEST", "message": "bill_date must be YYYY-MM-DD"}
        if day > now().date():
            return {"code": "BILL_NOT_READY"}
        rows = []  # (time, type, order, fen, refund); today's bill holds what has happened so far
        for o in m.orders.values():
            rows += [(o.paid_at, "PAY", o, o.amount, None)] if o.paid_at else []
            rows += [(o.reversed_at, "REVERSE", o, -o.amount, None)] if o.reversed_at else []
            rows += [(r.refunded_at, "REFUND", o, -r.amount, r) for r in o.refunds if r.refunded_at]
        rows = sorted((r for r in rows if r[0].date() == day), key=lambda r: r[0])
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(BILL_HEADER)
        for when, kind, o, fen, r in rows:
            writer.writerow([when.strftime(BILL_TIME), o.trade_no, o.out_trade_no, kind, fen_to_yuan(fen),
                             fen_to_yuan(fee_of(fen)), r.refund_no if r else "",
                             r.out_refund_no if r else "", o.method, "SUCCESS"])
        paid, back = sum(r[3] for r in rows if r[3] > 0), -sum(r[3] for r in rows if r[3] < 0)
        fees = sum(fee_of(r[3]) for r in rows)
        writer.writerow(["TOTAL", len(rows), fen_to_yuan(paid), fen_to_yuan(back), fen_to_yuan(fees)])
        return out.getvalue().encode()
