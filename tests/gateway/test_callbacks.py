"""Signed notifications to calling systems through the transactional outbox."""
from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from gateway.api import signing
from tests.conftest import Gateway, free_port, wait_for
from tests.gateway.test_payments import pay_body, sim


class Receiver:
    """A calling system's notify endpoint that verifies the gateway's signature."""

    def __init__(self, secret: str, fail_first: int = 0) -> None:
        self.secret = secret
        self.fail_first = fail_first
        self.received: list[dict[str, Any]] = []
        self.rejected = 0
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/his/notify?hospital=1"

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        h = request.headers
        ok = signing.verify(self.secret, h["X-Signature"], "POST", request.raw_path, h["X-Timestamp"], h["X-Nonce"],
                            body)
        if not ok:
            self.rejected += 1
            return web.Response(status=401)
        if self.fail_first > 0:
            self.fail_first -= 1
            return web.Response(status=503, text="busy")
        self.received.append(await request.json())
        return web.Response(text="success")

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/his/notify", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.runner.cleanup()


async def test_payment_and_refund_notifications_are_signed_and_delivered(gw: Gateway) -> None:
    async with Receiver(gw.sandbox["caller"]["secret"]) as rx:
        _, p = await gw.client.post("/v1/payments", pay_body(method="qr", channel="wechatpay", auth_code=None,
                                                             notify_url=rx.url))
        await sim(gw, "POST", f"/_sim/orders/{p['payment_id']}/pay", {})
        await wait_for(lambda: _received(rx, "payment.succeeded"), timeout=15)
        note = next(n for n in rx.received if n["event"] == "payment.succeeded")
        assert note["payment"]["payment_id"] == p["payment_id"] and note["payment"]["status"] == "SUCCEEDED"
        _, r = await gw.client.post(f"/v1/payments/{p['payment_id']}/refunds", {"out_refund_no": "N1", "amount": 100})
        await wait_for(lambda: _received(rx, "refund.succeeded"), timeout=15)
        assert rx.rejected == 0
        # Exactly one notification per final state, however the state was learnt (notify and query).
        await asyncio.sleep(1.0)
        assert [n["event"] for n in rx.received].count("payment.succeeded") == 1


async def _received(rx: Receiver, event: str) -> bool:
    return any(n["event"] == event for n in rx.received)


async def test_failed_deliveries_back_off_then_succeed(gw: Gateway) -> None:
    async with Receiver(gw.sandbox["caller"]["secret"], fail_first=2) as rx:
        gw.core.callbacks.backoff = lambda attempts: __import__("datetime").timedelta(seconds=0.2)  # type: ignore[method-assign]
        _, p = await gw.client.post("/v1/payments", pay_body(notify_url=rx.url))
        await wait_for(lambda: _received(rx, "payment.succeeded"), timeout=15)
        _, listed = await gw.admin.get(f"/v1/admin/callbacks?payment_id={p['payment_id']}")
        item = listed["items"][0]
        assert item["status"] == "DELIVERED" and item["attempts"] == 3


async def test_exhausted_delivery_is_visible_and_can_be_resent(gw: Gateway) -> None:
    gw.core.settings.callback_max_attempts = 2
    gw.core.callbacks.backoff = lambda attempts: __import__("datetime").timedelta(seconds=0.1)  # type: ignore[method-assign]
    async with Receiver(gw.sandbox["caller"]["secret"], fail_first=10) as rx:
        _, p = await gw.client.post("/v1/payments", pay_body(notify_url=rx.url))

        async def exhausted() -> Any:
            _, body = await gw.admin.get("/v1/admin/callbacks?status=EXHAUSTED")
            return [i for i in body["items"] if i["payment_id"] == p["payment_id"]]

        items = await wait_for(exhausted, timeout=15)
        assert items[0]["last_error"].startswith("HTTP 503")
        rx.fail_first = 0
        status, again = await gw.admin.post(f"/v1/admin/callbacks/{items[0]['id']}/resend")
        assert status == 200 and again["status"] == "PENDING"
        await wait_for(lambda: _received(rx, "payment.succeeded"), timeout=15)
        status, body = await gw.admin.post("/v1/admin/callbacks/999999/resend")
        assert (status, body["code"]) == (404, "NOT_FOUND")


async def test_outbox_survives_an_unreachable_caller(gw: Gateway) -> None:
    """The caller is down: the notification waits in the outbox, pending, and nothing else is affected."""
    _, p = await gw.client.post("/v1/payments", pay_body(notify_url=f"http://127.0.0.1:{free_port()}/down"))
    assert p["status"] == "SUCCEEDED"

    async def attempted() -> Any:
        _, body = await gw.admin.get(f"/v1/admin/callbacks?payment_id={p['payment_id']}")
        return body["items"] and body["items"][0]["attempts"] >= 1 and body["items"][0]

    item = await wait_for(attempted, timeout=15)
    assert item["status"] == "PENDING" and "ClientConnectorError" in item["last_error"]
