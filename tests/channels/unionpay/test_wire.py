"""Wire-level unit tests: the signature vector computed by hand, encodings, times, ids."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from channels.unionpay import crypto, wire
from channels.unionpay.wire import CST

# A throw-away 1024-bit test key: PKCS#1 v1.5 signatures are deterministic, so the
# signature below is a fixed vector.
TEST_KEY_PEM = """-----BEGIN PRIVATE KEY-----
MIICdgIBADANBgkqhkiG9w0BAQEFAASCAmAwggJcAgEAAoGBAMvwgGvzK5d2E6yN
aC8L0Pu9ddouaQJtGwnaGS434yeJaaKD1cL0wV71MelFwrCz6C7Y6dN9+hf6f0SF
lGaZ7i9QBm785RWajv4tdu8R0Q9E4tppC+/49Yc+1ZgvVsNMnfI0OVEtBexxmdTC
ePUJvX7cK9Q6nPlmryOmOMnwLlt5AgMBAAECgYARj1zPbrnDKeSZx/c/jcnp0y9x
oOtjzRc16vSeGSvS/K7+0lE2nzKDRaONjXctFeCZIA5KKp+9LtGEief0Sa7LdqxJ
3d0R8KRdNuKH3bPYAYTPmFaC+7C5crwft1lZr1HDn1JRz5oJJRu0jZHmJHFkzjFX
i5qugZlQBCNPOqTe/QJBAPTOQY6fPOqK/2uixok+Zk+Yy96Qt6DeLjWckAhG1nwr
Jt65iDUrOh8ny6fllLYrgopnKlP5i8jVxWSVdP2VC9cCQQDVQ9t+MvutgbXu+rsO
DXqT5ZyHkrSAY7FAf3b1yrHxugV9Pgs0vglrCmPHIJFxNxs7fKJrAYMbecEWncfQ
+mkvAkAppVD3v1UwnVbYa8eUn33uOpMsGLh0cHex/SFvlwVz+C9TooJucR0hIbb+
qArFdt9tRiGoSYKjNuKuutI9NXbfAkEAyOzqseZ0yg6IC0S80UuPriHJLM3iM4g5
amvs9zvmFLlPDKVUx3c3xlp+kRA1FzZ0+MG/ABPnow4+BgHXTSNvzwJAGNLxNt48
OUX+8xh3J66vTatrcWx0vIn9WR6FgRO2bCtKJIPmL54beydxM7lmqnTA4B1EOCT4
vWQryQK/z2b/pg==
-----END PRIVATE KEY-----
"""
KEY = crypto.load_private_key(TEST_KEY_PEM)
OTHER = crypto.generate_private_key()

CONSUME = {
    "version": "5.1.0", "encoding": "UTF-8", "certId": "68759663125", "signMethod": "01",
    "txnType": "01", "txnSubType": "06", "bizType": "000000", "channelType": "08", "accessType": "0",
    "merId": "777290058110048", "orderId": "P20240501023015a1b2c3d4e5", "txnTime": "20240501103015",
    "txnAmt": "1500", "currencyCode": "156", "qrNo": "6225000000000000001",
    "backUrl": "https://his.example.org/v1/notify/unionpay/mch_1", "riskRateInfo": "{commodityName=挂号费}",
}
# written out by hand: every field but signature, sorted by name, k=v joined by &
SIGN_STRING = (
    "accessType=0&backUrl=https://his.example.org/v1/notify/unionpay/mch_1&bizType=000000&certId=68759663125"
    "&channelType=08&currencyCode=156&encoding=UTF-8&merId=777290058110048&orderId=P20240501023015a1b2c3d4e5"
    "&qrNo=6225000000000000001&riskRateInfo={commodityName=挂号费}&signMethod=01&txnAmt=1500&txnSubType=06"
    "&txnTime=20240501103015&txnType=01&version=5.1.0"
)
DIGEST = "4c0459c71799fecbda8410c6ca2df993af52c709e8e0ea54a65ac41270de6948"
SIGNATURE = (
    "TKthXC2KTkRrV96AuwTBBtvg+MbNPVoOn0hl97AZO+wjqqrWXIxMU5DOHps88oDKV8lRPQK+IROtMh+hoGV3gUa0NQ6Bbc+7jxCdt"
    "vb8g+l4Y8iv5fbKqIfSQVztjEX2dwCWpUXxvll6282c4QQYGDct2PV313nFNJg83IWrVCY="
)


def test_signature_vector() -> None:
    assert wire.sign_string(CONSUME) == SIGN_STRING
    assert wire.sign_string({**CONSUME, "signature": "ignored"}) == SIGN_STRING
    # the digest is the lower-case hex SHA-256 of the UTF-8 sign string …
    assert hashlib.sha256(SIGN_STRING.encode("utf-8")).hexdigest() == DIGEST == crypto.digest_hex(CONSUME)
    # … and the RSA signature is over that hex text, not over the raw digest
    assert crypto.sign(CONSUME, KEY) == SIGNATURE
    raw = base64.b64decode(SIGNATURE)
    KEY.public_key().verify(raw, DIGEST.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    signed = crypto.signed(CONSUME, KEY)
    assert signed["signature"] == SIGNATURE
    crypto.verify(signed, KEY.public_key())
    # the order id of the vector carries its UTC time; the txnTime is the same moment in China time
    assert wire.embedded_txn_time(CONSUME["orderId"]) == CONSUME["txnTime"]


@pytest.mark.parametrize("mangle", [
    lambda p: {**p, "txnAmt": "1501"},
    lambda p: {**p, "extra": ""},  # an added field, even empty, is part of the signed string
    lambda p: {k: v for k, v in p.items() if k != "qrNo"},
    lambda p: {**p, "signature": p["signature"][:-4] + "AAA="},
    lambda p: {**p, "signature": "%%%"},
    lambda p: {k: v for k, v in p.items() if k != "signature"},
])
def test_tampered_messages_fail(mangle: Callable[..., Any]) -> None:
    signed = crypto.signed(CONSUME, KEY)
    with pytest.raises(crypto.SignatureError):
        crypto.verify(mangle(signed), KEY.public_key())
    with pytest.raises(crypto.SignatureError):
        crypto.verify(signed, OTHER.public_key())


def test_sign_pub_key_cert_is_pinned() -> None:
    cert = crypto.certificate_pem(crypto.build_certificate(KEY, "中国银联股份有限公司", 7))
    other_cert = crypto.certificate_pem(crypto.build_certificate(OTHER, "中国银联股份有限公司", 8))
    ok = crypto.signed({**CONSUME, "signPubKeyCert": cert}, KEY)
    crypto.verify_answer(ok, KEY.public_key())
    assert "\r\n" in cert  # written with CRLF, as in the service's answers
    # a message signed by another key that ships its own certificate is still refused
    forged = crypto.signed({**CONSUME, "signPubKeyCert": other_cert}, OTHER)
    with pytest.raises(crypto.SignatureError, match="signPubKeyCert"):
        crypto.verify_answer(forged, KEY.public_key())
    with pytest.raises(crypto.SignatureError):
        crypto.verify_answer({**ok, "signPubKeyCert": "garbage"}, KEY.public_key())
    # the configured key may be given as the certificate itself
    assert crypto.same_key(crypto.load_public_key(cert.replace("\r\n", "\n")), KEY.public_key())
    assert crypto.same_key(crypto.load_public_key(crypto.public_key_pem(KEY)), KEY.public_key())


def test_answer_encoding_keeps_raw_values_and_braces() -> None:
    cert = crypto.certificate_pem(crypto.build_certificate(KEY, "CUP", 9))
    fields = {"respCode": "00", "respMsg": "成功[0000000]", "reserved": "{a=1&b=2}", "signature": "ab+/cd==",
              "signPubKeyCert": cert}
    body = wire.encode_answer(fields)
    assert b"ab+/cd==" in body and "成功".encode() in body and b"\r\n" in body  # nothing percent-encoded
    assert body.index(b"reserved=") < body.index(b"respCode=") < body.index(b"signPubKeyCert=")  # sorted
    assert wire.decode_answer(body) == fields
    assert wire.decode_answer(b"") == {}
    assert wire.decode_answer("a=1&b=x=y") == {"a": "1", "b": "x=y"}  # split at the first '='
    for bad in (b"a=1&b", b"a=1&&b=2", b"a=1&a=2", b"=1", b"\xff=1"):
        with pytest.raises(wire.WireFormatError):
            wire.decode_answer(bad)


def test_form_encoding_round_trip() -> None:
    fields = {"backUrl": "https://h.example/n?a=1&b=2", "riskRateInfo": "{commodityName=门诊 缴费}",
              "signature": "ab+/cd=="}
    body = wire.encode_form(fields)
    assert b"+/" not in body and b"%2B%2F" in body  # percent-encoded
    assert wire.decode_form(body) == fields
    with pytest.raises(wire.WireFormatError):
        wire.decode_form(b"a=1&a=2")
    with pytest.raises(wire.WireFormatError):
        wire.decode_form(b"a=%FF")


def test_braced_values() -> None:
    assert wire.braced({"commodityName": "挂号{费}&=x"}) == "{commodityName=挂号 费   x}"


def test_txn_times_and_order_ids() -> None:
    assert wire.format_txn_time(dt.datetime(2024, 5, 1, 2, 30, 15, tzinfo=dt.UTC)) == "20240501103015"
    assert wire.parse_txn_time("20240501103015") == dt.datetime(2024, 5, 1, 10, 30, 15, tzinfo=CST)
    with pytest.raises(ValueError):
        wire.parse_txn_time("2024050110301")
    with pytest.raises(ValueError):
        wire.format_txn_time(dt.datetime(2024, 5, 1))
    assert wire.embedded_txn_time("R20241231170000abcdef0123") == "20250101010000"
    for no in ("ORDER000001AB", "P2024130110301599", "P20240501", "1234567890123456"):
        assert wire.embedded_txn_time(no) is None
    assert wire.valid_order_id("P20240501023015a1b2c3d4e5")
    for bad in ("C1", "A" * 41, "P-2024-0001", "订单00000001"):
        assert not wire.valid_order_id(bad)
    assert wire.undo_order_id("P20240501023015a1b2c3d4e5") == "P20240501023015a1b2c3d4e5UD"
    long_id = "A" * 40
    assert wire.undo_order_id(long_id) != wire.undo_order_id("B" * 40)
    assert wire.valid_order_id(wire.undo_order_id(long_id)) and len(wire.undo_order_id(long_id)) == 40


def test_settlement_day_and_year_inference() -> None:
    at = dt.datetime(2024, 5, 1, 22, 59, 59, tzinfo=CST)
    assert wire.settle_date_of(at) == dt.date(2024, 5, 1)
    assert wire.settle_date_of(at + dt.timedelta(seconds=1)) == dt.date(2024, 5, 2)  # 23:00 belongs to the next day
    assert wire.settle_date_of(dt.datetime(2024, 5, 1, 15, 0, tzinfo=dt.UTC)) == dt.date(2024, 5, 2)
    assert wire.infer_year("1231233000", dt.date(2025, 1, 1)) == dt.datetime(2024, 12, 31, 23, 30, tzinfo=CST)
    assert wire.infer_year("0101000500", dt.date(2024, 12, 31)).year == 2025
    assert wire.infer_year("0229120000", dt.date(2024, 3, 1)).date() == dt.date(2024, 2, 29)
    assert wire.last_date_with_mmdd("0501", dt.date(2024, 5, 1)) == dt.date(2024, 5, 1)
    assert wire.last_date_with_mmdd("0502", dt.date(2024, 5, 1)) == dt.date(2023, 5, 2)
    assert wire.last_date_with_mmdd("0229", dt.date(2025, 3, 1)) == dt.date(2024, 2, 29)
    with pytest.raises(ValueError):
        wire.last_date_with_mmdd("1340", dt.date(2024, 5, 1))


def test_amounts() -> None:
    assert wire.amount_text(1) == "1"
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError):
            wire.amount_text(bad)  # type: ignore[arg-type]
    assert wire.parse_amount("1500") == 1500 and wire.parse_amount("") is None and wire.parse_amount("1.5") is None
