"""The centre's side of channel security, per profile style.

- plain: nothing to check;
- ``sm_oauth``: issues OAuth2 tokens (password grant), requires the Bearer token,
  decrypts ``input`` (SM4) and verifies ``cainfo`` (SM3withSM2 with the hospital's
  public key); encrypts and signs every answer with the centre's key;
- ``tif``: checks the ``x-tif-*`` headers (signature, paasid, timestamp window).
"""
from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from . import sm_envelope as sme
from .sec_tif import tif_signature
from .sim_model import SimError
from .smcrypto import Sm2KeyPair, SmCryptoError
from .wire import dumps, loads

TIF_WINDOW_SECONDS = 300


def _unauthorised(message: str) -> web.HTTPUnauthorized:
    return web.HTTPUnauthorized(text=dumps({"code": 401, "message": message}), content_type="application/json")


class SimPlain:
    style = "plain"

    def authenticate(self, headers: Mapping[str, str]) -> None:
        return None

    def open_request(self, payload: dict[str, Any]) -> dict[str, Any]:
        return payload

    def seal_answer(self, answer: dict[str, Any]) -> dict[str, Any]:
        return answer

    def credentials(self) -> dict[str, Any]:
        return {}


@dataclass
class SimSm(SimPlain):
    style = "sm_oauth"
    hospital: Sm2KeyPair = field(default_factory=Sm2KeyPair.generate)
    centre: Sm2KeyPair = field(default_factory=Sm2KeyPair.generate)
    sm4_key: str = field(default_factory=lambda: secrets.token_hex(16).upper())
    username: str = "sandbox-hospital"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    client_id: str = "yinyi-sandbox"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    token_ttl: int = 3600
    tokens: dict[str, float] = field(default_factory=dict)

    def issue_token(self, form: Mapping[str, str]) -> dict[str, Any]:
        if form.get("grant_type") != "password":
            raise _unauthorised("unsupported_grant_type")
        if (form.get("username"), form.get("password"), form.get("client_id"), form.get("client_secret")) != (
                self.username, self.password, self.client_id, self.client_secret):
            raise _unauthorised("invalid_grant")
        token = secrets.token_urlsafe(24)
        self.tokens[token] = time.monotonic() + self.token_ttl
        return {"access_token": token, "token_type": "bearer", "expires_in": self.token_ttl}

    def revoke_tokens(self) -> None:
        self.tokens.clear()

    def authenticate(self, headers: Mapping[str, str]) -> None:
        auth = headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        if self.tokens.get(token, 0) <= time.monotonic():
            raise _unauthorised("invalid_token")

    def open_request(self, payload: dict[str, Any]) -> dict[str, Any]:
        key = sme.sm4_key_bytes(self.sm4_key)
        try:
            text = sme.decrypt_text(key, str(payload.get("input") or ""))
        except (SmCryptoError, UnicodeDecodeError):
            raise SimError("报文解密失败") from None
        if not sme.verify_text(self.hospital.public_hex, text, payload.get("cainfo")):
            raise SimError("报文签名验证失败")
        return {**payload, "input": loads(text)}

    def seal_answer(self, answer: dict[str, Any]) -> dict[str, Any]:
        key = sme.sm4_key_bytes(self.sm4_key)
        output = answer.get("output")
        text = dumps(output) if output is not None else ""
        signed = sme.answer_sign_text(answer.get("infcode"), answer.get("inf_refmsgid"), answer.get("err_msg"), text)
        return {**answer, "output": sme.encrypt_text(key, text) if text else None,
                "cainfo": sme.sign_text(self.centre.private_hex, self.centre.public_hex, signed),
                "signtype": "SM2", "enctype": "SM4"}

    def credentials(self) -> dict[str, Any]:
        return {"oauth_username": self.username, "oauth_password": self.password, "oauth_client_id": self.client_id,
                "oauth_client_secret": self.client_secret, "sm2_private_key": self.hospital.private_hex,
                "centre_public_key": self.centre.public_hex, "sm4_key": self.sm4_key}


@dataclass
class SimTif(SimPlain):
    style = "tif"
    paasid: str = "sandbox_paas"
    token: str = field(default_factory=lambda: secrets.token_hex(16))

    def authenticate(self, headers: Mapping[str, str]) -> None:
        ts, nonce = headers.get("x-tif-timestamp", ""), headers.get("x-tif-nonce", "")
        if headers.get("x-tif-paasid") != self.paasid or not ts.isdigit() or not nonce:
            raise _unauthorised("tif headers missing or paasid unknown")
        if abs(int(ts) - time.time()) > TIF_WINDOW_SECONDS:
            raise _unauthorised("tif timestamp outside the window")
        if not secrets.compare_digest(headers.get("x-tif-signature", ""), tif_signature(ts, self.token, nonce)):
            raise _unauthorised("tif signature invalid")

    def credentials(self) -> dict[str, Any]:
        return {"tif_paasid": self.paasid, "tif_token": self.token}


def sim_security_for(style: str) -> SimPlain:
    styles: dict[str, type[SimPlain]] = {"plain": SimPlain, "sm_oauth": SimSm, "tif": SimTif}
    try:
        return styles[style]()
    except KeyError:
        raise ValueError(f"the simulator does not speak security style {style!r}") from None
