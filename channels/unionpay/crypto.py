"""Cryptography of ACP 5.1.0 with ``signMethod=01``.

Signing: take every field except ``signature``, sort by name, join as ``k=v&…``
(``wire.sign_string``), compute the SHA-256 of that string as *lower-case hex*, sign
the hex text (its UTF-8 bytes) with SHA256withRSA (PKCS#1 v1.5), base64 the result.
The request names the merchant's signing certificate by ``certId`` (its serial number
in decimal); answers and notifies carry the signing certificate itself in
``signPubKeyCert`` (PEM). Everything here is pure; the adapter and the simulator both
use it, so ``tests/channels/unionpay/test_wire.py`` checks it against a vector built
by hand.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
from collections.abc import Mapping

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from .wire import sign_string


class SignatureError(ValueError):
    """A message whose signature is missing, malformed or wrong."""


# --- keys and certificates -----------------------------------------------------------


def generate_private_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def private_key_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def public_key_pem(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> str:
    pub = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return pub.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _armoured(text: str, label: str) -> bytes:
    text = text.strip()
    if text.startswith("-----BEGIN"):
        return text.encode()
    body = "".join(text.split())
    lines = "\n".join(body[i:i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN {label}-----\n{lines}\n-----END {label}-----\n".encode()


def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    """A PEM private key (PKCS#8 or PKCS#1), or its bare base64 body."""
    key = serialization.load_pem_private_key(_armoured(pem, "PRIVATE KEY"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the merchant signing key must be RSA")
    return key


def load_public_key(pem: str) -> rsa.RSAPublicKey:
    """A PEM public key, or a PEM X.509 certificate (its subject key is taken)."""
    data = _armoured(pem, "PUBLIC KEY")
    if b"BEGIN CERTIFICATE" in data:
        key = x509.load_pem_x509_certificate(data).public_key()
    else:
        key = serialization.load_pem_public_key(data)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the UnionPay verification key must be RSA")
    return key


def same_key(a: rsa.RSAPublicKey, b: rsa.RSAPublicKey) -> bool:
    return a.public_numbers() == b.public_numbers()


def certificate_key(pem: str) -> rsa.RSAPublicKey:
    """The public key of a ``signPubKeyCert`` value (PEM, any line breaks)."""
    text = pem.replace("\r\n", "\n").strip()
    try:
        key = x509.load_pem_x509_certificate(text.encode()).public_key()
    except ValueError as exc:
        raise SignatureError(f"signPubKeyCert is not a certificate: {exc}") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise SignatureError("signPubKeyCert does not hold an RSA key")
    return key


def new_cert_id() -> str:
    """A certificate serial number in decimal, the form of ``certId``."""
    return str(10**10 + secrets.randbelow(9 * 10**10))


def build_certificate(key: rsa.RSAPrivateKey, common_name: str, serial: int, *,
                      days: int = 3650) -> x509.Certificate:
    """A self-signed sandbox certificate for ``key`` (the simulator's signing certificate)."""
    name = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "China UnionPay (sandbox)"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "CUP Verify"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))


def certificate_pem(cert: x509.Certificate) -> str:
    """PEM with CRLF line breaks, as ``signPubKeyCert`` values are written."""
    return cert.public_bytes(serialization.Encoding.PEM).decode().replace("\n", "\r\n")


# --- signatures ----------------------------------------------------------------------


def digest_hex(params: Mapping[str, str]) -> str:
    """Lower-case hex SHA-256 of the sign string: what is actually signed."""
    return hashlib.sha256(sign_string(params).encode("utf-8")).hexdigest()


def sign(params: Mapping[str, str], key: rsa.RSAPrivateKey) -> str:
    """The ``signature`` value for ``params`` (any ``signature`` field in it is ignored)."""
    raw = key.sign(digest_hex(params).encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(raw).decode()


def signed(params: Mapping[str, str], key: rsa.RSAPrivateKey) -> dict[str, str]:
    out = {k: v for k, v in params.items() if k != "signature"}
    out["signature"] = sign(out, key)
    return out


def verify(params: Mapping[str, str], key: rsa.RSAPublicKey) -> None:
    """Raise ``SignatureError`` unless ``params['signature']`` signs the other fields."""
    value = params.get("signature")
    if not value:
        raise SignatureError("the message carries no signature")
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        raise SignatureError("the signature is not base64") from None
    try:
        key.verify(raw, digest_hex(params).encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise SignatureError("the signature does not match") from None


def verify_answer(params: Mapping[str, str], pinned: rsa.RSAPublicKey) -> None:
    """Verify an answer or notify from UnionPay against the configured verification key.

    ``signPubKeyCert``, when present, must carry that same key: a certificate for any
    other key is refused rather than trusted (the key is pinned, not chain-validated).
    """
    cert = params.get("signPubKeyCert")
    if cert and not same_key(certificate_key(cert), pinned):
        raise SignatureError("signPubKeyCert carries a key other than the configured UnionPay key")
    verify(params, pinned)
