"""The WeChat Pay simulator's in-memory truth: orders, refunds, state machine, bills.

Nothing here speaks HTTP; ``sim_v3``/``sim_v2`` translate the wire to these calls
and ``sim_control`` exposes them to the patient/tester.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import re
import secrets
import time
from typing import Any

from .bill import write_tradebill
from .sim_model import (
    AUTH_CODE_RE,
    MAGIC,
    OUTCOMES,
    Script,
    SimError,
    SimMerchant,
    SimOrder,
    SimRefund,
    digits,
    openid_for,
)
from .sim_bill import bill_rows
from .sim_notify import Notifier
from .wire import CST, parse_time

PASSWORD_LIMIT = 100_000  # fen: above 1000 yuan the patient must enter the password


class WeChatPaySimulator:
    def __init__(self, merchants: list[SimMerchant]) -> None:
        self.merchants = {m.mchid: m for m in merchants}
        self.base_url = ""
        self.orders: dict[tuple[str, str, str], SimOrder] = {}
        self.refunds: dict[tuple[str, str, str], SimRefund] = {}
        self.scripts: list[Script] = []
        self.notifier = Notifier()
        self.clock_offset = dt.timedelta(0)
        # tunables (control surface: /_sim/settings)
        self.refund_settle_seconds = 1.0
        self.next_refund_status: list[str] = []
        self.userpaying_timeout_seconds = 60.0
        self.fee_rate_bp = 60  # 0.60 %
        self.bill_url_ttl_seconds = 30.0

    # --- basics -----------------------------------------------------------------------
    def now(self) -> dt.datetime:
        return dt.datetime.now(CST).replace(microsecond=0) + self.clock_offset

    @property
    def default_merchant(self) -> SimMerchant:
        return next(iter(self.merchants.values()))

    def merchant(self, mchid: str) -> SimMerchant:
        try:
            return self.merchants[mchid]
        except KeyError:
            raise SimError("MCH_NOT_EXISTS") from None

    def reset(self) -> None:
        self.notifier.deliveries.clear()
        self.orders.clear()
        self.refunds.clear()
        self.scripts.clear()
        self.next_refund_status.clear()
        self.clock_offset = dt.timedelta(0)

    def _later(self, delay: float, fn: Any, *args: Any) -> None:
        try:
            asyncio.get_running_loop().call_later(max(delay, 0.0), fn, *args)
        except RuntimeError:
            pass  # no loop: settled lazily on the next read

    # --- orders -----------------------------------------------------------------------
    def find_order(self, mchid: str, sub_mchid: str, out_trade_no: str) -> SimOrder:
        order = self.orders.get((mchid, sub_mchid, out_trade_no))
        if order is None:
            raise SimError("ORDER_NOT_EXIST")
        return self.settle(order)

    def find_by_transaction(self, mchid: str, sub_mchid: str, transaction_id: str) -> SimOrder:
        for order in self.orders.values():
            if (order.mchid, order.sub_mchid, order.transaction_id) == (mchid, sub_mchid, transaction_id):
                return self.settle(order)
        raise SimError("ORDER_NOT_EXIST")

    def lookup(self, out_trade_no: str, mchid: str | None = None) -> SimOrder:
        """Find an order by number alone (control surface)."""
        for order in self.orders.values():
            if order.out_trade_no == out_trade_no and mchid in (None, order.mchid):
                return self.settle(order)
        raise SimError("ORDER_NOT_EXIST")

    def _new_order(self, m: SimMerchant, req: dict[str, Any], trade_type: str) -> SimOrder:
        sub = str(req.get("sub_mchid") or "")
        no = req.get("out_trade_no")
        total = (req.get("amount") or {}).get("total")
        if not isinstance(no, str) or not re.fullmatch(r"[0-9A-Za-z_\-|*]{1,32}", no):
            raise SimError("PARAM_ERROR", "out_trade_no 格式错误")
        if not isinstance(total, int) or isinstance(total, bool) or total <= 0:
            raise SimError("PARAM_ERROR", "amount.total 必须为正整数")
        if not req.get("description"):
            raise SimError("PARAM_ERROR", "缺少参数 description")
        currency = (req.get("amount") or {}).get("currency") or "CNY"
        if currency != "CNY":
            raise SimError("PARAM_ERROR", "不支持的币种")
        expire = req.get("time_expire")
        try:
            time_expire = parse_time(expire) if expire else self.now() + dt.timedelta(hours=2)
        except ValueError:
            raise SimError("PARAM_ERROR", "time_expire 格式错误") from None
        return SimOrder(
            mchid=m.mchid, appid=m.appid, sub_mchid=sub, sub_appid=str(req.get("sub_appid") or ""),
            out_trade_no=no, trade_type=trade_type, total=total, description=str(req["description"]),
            created_at=self.now(), notify_url=str(req.get("notify_url") or ""),
            attach=str(req.get("attach") or ""), time_expire=time_expire,
            device_id=str((req.get("scene_info") or {}).get("device_id") or ""),
        )

    def create_prepay(self, m: SimMerchant, req: dict[str, Any], trade_type: str) -> SimOrder:
        """JSAPI / NATIVE / MWEB order; an identical retry returns the same order."""
        order = self._new_order(m, req, trade_type)
        if not order.notify_url.startswith(("http://", "https://")):
            raise SimError("PARAM_ERROR", "notify_url 格式错误")
        key = (m.mchid, order.sub_mchid, order.out_trade_no)
        old = self.orders.get(key)
        if old is not None:
            self.settle(old)
            if old.state in ("SUCCESS", "REFUND"):
                raise SimError("ORDERPAID")
            if old.state == "CLOSED":
                raise SimError("ORDERCLOSED")
            if (old.trade_type, old.total, old.description) != (trade_type, order.total, order.description):
                raise SimError("INVALID_REQUEST", "201 商户订单号重复")
            return old
        if trade_type == "JSAPI":
            payer = req.get("payer") or {}
            order.openid = str(payer.get("openid") or payer.get("sp_openid") or payer.get("sub_openid") or "")
            if not order.openid:
                raise SimError("PARAM_ERROR", "JSAPI下单缺少 payer.openid")
        if trade_type == "MWEB" and not (req.get("scene_info") or {}).get("h5_info"):
            raise SimError("PARAM_ERROR", "H5下单缺少 scene_info.h5_info")
        order.prepay_id = "wx" + self.now().strftime("%d%H%M%S") + secrets.token_hex(12)
        order.code_url = f"weixin://wxpay/bizpayurl?pr={secrets.token_urlsafe(6)}"
        order.h5_url = f"{self.base_url}/_sim/checkout?prepay_id={order.prepay_id}"
        self.orders[key] = order
        return order

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
            return Script("USERPAYING", then="success", after_seconds=5)
        return Script("SUCCESS")

    def codepay(self, m: SimMerchant, req: dict[str, Any], *, api: str = "v3") -> SimOrder:
        """Payment code: returns the order (SUCCESS or USERPAYING) or raises the decline."""
        order = self._new_order(m, req, "MICROPAY")
        order.api = api
        key = (m.mchid, order.sub_mchid, order.out_trade_no)
        old = self.orders.get(key)
        if old is not None:
            self.settle(old)
            errors = {"SUCCESS": "ORDERPAID", "REFUND": "ORDERPAID", "CLOSED": "ORDERCLOSED",
                      "REVOKED": "ORDERREVERSED"}
            if old.state in errors:
                raise SimError(errors[old.state])
            if old.state == "USERPAYING":
                return old
            raise SimError("INVALID_REQUEST", "201 商户订单号重复")
        auth_code = str((req.get("payer") or {}).get("auth_code") or "")
        if not re.fullmatch(AUTH_CODE_RE, auth_code):
            raise SimError("AUTH_CODE_INVALID")
        order.auth_code = auth_code
        order.openid = openid_for(auth_code)
        script = self.pick_script(auth_code, order.total)
        outcome = script.outcome
        if outcome == "SUCCESS":
            self.orders[key] = order
            self._pay(order)
            return order
        if outcome == "USERPAYING":
            order.state = "USERPAYING"
            self.orders[key] = order
            if script.then == "hang":
                self._pend(order, "PAYERROR", self.userpaying_timeout_seconds)
            else:
                self._pend(order, "SUCCESS" if script.then == "success" else "PAYERROR", script.after_seconds)
            return order
        if outcome in ("SYSTEMERROR", "BANKERROR"):
            if script.charged:
                self.orders[key] = order
                self._pay(order)
            elif outcome == "BANKERROR":
                order.state, order.state_desc = "PAYERROR", "银行系统异常"
                self.orders[key] = order
            raise SimError(outcome)
        order.state = "PAYERROR"
        err = SimError(outcome)
        order.state_desc = err.message
        self.orders[key] = order
        raise err

    def _pend(self, order: SimOrder, to: str, after: float) -> None:
        loop_time = time.monotonic() + after
        order.pending_to, order.pending_at = to, loop_time
        self._later(after + 0.01, self.settle, order)

    def settle(self, order: SimOrder) -> SimOrder:
        """Apply a due USERPAYING resolution (called lazily and by a timer)."""
        if order.state == "USERPAYING" and order.pending_to and time.monotonic() >= order.pending_at:
            to, order.pending_to = order.pending_to, ""
            if to == "SUCCESS":
                self._pay(order)
            else:
                order.state, order.state_desc = "PAYERROR", "支付失败，用户取消或超时"
        return order

    def _pay(self, order: SimOrder, openid: str | None = None) -> None:
        order.state, order.state_desc, order.pending_to = "SUCCESS", "", ""
        order.success_time = self.now()
        order.bank_type = "OTHERS"
        if openid:
            order.openid = openid
        elif not order.openid:
            order.openid = openid_for(order.out_trade_no)
        self.notify_payment(order)

    def notify_payment(self, order: SimOrder) -> None:
        self.notifier.send(self.merchant(order.mchid), order.notify_url, "TRANSACTION.SUCCESS",
                           order.as_transaction(), order.out_trade_no)

    def confirm(self, order: SimOrder, openid: str | None = None) -> SimOrder:
        """The patient pays (QR/JSAPI/H5) or enters the password (USERPAYING)."""
        self.settle(order)
        if order.state == "USERPAYING" or (order.state == "NOTPAY" and order.trade_type != "MICROPAY"):
            if order.time_expire and self.now() > order.time_expire:
                raise SimError("ORDERCLOSED", "订单已过期", status=409)
            self._pay(order, openid)
            return order
        raise SimError("INVALID_REQUEST", f"订单状态为 {order.state}，不能支付", status=409)

    def fail(self, order: SimOrder, message: str | None = None) -> SimOrder:
        self.settle(order)
        if order.state not in ("USERPAYING", "NOTPAY"):
            raise SimError("INVALID_REQUEST", f"订单状态为 {order.state}", status=409)
        order.state, order.state_desc, order.pending_to = "PAYERROR", message or "用户取消支付", ""
        return order

    def close(self, order: SimOrder) -> None:
        if order.state in ("SUCCESS", "REFUND"):
            raise SimError("ORDERPAID")
        if order.state == "REVOKED":
            raise SimError("ORDERREVERSED")
        order.state, order.state_desc, order.pending_to = "CLOSED", "", ""

    def reverse(self, order: SimOrder) -> None:
        if order.trade_type != "MICROPAY":
            raise SimError("INVALID_REQUEST", "非付款码支付订单不能撤销")
        if order.state == "USERPAYING":
            raise SimError("USERPAYING")
        if order.state == "REVOKED":
            return
        if order.state == "REFUND" or order.refunded:
            raise SimError("INVALID_REQUEST", "订单已发生退款，不能撤销")
        if order.was_paid and self.now() - order.success_time > dt.timedelta(days=7):  # type: ignore[operator]
            raise SimError("REVERSE_EXPIRE")
        order.state, order.state_desc = "REVOKED", ""
        if order.was_paid:
            order.revoked_at = self.now()
            order.reverse_refund_id = "50" + digits(27)

    # --- refunds ----------------------------------------------------------------------
    def find_refund(self, mchid: str, sub_mchid: str, out_refund_no: str) -> SimRefund:
        refund = self.refunds.get((mchid, sub_mchid, out_refund_no))
        if refund is None:
            raise SimError("RESOURCE_NOT_EXISTS")
        return refund

    def refund(self, m: SimMerchant, req: dict[str, Any]) -> SimRefund:
        sub = str(req.get("sub_mchid") or "")
        out_refund_no = req.get("out_refund_no")
        amount = req.get("amount") or {}
        refund, total = amount.get("refund"), amount.get("total")
        if not isinstance(out_refund_no, str) or not out_refund_no:
            raise SimError("PARAM_ERROR", "缺少参数 out_refund_no")
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (refund, total)):
            raise SimError("PARAM_ERROR", "amount.refund 和 amount.total 必须为正整数")
        try:
            if req.get("transaction_id"):
                order = self.find_by_transaction(m.mchid, sub, str(req["transaction_id"]))
            else:
                order = self.find_order(m.mchid, sub, str(req.get("out_trade_no") or ""))
        except SimError:
            raise SimError("RESOURCE_NOT_EXISTS", "订单不存在") from None
        old = self.refunds.get((m.mchid, sub, out_refund_no))
        if old is not None:
            if (old.out_trade_no, old.amount, old.total) != (order.out_trade_no, refund, total):
                raise SimError("INVALID_REQUEST", "订单金额或退款金额与之前请求不一致，请核实后再试")
            return old
        if order.state not in ("SUCCESS", "REFUND"):
            raise SimError("INVALID_REQUEST", {"REVOKED": "订单已撤销"}.get(order.state, "订单未支付，不能退款"))
        if total != order.total:
            raise SimError("INVALID_REQUEST", "订单金额或退款金额与之前请求不一致，请核实后再试")
        left = order.total - order.refunded
        if left <= 0:
            raise SimError("INVALID_REQUEST", "订单已全额退款")
        if refund > left:
            raise SimError("INVALID_REQUEST", "申请退款金额超过订单可退金额")
        if len(order.refunds) >= 50:
            raise SimError("INVALID_REQUEST", "退款次数超过限制")
        r = SimRefund(mchid=m.mchid, sub_mchid=sub, out_refund_no=out_refund_no,
                      out_trade_no=order.out_trade_no, transaction_id=order.transaction_id,
                      amount=refund, total=total, reason=str(req.get("reason") or ""),
                      notify_url=str(req.get("notify_url") or ""), created_at=self.now())
        self.refunds[(m.mchid, sub, out_refund_no)] = r
        order.refunded += refund
        order.refunds.append(out_refund_no)
        order.state = "REFUND"
        to = self.next_refund_status.pop(0) if self.next_refund_status else "SUCCESS"
        if self.refund_settle_seconds <= 0:
            self.finish_refund(r, to, notify=False)
            self._later(0, self._notify_refund, r)
        else:
            self._later(self.refund_settle_seconds, self.finish_refund, r, to)
        return r

    def finish_refund(self, r: SimRefund, to: str = "SUCCESS", notify: bool = True) -> None:
        if r.status != "PROCESSING":
            return
        r.status = to
        if to == "SUCCESS":
            r.success_time = self.now()
        elif to == "CLOSED":
            order = self.orders.get((r.mchid, r.sub_mchid, r.out_trade_no))
            if order is not None:
                order.refunded -= r.amount
        if notify:
            self._notify_refund(r)

    def _notify_refund(self, r: SimRefund) -> None:
        ids = {"sp_mchid": r.mchid, "sub_mchid": r.sub_mchid} if r.sub_mchid else {"mchid": r.mchid}
        self.notifier.send(self.merchant(r.mchid), r.notify_url, f"REFUND.{r.status}",
                           r.as_notice(ids), r.out_trade_no, r.out_refund_no)

    # --- bill -------------------------------------------------------------------------
    def fee(self, amount: int) -> int:
        return (amount * self.fee_rate_bp + 5000) // 10000

    def trade_bill(self, mchid: str, sub_mchid: str, day: dt.date, bill_type: str = "ALL") -> str:
        if day > self.now().date():
            raise SimError("PARAM_ERROR", "账单日期不能晚于当前日期")
        rows = bill_rows(self, mchid, sub_mchid, day, bill_type)
        if not rows:
            raise SimError("NO_STATEMENT_EXIST")
        return write_tradebill(rows)

    def add_script(self, spec: dict[str, Any]) -> Script:
        outcome = str(spec.get("outcome", "SUCCESS")).upper()
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}")
        then = str(spec.get("then", "success")).lower()
        if then not in ("success", "fail", "hang"):
            raise ValueError("then must be success, fail or hang")
        code = spec.get("auth_code")
        script = Script(outcome=outcome, then=then, after_seconds=float(spec.get("after_seconds", 5.0)),
                        charged=bool(spec.get("charged", False)), auth_code=str(code) if code else None,
                        times=max(1, int(spec.get("times", 1))))
        # specific codes first, then "any code" scripts, each in arrival order
        self.scripts.append(script)
        self.scripts.sort(key=lambda s: s.auth_code is None)
        return script
