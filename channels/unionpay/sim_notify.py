"""Simulator notifies: signed back-end notifications POSTed to ``backUrl``, retried until HTTP 200."""
from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from .wire import CST, encode_form


@dataclass
class Delivery:
    id: str
    url: str
    kind: str
    order_id: str
    resp_code: str
    attempts: list[dict[str, Any]] = field(default_factory=list)
    delivered: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "url": self.url, "kind": self.kind, "order_id": self.order_id,
                "resp_code": self.resp_code, "attempts": self.attempts, "delivered": self.delivered}


class Notifier:
    """Sends notifies in background tasks; only HTTP 200 counts as received."""

    def __init__(self) -> None:
        self.retry_delays: list[float] = [1.0, 2.0, 4.0, 8.0, 16.0]
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

    def send(self, url: str, params: Mapping[str, str], kind: str) -> Delivery | None:
        """POST the signed ``params`` to ``url`` as a form (no-op without a URL)."""
        if not url:
            return None
        delivery = Delivery(uuid.uuid4().hex[:12], url, kind, params.get("orderId", ""), params.get("respCode", ""))
        self.deliveries.append(delivery)
        del self.deliveries[:-500]
        try:
            task = asyncio.get_running_loop().create_task(self._deliver(delivery, encode_form(params)))
        except RuntimeError:  # no running loop: record only
            return delivery
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return delivery

    async def _deliver(self, delivery: Delivery, body: bytes) -> None:
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"}
        for delay in [0.0, *self.retry_delays]:
            if delay:
                await asyncio.sleep(delay)
            attempt: dict[str, Any] = {"at": dt.datetime.now(CST).isoformat(timespec="seconds")}
            try:
                assert self._session is not None
                async with self._session.post(delivery.url, data=body, headers=headers) as resp:
                    attempt["status"] = resp.status
                    attempt["answer"] = (await resp.text(errors="replace"))[:200]
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                attempt["error"] = repr(exc)
            delivery.attempts.append(attempt)
            if attempt.get("status") == 200:
                delivery.delivered = True
                return

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait until the notifies in flight have been delivered or given up (tests)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
