"""Signatures of the reference bank's e-CNY acquiring API (RSA-SHA256).

Every request, every answer and every callback is signed with SHA256withRSA
(PKCS#1 v1.5, RSA 2048) over a *string to sign* of six lines, each ending in
``\\n``::

    ECNY-RSA-SHA256
    <scope>
    <merchant id>
    <timestamp>            unix seconds
    <nonce>                32 hex characters
    <sha256 of the body>   lower-case hex of the exact body bytes

``scope`` says what is signed, so no signature can be reused for something else:

- a request: ``REQUEST <METHOD> <path with query>``, e.g.
  ``REQUEST POST /ecny/v1/trade/codepay``;
- an answer: ``RESPONSE <HTTP status> <nonce of the request>``: an answer cannot be
  replayed to another request, nor its status changed;
- a callback: ``NOTIFY``.

The merchant signs requests with its private key; the bank signs answers and
callbacks with the bank's key. Headers carry the pieces (see ``HEADER_*``).

Everything here is pure (no I/O); the adapter and the simulator both use it, so
``tests/plugins/banks/test_refbank_wire.py`` also checks it against a fixed vector.
"""
from __future__ import annotations

import base64
import hashlib
import secrets
import string
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ALGORITHM = "ECNY-RSA-SHA256"
SIGN_TYPE = "RSA-SHA256"
TIMESTAMP_WINDOW = 300  # seconds, either direction
NOTIFY_SCOPE = "NOTIFY"

HEADER_MERCHANT = "X-Ecny-Merchant-Id"
HEADER_KEY_ID = "X-Ecny-Key-Id"
HEADER_TIMESTAMP = "X-Ecny-Timestamp"
HEADER_NONCE = "X-Ecny-Nonce"
HEADER_SIGNATURE = "X-Ecny-Signature"
HEADER_SIGN_TYPE = "X-Ecny-Sign-Type"
HEADER_REQUEST_ID = "X-Ecny-Request-Id"  # the bank's trace id on answers (not signed)
SIGNATURE_HEADERS = (HEADER_MERCHANT, HEADER_KEY_ID, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE,
                     HEADER_SIGN_TYPE)


class SignatureError(ValueError):
    """A request, answer or callback whose signature does not hold."""


# --- keys ------------------------------------------------------------------------------


def generate_private_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def private_key_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def public_key_pem(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> str:
    pub = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _pem(text: str, label: str) -> bytes:
    text = text.strip()
    if text.startswith("-----BEGIN"):
        return text.encode()
    body = "\n".join(text[i:i + 64] for i in range(0, len(text), 64))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n".encode()


def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    """A PEM (PKCS#8 or PKCS#1) RSA private key; a bare base64 body is accepted too."""
    key = serialization.load_pem_private_key(_pem(pem, "PRIVATE KEY"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the key must be RSA")
    if key.key_size < 2048:
        raise ValueError("the key must have at least 2048 bits")
    return key


def load_public_key(pem: str) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(_pem(pem, "PUBLIC KEY"))
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the key must be RSA")
    return key


def new_nonce() -> str:
    return secrets.token_hex(16)


def new_key_id(prefix: str) -> str:
    """A key id as the bank issues them: a prefix and 12 digits (``MK202405000001``-like)."""
    return prefix + "".join(secrets.choice(string.digits) for _ in range(12))


def now_ts() -> str:
    return str(int(time.time()))


# --- the string to sign -----------------------------------------------------------------


def body_digest(body: bytes | str) -> str:
    return hashlib.sha256(body.encode() if isinstance(body, str) else body).hexdigest()


def request_scope(method: str, path: str) -> str:
    """``REQUEST <METHOD> <path?query>``: the path exactly as sent, percent-encoding included."""
    return f"REQUEST {method.upper()} {path}"


def response_scope(status: int, request_nonce: str) -> str:
    return f"RESPONSE {int(status)} {request_nonce}"


def string_to_sign(scope: str, merchant_id: str, timestamp: str, nonce: str, body: bytes | str) -> bytes:
    for name, value in (("scope", scope), ("merchant id", merchant_id), ("timestamp", timestamp), ("nonce", nonce)):
        if "\n" in value or "\r" in value:
            raise ValueError(f"{name} must not contain a line break")
    return f"{ALGORITHM}\n{scope}\n{merchant_id}\n{timestamp}\n{nonce}\n{body_digest(body)}\n".encode()


def rsa_sign(key: rsa.RSAPrivateKey, message: bytes) -> str:
    """SHA256withRSA (PKCS#1 v1.5), standard base64."""
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def rsa_verify(key: rsa.RSAPublicKey, message: bytes, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def timestamp_fresh(timestamp: str, now: float | None = None, window: int = TIMESTAMP_WINDOW) -> bool:
    if not timestamp.isdigit():
        return False
    return abs((time.time() if now is None else now) - int(timestamp)) <= window


# --- headers ----------------------------------------------------------------------------


def sign_headers(key: rsa.RSAPrivateKey, key_id: str, scope: str, merchant_id: str, body: bytes | str, *,
                 timestamp: str | None = None, nonce: str | None = None) -> dict[str, str]:
    """The signature headers of one message (request, answer or callback)."""
    ts, nonce = timestamp or now_ts(), nonce or new_nonce()
    return {
        HEADER_MERCHANT: merchant_id,
        HEADER_KEY_ID: key_id,
        HEADER_TIMESTAMP: ts,
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: rsa_sign(key, string_to_sign(scope, merchant_id, ts, nonce, body)),
        HEADER_SIGN_TYPE: SIGN_TYPE,
    }


@dataclass(frozen=True)
class Signed:
    """The signature headers of a message, read but not yet verified."""

    merchant_id: str
    key_id: str
    timestamp: str
    nonce: str
    signature: str


def header_getter(headers: Mapping[str, str]) -> Callable[[str], str]:
    """Case-insensitive lookup on any mapping (a dict or a multidict)."""
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    return lambda name: lowered.get(name.lower(), "")


def read_headers(headers: Mapping[str, str]) -> Signed:
    get = header_getter(headers)
    signed = Signed(get(HEADER_MERCHANT), get(HEADER_KEY_ID), get(HEADER_TIMESTAMP), get(HEADER_NONCE),
                    get(HEADER_SIGNATURE))
    if not (signed.key_id and signed.timestamp and signed.nonce and signed.signature):
        raise SignatureError("missing signature headers")
    sign_type = get(HEADER_SIGN_TYPE)
    if sign_type and sign_type != SIGN_TYPE:
        raise SignatureError(f"unsupported sign type {sign_type!r}")
    return signed


def verify_headers(headers: Mapping[str, str], body: bytes | str, *, scope: str, merchant_id: str,
                   key: rsa.RSAPublicKey, key_id: str, now: float | None = None,
                   window: int = TIMESTAMP_WINDOW) -> Signed:
    """Check a message signed for ``merchant_id`` by the holder of ``key_id``; raise ``SignatureError``."""
    signed = read_headers(headers)
    if signed.key_id != key_id:
        raise SignatureError(f"signed with unknown key {signed.key_id!r} (expected {key_id!r})")
    if signed.merchant_id and signed.merchant_id != merchant_id:
        raise SignatureError(f"signed for merchant {signed.merchant_id!r}, not {merchant_id!r}")
    if not timestamp_fresh(signed.timestamp, now, window):
        raise SignatureError(f"timestamp {signed.timestamp!r} outside the {window}s window")
    message = string_to_sign(scope, merchant_id, signed.timestamp, signed.nonce, body)
    if not rsa_verify(key, message, signed.signature):
        raise SignatureError("signature does not verify")
    return signed
