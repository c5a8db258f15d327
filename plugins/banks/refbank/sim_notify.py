"""Simulator callbacks: signed JSON POSTed to the merchant's notify URL, retried until acknowledged."""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from cryptography.hazmat.primitives.asymmetric import rsa

from . import crypto
from .wire import CST, dumps, format_time


def build_notify(bank_key: rsa.RSAPrivateKey, bank_key_id: str, merchant_id: str, notify_type: str,
                 data: dict[str, Any], *, notify_id: str | None = None, timestamp: str | None = None,
                 when: dt.datetime | None = None) -> tuple[dict[str, str], bytes]:
    """The headers and body of one callback (tests use it to build forgeries too)."""
    body = dumps({
        "notify_id": notify_id or "N" + uuid.uuid4().hex[:24].upper(),
        "notify_type": notify_type,
        "notify_time": format_time(when or dt.datetime.now(CST)),
        "merchant_id": merchant_id,
        "data": data,
    })
    headers = crypto.sign_headers(bank_key, bank_key_id, crypto.NOTIFY_SCOPE, merchant_id, body, timestamp=timestamp)
    headers["Content-Type"] = "application/json; charset=utf-8"
    return headers, body


def acknowledged(status: int, text: str) -> bool:
    """The bank stops retrying on HTTP 200 with ``{"code":"SUCCESS"}`` and on nothing else."""
    if status != 200:
        return False
    try:
        data = json.loads(text)
    except ValueError:
        return False
    return isinstance(data, dict) and data.get("code") == "SUCCESS"


@dataclass
class Delivery:
    id: str
    notify_id: str
    notify_type: str
    url: str
    merchant_id: str
    out_trade_no: str
    out_refund_no: str | None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    delivered: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "notify_id": self.notify_id, "notify_type": self.notify_type, "url": self.url,
                "merchant_id": self.merchant_id, "out_trade_no": self.out_trade_no,
                "out_refund_no": self.out_refund_no, "attempts": self.attempts, "delivered": self.delivered}


class Notifier:
    """Sends callbacks in background tasks; retries until the merchant acknowledges."""

    def __init__(self, bank_key: rsa.RSAPrivateKey, bank_key_id: str) -> None:
        self.bank_key = bank_key
        self.bank_key_id = bank_key_id
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

    def send(self, url: str, merchant_id: str, notify_type: str, data: dict[str, Any], out_trade_no: str,
             out_refund_no: str | None = None) -> Delivery | None:
        if not url:
            return None
        # one notify id for every attempt of one event: the merchant de-duplicates by it
        delivery = Delivery(secrets.token_hex(6), "N" + uuid.uuid4().hex[:24].upper(), notify_type, url,
                            merchant_id, out_trade_no, out_refund_no)
        self.deliveries.append(delivery)
        del self.deliveries[:-500]
        try:
            task = asyncio.get_running_loop().create_task(self._deliver(delivery, data))
        except RuntimeError:  # no running loop: recorded only
            return delivery
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return delivery

    async def _deliver(self, delivery: Delivery, data: dict[str, Any]) -> None:
        for delay in [0.0, *self.retry_delays]:
            if delay:
                await asyncio.sleep(delay)
            # each attempt is signed afresh: its timestamp must be inside the window
            headers, body = build_notify(self.bank_key, self.bank_key_id, delivery.merchant_id,
                                         delivery.notify_type, data, notify_id=delivery.notify_id)
            attempt: dict[str, Any] = {"at": format_time(dt.datetime.now(CST))}
            try:
                assert self._session is not None
                async with self._session.post(delivery.url, data=body, headers=headers) as resp:
                    attempt["status"] = resp.status
                    attempt["answer"] = (await resp.text())[:200]
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                attempt["error"] = repr(exc)
            delivery.attempts.append(attempt)
            if acknowledged(attempt.get("status", 0), attempt.get("answer", "")):
                delivery.delivered = True
                return

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait until the callbacks in flight are delivered or given up (tests)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
