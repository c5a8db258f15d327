"""Simulator data: sandbox merchants, orders, refunds, scripted outcomes, magic codes."""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import string
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from . import crypto
from .wire import BANK_ID, ERRORS, FAIL_CODES, REFUND_FAIL_CODES, SUB_STATUS_TEXT, format_time, yuan

OPERATORS = ("ICBC", "ABC", "BOC", "CCB", "BOCOM", "PSBC", "CMB", "MYBANK", "WEBANK")


class SimError(Exception):
    """An error answer ``{"code", "message"}`` with the HTTP status the bank uses for it."""

    def __init__(self, code: str, message: str | None = None, status: int | None = None) -> None:
        default_status, default_message = ERRORS.get(code, (200, code))
        self.code = code
        self.message = message or default_message
        self.status = status or default_status
        super().__init__(f"{code}: {self.message}")

    def body(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def digits(n: int) -> str:
    return "".join(secrets.choice(string.digits) for _ in range(n))


def _hash_digits(seed: str, n: int) -> str:
    h = int(hashlib.sha256(seed.encode()).hexdigest(), 16)
    return str(h)[-n:].rjust(n, "0")


def wallet_for(auth_code: str) -> tuple[str, str, str]:
    """The (masked wallet id, wallet level, operator) behind a payment code (stable per code)."""
    number = "0" + _hash_digits("wallet:" + auth_code, 15)
    level = str(int(_hash_digits("level:" + auth_code, 2)) % 4 + 1)
    operator = OPERATORS[int(_hash_digits("op:" + auth_code, 3)) % len(OPERATORS)]
    return number[:4] + "*" * 8 + number[-4:], level, operator


@dataclass
class SimMerchant:
    merchant_id: str
    name: str
    key_id: str
    merchant_key: rsa.RSAPrivateKey

    @classmethod
    def generate(cls, index: int) -> SimMerchant:
        return cls(merchant_id=f"898{index:02d}{digits(10)}", name=f"沙箱医院{index + 1}",
                   key_id=crypto.new_key_id("MK"), merchant_key=crypto.generate_private_key())

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self.merchant_key.public_key()

    def bank_config(self, base_url: str, bank_key: rsa.RSAPrivateKey, bank_key_id: str) -> dict[str, Any]:
        """Settings valid for ``RefBankConfig``, pointing at the simulator."""
        return {
            "merchant_id": self.merchant_id,
            "key_id": self.key_id,
            "private_key": crypto.private_key_pem(self.merchant_key),
            "bank_public_key": crypto.public_key_pem(bank_key),
            "bank_key_id": bank_key_id,
            "base_url": base_url,
        }

    def config(self, base_url: str, bank_key: rsa.RSAPrivateKey, bank_key_id: str) -> dict[str, Any]:
        """Settings valid for ``EcnyConfig``."""
        return {"bank": BANK_ID, "bank_config": self.bank_config(base_url, bank_key, bank_key_id)}


@dataclass
class Script:
    """The outcome of a future payment-code payment."""

    outcome: str = "SUCCESS"
    then: str = "success"  # after PAYING: success | fail | hang
    sub_status: str = "USER_CONFIRMING"  # PAYING: USER_CONFIRMING | PROCESSING
    after_seconds: float = 5.0
    fail_code: str | None = None  # after PAYING → fail: the code (default USER_CANCELLED / CENTER_ERROR)
    charged: bool = False  # SYSTEM_ERROR / CENTER_TIMEOUT: did the charge happen anyway?
    auth_code: str | None = None
    times: int = 1
    id: str = field(default_factory=lambda: secrets.token_hex(4))

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "auth_code": self.auth_code, "outcome": self.outcome, "then": self.then,
                "sub_status": self.sub_status, "after_seconds": self.after_seconds, "fail_code": self.fail_code,
                "charged": self.charged, "times": self.times}


DECLINES = ("BALANCE_NOT_ENOUGH", "PAYCODE_EXPIRED", "WALLET_LIMIT_EXCEEDED", "WALLET_FROZEN", "RISK_REJECTED")
UNKNOWN = ("SYSTEM_ERROR", "CENTER_TIMEOUT")
OUTCOMES = ("SUCCESS", "PAYING", *DECLINES, "PAYCODE_INVALID", *UNKNOWN)

# "Magic" payment codes: any valid code (19 digits, 01…) ending in these four digits.
MAGIC: dict[str, Script] = {
    "9001": Script("PAYING", then="success", after_seconds=5),
    "9002": Script("PAYING", then="success", after_seconds=20),
    "9003": Script("PAYING", then="fail", after_seconds=5, fail_code="USER_CANCELLED"),
    "9004": Script("PAYING", then="hang"),
    "9005": Script("PAYING", then="success", sub_status="PROCESSING", after_seconds=3),
    "9006": Script("PAYING", then="fail", sub_status="PROCESSING", after_seconds=5, fail_code="CENTER_ERROR"),
    "9011": Script("BALANCE_NOT_ENOUGH"),
    "9012": Script("PAYCODE_EXPIRED"),
    "9013": Script("WALLET_LIMIT_EXCEEDED"),
    "9014": Script("WALLET_FROZEN"),
    "9015": Script("PAYCODE_INVALID"),
    "9016": Script("RISK_REJECTED"),
    "9021": Script("SYSTEM_ERROR", charged=True),
    "9022": Script("SYSTEM_ERROR", charged=False),
    "9023": Script("CENTER_TIMEOUT", charged=False),
    "9024": Script("CENTER_TIMEOUT", charged=True),
}
MAGIC_DOC = {
    "9001": "PAYING/USER_CONFIRMING, then SUCCESS after 5 s",
    "9002": "PAYING/USER_CONFIRMING, then SUCCESS after 20 s",
    "9003": "PAYING/USER_CONFIRMING, then FAIL USER_CANCELLED after 5 s",
    "9004": "PAYING/USER_CONFIRMING until paid/failed via /_sim, revoked, or the prompt times out (60 s)",
    "9005": "PAYING/PROCESSING (revoke answers TRADE_PROCESSING), then SUCCESS after 3 s",
    "9006": "PAYING/PROCESSING, then FAIL CENTER_ERROR after 5 s",
    "9011": "FAIL BALANCE_NOT_ENOUGH 钱包余额不足",
    "9012": "FAIL PAYCODE_EXPIRED 付款码已过期",
    "9013": "FAIL WALLET_LIMIT_EXCEEDED 超出钱包支付限额",
    "9014": "FAIL WALLET_FROZEN 钱包状态异常",
    "9015": "PAYCODE_INVALID (request refused, no order)",
    "9016": "FAIL RISK_REJECTED 交易存在风险",
    "9021": "SYSTEM_ERROR (HTTP 500) but the patient IS charged: query shows SUCCESS",
    "9022": "SYSTEM_ERROR (HTTP 500), nothing charged: query shows ORDER_NOT_FOUND",
    "9023": "CENTER_TIMEOUT (result unknown), the order ends FAIL CENTER_ERROR",
    "9024": "CENTER_TIMEOUT (result unknown), but the patient IS charged",
}


@dataclass
class SimOrder:
    merchant_id: str
    out_trade_no: str
    trade_type: str  # CODEPAY | QRPAY
    amount: int
    subject: str
    created_at: dt.datetime
    attach: str = ""
    notify_url: str = ""
    device_id: str = ""
    store_id: str = ""
    auth_code: str = ""
    status: str = "WAIT_PAY"
    sub_status: str = ""
    bank_trade_no: str = ""
    fail_code: str = ""
    fail_reason: str = ""
    pay_time: dt.datetime | None = None
    expire_time: dt.datetime | None = None
    revoke_time: dt.datetime | None = None
    revoke_serial: str = ""
    wallet_id: str = ""
    wallet_level: str = ""
    wallet_operator: str = ""
    qr_token: str = ""
    qr_code: str = ""
    fee: int = 0
    fee_returned: int = 0
    refunded: int = 0  # accepted refunds (processing or done)
    refunds: list[str] = field(default_factory=list)
    pending_to: str = ""  # PAYING resolves to SUCCESS or FAIL …
    pending_code: str = ""  # … with this fail code …
    pending_at: float = 0.0  # … at this monotonic time

    @property
    def was_paid(self) -> bool:
        return self.pay_time is not None

    def as_trade(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "merchant_id": self.merchant_id, "out_trade_no": self.out_trade_no, "bank_trade_no": self.bank_trade_no,
            "trade_type": self.trade_type, "trade_status": self.status, "amount": yuan(self.amount),
            "refunded_amount": yuan(self.refunded), "currency": "CNY", "subject": self.subject,
            "create_time": format_time(self.created_at),
        }
        if self.status == "PAYING" and self.sub_status:
            out["sub_status"] = self.sub_status
        if self.attach:
            out["attach"] = self.attach
        if self.pay_time:
            out["pay_time"] = format_time(self.pay_time)
        if self.expire_time and self.trade_type == "QRPAY":
            out["expire_time"] = format_time(self.expire_time)
        if self.wallet_id and (self.was_paid or self.status in ("PAYING", "FAIL")):
            out |= {"wallet_id": self.wallet_id, "wallet_level": self.wallet_level,
                    "wallet_operator": self.wallet_operator}
        if self.status == "FAIL":
            out |= {"fail_code": self.fail_code, "fail_reason": self.fail_reason or FAIL_CODES.get(self.fail_code, "")}
        if self.qr_code:
            out["qr_code"] = self.qr_code
        if self.device_id:
            out["device_id"] = self.device_id
        if self.store_id:
            out["store_id"] = self.store_id
        return out

    def as_sim(self) -> dict[str, Any]:
        """The simulator's own view (control surface)."""
        return {**self.as_trade(), "auth_code": self.auth_code or None, "notify_url": self.notify_url or None,
                "refunds": list(self.refunds), "fee": yuan(self.fee),
                "pending_to": self.pending_to or None,
                "sub_status_text": SUB_STATUS_TEXT.get(self.sub_status) if self.status == "PAYING" else None,
                "revoke_time": format_time(self.revoke_time) if self.revoke_time else None}


@dataclass
class SimRefund:
    merchant_id: str
    out_refund_no: str
    out_trade_no: str
    bank_trade_no: str
    amount: int
    total: int
    reason: str
    notify_url: str
    apply_time: dt.datetime
    bank_refund_no: str
    status: str = "PROCESSING"
    refund_time: dt.datetime | None = None
    fail_code: str = ""
    fee_returned: int = 0

    def as_refund(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "merchant_id": self.merchant_id, "out_trade_no": self.out_trade_no, "bank_trade_no": self.bank_trade_no,
            "out_refund_no": self.out_refund_no, "bank_refund_no": self.bank_refund_no,
            "refund_amount": yuan(self.amount), "total_amount": yuan(self.total), "refund_status": self.status,
            "apply_time": format_time(self.apply_time),
        }
        if self.reason:
            out["reason"] = self.reason
        if self.refund_time:
            out["refund_time"] = format_time(self.refund_time)
        if self.status == "FAIL":
            out |= {"fail_code": self.fail_code, "fail_reason": REFUND_FAIL_CODES.get(self.fail_code, "退款失败")}
        return out
