"""Cryptography of the Alipay open platform: RSA2 parameter signing and answer checks.

Everything here is pure (no I/O). Both the adapter and the simulator use these
helpers, so a mistake here would cancel out between them;
``tests/channels/alipay/test_wire.py`` therefore also checks them against the
public SDK and against the rules written out by hand.

Rules (from the open platform's signing documentation):
- request: every parameter except ``sign`` (``sign_type`` included), empty values
  dropped, sorted by key in ASCII order, joined as ``k=v&…`` with raw (unencoded)
  values, UTF-8, SHA256withRSA (``RSA2``; ``RSA`` is SHA1withRSA), base64;
- sync answer: the signature covers the raw JSON text of the
  ``<method>_response`` (or ``error_response``) value, exactly as sent;
- async notify: like a request, but ``sign_type`` is left out as well.
"""
from __future__ import annotations

import base64
import json
import re
import secrets
import string
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SIGN_TYPES = ("RSA2", "RSA")


class SignatureError(ValueError):
    """An answer or notify whose Alipay signature is missing or does not hold."""


# --- keys ------------------------------------------------------------------------


def generate_private_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def private_key_pem(key: rsa.RSAPrivateKey, *, pkcs1: bool = False) -> str:
    """PEM of a private key: PKCS#8 (the Java form) or PKCS#1 (the non-Java form)."""
    fmt = serialization.PrivateFormat.TraditionalOpenSSL if pkcs1 else serialization.PrivateFormat.PKCS8
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()


def public_key_pem(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> str:
    pub = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return pub.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def bare_key(pem: str) -> str:
    """The base64 body of a PEM, on one line: the form the key tool shows."""
    return "".join(line.strip() for line in pem.strip().splitlines() if not line.startswith("-----"))


def _pem_wrap(text: str, label: str) -> bytes:
    text = text.strip()
    if text.startswith("-----BEGIN"):
        return text.encode()
    body = re.sub(r"\s+", "", text)
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN {label}-----\n{lines}\n-----END {label}-----\n".encode()


def load_private_key(text: str) -> rsa.RSAPrivateKey:
    """Load an application private key: PEM, or the bare base64 (PKCS#8 or PKCS#1)."""
    errors: list[str] = []
    for label in ("PRIVATE KEY", "RSA PRIVATE KEY"):
        try:
            key = serialization.load_pem_private_key(_pem_wrap(text, label), password=None)
        except (ValueError, TypeError) as exc:
            errors.append(str(exc))
            continue
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the application private key must be RSA")
        return key
    raise ValueError(errors[0] if errors else "unreadable private key")


def load_public_key(text: str) -> rsa.RSAPublicKey:
    """Load the Alipay public key (支付宝公钥): PEM, or the bare base64."""
    key = serialization.load_pem_public_key(_pem_wrap(text, "PUBLIC KEY"))
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the Alipay public key must be RSA")
    return key


# --- signing ---------------------------------------------------------------------


def _hash(sign_type: str) -> hashes.HashAlgorithm:
    if sign_type == "RSA2":
        return hashes.SHA256()
    if sign_type == "RSA":
        return hashes.SHA1()  # noqa: S303 - the wire's legacy algorithm, verify-only in practice
    raise ValueError(f"unsupported sign_type {sign_type!r}")


def sign_content(params: Mapping[str, Any], exclude: Iterable[str] = ("sign",)) -> str:
    """``k=v&…`` of the non-empty parameters not in ``exclude``, sorted by key."""
    skip = set(exclude)
    items = sorted((k, str(v)) for k, v in params.items() if k not in skip and v is not None and str(v) != "")
    return "&".join(f"{k}={v}" for k, v in items)


def notify_sign_content(params: Mapping[str, Any]) -> str:
    """The string a notify's signature covers: ``sign`` and ``sign_type`` left out."""
    return sign_content(params, exclude=("sign", "sign_type"))


def rsa_sign(key: rsa.RSAPrivateKey, message: str | bytes, sign_type: str = "RSA2") -> str:
    data = message.encode() if isinstance(message, str) else message
    return base64.b64encode(key.sign(data, padding.PKCS1v15(), _hash(sign_type))).decode()


def rsa_verify(key: rsa.RSAPublicKey, message: str | bytes, signature: str, sign_type: str = "RSA2") -> bool:
    data = message.encode() if isinstance(message, str) else message
    try:
        raw = base64.b64decode(signature.replace("\n", "").replace("\r", ""), validate=True)
        key.verify(raw, data, padding.PKCS1v15(), _hash(sign_type))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def sign_params(params: Mapping[str, Any], key: rsa.RSAPrivateKey, sign_type: str = "RSA2") -> str:
    """The ``sign`` of a request's parameters (``sign_type`` is part of the content)."""
    return rsa_sign(key, sign_content(params), sign_type)


def verify_notify(params: Mapping[str, str], key: rsa.RSAPublicKey, sign_type: str = "RSA2") -> None:
    """Check an async notify's ``sign``; raise ``SignatureError``."""
    sign = params.get("sign") or ""
    if not sign:
        raise SignatureError("the notify carries no sign")
    got_type = params.get("sign_type") or sign_type
    if got_type != sign_type:
        raise SignatureError(f"notify signed with {got_type!r}, expected {sign_type!r}")
    if not rsa_verify(key, notify_sign_content(params), sign, sign_type):
        raise SignatureError("notify signature does not verify")


# --- sync answers ----------------------------------------------------------------

_DECODER = json.JSONDecoder()
_WS = re.compile(r"[ \t\n\r]*")


def top_level_spans(text: str) -> dict[str, tuple[int, int, Any]]:
    """Each top-level member of a JSON object: ``key -> (start, end, value)``.

    ``text[start:end]`` is the member's raw JSON text, exactly as sent: that is what
    an answer's signature covers. Duplicate keys are refused (which one would be
    signed?).
    """
    i = _WS.match(text, 0).end()  # type: ignore[union-attr]
    if text[i : i + 1] != "{":
        raise ValueError("the answer is not a JSON object")
    i = _WS.match(text, i + 1).end()  # type: ignore[union-attr]
    spans: dict[str, tuple[int, int, Any]] = {}
    if text[i : i + 1] == "}":
        i += 1
    else:
        while True:
            if text[i : i + 1] != '"':
                raise ValueError(f"expected a member name at {i}")
            key, i = _DECODER.raw_decode(text, i)
            i = _WS.match(text, i).end()  # type: ignore[union-attr]
            if text[i : i + 1] != ":":
                raise ValueError(f"expected ':' at {i}")
            start = _WS.match(text, i + 1).end()  # type: ignore[union-attr]
            value, end = _DECODER.raw_decode(text, start)
            if key in spans:
                raise ValueError(f"duplicate member {key!r}")
            spans[key] = (start, end, value)
            i = _WS.match(text, end).end()  # type: ignore[union-attr]
            sep = text[i : i + 1]
            i += 1
            if sep == "}":
                break
            if sep != ",":
                raise ValueError(f"expected ',' or '}}' at {i - 1}")
            i = _WS.match(text, i).end()  # type: ignore[union-attr]
    if text[i:].strip():
        raise ValueError("trailing data after the answer object")
    return spans


def dumps(obj: Any) -> str:
    """Compact JSON with UTF-8 text (no ``\\u`` escapes), as the platform writes it."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def signed_answer(response_key: str, payload: Mapping[str, Any], key: rsa.RSAPrivateKey | None,
                  sign_type: str = "RSA2") -> str:
    """``{"<key>":{…},"sign":"…"}`` with the sign over the inner text (unsigned without a key)."""
    inner = dumps(dict(payload))
    if key is None:
        return f'{{"{response_key}":{inner}}}'
    return f'{{"{response_key}":{inner},"sign":"{rsa_sign(key, inner, sign_type)}"}}'


# --- identifiers -----------------------------------------------------------------


def digits(n: int) -> str:
    return "".join(secrets.choice(string.digits) for _ in range(n))


def new_app_id() -> str:
    """An application id in the platform's form: 16 digits starting 2021."""
    return "2021" + digits(12)


def new_pid() -> str:
    """A merchant partner id (PID, 商户UID): 16 digits starting 2088."""
    return "2088" + digits(12)
