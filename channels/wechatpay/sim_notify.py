"""Simulator notifies: encrypted, signed callbacks POSTed to the merchant, retried."""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from . import crypto
from .sim_model import SimMerchant
from .wire import CST, format_time


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON, as the service writes it."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


SUMMARIES = {
    "TRANSACTION.SUCCESS": "支付成功",
    "REFUND.SUCCESS": "退款成功",
    "REFUND.ABNORMAL": "退款异常",
    "REFUND.CLOSED": "退款关闭",
}


def build_notify(
    merchant: SimMerchant,
    event_type: str,
    resource: dict[str, Any],
    *,
    timestamp: str | None = None,
    created: dt.datetime | None = None,
) -> tuple[dict[str, str], bytes]:
    """The headers and body of one notify (also used by tests to build forgeries)."""
    original_type = "transaction" if event_type.startswith("TRANSACTION.") else "refund"
    nonce = secrets.token_hex(6)  # 12 characters
    envelope = {
        "id": str(uuid.uuid4()),
        "create_time": format_time(created or dt.datetime.now(CST)),
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": SUMMARIES.get(event_type, event_type),
        "resource": {
            "original_type": original_type,
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": crypto.aes_gcm_encrypt(merchant.apiv3_key, dumps(resource), nonce, original_type),
            "associated_data": original_type,
            "nonce": nonce,
        },
    }
    body = dumps(envelope)
    headers = crypto.signed_headers(merchant.platform_key, merchant.pub_key_id, body, timestamp=timestamp)
    headers["Content-Type"] = "application/json"
    headers["Request-ID"] = uuid.uuid4().hex.upper()
    return headers, body


@dataclass
class Delivery:
    id: str
    event_type: str
    url: str
    out_trade_no: str
    out_refund_no: str | None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    delivered: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "event_type": self.event_type, "url": self.url,
                "out_trade_no": self.out_trade_no, "out_refund_no": self.out_refund_no,
                "attempts": self.attempts, "delivered": self.delivered}


class Notifier:
    """Sends notifies in background tasks; retries on non-2xx or connection errors."""

    def __init__(self) -> None:
        self.retry_delays: list[float] = [1.0, 3.0, 10.0, 30.0]
        self.deliveries: list[Delivery] = []
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def send(self, merchant: SimMerchant, url: str, event_type: str, resource: dict[str, Any],
             out_trade_no: str, out_refund_no: str | None = None) -> Delivery | None:
        if not url:
            return None
        delivery = Delivery(uuid.uuid4().hex[:12], event_type, url, out_trade_no, out_refund_no)
        self.deliveries.append(delivery)
        del self.deliveries[:-500]
        try:
            task = asyncio.get_running_loop().create_task(self._deliver(merchant, delivery, resource))
        except RuntimeError:  # no running loop (a synchronous caller): record only
            return delivery
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return delivery

    async def _deliver(self, merchant: SimMerchant, delivery: Delivery, resource: dict[str, Any]) -> None:
        delays = [0.0, *self.retry_delays]
        for delay in delays:
            if delay:
                await asyncio.sleep(delay)
            # each attempt is signed afresh: the timestamp must stay inside the window
            headers, body = build_notify(merchant, delivery.event_type, resource)
            attempt: dict[str, Any] = {"at": format_time(dt.datetime.now(CST))}
            try:
                assert self._session is not None
                async with self._session.post(delivery.url, data=body, headers=headers) as resp:
                    attempt["status"] = resp.status
                    attempt["answer"] = (await resp.text())[:200]
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                attempt["error"] = repr(exc)
            delivery.attempts.append(attempt)
            if 200 <= attempt.get("status", 0) < 300:
                delivery.delivered = True
                return

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait until the notifies in flight have been delivered or given up (tests)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
