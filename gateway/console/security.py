"""Passwords (scrypt), the password policy, TOTP (RFC 6238) and random tokens."""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import Any

import pyotp

_SCRYPT_R, _SCRYPT_P, _DKLEN = 8, 1, 32
TOTP_PERIOD = 30


def hash_password(password: str, n: int) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64): the salt and the parameters travel with the hash."""
    salt = secrets.token_bytes(16)
    dk = hashlib.scrypt(password.encode(), salt=salt, n=n, r=_SCRYPT_R, p=_SCRYPT_P, dklen=_DKLEN,
                        maxmem=256 * n * _SCRYPT_R)
    return "$".join(("scrypt", str(n), str(_SCRYPT_R), str(_SCRYPT_P), _b64(salt), _b64(dk)))


def verify_password(password: str, stored: str | None, dummy_n: int = 2 ** 14) -> bool:
    """Constant-time check; a missing or malformed hash costs the same (a dummy of cost ``dummy_n``)."""
    try:
        scheme, n, r, p, salt, dk = (stored or "").split("$")
        if scheme != "scrypt":
            raise ValueError(scheme)
        ni, ri, pi = int(n), int(r), int(p)
        salt_b, dk_b = _unb64(salt), _unb64(dk)
    except ValueError:
        ni, ri, pi, salt_b, dk_b = dummy_n, _SCRYPT_R, _SCRYPT_P, b"\0" * 16, b""
    got = hashlib.scrypt(password.encode(), salt=salt_b, n=ni, r=ri, p=pi, dklen=_DKLEN, maxmem=256 * ni * ri)
    return bool(dk_b) and hmac.compare_digest(got, dk_b)


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _unb64(s: str) -> bytes:
    try:
        return base64.b64decode(s, validate=True)
    except Exception as exc:
        raise ValueError("bad base64") from exc


def password_problems(password: str, username: str, *, min_length: int, min_classes: int) -> list[dict[str, Any]]:
    """The policy's objections (empty when the password is acceptable), bilingual."""
    out: list[dict[str, Any]] = []
    if len(password) < min_length:
        out.append({"rule": "min_length", "message_zh": f"密码至少 {min_length} 位",
                    "message_en": f"at least {min_length} characters"})
    classes = sum((any(c.islower() for c in password), any(c.isupper() for c in password),
                   any(c.isdigit() for c in password), any(not c.isalnum() for c in password)))
    if classes < min_classes:
        out.append({"rule": "classes", "message_zh": f"需包含小写字母、大写字母、数字、符号中的至少 {min_classes} 类",
                    "message_en": f"at least {min_classes} of: lower case, upper case, digits, symbols"})
    if username and (password.lower() == username.lower() or password.lower() == username.lower()[::-1]):
        out.append({"rule": "username", "message_zh": "密码不能与用户名相同", "message_en": "must differ from the username"})
    return out


def random_password() -> str:
    """A password that meets any policy this module enforces (16 characters, four classes)."""
    alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    chars = [secrets.choice(alphabet) for _ in range(12)]
    chars += [secrets.choice("abcdefghjk"), secrets.choice("ABCDEFGHJK"), secrets.choice("23456789"), "-"]
    secrets.SystemRandom().shuffle(chars)
    return "".join(chars)


def new_totp_secret() -> str:
    return pyotp.random_base32(32)


def otpauth_uri(secret: str, username: str, issuer: str) -> str:
    return pyotp.TOTP(secret, interval=TOTP_PERIOD).provisioning_uri(name=username, issuer_name=issuer)


def totp_step(secret: str, code: str, *, window: int = 1, now: float | None = None) -> int | None:
    """The time step a code belongs to (current ± ``window``), or None when it matches none."""
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret, interval=TOTP_PERIOD)
    t = time.time() if now is None else now
    step = int(t // TOTP_PERIOD)
    for s in range(step - window, step + window + 1):
        if hmac.compare_digest(totp.at(s * TOTP_PERIOD), code):
            return s
    return None


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
