"""Fixtures: the reference bank simulator on loopback, an e-CNY channel pointed at it, a notify sink."""
from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from channels.ecny import EcnyChannel, EcnyConfig
from plugins.banks.refbank.simulator import RefBankSimHandle, start_simulator

ACK = b'{"code":"SUCCESS","message":"\xe6\x88\x90\xe5\x8a\x9f"}'


def ecny_code(suffix: str = "") -> str:
    """A payment code (19 digits, ``01…``); the last four digits may pick a simulator outcome."""
    return "01" + "".join(secrets.choice("0123456789") for _ in range(17 - len(suffix))) + suffix


@dataclass
class NotifySink:
    """A merchant callback endpoint: records what arrives, answers as told."""

    url: str
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)  # statuses to answer first, then 200 + SUCCESS
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
        status = s.answers.pop(0) if s.answers else 200
        if status == 200:
            s.queue.put_nowait(item)
            return web.Response(status=200, body=ACK, content_type="application/json")
        return web.json_response({"code": "FAIL", "message": "失败"}, status=status)

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
async def sim(sink: NotifySink) -> AsyncIterator[RefBankSimHandle]:
    # depends on the sink so that the simulator (and its callbacks in flight) stops first
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


MakeChannel = Callable[..., EcnyChannel]


@pytest.fixture
def make_channel(sim: RefBankSimHandle, session: aiohttp.ClientSession, sink: NotifySink) -> MakeChannel:
    def make(index: int = 0, **bank_overrides: Any) -> EcnyChannel:
        cfg = sim.merchant_configs()[index]
        bank_config = {**cfg["bank_config"], "notify_url": sink.url, "timeout_seconds": 3.0, **bank_overrides}
        return EcnyChannel(EcnyConfig.model_validate({**cfg, "bank_config": bank_config}), session)

    return make


@pytest.fixture
def channel(make_channel: MakeChannel) -> EcnyChannel:
    return make_channel()


Control = Callable[..., Awaitable[Any]]


@pytest.fixture
def control(sim: RefBankSimHandle, session: aiohttp.ClientSession) -> Control:
    """Call the simulator's control surface: ``await control("POST", "/faults", {...})``."""

    async def call(method: str, path: str, body: dict[str, Any] | None = None, expect: int | None = None) -> Any:
        async with session.request(method, sim.control_url + path, json=body) as resp:
            data = await resp.json(content_type=None) if resp.content_type == "application/json" \
                else await resp.text()
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
