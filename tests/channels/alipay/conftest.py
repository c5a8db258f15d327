"""Fixtures: an Alipay simulator on loopback, an adapter pointed at it, a notify sink."""
from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from channels.alipay import AlipayChannel, AlipayConfig
from channels.alipay.simulator import AlipaySimHandle, start_simulator
from channels.alipay.wire import CST

CODE = "286543210987654320"  # a valid payment code that simply succeeds


def today() -> dt.date:
    """The bill date of a trade made now (China time, whatever the host's zone)."""
    return dt.datetime.now(CST).date()


@dataclass
class NotifySink:
    """A merchant notify endpoint: records what arrives, answers as told (then ``success``)."""

    url: str
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    answers: list[tuple[int, str]] = field(default_factory=list)
    queue: asyncio.Queue[tuple[dict[str, str], bytes]] = field(default_factory=asyncio.Queue)

    async def next(self, timeout: float = 5.0) -> tuple[dict[str, str], bytes]:
        return await asyncio.wait_for(self.queue.get(), timeout)


@pytest.fixture
async def sink() -> AsyncIterator[NotifySink]:
    holder: dict[str, NotifySink] = {}

    async def receive(request: web.Request) -> web.Response:
        s = holder["sink"]
        item = (dict(request.headers), await request.read())
        s.received.append(item)
        status, text = s.answers.pop(0) if s.answers else (200, "success")
        if status == 200 and text == "success":
            s.queue.put_nowait(item)
        return web.Response(status=status, text=text, content_type="text/plain")

    app = web.Application()
    app.router.add_post("/notify", receive)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    holder["sink"] = NotifySink(f"http://127.0.0.1:{port}/notify")
    try:
        yield holder["sink"]
    finally:
        await runner.cleanup()


@pytest.fixture
async def sim(sink: NotifySink) -> AsyncIterator[AlipaySimHandle]:
    # depends on the sink so that the simulator (and its notifies in flight) stops first
    handle = await start_simulator("127.0.0.1", 0, merchants=2)
    handle.simulator.notifier.retry_delays = [0.1, 0.2, 0.3]
    try:
        yield handle
    finally:
        await handle.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


MakeChannel = Callable[..., AlipayChannel]


@pytest.fixture
def make_channel(sim: AlipaySimHandle, session: aiohttp.ClientSession, sink: NotifySink) -> MakeChannel:
    def make(index: int = 0, **overrides: Any) -> AlipayChannel:
        cfg = {**sim.merchant_configs()[index], "notify_url": sink.url, "timeout_seconds": 3.0, **overrides}
        return AlipayChannel(AlipayConfig.model_validate(cfg), session)

    return make


@pytest.fixture
def channel(make_channel: MakeChannel) -> AlipayChannel:
    return make_channel()


Control = Callable[..., Awaitable[Any]]


@pytest.fixture
def control(sim: AlipaySimHandle, session: aiohttp.ClientSession) -> Control:
    """Call the simulator's control surface: ``await control("POST", "/faults", {...})``."""

    async def call(method: str, path: str, body: dict[str, Any] | None = None, expect: int | None = None) -> Any:
        async with session.request(method, sim.control_url + path, json=body) as resp:
            data = await resp.json()
            if expect is not None:
                assert resp.status == expect, (resp.status, data)
            elif resp.status >= 400:
                raise AssertionError(f"{method} {path}: {resp.status} {data}")
            return data

    return call


async def eventually(predicate: Callable[[], Awaitable[Any]], timeout: float = 5.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true within {timeout}s: {value!r}")
        await asyncio.sleep(0.05)
