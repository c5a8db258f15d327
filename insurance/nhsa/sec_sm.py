"""SM channel security: OAuth2 password grant + SM2 signature + SM4 encryption."""
from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import aiohttp

from . import sm_envelope as sme
from .security import CredentialsRefused, SecurityError, register_security
from .smcrypto import SmCryptoError, public_key_of
from .wire import dumps, loads

if TYPE_CHECKING:
    from .config import NhsaConfig
    from .profiles import RegionProfile


class SmOAuthSecurity:
    style: ClassVar[str] = "sm_oauth"
    required_config: ClassVar[tuple[str, ...]] = (
        "oauth_username", "oauth_password", "oauth_client_id", "oauth_client_secret",
        "sm2_private_key", "centre_public_key", "sm4_key")

    def __init__(self, config: NhsaConfig, profile: RegionProfile) -> None:
        self.config = config
        self.profile = profile
        self._private = config.sm2_private_key.get_secret_value()  # type: ignore[union-attr]
        self._public = public_key_of(self._private)
        self._centre = config.centre_public_key or ""
        self._key = sme.sm4_key_bytes(config.sm4_key.get_secret_value())  # type: ignore[union-attr]
        self._token: str | None = None
        self._token_expires = 0.0
        self._lock = asyncio.Lock()

    async def prepare(self, session: aiohttp.ClientSession, base_url: str, timeout: aiohttp.ClientTimeout) -> None:
        if self._token and time.monotonic() < self._token_expires:
            return
        async with self._lock:
            if self._token and time.monotonic() < self._token_expires:
                return
            cfg = self.config
            form = {
                "grant_type": "password",
                "username": cfg.oauth_username or "",
                "password": cfg.oauth_password.get_secret_value() if cfg.oauth_password else "",
                "client_id": cfg.oauth_client_id or "",
                "client_secret": cfg.oauth_client_secret.get_secret_value() if cfg.oauth_client_secret else "",
            }
            async with session.post(base_url + self.profile.token_path, data=form, timeout=timeout) as resp:
                body = await resp.read()
                if resp.status in (400, 401, 403):
                    raise CredentialsRefused(f"token grant refused: HTTP {resp.status}")
                if resp.status >= 300:
                    raise aiohttp.ClientResponseError(resp.request_info, (), status=resp.status)
            try:
                data = loads(body)
                token = str(data["access_token"])
                ttl = int(data.get("expires_in", 3600))
            except (ValueError, KeyError, TypeError) as exc:
                raise SecurityError("token answer unparseable") from exc
            self._token = token
            # renew a little early so a call never carries a token that expires in flight
            self._token_expires = time.monotonic() + max(1, ttl - 30)

    def sign_request(self, envelope: dict[str, Any]) -> tuple[str, dict[str, str]]:
        text = dumps(envelope.get("input"))
        sealed = {**envelope, "input": sme.encrypt_text(self._key, text),
                  "cainfo": sme.sign_text(self._private, self._public, text),
                  "signtype": "SM2", "enc_type": "SM4"}
        return dumps(sealed), {"Authorization": f"Bearer {self._token or ''}"}

    def verify_response(self, headers: Mapping[str, str], payload: dict[str, Any]) -> dict[str, Any]:
        output = payload.get("output")
        try:
            text = sme.decrypt_text(self._key, output) if isinstance(output, str) and output else ""
        except (SmCryptoError, UnicodeDecodeError) as exc:
            raise SecurityError(f"answer output does not decrypt: {exc}") from exc
        signed = sme.answer_sign_text(payload.get("infcode"), payload.get("inf_refmsgid"),
                                      payload.get("err_msg"), text)
        if not sme.verify_text(self._centre, signed, payload.get("cainfo")):
            raise SecurityError("the centre's SM2 signature does not verify")
        try:
            return {**payload, "output": loads(text) if text else None}
        except ValueError as exc:
            raise SecurityError("decrypted output is not JSON") from exc

    def invalidate(self) -> None:
        self._token = None
        self._token_expires = 0.0


register_security(SmOAuthSecurity)
