"""Simulator notifies: signed ``trade_status_sync`` form POSTs to the merchant, retried.

A delivery counts only when the merchant answers HTTP 200 with the plain text
``success``; anything else is retried after ``retry_delays``.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp

from gateway.money import fen_to_yuan

from . import crypto
from .sim_model import SimMerchant, SimOrder
from .wire import CST, format_time

FORM_TYPE = "application/x-www-form-urlencoded; charset=utf-8"


def notify_params(merchant: SimMerchant, order: SimOrder, *, refund_fee: int | None = None,
                  gmt_refund: dt.datetime | None = None, out_biz_no: str | None = None,
                  now: dt.datetime | None = None) -> dict[str, str]:
    """The unsigned parameters of one trade notify (empty values left out)."""
    now = now or dt.datetime.now(CST)
    params: dict[str, str] = {
        "notify_time": format_time(now),
        "notify_type": "trade_status_sync",
        "notify_id": "2024" + secrets.token_hex(16),
        "charset": "utf-8",
        "version": "1.0",
        "app_id": order.app_id,
        "auth_app_id": order.auth_app_id,
        "trade_no": order.trade_no,
        "out_trade_no": order.out_trade_no,
        "buyer_id": order.buyer_user_id,
        "buyer_logon_id": order.buyer_logon_id,
        "buyer_open_id": order.buyer_open_id,
        "seller_id": order.seller_id,
        "trade_status": order.state,
        "total_amount": fen_to_yuan(order.total),
        **order.amounts(),
        "subject": order.subject,
        "body": order.body,
        "gmt_create": format_time(order.created_at),
    }
    if order.paid_at:
        params["gmt_payment"] = format_time(order.paid_at)
        # the service HTML-escapes the quotes of this JSON text, and signs it so
        fund = crypto.dumps([{"amount": fen_to_yuan(order.total), "fundChannel": "ALIPAYACCOUNT"}])
        params["fund_bill_list"] = fund.replace('"', "&quot;")
    if order.closed_at:
        params["gmt_close"] = format_time(order.closed_at)
    if refund_fee is not None:
        params["refund_fee"] = fen_to_yuan(refund_fee)
        params["gmt_refund"] = format_time(gmt_refund or now) + f".{secrets.randbelow(1000):03d}"
    if out_biz_no:
        params["out_biz_no"] = out_biz_no
    return {k: v for k, v in params.items() if v}


def sign_notify(merchant: SimMerchant, params: dict[str, str], sign_type: str = "RSA2") -> dict[str, str]:
    """Add ``sign_type`` and ``sign`` (over everything but those two)."""
    signed = {**params, "sign_type": sign_type}
    signed["sign"] = crypto.rsa_sign(merchant.alipay_key, crypto.notify_sign_content(signed), sign_type)
    return signed


def build_notify(merchant: SimMerchant, params: dict[str, str]) -> tuple[dict[str, str], bytes]:
    """Headers and body of one notify (tests use it to build forgeries)."""
    body = urlencode(sign_notify(merchant, params)).encode()
    return {"Content-Type": FORM_TYPE, "User-Agent": "Mozilla/4.0"}, body


@dataclass
class Delivery:
    id: str
    url: str
    out_trade_no: str
    trade_status: str
    out_biz_no: str | None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    delivered: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "url": self.url, "out_trade_no": self.out_trade_no,
                "trade_status": self.trade_status, "out_biz_no": self.out_biz_no,
                "attempts": self.attempts, "delivered": self.delivered}


class Notifier:
    """Sends notifies in background tasks; retries until the merchant answers ``success``."""

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

    def send(self, merchant: SimMerchant, url: str, params: dict[str, str]) -> Delivery | None:
        if not url:
            return None
        delivery = Delivery(uuid.uuid4().hex[:12], url, params["out_trade_no"], params["trade_status"],
                            params.get("out_biz_no"))
        self.deliveries.append(delivery)
        del self.deliveries[:-500]
        try:
            task = asyncio.get_running_loop().create_task(self._deliver(merchant, delivery, params))
        except RuntimeError:  # no running loop (a synchronous caller): record only
            return delivery
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return delivery

    async def _deliver(self, merchant: SimMerchant, delivery: Delivery, params: dict[str, str]) -> None:
        for delay in [0.0, *self.retry_delays]:
            if delay:
                await asyncio.sleep(delay)
            # every attempt is the same notification (same notify_id), with a fresh notify_time
            params = {**params, "notify_time": format_time(dt.datetime.now(CST))}
            headers, body = build_notify(merchant, params)
            attempt: dict[str, Any] = {"at": params["notify_time"]}
            try:
                assert self._session is not None
                async with self._session.post(delivery.url, data=body, headers=headers) as resp:
                    attempt["status"] = resp.status
                    attempt["answer"] = (await resp.text(errors="replace"))[:200]
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                attempt["error"] = repr(exc)
            delivery.attempts.append(attempt)
            if attempt.get("status") == 200 and attempt.get("answer", "").strip() == "success":
                delivery.delivered = True
                return

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait until the notifies in flight have been delivered or given up (tests)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
