"""Simulator data: sandbox merchants, orders, refunds, error table, scripted outcomes."""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import string
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from . import crypto
from .wire import format_time

# code -> (HTTP status, message as the service words it)
ERRORS: dict[str, tuple[int, str]] = {
    "SIGN_ERROR": (401, "签名错误，验签失败"),
    "PARAM_ERROR": (400, "参数错误"),
    "INVALID_REQUEST": (400, "无效请求"),
    "APPID_MCHID_NOT_MATCH": (400, "AppID和mch_id不匹配"),
    "MCH_NOT_EXISTS": (400, "商户号不存在"),
    "ORDER_NOT_EXIST": (404, "订单不存在"),
    "RESOURCE_NOT_EXISTS": (404, "退款单不存在"),
    "ORDERPAID": (400, "订单已支付"),
    "ORDERCLOSED": (400, "订单已关闭"),
    "ORDERREVERSED": (400, "订单已撤销"),
    "USERPAYING": (403, "需要用户输入支付密码"),
    "AUTH_CODE_INVALID": (400, "请扫描微信支付授权码(以10/11/12/13/14/15为前缀的18位数字)"),
    "AUTHCODEEXPIRE": (403, "二维码已过期，请用户在微信上刷新后再试"),
    "NOTENOUGH": (403, "用户余额不足"),
    "NOTSUPORTCARD": (403, "不支持卡类型"),
    "BUYER_MISMATCH": (403, "支付帐号错误"),
    "TRADE_ERROR": (403, "交易错误"),
    "REVERSE_EXPIRE": (403, "订单已超过撤销期限"),
    "NOT_ENOUGH": (403, "基本账户余额不足，请充值后重新发起"),
    "NO_STATEMENT_EXIST": (400, "账单文件不存在"),
    "FREQUENCY_LIMITED": (429, "频率超限"),
    "SYSTEMERROR": (500, "系统错误"),
    "SYSTEM_ERROR": (500, "系统错误"),
    "BANKERROR": (500, "银行系统异常"),
}
DECLINES = ("AUTH_CODE_INVALID", "AUTHCODEEXPIRE", "NOTENOUGH", "NOTSUPORTCARD", "BUYER_MISMATCH",
            "TRADE_ERROR")
OUTCOMES = ("SUCCESS", "USERPAYING", *DECLINES, "SYSTEMERROR", "BANKERROR")
STATE_DESC = {
    "SUCCESS": "支付成功",
    "REFUND": "转入退款",
    "NOTPAY": "未支付",
    "CLOSED": "已关闭",
    "REVOKED": "已撤销（付款码支付）",
    "USERPAYING": "用户支付中（付款码支付）",
    "PAYERROR": "支付失败(其他原因，如银行返回失败)",
}
AUTH_CODE_RE = r"^1[0-5]\d{16}$"


class SimError(Exception):
    """A business error the simulator answers with ``{"code", "message"}``."""

    def __init__(self, code: str, message: str | None = None, status: int | None = None) -> None:
        default_status, default_message = ERRORS.get(code, (400, code))
        self.code = code
        self.message = message or default_message
        self.status = status or default_status
        super().__init__(f"{self.code}: {self.message}")

    def body(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def digits(n: int) -> str:
    return "".join(secrets.choice(string.digits) for _ in range(n))


def openid_for(seed: str) -> str:
    return "o" + hashlib.sha1(seed.encode()).hexdigest()[:27]  # noqa: S324 - a sandbox id


@dataclass
class SimMerchant:
    mchid: str
    appid: str
    name: str
    merchant_key: rsa.RSAPrivateKey
    merchant_serial: str
    apiv3_key: str
    api_v2_key: str
    platform_key: rsa.RSAPrivateKey
    pub_key_id: str

    @classmethod
    def generate(cls, index: int) -> SimMerchant:
        return cls(
            mchid=f"19{index:02d}{digits(6)}",
            appid="wx" + secrets.token_hex(8),
            name=f"沙箱医院{index + 1}",
            merchant_key=crypto.generate_private_key(),
            merchant_serial=crypto.new_serial_no(),
            apiv3_key=crypto.new_apiv3_key(),
            api_v2_key=crypto.new_apiv3_key(),
            platform_key=crypto.generate_private_key(),
            pub_key_id=crypto.new_pub_key_id(),
        )

    @property
    def merchant_public(self) -> rsa.RSAPublicKey:
        return self.merchant_key.public_key()

    def config(self, base_url: str) -> dict[str, Any]:
        """Settings valid for ``WeChatPayConfig``, pointing at the simulator."""
        return {
            "mchid": self.mchid,
            "appid": self.appid,
            "serial_no": self.merchant_serial,
            "private_key": crypto.private_key_pem(self.merchant_key),
            "apiv3_key": self.apiv3_key,
            "platform_public_key": crypto.public_key_pem(self.platform_key),
            "platform_public_key_id": self.pub_key_id,
            "base_url": base_url,
            "api_v2_key": self.api_v2_key,
        }

    def info(self, base_url: str) -> dict[str, Any]:
        return {
            **self.config(base_url),
            "name": self.name,
            "merchant_public_key": crypto.public_key_pem(self.merchant_key),
            "sample_openid": openid_for(self.mchid),
            "sample_auth_code": "134567890123450000",
        }


@dataclass
class Script:
    """The outcome of a future payment-code payment."""

    outcome: str = "SUCCESS"
    then: str = "success"  # after USERPAYING: success | fail | hang
    after_seconds: float = 5.0
    charged: bool = False  # SYSTEMERROR/BANKERROR: did the charge happen anyway?
    auth_code: str | None = None
    times: int = 1
    id: str = field(default_factory=lambda: secrets.token_hex(4))

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "auth_code": self.auth_code, "outcome": self.outcome, "then": self.then,
                "after_seconds": self.after_seconds, "charged": self.charged, "times": self.times}


# "Magic" payment codes: any valid code ending in these four digits.
MAGIC: dict[str, Script] = {
    "9001": Script("USERPAYING", then="success", after_seconds=5),
    "9002": Script("USERPAYING", then="success", after_seconds=20),
    "9003": Script("USERPAYING", then="fail", after_seconds=5),
    "9004": Script("USERPAYING", then="hang"),
    "9011": Script("NOTENOUGH"),
    "9012": Script("AUTHCODEEXPIRE"),
    "9013": Script("NOTSUPORTCARD"),
    "9014": Script("BUYER_MISMATCH"),
    "9015": Script("AUTH_CODE_INVALID"),
    "9021": Script("SYSTEMERROR", charged=True),
    "9022": Script("SYSTEMERROR", charged=False),
    "9023": Script("BANKERROR", charged=False),
}
MAGIC_DOC = {
    "9001": "USERPAYING (HTTP 202), then SUCCESS after 5 s",
    "9002": "USERPAYING, then SUCCESS after 20 s",
    "9003": "USERPAYING, then PAYERROR (patient cancels) after 5 s",
    "9004": "USERPAYING until paid/failed via /_sim or the password prompt times out (60 s)",
    "9011": "NOTENOUGH 用户余额不足",
    "9012": "AUTHCODEEXPIRE 二维码已过期",
    "9013": "NOTSUPORTCARD 不支持卡类型",
    "9014": "BUYER_MISMATCH 支付帐号错误",
    "9015": "AUTH_CODE_INVALID",
    "9021": "SYSTEMERROR (HTTP 500) but the patient IS charged: query shows SUCCESS",
    "9022": "SYSTEMERROR (HTTP 500), nothing charged: query shows ORDER_NOT_EXIST",
    "9023": "BANKERROR (HTTP 500), order ends PAYERROR",
}


@dataclass
class SimOrder:
    mchid: str
    appid: str
    out_trade_no: str
    trade_type: str  # JSAPI NATIVE MWEB MICROPAY
    total: int
    description: str
    created_at: dt.datetime
    sub_mchid: str = ""
    sub_appid: str = ""
    state: str = "NOTPAY"
    state_desc: str = ""
    transaction_id: str = field(default_factory=lambda: "42000" + digits(23))
    notify_url: str = ""
    attach: str = ""
    openid: str = ""
    auth_code: str = ""
    device_id: str = ""
    time_expire: dt.datetime | None = None
    success_time: dt.datetime | None = None
    revoked_at: dt.datetime | None = None
    reverse_refund_id: str = ""
    bank_type: str = ""
    prepay_id: str = ""
    code_url: str = ""
    h5_url: str = ""
    refunded: int = 0
    refunds: list[str] = field(default_factory=list)
    pending_to: str = ""  # USERPAYING resolves to SUCCESS or PAYERROR …
    pending_at: float = 0.0  # … at this loop time
    api: str = "v3"

    @property
    def partner(self) -> bool:
        return bool(self.sub_mchid)

    @property
    def was_paid(self) -> bool:
        return self.success_time is not None

    def as_transaction(self) -> dict[str, Any]:
        out: dict[str, Any] = (
            {"sp_appid": self.appid, "sp_mchid": self.mchid, "sub_mchid": self.sub_mchid}
            if self.partner else {"appid": self.appid, "mchid": self.mchid}
        )
        if self.partner and self.sub_appid:
            out["sub_appid"] = self.sub_appid
        out |= {"out_trade_no": self.out_trade_no, "trade_type": self.trade_type,
                "trade_state": self.state, "trade_state_desc": self.state_desc or STATE_DESC[self.state]}
        if self.state not in ("NOTPAY", "CLOSED") or self.was_paid:
            out["transaction_id"] = self.transaction_id
        if self.attach:
            out["attach"] = self.attach
        if self.was_paid:
            out["bank_type"] = self.bank_type or "OTHERS"
            out["success_time"] = format_time(self.success_time)  # type: ignore[arg-type]
            out["payer"] = {"sp_openid": self.openid} if self.partner else {"openid": self.openid}
        amount: dict[str, Any] = {"total": self.total, "currency": "CNY"}
        if self.was_paid:
            amount |= {"payer_total": self.total, "payer_currency": "CNY"}
        out["amount"] = amount
        if self.device_id:
            out["scene_info"] = {"device_id": self.device_id}
        out["promotion_detail"] = []
        return out

    def as_sim(self) -> dict[str, Any]:
        """The simulator's own view (control surface)."""
        return {**self.as_transaction(), "refunded": self.refunded, "refunds": list(self.refunds),
                "notify_url": self.notify_url, "auth_code": self.auth_code, "openid": self.openid,
                "pending_to": self.pending_to or None, "api": self.api,
                "created_at": format_time(self.created_at),
                "time_expire": format_time(self.time_expire) if self.time_expire else None}


@dataclass
class SimRefund:
    mchid: str
    sub_mchid: str
    out_refund_no: str
    out_trade_no: str
    transaction_id: str
    amount: int
    total: int
    reason: str
    notify_url: str
    created_at: dt.datetime
    status: str = "PROCESSING"
    success_time: dt.datetime | None = None
    refund_id: str = field(default_factory=lambda: "50" + digits(27))

    def as_refund(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "refund_id": self.refund_id, "out_refund_no": self.out_refund_no,
            "transaction_id": self.transaction_id, "out_trade_no": self.out_trade_no,
            "channel": "ORIGINAL", "user_received_account": "支付用户零钱",
            "create_time": format_time(self.created_at), "status": self.status,
            "funds_account": "AVAILABLE",
            "amount": {"total": self.total, "refund": self.amount, "payer_total": self.total,
                       "payer_refund": self.amount, "settlement_total": self.total,
                       "settlement_refund": self.amount, "discount_refund": 0, "currency": "CNY",
                       "refund_fee": 0},
            "promotion_detail": [],
        }
        if self.success_time:
            out["success_time"] = format_time(self.success_time)
        return out

    def as_notice(self, mchid_field: dict[str, str]) -> dict[str, Any]:
        out: dict[str, Any] = {
            **mchid_field, "out_trade_no": self.out_trade_no, "transaction_id": self.transaction_id,
            "out_refund_no": self.out_refund_no, "refund_id": self.refund_id,
            "refund_status": self.status, "user_received_account": "支付用户零钱",
            "amount": {"total": self.total, "refund": self.amount, "payer_total": self.total,
                       "payer_refund": self.amount},
        }
        if self.success_time:
            out["success_time"] = format_time(self.success_time)
        return out
