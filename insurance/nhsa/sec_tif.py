"""TIF gateway headers: ``x-tif-signature = SHA256hex(ts + token + nonce + ts)``."""
from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import aiohttp

from .security import register_security
from .wire import dumps

if TYPE_CHECKING:
    from .config import NhsaConfig
    from .profiles import RegionProfile


def tif_signature(timestamp: str, token: str, nonce: str) -> str:
    return hashlib.sha256(f"{timestamp}{token}{nonce}{timestamp}".encode()).hexdigest()


class TifSecurity:
    style: ClassVar[str] = "tif"
    required_config: ClassVar[tuple[str, ...]] = ("tif_paasid", "tif_token")

    def __init__(self, config: NhsaConfig, profile: RegionProfile) -> None:
        self._paasid = config.tif_paasid or ""
        self._token = config.tif_token.get_secret_value() if config.tif_token else ""

    async def prepare(self, session: aiohttp.ClientSession, base_url: str, timeout: aiohttp.ClientTimeout) -> None:
        return None

    def sign_request(self, envelope: dict[str, Any]) -> tuple[str, dict[str, str]]:
        ts = str(int(time.time()))
        nonce = secrets.token_hex(16)
        return dumps(envelope), {
            "x-tif-paasid": self._paasid, "x-tif-timestamp": ts, "x-tif-nonce": nonce,
            "x-tif-signature": tif_signature(ts, self._token, nonce),
        }

    def verify_response(self, headers: Mapping[str, str], payload: dict[str, Any]) -> dict[str, Any]:
        # the gateway authenticates callers; the centre's answers are not signed in this style
        return payload

    def invalidate(self) -> None:
        return None


register_security(TifSecurity)
