"""WeChat Pay wire messages: v3 JSON models, v2 XML, status vocabularies.

The signing and encryption helpers live in ``crypto.py`` and are re-exported here,
so ``wire`` is the one import for everything that touches the wire format.
"""
from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict

from gateway.channel import RefundStatus, TradeStatus

from .crypto import (  # noqa: F401 - re-exported
    AUTH_SCHEMA,
    SIGNATURE_TYPE,
    TIMESTAMP_WINDOW,
    Authorization,
    SandboxKey,
    SignatureError,
    aes_gcm_decrypt,
    aes_gcm_encrypt,
    build_authorization,
    generate_private_key,
    jsapi_pay_sign,
    load_private_key,
    load_public_key,
    new_apiv3_key,
    new_nonce,
    new_pub_key_id,
    new_serial_no,
    parse_authorization,
    private_key_pem,
    public_key_pem,
    request_message,
    response_message,
    rsa_sign,
    rsa_verify,
    sha1_hex,
    signed_headers,
    timestamp_fresh,
    v2_sign,
    v2_sign_string,
    v2_verify,
    verify_signed,
)

CST = dt.timezone(dt.timedelta(hours=8), "CST")


def format_time(value: dt.datetime) -> str:
    """RFC 3339 in China time, as the service writes it: ``2024-05-01T10:00:00+08:00``."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=CST)
    return value.astimezone(CST).isoformat(timespec="seconds")


def parse_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    return dt.datetime.fromisoformat(text)


def parse_v2_time(text: str | None) -> dt.datetime | None:
    """v2 ``time_end``: ``yyyyMMddHHmmss`` in China time."""
    if not text:
        return None
    return dt.datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=CST)


def format_v2_time(value: dt.datetime) -> str:
    return value.astimezone(CST).strftime("%Y%m%d%H%M%S")


# --- v3 JSON models -----------------------------------------------------------------


class Wire(BaseModel):
    """Base of every wire model: unknown fields are kept (the service adds fields)."""

    model_config = ConfigDict(extra="allow")

    def dump(self) -> bytes:
        """Compact UTF-8 JSON, ``None`` fields left out: the exact bytes to sign and send."""
        return orjson.dumps(self.model_dump(exclude_none=True))


class Amount(Wire):
    total: int
    currency: str | None = "CNY"
    payer_total: int | None = None
    payer_currency: str | None = None


class Payer(Wire):
    openid: str | None = None
    sp_openid: str | None = None
    sub_openid: str | None = None
    auth_code: str | None = None


class StoreInfo(Wire):
    id: str
    name: str | None = None


class H5Info(Wire):
    type: str = "Wap"


class SceneInfo(Wire):
    payer_client_ip: str | None = None
    device_id: str | None = None
    device_ip: str | None = None
    store_info: StoreInfo | None = None
    h5_info: H5Info | None = None


class OrderRequest(Wire):
    """Body of jsapi / native / h5 / codepay (direct or partner form)."""

    appid: str | None = None
    mchid: str | None = None
    sp_appid: str | None = None
    sp_mchid: str | None = None
    sub_appid: str | None = None
    sub_mchid: str | None = None
    description: str
    out_trade_no: str
    time_expire: str | None = None
    attach: str | None = None
    notify_url: str | None = None
    amount: Amount
    payer: Payer | None = None
    scene_info: SceneInfo | None = None


class PrepayResponse(Wire):
    prepay_id: str | None = None
    code_url: str | None = None
    h5_url: str | None = None


class Transaction(Wire):
    appid: str | None = None
    mchid: str | None = None
    sp_appid: str | None = None
    sp_mchid: str | None = None
    sub_mchid: str | None = None
    out_trade_no: str
    transaction_id: str | None = None
    trade_type: str | None = None
    trade_state: str
    trade_state_desc: str | None = None
    bank_type: str | None = None
    attach: str | None = None
    success_time: str | None = None
    payer: Payer | None = None
    amount: Amount | None = None


class MerchantRef(Wire):
    """Body of close (``mchid``) and reverse (``appid``, ``mchid``)."""

    appid: str | None = None
    mchid: str | None = None
    sp_appid: str | None = None
    sp_mchid: str | None = None
    sub_mchid: str | None = None


class RefundAmount(Wire):
    refund: int
    total: int
    currency: str | None = "CNY"
    payer_total: int | None = None
    payer_refund: int | None = None
    settlement_total: int | None = None
    settlement_refund: int | None = None
    discount_refund: int | None = None


class RefundCreate(Wire):
    sub_mchid: str | None = None
    transaction_id: str | None = None
    out_trade_no: str | None = None
    out_refund_no: str
    reason: str | None = None
    notify_url: str | None = None
    funds_account: str | None = None
    amount: RefundAmount


class Refund(Wire):
    refund_id: str
    out_refund_no: str
    transaction_id: str | None = None
    out_trade_no: str | None = None
    channel: str | None = None
    user_received_account: str | None = None
    success_time: str | None = None
    create_time: str | None = None
    status: str
    funds_account: str | None = None
    amount: RefundAmount


class RefundNotice(Wire):
    """Decrypted resource of a ``REFUND.*`` notify."""

    mchid: str | None = None
    sp_mchid: str | None = None
    sub_mchid: str | None = None
    out_trade_no: str
    transaction_id: str | None = None
    out_refund_no: str
    refund_id: str
    refund_status: str
    success_time: str | None = None
    user_received_account: str | None = None
    amount: RefundAmount


class ErrorBody(Wire):
    code: str
    message: str = ""


class EncryptedResource(Wire):
    algorithm: str
    ciphertext: str
    nonce: str
    associated_data: str | None = ""
    original_type: str | None = None


class NotifyEnvelope(Wire):
    id: str
    create_time: str | None = None
    event_type: str
    resource_type: str
    summary: str | None = None
    resource: EncryptedResource


class TradeBillAnswer(Wire):
    hash_type: str
    hash_value: str
    download_url: str


# --- vocabularies ---------------------------------------------------------------------

TRADE_STATES: dict[str, TradeStatus] = {
    "SUCCESS": TradeStatus.SUCCEEDED,
    "REFUND": TradeStatus.REFUNDED,
    "NOTPAY": TradeStatus.PENDING,
    "CLOSED": TradeStatus.CLOSED,
    "REVOKED": TradeStatus.REVERSED,
    "USERPAYING": TradeStatus.PAYING,
    "PAYERROR": TradeStatus.FAILED,
}


def trade_status(state: str | None) -> TradeStatus:
    """Map a wire ``trade_state`` to the core vocabulary; unknown → PENDING, never FAILED."""
    return TRADE_STATES.get((state or "").upper(), TradeStatus.PENDING)


REFUND_STATES: dict[str, RefundStatus] = {
    "SUCCESS": RefundStatus.SUCCEEDED,
    "CLOSED": RefundStatus.FAILED,
    "PROCESSING": RefundStatus.PROCESSING,
    # ABNORMAL: the money is stuck (the payer's card was cancelled) and the merchant
    # must handle it by hand; it is neither done nor failed, so it stays PROCESSING
    # and the adapter reports error_code="ABNORMAL".
    "ABNORMAL": RefundStatus.PROCESSING,
}


def refund_status(state: str | None) -> RefundStatus:
    return REFUND_STATES.get((state or "").upper(), RefundStatus.PROCESSING)


# Payment-code answers that prove nothing was charged (the patient sees a decline).
CODEPAY_DECLINES = frozenset({
    "AUTH_CODE_INVALID", "AUTH_CODE_ERROR", "AUTHCODEEXPIRE", "NOTENOUGH", "NOTSUPORTCARD",
    "BUYER_MISMATCH", "TRADE_ERROR", "PAYER_ACCOUNT_ABNORMAL", "ORDERCLOSED", "ORDERREVERSED",
    "PARAM_ERROR", "INVALID_REQUEST", "SIGN_ERROR", "APPID_MCHID_NOT_MATCH", "MCH_NOT_EXISTS",
    "NO_AUTH", "RULE_LIMIT", "OUT_TRADE_NO_USED", "XML_FORMAT_ERROR", "LACK_PARAMS",
    "REQUIRE_POST_METHOD", "POST_DATA_EMPTY", "NOT_UTF8", "APPID_NOT_EXIST", "MCHID_NOT_EXIST",
})
# Answers after which the outcome is unknown: query later.
RETRYABLE_CODES = frozenset({"SYSTEMERROR", "SYSTEM_ERROR", "BANKERROR", "FREQUENCY_LIMITED"})
# Refund answers that prove no refund was made.
REFUND_DECLINES = frozenset({
    "INVALID_REQUEST", "PARAM_ERROR", "NOT_ENOUGH", "USER_ACCOUNT_ABNORMAL", "RESOURCE_NOT_EXISTS",
    "NO_AUTH", "MCH_NOT_EXISTS", "SIGN_ERROR", "ORDER_NOT_EXIST",
})


# --- v2 XML ---------------------------------------------------------------------------

_XML_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def to_xml(params: Mapping[str, Any]) -> bytes:
    """``<xml><k><![CDATA[v]]></k>…</xml>`` (empty values left out)."""
    parts = ["<xml>"]
    for key, value in params.items():
        if value is None or value == "":
            continue
        if not _XML_KEY.match(key):
            raise ValueError(f"bad XML field name {key!r}")
        text = str(value).replace("]]>", "]]]]><![CDATA[>")
        parts.append(f"<{key}><![CDATA[{text}]]></{key}>")
    parts.append("</xml>")
    return "".join(parts).encode()


def from_xml(data: bytes | str) -> dict[str, str]:
    """Parse a flat v2 ``<xml>`` document; DTDs are refused (no entity tricks)."""
    raw = data.encode() if isinstance(data, str) else data
    if b"<!DOCTYPE" in raw.upper() or b"<!ENTITY" in raw.upper():
        raise ValueError("XML with a DTD is refused")
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise ValueError(f"malformed XML: {exc}") from exc
    if root.tag != "xml":
        raise ValueError(f"unexpected XML root <{root.tag}>")
    return {child.tag: (child.text or "") for child in root}


class V2Answer(Wire):
    """A v2 payment-code family answer (micropay, orderquery, reverse)."""

    return_code: str
    return_msg: str | None = None
    result_code: str | None = None
    err_code: str | None = None
    err_code_des: str | None = None
    appid: str | None = None
    mch_id: str | None = None
    out_trade_no: str | None = None
    transaction_id: str | None = None
    trade_type: str | None = None
    trade_state: str | None = None
    trade_state_desc: str | None = None
    bank_type: str | None = None
    total_fee: str | None = None
    cash_fee: str | None = None
    openid: str | None = None
    time_end: str | None = None
    recall: str | None = None
