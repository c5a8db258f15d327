"""The caller signature, checked against a vector built by hand with the standard library.

The vectors here are the ones printed in docs/api.md; an SDK in any language can be
tested against them.
"""
from __future__ import annotations

import hashlib
import hmac
import time

import pytest

from gateway.api.signing import sign, signed_headers, string_to_sign, verify

SECRET = "test-secret"
TIMESTAMP = "1700000000"
NONCE = "0123456789abcdef"
BODY = ('{"out_trade_no":"A-1","amount":1,"subject":"挂号费","business_type":"outpatient",'
        '"method":"qr","channel":"wechatpay"}').encode()

# Published in docs/api.md: changing the scheme must change these on purpose.
BODY_SHA256 = "220e75a01db953ba22fc780996f1458aac5c61641513b4bb938ae6900e117306"
POST_SIGNATURE = "a7138536e620f30ec9d936393b9d89b2f31d5435b46a04f9ae7427c682ef7551"
GET_PATH = "/v1/payments?out_trade_no=A-1"
GET_SIGNATURE = "5f894541a1d4d0f163fdafb032c02ddfd9364397caa39c13b34d97aa371cd4c5"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def _by_hand(secret: str, method: str, path_qs: str, timestamp: str, nonce: str, body: bytes) -> str:
    text = f"{method}\n{path_qs}\n{timestamp}\n{nonce}\n{hashlib.sha256(body).hexdigest()}"
    return hmac.new(secret.encode("utf-8"), text.encode("utf-8"), hashlib.sha256).hexdigest()


def test_string_to_sign_is_five_lines_without_trailing_newline() -> None:
    expected = f"POST\n/v1/payments\n{TIMESTAMP}\n{NONCE}\n{BODY_SHA256}".encode()
    assert string_to_sign("POST", "/v1/payments", TIMESTAMP, NONCE, BODY) == expected
    assert hashlib.sha256(BODY).hexdigest() == BODY_SHA256


def test_empty_body_signs_the_hash_of_nothing() -> None:
    assert string_to_sign("GET", GET_PATH, TIMESTAMP, NONCE, b"").endswith(EMPTY_SHA256.encode())


def test_known_vectors() -> None:
    assert _by_hand(SECRET, "POST", "/v1/payments", TIMESTAMP, NONCE, BODY) == POST_SIGNATURE
    assert sign(SECRET, "POST", "/v1/payments", TIMESTAMP, NONCE, BODY) == POST_SIGNATURE
    assert _by_hand(SECRET, "GET", GET_PATH, TIMESTAMP, NONCE, b"") == GET_SIGNATURE
    assert sign(SECRET, "GET", GET_PATH, TIMESTAMP, NONCE, b"") == GET_SIGNATURE


def test_method_is_upper_cased_before_signing() -> None:
    assert sign(SECRET, "post", "/v1/payments", TIMESTAMP, NONCE, BODY) == POST_SIGNATURE


def test_verify_accepts_the_genuine_request_in_either_hex_case() -> None:
    assert verify(SECRET, POST_SIGNATURE, "POST", "/v1/payments", TIMESTAMP, NONCE, BODY)
    assert verify(SECRET, POST_SIGNATURE.upper(), "POST", "/v1/payments", TIMESTAMP, NONCE, BODY)


GENUINE = {"method": "POST", "path_qs": "/v1/payments?out_trade_no=A-1", "timestamp": TIMESTAMP, "nonce": NONCE,
           "body": BODY}


@pytest.mark.parametrize("component,value", [
    ("method", "PUT"),
    ("path_qs", "/v1/payments/?out_trade_no=A-1"),  # path: trailing slash
    ("path_qs", "/v1/Payments?out_trade_no=A-1"),  # path: case
    ("path_qs", "/v1/payments?out_trade_no=A-2"),  # query value
    ("path_qs", "/v1/payments"),  # query dropped
    ("path_qs", "/v1/payments?out_trade_no=A%2D1"),  # query re-encoded: the raw form is signed
    ("timestamp", str(int(TIMESTAMP) + 1)),
    ("nonce", NONCE[:-1] + "0"),
    ("body", BODY.replace(b'"amount":1', b'"amount":2')),
    ("body", BODY + b" "),
    ("body", b""),
], ids=lambda v: v if isinstance(v, str) and len(v) < 20 else None)
def test_verify_rejects_tampering_with_each_component(component: str, value: object) -> None:
    signature = sign(SECRET, *GENUINE.values())  # type: ignore[arg-type]
    assert verify(SECRET, signature, *GENUINE.values())  # type: ignore[arg-type]
    tampered = {**GENUINE, component: value}
    assert not verify(SECRET, signature, *tampered.values())  # type: ignore[arg-type]


def test_verify_rejects_another_secret_and_a_truncated_signature() -> None:
    assert not verify("other-secret", POST_SIGNATURE, "POST", "/v1/payments", TIMESTAMP, NONCE, BODY)
    assert not verify(SECRET, POST_SIGNATURE[:-2], "POST", "/v1/payments", TIMESTAMP, NONCE, BODY)
    assert not verify(SECRET, "", "POST", "/v1/payments", TIMESTAMP, NONCE, BODY)


def test_verify_rejects_a_non_ascii_signature() -> None:
    assert not verify(SECRET, "é" * 64, "POST", "/v1/payments", TIMESTAMP, NONCE, BODY)


def test_signed_headers_round_trip() -> None:
    h = signed_headers("app_example", SECRET, "POST", "/v1/payments", BODY, timestamp=int(TIMESTAMP), nonce=NONCE)
    assert h == {"X-App-Id": "app_example", "X-Timestamp": TIMESTAMP, "X-Nonce": NONCE,
                 "X-Signature": POST_SIGNATURE, "Content-Type": "application/json"}
    assert verify(SECRET, h["X-Signature"], "POST", "/v1/payments", h["X-Timestamp"], h["X-Nonce"], BODY)


def test_signed_headers_defaults_are_fresh_and_within_the_server_rules() -> None:
    before = int(time.time())
    a = signed_headers("app_example", SECRET, "GET", GET_PATH)
    b = signed_headers("app_example", SECRET, "GET", GET_PATH)
    assert before <= int(a["X-Timestamp"]) <= int(time.time())
    assert 8 <= len(a["X-Nonce"]) <= 64  # the range the middleware accepts
    assert a["X-Nonce"] != b["X-Nonce"]
    for h in (a, b):
        assert verify(SECRET, h["X-Signature"], "GET", GET_PATH, h["X-Timestamp"], h["X-Nonce"], b"")
