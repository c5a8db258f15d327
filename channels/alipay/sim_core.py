"""The Alipay simulator's in-memory truth: trades, refunds, state machine, bills.

Nothing here speaks HTTP: ``sim_gateway`` translates ``/gateway.do`` calls to these
methods and ``sim_control`` exposes them to the patient and the tester.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .sim_model import (
    AUTH_CODE_RE,
    MAGIC,
    OUTCOMES,
    Script,
    SimError,
    SimMerchant,
    SimOrder,
    SimRefund,
    amount_of,
    buyer_for,
    invalid,
    new_qr_code,
    new_trade_no,
)
from .sim_notify import Notifier, notify_params
from .sim_refunds import RefundsAndBills
from .wire import CST, format_time, parse_time

PASSWORD_LIMIT = 100_000  # fen: above 1000 yuan the patient confirms on the phone (10003)
OUT_TRADE_NO_RE = re.compile(r"[0-9A-Za-z_\-]{1,64}")
SCENES = ("bar_code", "wave_code", "security_code")
Key = tuple[str, str, str]


@dataclass(frozen=True)
class Ctx:
    """Who is calling: the application, and the seller it acts for."""

    merchant: SimMerchant
    seller_id: str
    auth_app_id: str
    notify_url: str = ""

    def key(self, out_trade_no: str) -> Key:
        return (self.merchant.app_id, self.seller_id, out_trade_no)


class AlipaySimulator(RefundsAndBills):
    def __init__(self, merchants: list[SimMerchant]) -> None:
        self.merchants = {m.app_id: m for m in merchants}
        self.base_url = ""
        self.orders: dict[Key, SimOrder] = {}
        self.blocked: set[Key] = set()  # numbers cancelled before they became trades
        self.refunds: dict[tuple[str, str, str, str], SimRefund] = {}
        self.scripts: list[Script] = []
        self.notifier = Notifier()
        self.clock_offset = dt.timedelta(0)
        # tunables (control surface: /_sim/settings)
        self.refund_settle_seconds = 0.0
        self.next_refund_errors: list[str] = []
        self.userpaying_timeout_seconds = 60.0
        self.fee_rate_bp = 60  # 0.60 %
        self.bill_url_ttl_seconds = 30.0
        self.order_timeout_minutes = 120  # QR/JSAPI/H5 lifetime without time_expire

    # --- basics -----------------------------------------------------------------------
    def now(self) -> dt.datetime:
        return dt.datetime.now(CST).replace(microsecond=0) + self.clock_offset

    @property
    def default_merchant(self) -> SimMerchant:
        return next(iter(self.merchants.values()))

    def resolve(self, app_id: str, app_auth_token: str | None) -> Ctx:
        m = self.merchants.get(app_id)
        if m is None:
            raise SimError("isv.invalid-app-id", code="40002", gateway=True)
        if app_auth_token:
            if app_auth_token != m.sub.app_auth_token:
                raise SimError("aop.invalid-app-auth-token", code="20001", gateway=True)
            return Ctx(m, m.sub.pid, m.sub.auth_app_id)
        return Ctx(m, m.pid, m.app_id)

    def reset(self) -> None:
        self.notifier.deliveries.clear()
        self.orders.clear()
        self.blocked.clear()
        self.refunds.clear()
        self.scripts.clear()
        self.next_refund_errors.clear()
        self.clock_offset = dt.timedelta(0)

    def _later(self, delay: float, fn: Any, *args: Any) -> None:
        try:
            asyncio.get_running_loop().call_later(max(delay, 0.0), fn, *args)
        except RuntimeError:
            pass  # no loop: settled lazily on the next read

    def fee(self, amount: int) -> int:
        return (amount * self.fee_rate_bp + 5000) // 10000

    def notify(self, order: SimOrder, **refund: Any) -> None:
        if order.notify_url:
            params = notify_params(self.merchants[order.app_id], order, now=self.now(), **refund)
            self.notifier.send(self.merchants[order.app_id], order.notify_url, params)

    # --- lookups ----------------------------------------------------------------------
    def find(self, ctx: Ctx, biz: dict[str, Any]) -> SimOrder:
        """The trade named by ``out_trade_no`` or ``trade_no`` (only real trades)."""
        no, trade_no = biz.get("out_trade_no"), biz.get("trade_no")
        if not no and not trade_no:
            raise invalid("out_trade_no 和 trade_no 不能同时为空")
        for key in ([ctx.key(str(no))] if no else [k for k in self.orders if k[:2] == ctx.key("")[:2]]):
            order = self.orders.get(key)
            if order is not None and (not trade_no or order.trade_no == trade_no):
                self.settle(order)
                if order.visible and key in self.orders:
                    return order
        raise SimError("ACQ.TRADE_NOT_EXIST")

    def lookup(self, out_trade_no: str, app_id: str | None = None) -> SimOrder:
        """Find an order by number alone (control surface), QRs not yet scanned included."""
        for order in list(self.orders.values()):
            if order.out_trade_no == out_trade_no and app_id in (None, order.app_id):
                return self.settle(order)
        raise SimError("ACQ.TRADE_NOT_EXIST")

    # --- orders -----------------------------------------------------------------------
    def _new_order(self, ctx: Ctx, biz: dict[str, Any], product: str) -> SimOrder:
        no = biz.get("out_trade_no")
        if not isinstance(no, str) or not OUT_TRADE_NO_RE.fullmatch(no):
            raise invalid("out_trade_no 只能由字母、数字、下划线组成，且不超过64位")
        subject = biz.get("subject")
        if not isinstance(subject, str) or not subject.strip():
            raise invalid("subject 不能为空")
        if biz.get("seller_id") not in (None, "", ctx.seller_id):
            raise invalid("seller_id 与签约商户不一致")
        expire = biz.get("time_expire")
        try:
            time_expire = parse_time(expire) if expire else None
        except ValueError:
            raise invalid("time_expire 格式错误") from None
        now = self.now()
        if time_expire is None:
            time_expire = now + dt.timedelta(minutes=self.order_timeout_minutes)
        return SimOrder(
            app_id=ctx.merchant.app_id, seller_id=ctx.seller_id, auth_app_id=ctx.auth_app_id, out_trade_no=no,
            product=product, total=amount_of(biz.get("total_amount"), "total_amount"), subject=subject[:256],
            created_at=now, body=str(biz.get("body") or ""), notify_url=ctx.notify_url,
            store_id=str(biz.get("store_id") or ""), terminal_id=str(biz.get("terminal_id") or ""),
            time_expire=time_expire, trade_no=new_trade_no(now))

    def _reuse(self, ctx: Ctx, order: SimOrder) -> SimOrder | None:
        """An order number used before: the old order if this is a retry of it, else refuse."""
        key = ctx.key(order.out_trade_no)
        if key in self.blocked:
            raise SimError("ACQ.TRADE_HAS_CLOSE")
        old = self.orders.get(key)
        if old is None:
            return None
        self.settle(old)
        if key not in self.orders:
            raise SimError("ACQ.TRADE_HAS_CLOSE")
        if old.state in ("TRADE_SUCCESS", "TRADE_FINISHED"):
            raise SimError("ACQ.TRADE_HAS_SUCCESS")
        if old.state == "TRADE_CLOSED":
            raise SimError("ACQ.TRADE_HAS_CLOSE")
        if (old.product, old.total, old.subject) != (order.product, order.total, order.subject):
            raise SimError("ACQ.CONTEXT_INCONSISTENT")
        return old

    def pick_script(self, auth_code: str, total: int) -> Script:
        for i, s in enumerate(self.scripts):
            if s.auth_code in (None, auth_code):
                s.times -= 1
                if s.times <= 0:
                    del self.scripts[i]
                return s
        magic = MAGIC.get(auth_code[-4:])
        if magic is not None:
            return magic
        if total > PASSWORD_LIMIT:
            return Script("INPROCESS", then="success", after_seconds=5)
        return Script("SUCCESS")

    def pay(self, ctx: Ctx, biz: dict[str, Any]) -> tuple[str, SimOrder]:
        """``alipay.trade.pay``: (``10000`` | ``10003``, the trade), or raises the decline."""
        if biz.get("scene") not in SCENES:
            raise invalid("scene 取值为 bar_code 或 wave_code")
        order = self._new_order(ctx, biz, "FACE_TO_FACE_PAYMENT")
        old = self._reuse(ctx, order)
        if old is not None:
            if old.paying:
                return "10003", old
            raise SimError("ACQ.CONTEXT_INCONSISTENT")
        auth_code = str(biz.get("auth_code") or "")
        if not re.fullmatch(AUTH_CODE_RE, auth_code):
            raise SimError("ACQ.PAYMENT_AUTH_CODE_INVALID")
        order.auth_code = auth_code
        order.buyer_user_id, order.buyer_logon_id = buyer_for(auth_code)
        key = ctx.key(order.out_trade_no)
        script = self.pick_script(auth_code, order.total)
        if script.outcome == "SUCCESS":
            self.orders[key] = order
            self._pay(order)
            return "10000", order
        if script.outcome == "INPROCESS":
            order.paying, order.cancel_retry = True, script.cancel_retry
            self.orders[key] = order
            if script.then == "hang":
                self._pend(order, "TRADE_CLOSED", self.userpaying_timeout_seconds)
            else:
                self._pend(order, "TRADE_SUCCESS" if script.then == "success" else "TRADE_CLOSED",
                           script.after_seconds)
            return "10003", order
        if script.outcome in ("ACQ.SYSTEM_ERROR", "20000"):
            if script.charged:
                self.orders[key] = order
                self._pay(order)
            if script.outcome == "20000":
                raise SimError("isp.unknow-error", code="20000")
            raise SimError("ACQ.SYSTEM_ERROR")
        raise SimError(script.outcome)  # a decline: no trade is left behind

    def precreate(self, ctx: Ctx, biz: dict[str, Any]) -> SimOrder:
        """``alipay.trade.precreate``: a QR that becomes a trade when the patient scans it."""
        order = self._new_order(ctx, biz, "FACE_TO_FACE_PAYMENT")
        old = self._reuse(ctx, order)
        if old is not None:
            if not old.qr_code:
                raise SimError("ACQ.CONTEXT_INCONSISTENT")
            return old
        order.state, order.qr_code = "PRECREATED", new_qr_code()
        self.orders[ctx.key(order.out_trade_no)] = order
        return order

    def create(self, ctx: Ctx, biz: dict[str, Any], product: str = "JSAPI_PAY") -> SimOrder:
        """``alipay.trade.create`` (mini-program JSAPI) and an opened ``alipay.trade.wap.pay``."""
        order = self._new_order(ctx, biz, product)
        if product == "JSAPI_PAY":
            order.buyer_user_id = str(biz.get("buyer_id") or "")
            order.buyer_open_id = str(biz.get("buyer_open_id") or "")
            if not (order.buyer_user_id or order.buyer_open_id):
                raise invalid("buyer_id 和 buyer_open_id 不能同时为空")
        old = self._reuse(ctx, order)
        if old is not None:
            return old
        self.orders[ctx.key(order.out_trade_no)] = order
        return order

    def _pend(self, order: SimOrder, to: str, after: float) -> None:
        order.pending_to, order.pending_at = to, time.monotonic() + after
        self._later(after + 0.01, self.settle, order)

    def settle(self, order: SimOrder) -> SimOrder:
        """Apply a due resolution of a payment in process, and order expiry (lazily and by timer)."""
        if order.paying and order.pending_to and time.monotonic() >= order.pending_at:
            to, order.pending_to = order.pending_to, ""
            if to == "TRADE_SUCCESS":
                self._pay(order)
            else:
                self._close_unpaid(order)
        expired = order.time_expire is not None and self.now() > order.time_expire
        if expired and not order.paying and order.state in ("PRECREATED", "WAIT_BUYER_PAY"):
            if order.state == "PRECREATED":  # never scanned: it never becomes a trade
                key = (order.app_id, order.seller_id, order.out_trade_no)
                self.orders.pop(key, None)
                self.blocked.add(key)
            else:
                self._close_unpaid(order)
        return order

    def _pay(self, order: SimOrder, buyer_id: str | None = None) -> None:
        order.state, order.paying, order.pending_to = "TRADE_SUCCESS", False, ""
        order.paid_at = self.now()
        if buyer_id:
            order.buyer_user_id, order.buyer_logon_id = buyer_id, buyer_for(buyer_id)[1]
        elif not order.buyer_user_id:
            order.buyer_user_id, order.buyer_logon_id = buyer_for(order.out_trade_no)
        if not order.buyer_logon_id:
            order.buyer_logon_id = buyer_for(order.buyer_user_id)[1]
        self.notify(order)

    def _close_unpaid(self, order: SimOrder) -> None:
        order.state, order.paying, order.pending_to = "TRADE_CLOSED", False, ""
        order.closed_at = self.now()
        self.notify(order)

    def scan(self, order: SimOrder) -> SimOrder:
        """The patient scans a precreated QR: it becomes a trade waiting for payment."""
        self.settle(order)
        if order.state == "PRECREATED":
            order.state = "WAIT_BUYER_PAY"
        elif order.state != "WAIT_BUYER_PAY":
            raise SimError("ACQ.TRADE_STATUS_ERROR", f"交易状态为 {order.state}，不能扫码")
        return order

    def confirm(self, order: SimOrder, buyer_id: str | None = None) -> SimOrder:
        """The patient pays (QR/JSAPI/H5) or confirms on the phone (10003)."""
        self.settle(order)
        key = (order.app_id, order.seller_id, order.out_trade_no)
        if key not in self.orders:
            raise SimError("ACQ.TRADE_HAS_CLOSE", "订单已过期或已撤销")
        if order.state == "PRECREATED":
            self.scan(order)
        if order.state != "WAIT_BUYER_PAY":
            raise SimError("ACQ.TRADE_STATUS_ERROR", f"交易状态为 {order.state}，不能支付")
        self._pay(order, buyer_id)
        return order

    def fail(self, order: SimOrder) -> SimOrder:
        """The patient gives up (cancels the prompt): the unpaid trade closes."""
        self.settle(order)
        if order.state != "WAIT_BUYER_PAY":
            raise SimError("ACQ.TRADE_STATUS_ERROR", f"交易状态为 {order.state}")
        self._close_unpaid(order)
        return order

    def close(self, ctx: Ctx, biz: dict[str, Any]) -> SimOrder:
        order = self.find(ctx, biz)
        if order.state != "WAIT_BUYER_PAY":
            raise SimError("ACQ.TRADE_STATUS_ERROR")
        self._close_unpaid(order)
        return order

    def cancel(self, ctx: Ctx, biz: dict[str, Any]) -> dict[str, Any]:
        """``alipay.trade.cancel``: close an unpaid trade, refund a paid one, block an unknown number."""
        no = biz.get("out_trade_no")
        try:
            order = self.find(ctx, biz)
        except SimError:
            if not no:
                raise
            self.orders.pop(ctx.key(str(no)), None)  # a QR not scanned yet dies with it
            self.blocked.add(ctx.key(str(no)))
            return {"out_trade_no": no, "retry_flag": "N"}
        ids = {"trade_no": order.trade_no, "out_trade_no": order.out_trade_no}
        if order.paying and order.cancel_retry:
            raise SimError("ACQ.SYSTEM_ERROR", extra={**ids, "retry_flag": "Y"})
        out: dict[str, Any] = {**ids, "retry_flag": "N"}
        if order.state == "WAIT_BUYER_PAY":
            order.cancel_action = "close"
            self._close_unpaid(order)
        elif order.state == "TRADE_SUCCESS":
            if order.refunded:
                raise SimError("ACQ.TRADE_STATUS_ERROR", "交易已发生退款，不能撤销", extra=out)
            now = self.now()
            order.state, order.closed_at, order.cancel_refund_at = "TRADE_CLOSED", now, now
            order.refunded, order.cancel_action = order.total, "refund"
            self.notify(order, refund_fee=order.total, gmt_refund=now)
        elif order.state != "TRADE_CLOSED":
            raise SimError("ACQ.TRADE_STATUS_ERROR", extra=out)
        out["action"] = order.cancel_action or "close"
        if order.cancel_refund_at:
            out["gmt_refund_pay"] = format_time(order.cancel_refund_at)
        return out

    def add_script(self, spec: dict[str, Any]) -> Script:
        outcome = str(spec.get("outcome", "SUCCESS")).upper()
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}")
        then = str(spec.get("then", "success")).lower()
        if then not in ("success", "fail", "hang"):
            raise ValueError("then must be success, fail or hang")
        code = spec.get("auth_code")
        script = Script(outcome=outcome, then=then, after_seconds=float(spec.get("after_seconds", 5.0)),
                        charged=bool(spec.get("charged", False)), cancel_retry=bool(spec.get("cancel_retry", False)),
                        auth_code=str(code) if code else None, times=max(1, int(spec.get("times", 1))))
        # specific codes first, then "any code" scripts, each in arrival order
        self.scripts.append(script)
        self.scripts.sort(key=lambda s: s.auth_code is None)
        return script


SIM_KEY = web.AppKey("alipay_sim", AlipaySimulator)
