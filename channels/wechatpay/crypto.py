"""Cryptography of the WeChat Pay v3 protocol (and v2 parameter signing).

Everything here is pure: no I/O, no clock unless a timestamp is omitted. Both the
adapter and the simulator use these helpers, so a mistake here would cancel out
between them; ``tests/channels/wechatpay/test_wire.py`` therefore also checks them
against the public SDK and against vectors computed by hand.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import string
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

AUTH_SCHEMA = "WECHATPAY2-SHA256-RSA2048"
SIGNATURE_TYPE = AUTH_SCHEMA
TIMESTAMP_WINDOW = 300  # seconds, both directions



# --- keys ------------------------------------------------------------------------


def generate_private_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def private_key_pem(key: rsa.RSAPrivateKey) -> str:
    """PKCS#8 PEM, the form the merchant platform hands out (apiclient_key.pem)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def public_key_pem(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> str:
    pub = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return pub.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def _pem_wrap(text: str, label: str) -> bytes:
    text = text.strip()
    if text.startswith("-----BEGIN"):
        return text.encode()
    body = "\n".join(text[i : i + 64] for i in range(0, len(text), 64))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n".encode()


def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    """Load a PEM private key; a bare base64 body (no armour lines) is accepted too."""
    key = serialization.load_pem_private_key(_pem_wrap(pem, "PRIVATE KEY"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("merchant private key must be RSA")
    return key


def load_public_key(pem: str) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(_pem_wrap(pem, "PUBLIC KEY"))
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("platform public key must be RSA")
    return key


def new_serial_no() -> str:
    """A certificate-serial-like identifier: 40 upper-case hex digits."""
    return secrets.token_hex(20).upper()


def new_pub_key_id() -> str:
    """A platform public-key id in the form the service issues (``PUB_KEY_ID_`` + digits)."""
    return "PUB_KEY_ID_01" + "".join(secrets.choice(string.digits) for _ in range(30))


def new_nonce(length: int = 32) -> str:
    # One urandom read per nonce (a choice per character costs a read each).
    return secrets.token_hex((length + 1) // 2)[:length].upper()


def new_apiv3_key() -> str:
    """A 32-character APIv3 key (AES-256 key as UTF-8 text)."""
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))


@dataclass(frozen=True)
class SandboxKey:
    """A freshly generated RSA key pair with the identifiers that go with it."""

    private_pem: str
    public_pem: str
    serial_no: str  # as a merchant API certificate serial
    pub_key_id: str  # as a platform public-key id

    @classmethod
    def generate(cls) -> SandboxKey:
        key = generate_private_key()
        return cls(private_key_pem(key), public_key_pem(key), new_serial_no(), new_pub_key_id())


def now_ts() -> str:
    return str(int(time.time()))


# --- RSA signatures ----------------------------------------------------------------


def _b(data: bytes | str) -> bytes:
    return data.encode() if isinstance(data, str) else data


def rsa_sign(key: rsa.RSAPrivateKey, message: bytes | str) -> str:
    """SHA256withRSA (PKCS#1 v1.5), base64."""
    return base64.b64encode(key.sign(_b(message), padding.PKCS1v15(), hashes.SHA256())).decode()


def rsa_verify(key: rsa.RSAPublicKey, message: bytes | str, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, _b(message), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def request_message(method: str, url: str, timestamp: str, nonce: str, body: bytes | str) -> bytes:
    """``METHOD\\nURL\\nTIMESTAMP\\nNONCE\\nBODY\\n`` (URL = path with query)."""
    return b"%s\n%s\n%s\n%s\n%s\n" % (
        method.upper().encode(), url.encode(), timestamp.encode(), nonce.encode(), _b(body)
    )


def response_message(timestamp: str, nonce: str, body: bytes | str) -> bytes:
    """``TIMESTAMP\\nNONCE\\nBODY\\n`` (responses and notifies)."""
    return b"%s\n%s\n%s\n" % (timestamp.encode(), nonce.encode(), _b(body))


@dataclass(frozen=True)
class Authorization:
    mchid: str
    nonce_str: str
    timestamp: str
    serial_no: str
    signature: str

    def header(self) -> str:
        return (
            f'{AUTH_SCHEMA} mchid="{self.mchid}",nonce_str="{self.nonce_str}",'
            f'timestamp="{self.timestamp}",serial_no="{self.serial_no}",signature="{self.signature}"'
        )


def build_authorization(
    method: str,
    url: str,
    body: bytes | str,
    *,
    mchid: str,
    serial_no: str,
    key: rsa.RSAPrivateKey,
    timestamp: str | None = None,
    nonce: str | None = None,
) -> str:
    """The ``Authorization`` header value of a signed v3 request."""
    ts = timestamp or now_ts()
    nonce = nonce or new_nonce()
    sig = rsa_sign(key, request_message(method, url, ts, nonce, body))
    return Authorization(mchid, nonce, ts, serial_no, sig).header()


_AUTH_FIELD = re.compile(r'\s*([a-z_]+)\s*=\s*"([^"]*)"\s*')


def parse_authorization(header: str) -> Authorization:
    """Parse an ``Authorization`` header; fields may come in any order."""
    schema, _, rest = header.strip().partition(" ")
    if schema != AUTH_SCHEMA:
        raise ValueError(f"unsupported authorization schema {schema!r}")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        m = _AUTH_FIELD.fullmatch(part)
        if not m:
            raise ValueError(f"malformed authorization field {part!r}")
        fields[m.group(1)] = m.group(2)
    try:
        return Authorization(
            fields["mchid"], fields["nonce_str"], fields["timestamp"],
            fields["serial_no"], fields["signature"],
        )
    except KeyError as exc:
        raise ValueError(f"authorization lacks {exc.args[0]}") from None


def timestamp_fresh(timestamp: str, now: float | None = None, window: int = TIMESTAMP_WINDOW) -> bool:
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    return abs((time.time() if now is None else now) - ts) <= window


def signed_headers(
    key: rsa.RSAPrivateKey,
    serial: str,
    body: bytes | str,
    *,
    timestamp: str | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """Headers the platform puts on a response or notify it signs."""
    ts = timestamp or now_ts()
    nonce = nonce or new_nonce()
    return {
        "Wechatpay-Timestamp": ts,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": rsa_sign(key, response_message(ts, nonce, body)),
        "Wechatpay-Serial": serial,
        "Wechatpay-Signature-Type": SIGNATURE_TYPE,
    }


class SignatureError(ValueError):
    """A response or notify whose platform signature does not hold."""


def verify_signed(
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    key: rsa.RSAPublicKey,
    serial: str,
    now: float | None = None,
    window: int = TIMESTAMP_WINDOW,
) -> None:
    """Check the platform signature headers on ``body``; raise ``SignatureError``."""
    get = _header_getter(headers)
    sig, ts, nonce = get("Wechatpay-Signature"), get("Wechatpay-Timestamp"), get("Wechatpay-Nonce")
    got_serial, sig_type = get("Wechatpay-Serial"), get("Wechatpay-Signature-Type")
    if not (sig and ts and nonce and got_serial):
        raise SignatureError("missing signature headers")
    if sig_type and sig_type != SIGNATURE_TYPE:
        raise SignatureError(f"unsupported signature type {sig_type!r}")
    if got_serial != serial:
        raise SignatureError(f"signed with unknown key {got_serial!r} (expected {serial!r})")
    if not timestamp_fresh(ts, now, window):
        raise SignatureError(f"timestamp {ts!r} outside the {window}s window")
    if not rsa_verify(key, response_message(ts, nonce, body), sig):
        raise SignatureError("signature does not verify")


def _header_getter(headers: Mapping[str, str]) -> Callable[[str], str]:
    """Case-insensitive lookup on any mapping (plain dict or multidict)."""
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    return lambda name: lowered.get(name.lower(), "")


def jsapi_pay_sign(key: rsa.RSAPrivateKey, app_id: str, timestamp: str, nonce: str, package: str) -> str:
    """``paySign`` of the JSAPI/mini-program invocation parameters."""
    return rsa_sign(key, f"{app_id}\n{timestamp}\n{nonce}\n{package}\n")


# --- AES-256-GCM (notify resources, bill and certificate payloads) ----------------


def aes_gcm_encrypt(apiv3_key: str, plaintext: bytes | str, nonce: str, associated_data: str = "") -> str:
    return base64.b64encode(
        AESGCM(apiv3_key.encode()).encrypt(nonce.encode(), _b(plaintext), associated_data.encode())
    ).decode()


def aes_gcm_decrypt(apiv3_key: str, nonce: str, ciphertext: str, associated_data: str = "") -> bytes:
    """Decrypt ``base64(ciphertext || tag)``; raise ``ValueError`` if it does not authenticate."""
    key = apiv3_key.encode()
    if len(key) != 32:
        raise ValueError("the APIv3 key must be 32 bytes")
    try:
        return AESGCM(key).decrypt(nonce.encode(), base64.b64decode(ciphertext), associated_data.encode())
    except (InvalidTag, ValueError, TypeError) as exc:
        raise ValueError("AES-GCM authentication failed (wrong APIv3 key or tampered data)") from exc


def sha1_hex(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()  # noqa: S324 - the wire's own integrity hash


# --- v2 parameter signing --------------------------------------------------------


def v2_sign_string(params: dict[str, str], api_key: str) -> str:
    """Non-empty params except ``sign`` sorted by key, ``k=v&…&key=APIKEY``."""
    items = sorted((k, str(v)) for k, v in params.items() if k != "sign" and v not in (None, ""))
    return "&".join(f"{k}={v}" for k, v in items) + f"&key={api_key}"


def v2_sign(params: dict[str, str], api_key: str, sign_type: str = "MD5") -> str:
    text = v2_sign_string(params, api_key).encode()
    if sign_type == "MD5":
        return hashlib.md5(text).hexdigest().upper()  # noqa: S324 - the wire's own algorithm
    if sign_type == "HMAC-SHA256":
        return hmac.new(api_key.encode(), text, hashlib.sha256).hexdigest().upper()
    raise ValueError(f"unsupported v2 sign_type {sign_type!r}")


def v2_verify(params: dict[str, str], api_key: str, sign_type: str = "MD5") -> bool:
    sign = params.get("sign", "")
    return bool(sign) and hmac.compare_digest(sign.upper(), v2_sign(params, api_key, sign_type))
