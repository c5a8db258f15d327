"""The webhook notifier (网络回调通知).

Each notice is POSTed as JSON. With a ``secret`` configured the request carries
``X-Yinyi-Timestamp`` and ``X-Yinyi-Signature`` = hex HMAC-SHA256 over
``"<timestamp>.<body>"`` so the receiver (an SMS platform bridge, a WeChat Work robot
relay, a hospital system) can verify it came from the gateway. ``X-Yinyi-Notice-Id``
lets the receiver drop a duplicate delivery. Any non-2xx answer is a failed attempt.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import time

import aiohttp
import orjson
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, SecretStr

from gateway.notifier import NoticeMessage, Notifier


class WebhookConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl
    secret: SecretStr | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    include_personal_data: bool = False


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, timestamp: str, body: bytes, signature: str, *, window: int = 300) -> bool:
    """For receivers: check a webhook's signature and freshness."""
    try:
        fresh = abs(time.time() - int(timestamp)) <= window
    except ValueError:
        return False
    return fresh and hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookNotifier(Notifier):
    id = "webhook"
    name_zh = "网络回调(Webhook)"
    name_en = "Webhook"
    config_model = WebhookConfig

    async def send(self, notice: NoticeMessage) -> None:
        cfg = self.config
        assert isinstance(cfg, WebhookConfig)
        body = orjson.dumps(notice.model_dump(mode="json"))
        headers = {"Content-Type": "application/json; charset=utf-8", "X-Yinyi-Notice-Id": str(notice.id),
                   "X-Yinyi-Event": notice.event, **cfg.headers}
        if cfg.secret is not None:
            ts = str(int(time.time()))
            headers["X-Yinyi-Timestamp"] = ts
            headers["X-Yinyi-Signature"] = sign(cfg.secret.get_secret_value(), ts, body)
        try:
            async with self.session.post(str(cfg.url), data=body, headers=headers,
                                         timeout=aiohttp.ClientTimeout(total=cfg.timeout_seconds)) as resp:
                if not 200 <= resp.status < 300:
                    raise RuntimeError(f"webhook answered HTTP {resp.status}: {(await resp.text())[:100]}")
        except asyncio.TimeoutError as exc:
            raise RuntimeError("webhook timed out") from exc
