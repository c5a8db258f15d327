"""Caller request signatures (also used for the gateway's own notifications to callers).

signature = hex(HMAC-SHA256(secret, METHOD \\n path-with-query \\n timestamp \\n nonce \\n sha256hex(body)))

When a request names the person at the calling app (``X-Operator``) or their roles
(``X-Operator-Roles``, which decide approvals), both are signed too: the string
gains ``\\n operator \\n roles`` (either may be empty).
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time


def string_to_sign(method: str, path_qs: str, timestamp: str, nonce: str, body: bytes,
                   operator: str | None = None, roles: str | None = None) -> bytes:
    parts = [method.upper(), path_qs, timestamp, nonce, hashlib.sha256(body).hexdigest()]
    if operator or roles:
        parts += [operator or "", roles or ""]
    return "\n".join(parts).encode()


def sign(secret: str, method: str, path_qs: str, timestamp: str, nonce: str, body: bytes,
         operator: str | None = None, roles: str | None = None) -> str:
    return hmac.new(secret.encode(), string_to_sign(method, path_qs, timestamp, nonce, body, operator, roles),
                    hashlib.sha256).hexdigest()


def verify(secret: str, signature: str, method: str, path_qs: str, timestamp: str, nonce: str, body: bytes,
           operator: str | None = None, roles: str | None = None) -> bool:
    if not signature.isascii():
        return False
    return hmac.compare_digest(sign(secret, method, path_qs, timestamp, nonce, body, operator, roles),
                               signature.lower())


def signed_headers(app_id: str, secret: str, method: str, path_qs: str, body: bytes = b"",
                   *, timestamp: int | None = None, nonce: str | None = None, operator: str | None = None,
                   roles: str | None = None) -> dict[str, str]:
    """Headers a caller sends; handy for SDKs, the CLI and tests."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or secrets.token_hex(16)
    headers = {"X-App-Id": app_id, "X-Timestamp": ts, "X-Nonce": nonce,
               "X-Signature": sign(secret, method, path_qs, ts, nonce, body, operator, roles),
               "Content-Type": "application/json"}
    if operator:
        headers["X-Operator"] = operator
    if roles:
        headers["X-Operator-Roles"] = roles
    return headers
