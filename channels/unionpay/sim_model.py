"""Simulator data: sandbox merchants, transactions, scripted outcomes, ACP refusals."""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import string
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from . import crypto
from .wire import TXN_CONSUME, TXN_REFUND, TXN_UNDO, resp_message

TXN_NAMES = {TXN_CONSUME: "consume", TXN_REFUND: "refund", TXN_UNDO: "undo"}


class AcpError(Exception):
    """A synchronous refusal: the gateway answers ``respCode`` (signed) and records nothing."""

    def __init__(self, code: str, message: str | None = None) -> None:
        self.code = code
        self.message = message or resp_message(code)
        super().__init__(f"{code}: {self.message}")


def digits(n: int) -> str:
    return "".join(secrets.choice(string.digits) for _ in range(n))


def masked_card(seed: str) -> str:
    """A masked card number (帐号) stable for one payment code."""
    tail = int(hashlib.sha256(seed.encode()).hexdigest(), 16) % 10_000
    return f"621700******{tail:04d}"


@dataclass
class SimMerchant:
    mer_id: str
    name: str
    key: rsa.RSAPrivateKey
    cert_id: str

    @classmethod
    def generate(cls, index: int) -> SimMerchant:
        return cls(mer_id=f"7772900{index:02d}{digits(6)}", name=f"沙箱医院{index + 1}",
                   key=crypto.generate_private_key(), cert_id=crypto.new_cert_id())

    def config(self, base_url: str, unionpay_key_pem: str) -> dict[str, Any]:
        """Settings valid for ``UnionPayConfig``, pointing at the simulator."""
        return {
            "mer_id": self.mer_id,
            "cert_id": self.cert_id,
            "private_key": crypto.private_key_pem(self.key),
            "unionpay_public_key": unionpay_key_pem,
            "base_url": base_url,
            "file_transfer_url": base_url + "/",
        }

    def info(self, base_url: str, unionpay_key_pem: str, unionpay_cert_pem: str) -> dict[str, Any]:
        return {**self.config(base_url, unionpay_key_pem), "name": self.name,
                "merchant_public_key": crypto.public_key_pem(self.key),
                "unionpay_certificate": unionpay_cert_pem.replace("\r\n", "\n"),
                "sample_auth_code": "6212345678901230000"}


OUTCOMES = ("SUCCESS", "PROCESSING", "DECLINE", "REFUSE", "TIMEOUT", "BUSY")


@dataclass
class Script:
    """The outcome of a future payment-code consume.

    SUCCESS: accepted, succeeds. PROCESSING: accepted, processing (the patient confirms),
    then ``then`` (success | fail | hang) after ``after_seconds``. DECLINE: accepted, then
    fails with ``code``. REFUSE: refused at once with ``code`` (nothing recorded).
    TIMEOUT: answers 03, recorded and charged only if ``charged``. BUSY: answers 06.
    """

    outcome: str = "SUCCESS"
    code: str = ""
    then: str = "success"
    after_seconds: float = 5.0
    charged: bool = False
    auth_code: str | None = None
    times: int = 1
    id: str = field(default_factory=lambda: secrets.token_hex(4))

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "auth_code": self.auth_code, "outcome": self.outcome, "code": self.code or None,
                "then": self.then, "after_seconds": self.after_seconds, "charged": self.charged,
                "times": self.times}


# "Magic" payment codes: any valid code (62 + 17 digits) ending in these four digits.
MAGIC: dict[str, Script] = {
    "9001": Script("PROCESSING", then="success", after_seconds=5),
    "9002": Script("PROCESSING", then="success", after_seconds=20),
    "9003": Script("PROCESSING", then="fail", code="69", after_seconds=5),
    "9004": Script("PROCESSING", then="hang"),
    "9011": Script("DECLINE", code="64"),
    "9012": Script("DECLINE", code="63"),
    "9013": Script("DECLINE", code="65"),
    "9014": Script("REFUSE", code="30"),
    "9015": Script("REFUSE", code="38"),
    "9021": Script("TIMEOUT", charged=True),
    "9022": Script("TIMEOUT", charged=False),
    "9023": Script("BUSY"),
}
MAGIC_DOC = {
    "9001": "accepted (00); processing (origRespCode 05) 5 s, then success",
    "9002": "accepted; processing 20 s, then success",
    "9003": "accepted; processing 5 s, then fails 69 您的输入超时，交易失败",
    "9004": "accepted; processing until paid/failed via /_sim or the password prompt times out (60 s, then 69)",
    "9011": "accepted; then fails 64 卡上的余额不足",
    "9012": "accepted; then fails 63 卡状态不正确",
    "9013": "accepted; then fails 65 输入的密码、有效期或CVN2有误，交易失败",
    "9014": "refused at once: 30 交易未通过，请尝试使用其他银联卡支付或联系95516 (nothing recorded)",
    "9015": "refused at once: 38 银联风险受限 (nothing recorded)",
    "9021": "answers 03 交易通讯超时 but the patient IS charged: a query shows success",
    "9022": "answers 03 交易通讯超时, nothing recorded: a query answers 34",
    "9023": "answers 06 系统繁忙 (nothing recorded)",
}


@dataclass
class SimTxn:
    """One transaction at the simulated gateway (consume, refund or undo)."""

    mer_id: str
    order_id: str
    txn_time: str
    txn_type: str
    txn_sub_type: str
    biz_type: str
    amount: int
    accepted_at: dt.datetime
    back_url: str = ""
    req_reserved: str = ""
    term_id: str = ""
    qr_no: str = ""
    acc_no: str = ""
    orig_qry_id: str = ""
    orig_order_id: str = ""
    orig_trace_no: str = ""
    orig_trace_time: str = ""
    query_id: str = ""
    trace_no: str = field(default_factory=lambda: digits(6))
    state: str = "PROCESSING"  # PROCESSING | SUCCESS | FAILED
    result_code: str = "05"
    result_msg: str = ""
    completed_at: dt.datetime | None = None
    settle_date: dt.date | None = None
    fee: int = 0
    refunded: int = 0  # consume: refunds accepted and not failed
    refunds: list[str] = field(default_factory=list)
    undo_order: str = ""  # consume: the undo accepted for it
    pending_to: str = ""  # "00" or a failure code, due at pending_at (monotonic)
    pending_at: float = 0.0
    notifies: int = 0

    @property
    def kind(self) -> str:
        return TXN_NAMES.get(self.txn_type, self.txn_type)

    @property
    def moment(self) -> dt.datetime:
        return self.completed_at or self.accepted_at

    def fields(self) -> dict[str, str]:
        """What a query answer or a notify tells about this transaction."""
        out = {"merId": self.mer_id, "orderId": self.order_id, "txnTime": self.txn_time,
               "txnType": self.txn_type, "txnSubType": self.txn_sub_type, "bizType": self.biz_type,
               "txnAmt": str(self.amount), "currencyCode": "156", "queryId": self.query_id,
               "traceNo": self.trace_no, "traceTime": self.moment.strftime("%m%d%H%M%S")}
        if self.state == "SUCCESS" and self.settle_date is not None:
            out |= {"settleAmt": str(self.amount), "settleCurrencyCode": "156",
                    "settleDate": self.settle_date.strftime("%m%d")}
        if self.acc_no:
            out |= {"accNo": self.acc_no, "payCardType": "01"}
        if self.orig_qry_id:
            out["origQryId"] = self.orig_qry_id
        if self.req_reserved:
            out["reqReserved"] = self.req_reserved
        return out

    def as_sim(self) -> dict[str, Any]:
        """The simulator's own view (control surface)."""
        return {
            "kind": self.kind, "mer_id": self.mer_id, "order_id": self.order_id, "txn_time": self.txn_time,
            "txn_type": self.txn_type, "amount": self.amount, "query_id": self.query_id, "state": self.state,
            "result_code": self.result_code, "result_msg": self.result_msg or resp_message(self.result_code),
            "accepted_at": self.accepted_at.isoformat(),
            "completed_at": self.completed_at.isoformat() if self.completed_at else None,
            "settle_date": self.settle_date.isoformat() if self.settle_date else None, "fee": self.fee,
            "refunded": self.refunded, "refunds": list(self.refunds), "undo_order": self.undo_order or None,
            "orig_qry_id": self.orig_qry_id or None, "orig_order_id": self.orig_order_id or None,
            "qr_no": self.qr_no or None, "acc_no": self.acc_no or None, "back_url": self.back_url,
            "req_reserved": self.req_reserved or None, "pending_to": self.pending_to or None,
            "notifies": self.notifies,
        }
