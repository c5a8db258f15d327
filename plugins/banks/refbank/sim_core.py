"""The reference bank simulator's in-memory truth: orders, refunds, state machine, files.

Nothing here speaks HTTP: ``sim_api`` translates the wire into these calls and
``sim_control`` exposes them to the tester (the "patient" and the "bank operator").
"""
from __future__ import annotations

import asyncio
import datetime as dt
import re
import secrets
import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.money import MoneyFormatError

from . import crypto
from .recon import ReconFile, ReconRecord
from .sim_model import (
    DECLINES,
    MAGIC,
    OUTCOMES,
    Script,
    SimError,
    SimMerchant,
    SimOrder,
    SimRefund,
    digits,
    wallet_for,
)
from .sim_notify import Notifier
from .wire import AUTH_CODE_RE, CST, FAIL_CODES, fen, format_time, parse_time

_NO = re.compile(r"[0-9A-Za-z_\-]{1,64}")
REFUND_LIMIT = 50


class RefBankSimulator:
    def __init__(self, merchants: list[SimMerchant], bank_key: rsa.RSAPrivateKey | None = None,
                 bank_key_id: str | None = None) -> None:
        self.merchants = {m.merchant_id: m for m in merchants}
        self.bank_key = bank_key or crypto.generate_private_key()
        self.bank_key_id = bank_key_id or crypto.new_key_id("BK")
        self.base_url = ""
        self.orders: dict[tuple[str, str], SimOrder] = {}
        self.refunds: dict[tuple[str, str], SimRefund] = {}
        self.scripts: list[Script] = []
        self.notifier = Notifier(self.bank_key, self.bank_key_id)
        self.clock_offset = dt.timedelta(0)
        self._nonces: dict[tuple[str, str], float] = {}
        # tunables (control surface: /_sim/settings)
        self.refund_settle_seconds = 1.0
        self.next_refund_status: list[str] = []  # SUCCESS | FAIL | DECLINE, for the next refunds
        self.confirm_timeout_seconds = 60.0  # how long a wallet confirmation prompt stays open
        self.password_free_limit = 100_000  # fen: above it the patient confirms in the wallet app
        self.fee_rate_bp = 20  # 0.20 %
        self.bill_same_day = True  # sandbox: today's file can be downloaded today
        self.qr_ttl_minutes = 120.0  # QR orders without expire_time

    # --- basics ---------------------------------------------------------------------------
    def now(self) -> dt.datetime:
        return dt.datetime.now(CST).replace(microsecond=0) + self.clock_offset

    @property
    def default_merchant(self) -> SimMerchant:
        return next(iter(self.merchants.values()))

    def merchant(self, merchant_id: str) -> SimMerchant:
        m = self.merchants.get(merchant_id)
        if m is None:
            raise SimError("MERCHANT_NOT_FOUND")
        return m

    def reset(self) -> None:
        self.notifier.deliveries.clear()
        self.orders.clear()
        self.refunds.clear()
        self.scripts.clear()
        self.next_refund_status.clear()
        self.clock_offset = dt.timedelta(0)

    def use_nonce(self, merchant_id: str, nonce: str) -> bool:
        """Remember a request nonce for twice the timestamp window; False if seen before."""
        now = time.monotonic()
        if len(self._nonces) > 10_000:
            self._nonces = {k: v for k, v in self._nonces.items() if v > now}
        key = (merchant_id, nonce)
        if self._nonces.get(key, 0.0) > now:
            return False
        self._nonces[key] = now + 2 * crypto.TIMESTAMP_WINDOW
        return True

    def _later(self, delay: float, fn: Any, *args: Any) -> None:
        try:
            asyncio.get_running_loop().call_later(max(delay, 0.0), fn, *args)
        except RuntimeError:
            pass  # no loop: settled lazily on the next read

    def _serial(self, prefix: str) -> str:
        return prefix + self.now().strftime("%Y%m%d%H%M%S") + digits(8)

    # --- request fields -------------------------------------------------------------------------
    @staticmethod
    def _no(req: dict[str, Any], name: str) -> str:
        value = req.get(name)
        if not isinstance(value, str) or not _NO.fullmatch(value):
            raise SimError("PARAM_ERROR", f"{name} 格式错误（1-64位字母、数字、下划线或连字符）")
        return value

    @staticmethod
    def _amount(req: dict[str, Any], name: str) -> int:
        try:
            value = fen(req.get(name))
        except MoneyFormatError:
            raise SimError("PARAM_ERROR", f"{name} 必须为以元为单位、最多两位小数的字符串") from None
        if value <= 0:
            raise SimError("PARAM_ERROR", f"{name} 必须大于0")
        return value

    @staticmethod
    def _text(req: dict[str, Any], name: str, *, required: bool = False, limit: int = 128) -> str:
        value = req.get(name)
        if value is None or value == "":
            if required:
                raise SimError("PARAM_ERROR", f"缺少参数 {name}")
            return ""
        if not isinstance(value, str) or len(value) > limit:
            raise SimError("PARAM_ERROR", f"{name} 格式错误或超长")
        return value

    def _url(self, req: dict[str, Any], *, required: bool) -> str:
        url = self._text(req, "notify_url", required=required, limit=256)
        if url and not url.startswith(("http://", "https://")):
            raise SimError("PARAM_ERROR", "notify_url 必须为 http(s) 地址")
        return url

    # --- orders -----------------------------------------------------------------------------------
    def find_order(self, merchant_id: str, out_trade_no: str) -> SimOrder:
        order = self.orders.get((merchant_id, out_trade_no))
        if order is None:
            raise SimError("ORDER_NOT_FOUND")
        return self.settle(order)

    def lookup(self, out_trade_no: str, merchant_id: str | None = None) -> SimOrder:
        """Find an order by number alone (control surface)."""
        for order in self.orders.values():
            if order.out_trade_no == out_trade_no and merchant_id in (None, order.merchant_id):
                return self.settle(order)
        raise SimError("ORDER_NOT_FOUND")

    def _base_order(self, m: SimMerchant, req: dict[str, Any], trade_type: str) -> SimOrder:
        if (req.get("currency") or "CNY") != "CNY":
            raise SimError("PARAM_ERROR", "currency 仅支持 CNY")
        return SimOrder(
            merchant_id=m.merchant_id, out_trade_no=self._no(req, "out_trade_no"), trade_type=trade_type,
            amount=self._amount(req, "amount"), subject=self._text(req, "subject", required=True),
            created_at=self.now(), attach=self._text(req, "attach", limit=256),
            notify_url=self._url(req, required=trade_type == "QRPAY"),
            device_id=self._text(req, "device_id", limit=32), store_id=self._text(req, "store_id", limit=32),
        )

    def codepay(self, m: SimMerchant, req: dict[str, Any]) -> SimOrder:
        """Payment code: the order (SUCCESS, PAYING or FAIL) or a raised error answer."""
        order = self._base_order(m, req, "CODEPAY")
        auth_code = req.get("auth_code")
        auth_code = auth_code if isinstance(auth_code, str) else ""
        key = (m.merchant_id, order.out_trade_no)
        old = self.orders.get(key)
        if old is not None:
            self.settle(old)
            if old.trade_type == "CODEPAY" and (old.amount, old.auth_code) == (order.amount, auth_code):
                return old  # a retry: the order as it stands
            raise SimError("DUPLICATE_ORDER")
        if not re.fullmatch(AUTH_CODE_RE, auth_code):
            raise SimError("PAYCODE_INVALID")
        order.auth_code = auth_code
        order.wallet_id, order.wallet_level, order.wallet_operator = wallet_for(auth_code)
        order.bank_trade_no = self._serial("ECNY")
        script = self.pick_script(auth_code, order.amount)
        outcome = script.outcome
        if outcome == "PAYCODE_INVALID":
            raise SimError("PAYCODE_INVALID")
        self.orders[key] = order
        if outcome == "SUCCESS":
            self._pay(order)
        elif outcome == "PAYING":
            order.status, order.sub_status = "PAYING", script.sub_status
            if script.then == "success":
                self._pend(order, "SUCCESS", "", script.after_seconds)
            elif script.then == "fail":
                self._pend(order, "FAIL", script.fail_code or self._timeout_code(order), script.after_seconds)
            else:  # hang: until the prompt times out
                self._pend(order, "FAIL", self._timeout_code(order), self.confirm_timeout_seconds)
        elif outcome in DECLINES:
            self._fail(order, outcome)
        elif outcome == "SYSTEM_ERROR":
            if script.charged:
                self._pay(order)
            else:
                del self.orders[key]  # the request never reached the ledger
            raise SimError("SYSTEM_ERROR")
        elif outcome == "CENTER_TIMEOUT":
            if script.charged:
                self._pay(order)
            else:
                self._fail(order, "CENTER_ERROR")
            raise SimError("CENTER_TIMEOUT")
        return order

    @staticmethod
    def _timeout_code(order: SimOrder) -> str:
        return "CONFIRM_TIMEOUT" if order.sub_status == "USER_CONFIRMING" else "CENTER_ERROR"

    def precreate(self, m: SimMerchant, req: dict[str, Any]) -> SimOrder:
        """Dynamic QR order; an identical retry returns the same order."""
        order = self._base_order(m, req, "QRPAY")
        try:
            expire = parse_time(self._text(req, "expire_time", limit=14))
        except ValueError:
            raise SimError("PARAM_ERROR", "expire_time 格式错误，应为 yyyyMMddHHmmss") from None
        now = self.now()
        if expire is not None and expire <= now:
            raise SimError("PARAM_ERROR", "expire_time 早于当前时间")
        order.expire_time = expire or now + dt.timedelta(minutes=self.qr_ttl_minutes)
        key = (m.merchant_id, order.out_trade_no)
        old = self.orders.get(key)
        if old is not None:
            self.settle(old)
            errors = {"SUCCESS": "ORDER_PAID", "REFUND": "ORDER_PAID", "CLOSED": "ORDER_CLOSED",
                      "REVOKED": "ORDER_REVOKED"}
            if old.status in errors:
                raise SimError(errors[old.status])
            if old.trade_type == "QRPAY" and (old.amount, old.subject) == (order.amount, order.subject):
                return old
            raise SimError("DUPLICATE_ORDER")
        order.bank_trade_no = self._serial("ECNY")
        order.qr_token = secrets.token_urlsafe(12)
        order.qr_code = f"{self.base_url}/_sim/qr/{order.qr_token}"
        self.orders[key] = order
        return order

    def _pend(self, order: SimOrder, to: str, code: str, after: float) -> None:
        order.pending_to, order.pending_code, order.pending_at = to, code, time.monotonic() + after
        self._later(after + 0.01, self.settle, order)

    def settle(self, order: SimOrder) -> SimOrder:
        """Apply what is due: a PAYING resolution, or the expiry of an unpaid QR order."""
        if order.status == "PAYING" and order.pending_to and time.monotonic() >= order.pending_at:
            to, code = order.pending_to, order.pending_code
            if to == "SUCCESS":
                self._pay(order)
            else:
                self._fail(order, code or "USER_CANCELLED")
        if order.status == "WAIT_PAY" and order.expire_time and self.now() > order.expire_time:
            order.status = "CLOSED"
        return order

    def _clear_pending(self, order: SimOrder) -> None:
        order.pending_to, order.pending_code, order.sub_status = "", "", ""

    def _fail(self, order: SimOrder, code: str) -> None:
        self._clear_pending(order)
        order.status, order.fail_code, order.fail_reason = "FAIL", code, FAIL_CODES.get(code, "支付失败")

    def fee(self, amount: int) -> int:
        return (amount * self.fee_rate_bp + 5000) // 10000

    def _pay(self, order: SimOrder, wallet: tuple[str, str, str] | None = None) -> None:
        self._clear_pending(order)
        order.status, order.pay_time = "SUCCESS", self.now()
        order.fee = self.fee(order.amount)
        if wallet:
            order.wallet_id, order.wallet_level, order.wallet_operator = wallet
        elif not order.wallet_id:
            order.wallet_id, order.wallet_level, order.wallet_operator = wallet_for(order.out_trade_no)
        self.notify_payment(order)

    def notify_payment(self, order: SimOrder) -> None:
        self.notifier.send(order.notify_url, order.merchant_id, "TRADE.SUCCESS", order.as_trade(),
                           order.out_trade_no)

    def confirm(self, order: SimOrder, wallet_seed: str | None = None) -> SimOrder:
        """The patient confirms in the wallet app (PAYING) or scans and pays a QR order."""
        self.settle(order)
        if order.status == "PAYING" or (order.status == "WAIT_PAY" and order.trade_type == "QRPAY"):
            self._pay(order, wallet_for(wallet_seed) if wallet_seed else None)
            return order
        if order.status == "CLOSED":
            raise SimError("ORDER_CLOSED", "订单已关闭或已过期", status=409)
        raise SimError("PARAM_ERROR", f"订单状态为 {order.status}，不能支付", status=409)

    def fail(self, order: SimOrder, code: str | None = None) -> SimOrder:
        """The patient cancels the confirmation (or the wallet declines it)."""
        self.settle(order)
        if order.status != "PAYING":
            raise SimError("PARAM_ERROR", f"订单状态为 {order.status}，不在支付中", status=409)
        code = code or "USER_CANCELLED"
        if code not in FAIL_CODES:
            raise ValueError(f"code must be one of {', '.join(FAIL_CODES)}")
        self._fail(order, code)
        return order

    def close(self, order: SimOrder) -> SimOrder:
        if order.trade_type != "QRPAY":
            raise SimError("PARAM_ERROR", "付款码订单不能关闭，请使用撤销接口")
        if order.status in ("SUCCESS", "REFUND"):
            raise SimError("ORDER_PAID")
        if order.status == "REVOKED":
            raise SimError("ORDER_REVOKED")
        order.status = "CLOSED"
        return order

    def revoke(self, order: SimOrder) -> SimOrder:
        if order.trade_type != "CODEPAY":
            raise SimError("PARAM_ERROR", "二维码订单不能撤销，请使用关单接口")
        if order.status == "REVOKED":
            return order
        if order.status == "PAYING":
            if order.sub_status == "PROCESSING":
                raise SimError("TRADE_PROCESSING")
            self._clear_pending(order)  # the bank withdraws the confirmation prompt
            order.status = "REVOKED"
            return order
        if order.status == "REFUND" or order.refunded:
            raise SimError("REVOKE_NOT_ALLOWED")
        if order.status == "SUCCESS":
            if order.pay_time is not None and order.pay_time.date() != self.now().date():
                raise SimError("REVOKE_EXPIRED")
            order.revoke_time = self.now()
            order.revoke_serial = self._serial("EV")
            order.fee_returned = order.fee
        order.status = "REVOKED"  # SUCCESS (money goes back) or FAIL (nothing to give back)
        return order

    # --- refunds -----------------------------------------------------------------------------------
    def find_refund(self, merchant_id: str, out_refund_no: str) -> SimRefund:
        r = self.refunds.get((merchant_id, out_refund_no))
        if r is None:
            raise SimError("REFUND_NOT_FOUND")
        return r

    def refund(self, m: SimMerchant, req: dict[str, Any]) -> SimRefund:
        out_refund_no = self._no(req, "out_refund_no")
        out_trade_no = self._no(req, "out_trade_no")
        amount, total = self._amount(req, "refund_amount"), self._amount(req, "total_amount")
        reason = self._text(req, "reason", limit=80)
        notify_url = self._url(req, required=False)
        order = self.find_order(m.merchant_id, out_trade_no)
        old = self.refunds.get((m.merchant_id, out_refund_no))
        if old is not None:
            if (old.out_trade_no, old.amount, old.total) != (out_trade_no, amount, total):
                raise SimError("DUPLICATE_REFUND")
            return old
        if order.status == "REVOKED":
            raise SimError("ORDER_REVOKED", "订单已撤销，不能退款")
        if order.status not in ("SUCCESS", "REFUND"):
            raise SimError("REFUND_NOT_ALLOWED", "订单未支付成功，不能退款")
        if total != order.amount:
            raise SimError("TOTAL_AMOUNT_MISMATCH")
        left = order.amount - order.refunded
        if amount > left:
            raise SimError("AMOUNT_EXCEEDS_REFUNDABLE", f"退款金额超过订单可退金额（可退 {left / 100:.2f} 元）")
        if len(order.refunds) >= REFUND_LIMIT:
            raise SimError("REFUND_NOT_ALLOWED", "退款次数超过限制")
        to = self.next_refund_status.pop(0) if self.next_refund_status else "SUCCESS"
        if to == "DECLINE":
            raise SimError("MERCHANT_BALANCE_NOT_ENOUGH")
        r = SimRefund(merchant_id=m.merchant_id, out_refund_no=out_refund_no, out_trade_no=out_trade_no,
                      bank_trade_no=order.bank_trade_no, amount=amount, total=total, reason=reason,
                      notify_url=notify_url, apply_time=self.now(), bank_refund_no=self._serial("ER"))
        self.refunds[(m.merchant_id, out_refund_no)] = r
        order.refunded += amount
        order.refunds.append(out_refund_no)
        order.status = "REFUND"
        if self.refund_settle_seconds <= 0:
            self.finish_refund(r, to, notify=False)
            self._later(0, self.notify_refund, r)
        else:
            self._later(self.refund_settle_seconds, self.finish_refund, r, to)
        return r

    def finish_refund(self, r: SimRefund, to: str = "SUCCESS", notify: bool = True) -> None:
        if r.status != "PROCESSING":
            return
        order = self.orders[(r.merchant_id, r.out_trade_no)]
        if to == "SUCCESS":
            r.status, r.refund_time = "SUCCESS", self.now()
            done = sum(x.amount for x in self.refunds.values()
                       if x.status == "SUCCESS" and (x.merchant_id, x.out_trade_no) == (r.merchant_id, r.out_trade_no))
            left = order.fee - order.fee_returned
            share = left if done == order.amount else min(left, (order.fee * r.amount + order.amount // 2)
                                                          // order.amount)
            r.fee_returned = share
            order.fee_returned += share
        else:
            r.status, r.fail_code = "FAIL", "WALLET_CLOSED"
            order.refunded -= r.amount
            if order.refunded == 0 and order.status == "REFUND":
                order.status = "SUCCESS"
        if notify:
            self.notify_refund(r)

    def notify_refund(self, r: SimRefund) -> None:
        self.notifier.send(r.notify_url, r.merchant_id, f"REFUND.{r.status}", r.as_refund(), r.out_trade_no,
                           r.out_refund_no)

    # --- reconciliation file --------------------------------------------------------------------------
    def bill_ready(self, day: dt.date) -> bool:
        today = self.now().date()
        return day < today or (day == today and self.bill_same_day)

    def recon_file(self, merchant_id: str, day: dt.date) -> ReconFile:
        """Payments that succeeded on ``day`` and money given back on ``day``."""
        self.merchant(merchant_id)
        records: list[ReconRecord] = []
        for o in self.orders.values():
            if o.merchant_id != merchant_id:
                continue
            self.settle(o)
            common = dict(bank_trade_no=o.bank_trade_no, out_trade_no=o.out_trade_no, trade_type=o.trade_type,
                          wallet_id=o.wallet_id, wallet_operator=o.wallet_operator, device_id=o.device_id,
                          subject=o.subject, amount=o.amount)
            if o.pay_time and o.pay_time.date() == day:
                records.append(ReconRecord(trade_time=o.pay_time, record_type="PAY", fee=o.fee, **common))
            if o.revoke_time and o.was_paid and o.revoke_time.date() == day:
                records.append(ReconRecord(trade_time=o.revoke_time, record_type="REVOKE", fee=-o.fee,
                                           bank_refund_no=o.revoke_serial, **common))
        for r in self.refunds.values():
            if r.merchant_id != merchant_id or r.status != "SUCCESS" or not r.refund_time:
                continue
            if r.refund_time.date() != day:
                continue
            o = self.orders[(r.merchant_id, r.out_trade_no)]
            records.append(ReconRecord(
                trade_time=r.refund_time, record_type="REFUND", bank_trade_no=o.bank_trade_no,
                out_trade_no=o.out_trade_no, amount=r.amount, fee=-r.fee_returned, bank_refund_no=r.bank_refund_no,
                out_refund_no=r.out_refund_no, trade_type=o.trade_type, wallet_id=o.wallet_id,
                wallet_operator=o.wallet_operator, device_id=o.device_id, subject=o.subject))
        records.sort(key=lambda r: (r.trade_time, r.record_type != "PAY", r.bank_trade_no, r.bank_refund_no))
        return ReconFile(merchant_id=merchant_id, bill_date=day, created_at=self.now(), records=records)

    # --- scripts ------------------------------------------------------------------------------------
    def pick_script(self, auth_code: str, amount: int) -> Script:
        for i, s in enumerate(self.scripts):
            if s.auth_code in (None, auth_code):
                s.times -= 1
                if s.times <= 0:
                    del self.scripts[i]
                return s
        magic = MAGIC.get(auth_code[-4:])
        if magic is not None:
            return magic
        if amount > self.password_free_limit:
            return Script("PAYING", then="success", after_seconds=5)
        return Script("SUCCESS")

    def add_script(self, spec: dict[str, Any]) -> Script:
        outcome = str(spec.get("outcome", "SUCCESS")).upper()
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}")
        then = str(spec.get("then", "success")).lower()
        if then not in ("success", "fail", "hang"):
            raise ValueError("then must be success, fail or hang")
        sub_status = str(spec.get("sub_status", "USER_CONFIRMING")).upper()
        if sub_status not in ("USER_CONFIRMING", "PROCESSING"):
            raise ValueError("sub_status must be USER_CONFIRMING or PROCESSING")
        fail_code = spec.get("fail_code")
        if fail_code is not None and fail_code not in FAIL_CODES:
            raise ValueError(f"fail_code must be one of {', '.join(FAIL_CODES)}")
        code = spec.get("auth_code")
        script = Script(outcome=outcome, then=then, sub_status=sub_status,
                        after_seconds=float(spec.get("after_seconds", 5.0)), fail_code=fail_code,
                        charged=bool(spec.get("charged", False)), auth_code=str(code) if code else None,
                        times=max(1, int(spec.get("times", 1))))
        # scripts for a specific code first, then "any code" scripts, each in arrival order
        self.scripts.append(script)
        self.scripts.sort(key=lambda s: s.auth_code is None)
        return script

    def describe_time(self) -> str:
        return format_time(self.now())
