"""Simulator data: sandbox applications, trades, refunds, error table, scripted outcomes."""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import string
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.money import MoneyFormatError, fen_to_yuan, yuan_to_fen

from . import crypto
from .wire import CODE_MESSAGES, format_time

# sub_code -> sub_msg, as the service words them
SUB_MESSAGES: dict[str, str] = {
    # gateway
    "isv.missing-app-id": "缺少AppID参数",
    "isv.missing-method": "缺少方法名参数",
    "isv.missing-signature": "缺少签名参数",
    "isv.missing-signature-type": "缺少签名类型",
    "isv.missing-timestamp": "缺少时间戳参数",
    "isv.missing-version": "缺少版本参数",
    "isv.invalid-app-id": "无效的AppID参数",
    "isv.invalid-method": "不存在的方法名",
    "isv.invalid-format": "无效的数据格式",
    "isv.invalid-signature-type": "无效的签名类型",
    "isv.invalid-signature": "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配",
    "isv.invalid-timestamp": "非法的时间戳参数",
    "isv.invalid-charset": "字符集错误",
    "isv.invalid-version": "版本号错误",
    "aop.invalid-app-auth-token": "无效的应用授权令牌",
    "isp.unknow-error": "系统繁忙",
    # trade
    "ACQ.SYSTEM_ERROR": "系统错误",
    "ACQ.INVALID_PARAMETER": "参数无效",
    "ACQ.ACCESS_FORBIDDEN": "无权限使用接口",
    "ACQ.PAYMENT_AUTH_CODE_INVALID": ("支付失败，获取顾客账户信息失败，请顾客刷新付款码后重新收款，"
                                      "如再次收款失败，请联系管理员处理。[SOUNDWAVE_PARSER_FAIL]"),
    "ACQ.CONTEXT_INCONSISTENT": "交易信息被篡改",
    "ACQ.TRADE_HAS_SUCCESS": "交易已被支付",
    "ACQ.TRADE_HAS_CLOSE": "交易已经关闭",
    "ACQ.BUYER_BALANCE_NOT_ENOUGH": "买家余额不足",
    "ACQ.BUYER_BANKCARD_BALANCE_NOT_ENOUGH": "用户银行卡余额不足",
    "ACQ.ERROR_BALANCE_PAYMENT_DISABLE": "余额支付功能关闭",
    "ACQ.BUYER_SELLER_EQUAL": "买卖家不能相同",
    "ACQ.TRADE_BUYER_NOT_MATCH": "交易买家不匹配",
    "ACQ.BUYER_ENABLE_STATUS_FORBID": "买家状态非法",
    "ACQ.PAYMENT_FAIL": "支付失败",
    "ACQ.BUYER_PAYMENT_AMOUNT_DAY_LIMIT_ERROR": "买家付款日限额超限",
    "ACQ.BUYER_PAYMENT_AMOUNT_MONTH_LIMIT_ERROR": "买家付款月额度超限",
    "ACQ.PAYMENT_REQUEST_HAS_RISK": "支付有风险",
    "ACQ.NO_PAYMENT_INSTRUMENTS_AVAILABLE": "没用可用的支付工具",
    "ACQ.TOTAL_FEE_EXCEED": "订单总金额超过限额",
    "ACQ.TRADE_NOT_EXIST": "交易不存在",
    "ACQ.TRADE_STATUS_ERROR": "交易状态不合法",
    "ACQ.TRADE_HAS_FINISHED": "交易已结束",
    "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL": "退款金额超限",
    "ACQ.SELLER_BALANCE_NOT_ENOUGH": "卖家余额不足",
    "ACQ.DISCORDANT_REPEAT_REQUEST": "不一致的请求",
    "ACQ.REASON_TRADE_BEEN_FREEZEN": "交易已经被冻结",
    "ACQ.TRADE_NOT_ALLOW_REFUND": "当前交易不允许退款",
    # bill
    "isp.bill_not_exist": "账单不存在",
    "isv.invalid-arguments": "入参不合法",
}
DECLINES = (
    "ACQ.PAYMENT_AUTH_CODE_INVALID", "ACQ.BUYER_BALANCE_NOT_ENOUGH", "ACQ.BUYER_BANKCARD_BALANCE_NOT_ENOUGH",
    "ACQ.ERROR_BALANCE_PAYMENT_DISABLE", "ACQ.BUYER_SELLER_EQUAL", "ACQ.TRADE_BUYER_NOT_MATCH",
    "ACQ.BUYER_ENABLE_STATUS_FORBID", "ACQ.PAYMENT_FAIL", "ACQ.BUYER_PAYMENT_AMOUNT_DAY_LIMIT_ERROR",
    "ACQ.BUYER_PAYMENT_AMOUNT_MONTH_LIMIT_ERROR", "ACQ.PAYMENT_REQUEST_HAS_RISK",
    "ACQ.NO_PAYMENT_INSTRUMENTS_AVAILABLE", "ACQ.TOTAL_FEE_EXCEED",
)
OUTCOMES = ("SUCCESS", "INPROCESS", *DECLINES, "ACQ.SYSTEM_ERROR", "20000")
REFUND_ERRORS = ("ACQ.SELLER_BALANCE_NOT_ENOUGH", "ACQ.REASON_TRADE_BEEN_FREEZEN", "ACQ.TRADE_NOT_ALLOW_REFUND",
                 "ACQ.SYSTEM_ERROR", "20000")
AUTH_CODE_RE = r"^(?:2[5-9]|30)\d{14,22}$"
# Zero amounts the service adds to trade answers that did not pay.
ZERO_AMOUNTS = {"buyer_pay_amount": "0.00", "invoice_amount": "0.00", "point_amount": "0.00",
                "receipt_amount": "0.00"}


class SimError(Exception):
    """An answer other than 10000: ``code`` (40004 …), ``sub_code`` and ``sub_msg``.

    ``gateway`` errors are answered as ``error_response``; the others under the
    method's ``…_response``. ``extra`` fields are added to the answer.
    """

    def __init__(self, sub_code: str, sub_msg: str | None = None, *, code: str = "40004",
                 gateway: bool = False, extra: dict[str, Any] | None = None) -> None:
        self.code = code
        self.sub_code = sub_code
        self.sub_msg = sub_msg or SUB_MESSAGES.get(sub_code, sub_code)
        self.gateway = gateway
        self.extra = extra or {}
        super().__init__(f"{code} {sub_code}: {self.sub_msg}")

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "msg": CODE_MESSAGES.get(self.code, ""), "sub_code": self.sub_code,
                "sub_msg": self.sub_msg, **self.extra}


def invalid(message: str) -> SimError:
    return SimError("ACQ.INVALID_PARAMETER", f"参数无效：{message}")


def amount_of(value: Any, name: str) -> int:
    if isinstance(value, bool) or value is None or isinstance(value, float):
        raise invalid(f"{name} 格式错误")
    try:
        fen = yuan_to_fen(value if isinstance(value, (int, Decimal)) else str(value))
    except MoneyFormatError:
        raise invalid(f"{name} 格式错误") from None
    if not 1 <= fen <= 10_000_000_000:
        raise invalid(f"{name} 取值范围为[0.01,100000000]")
    return fen


def digits(n: int) -> str:
    return "".join(secrets.choice(string.digits) for _ in range(n))


def buyer_for(seed: str) -> tuple[str, str]:
    """A stable sandbox buyer for a seed: (buyer_user_id ``2088…``, masked logon id)."""
    h = int(hashlib.sha256(seed.encode()).hexdigest(), 16)
    return f"2088{h % 10**12:012d}", f"1{3 + h % 6}{h % 10}****{h % 10000:04d}"


def new_trade_no(now: dt.datetime) -> str:
    """28 digits: the date, ``22001`` and a serial (the service's layout)."""
    return now.strftime("%Y%m%d") + "22001" + digits(15)


def new_qr_code() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "https://qr.alipay.com/bax0" + "".join(secrets.choice(alphabet) for _ in range(21))


@dataclass
class SubMerchant:
    """A merchant that authorised the application (service-provider mode)."""

    app_auth_token: str
    pid: str
    auth_app_id: str


@dataclass
class SimMerchant:
    """One sandbox application: its keys, its merchant (PID) and one authorising sub-merchant."""

    app_id: str
    pid: str
    name: str
    app_key: rsa.RSAPrivateKey
    alipay_key: rsa.RSAPrivateKey
    sub: SubMerchant

    @classmethod
    def generate(cls, index: int) -> SimMerchant:
        return cls(
            app_id=crypto.new_app_id(), pid=crypto.new_pid(), name=f"沙箱医院{index + 1}",
            app_key=crypto.generate_private_key(), alipay_key=crypto.generate_private_key(),
            sub=SubMerchant(app_auth_token=f"202405BB{secrets.token_hex(16)}", pid=crypto.new_pid(),
                            auth_app_id=crypto.new_app_id()),
        )

    @property
    def app_public(self) -> rsa.RSAPublicKey:
        return self.app_key.public_key()

    def config(self, base_url: str) -> dict[str, Any]:
        """Settings valid for ``AlipayConfig``, pointing at the simulator."""
        return {
            "app_id": self.app_id,
            "app_private_key": crypto.private_key_pem(self.app_key, pkcs1=True),
            "alipay_public_key": crypto.public_key_pem(self.alipay_key),
            "gateway_url": f"{base_url}/gateway.do",
            "seller_id": self.pid,
            "sign_type": "RSA2",
        }

    def info(self, base_url: str) -> dict[str, Any]:
        return {
            **self.config(base_url),
            "name": self.name,
            "app_public_key": crypto.public_key_pem(self.app_key),
            "sample_buyer_id": buyer_for(self.app_id)[0],
            "sample_auth_code": "286543210987654321",
            "app_auth_token": self.sub.app_auth_token,
            "sub_seller_id": self.sub.pid,
        }


@dataclass
class Script:
    """The outcome of a future payment-code payment."""

    outcome: str = "SUCCESS"  # see OUTCOMES
    then: str = "success"  # after INPROCESS: success | fail | hang
    after_seconds: float = 5.0
    charged: bool = False  # ACQ.SYSTEM_ERROR / 20000: did the charge happen anyway?
    cancel_retry: bool = False  # INPROCESS: a cancel answers retry_flag=Y while the patient confirms
    auth_code: str | None = None
    times: int = 1
    id: str = field(default_factory=lambda: secrets.token_hex(4))

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "auth_code": self.auth_code, "outcome": self.outcome, "then": self.then,
                "after_seconds": self.after_seconds, "charged": self.charged, "cancel_retry": self.cancel_retry,
                "times": self.times}


# "Magic" payment codes: any valid code ending in these four digits.
MAGIC: dict[str, Script] = {
    "9001": Script("INPROCESS", then="success", after_seconds=5),
    "9002": Script("INPROCESS", then="success", after_seconds=20),
    "9003": Script("INPROCESS", then="fail", after_seconds=5),
    "9004": Script("INPROCESS", then="hang"),
    "9005": Script("INPROCESS", then="fail", after_seconds=5, cancel_retry=True),
    "9011": Script("ACQ.BUYER_BALANCE_NOT_ENOUGH"),
    "9012": Script("ACQ.PAYMENT_AUTH_CODE_INVALID"),
    "9013": Script("ACQ.BUYER_BANKCARD_BALANCE_NOT_ENOUGH"),
    "9014": Script("ACQ.PAYMENT_REQUEST_HAS_RISK"),
    "9015": Script("ACQ.BUYER_PAYMENT_AMOUNT_DAY_LIMIT_ERROR"),
    "9016": Script("ACQ.ERROR_BALANCE_PAYMENT_DISABLE"),
    "9021": Script("ACQ.SYSTEM_ERROR", charged=True),
    "9022": Script("ACQ.SYSTEM_ERROR", charged=False),
    "9023": Script("20000", charged=False),
    "9024": Script("20000", charged=True),
}
MAGIC_DOC = {
    "9001": "10003 order success pay inprocess, then TRADE_SUCCESS after 5 s",
    "9002": "10003, then TRADE_SUCCESS after 20 s",
    "9003": "10003, then the patient cancels after 5 s: TRADE_CLOSED",
    "9004": "10003 until paid/cancelled via /_sim or the prompt times out (60 s): TRADE_CLOSED",
    "9005": "10003; a cancel meanwhile answers ACQ.SYSTEM_ERROR retry_flag=Y; the patient cancels after 5 s",
    "9011": "40004 ACQ.BUYER_BALANCE_NOT_ENOUGH 买家余额不足",
    "9012": "40004 ACQ.PAYMENT_AUTH_CODE_INVALID",
    "9013": "40004 ACQ.BUYER_BANKCARD_BALANCE_NOT_ENOUGH 用户银行卡余额不足",
    "9014": "40004 ACQ.PAYMENT_REQUEST_HAS_RISK 支付有风险",
    "9015": "40004 ACQ.BUYER_PAYMENT_AMOUNT_DAY_LIMIT_ERROR 买家付款日限额超限",
    "9016": "40004 ACQ.ERROR_BALANCE_PAYMENT_DISABLE 余额支付功能关闭",
    "9021": "40004 ACQ.SYSTEM_ERROR but the patient IS charged: the query shows TRADE_SUCCESS",
    "9022": "40004 ACQ.SYSTEM_ERROR, nothing charged: the query shows ACQ.TRADE_NOT_EXIST",
    "9023": "20000 isp.unknow-error, nothing charged",
    "9024": "20000 isp.unknow-error but the patient IS charged",
}


@dataclass
class SimOrder:
    """A trade. ``state`` PRECREATED (a QR not yet scanned) is not a trade yet: queries don't see it."""

    app_id: str
    seller_id: str
    auth_app_id: str
    out_trade_no: str
    product: str  # FACE_TO_FACE_PAYMENT | JSAPI_PAY | QUICK_WAP_WAY
    total: int
    subject: str
    created_at: dt.datetime
    state: str = "WAIT_BUYER_PAY"  # PRECREATED WAIT_BUYER_PAY TRADE_SUCCESS TRADE_CLOSED TRADE_FINISHED
    trade_no: str = ""
    body: str = ""
    notify_url: str = ""
    store_id: str = ""
    terminal_id: str = ""
    auth_code: str = ""
    qr_code: str = ""
    buyer_user_id: str = ""
    buyer_logon_id: str = ""
    buyer_open_id: str = ""
    time_expire: dt.datetime | None = None
    paid_at: dt.datetime | None = None
    closed_at: dt.datetime | None = None
    paying: bool = False  # a bar_code payment waiting for the patient's password
    cancel_retry: bool = False
    pending_to: str = ""  # paying resolves to TRADE_SUCCESS or TRADE_CLOSED …
    pending_at: float = 0.0  # … at this monotonic time
    refunded: int = 0
    refunds: list[str] = field(default_factory=list)
    cancel_action: str = ""  # close | refund, once cancelled
    cancel_refund_at: dt.datetime | None = None

    @property
    def visible(self) -> bool:
        return self.state != "PRECREATED"

    @property
    def was_paid(self) -> bool:
        return self.paid_at is not None

    def amounts(self) -> dict[str, str]:
        if not self.was_paid:
            return dict(ZERO_AMOUNTS)
        paid = fen_to_yuan(self.total)
        return {"buyer_pay_amount": paid, "invoice_amount": paid, "point_amount": "0.00", "receipt_amount": paid}

    def buyer(self) -> dict[str, str]:
        out = {"buyer_logon_id": self.buyer_logon_id, "buyer_user_id": self.buyer_user_id}
        if self.buyer_open_id:
            out["buyer_open_id"] = self.buyer_open_id
        return {k: v for k, v in out.items() if v}

    def fund_bill_list(self) -> list[dict[str, str]]:
        return [{"fund_channel": "ALIPAYACCOUNT", "amount": fen_to_yuan(self.total)}] if self.was_paid else []

    def as_query(self) -> dict[str, Any]:
        """The fields of an ``alipay.trade.query`` answer."""
        out: dict[str, Any] = {"trade_no": self.trade_no, "out_trade_no": self.out_trade_no, **self.buyer(),
                               "trade_status": self.state, "total_amount": fen_to_yuan(self.total),
                               **self.amounts()}
        if self.was_paid:
            out["send_pay_date"] = format_time(self.paid_at)  # type: ignore[arg-type]
            out["fund_bill_list"] = self.fund_bill_list()
        if self.store_id:
            out["store_id"] = self.store_id
        if self.terminal_id:
            out["terminal_id"] = self.terminal_id
        return out

    def as_sim(self) -> dict[str, Any]:
        """The simulator's own view (control surface)."""
        return {**self.as_query(), "state": self.state, "product": self.product, "app_id": self.app_id,
                "seller_id": self.seller_id, "subject": self.subject, "body": self.body or None,
                "notify_url": self.notify_url or None, "auth_code": self.auth_code or None,
                "qr_code": self.qr_code or None, "paying": self.paying, "pending_to": self.pending_to or None,
                "refunded": fen_to_yuan(self.refunded), "refunds": list(self.refunds),
                "cancel_action": self.cancel_action or None, "created_at": format_time(self.created_at),
                "time_expire": format_time(self.time_expire) if self.time_expire else None}


@dataclass
class SimRefund:
    app_id: str
    seller_id: str
    out_trade_no: str
    trade_no: str
    out_request_no: str
    amount: int
    total: int
    reason: str
    created_at: dt.datetime
    settled_at: dt.datetime | None = None  # None while processing

    def as_query(self, options: list[str]) -> dict[str, Any]:
        """The fields of an ``alipay.trade.fastpay.refund.query`` answer."""
        out: dict[str, Any] = {"trade_no": self.trade_no, "out_trade_no": self.out_trade_no,
                               "out_request_no": self.out_request_no, "total_amount": fen_to_yuan(self.total),
                               "refund_amount": fen_to_yuan(self.amount)}
        if self.reason:
            out["refund_reason"] = self.reason
        if self.settled_at is not None:
            out["refund_status"] = "REFUND_SUCCESS"
            if "gmt_refund_pay" in options:
                out["gmt_refund_pay"] = format_time(self.settled_at)
        return out

    def as_sim(self) -> dict[str, Any]:
        return {**self.as_query(["gmt_refund_pay"]), "app_id": self.app_id, "seller_id": self.seller_id,
                "created_at": format_time(self.created_at)}
