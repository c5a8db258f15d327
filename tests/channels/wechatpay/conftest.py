"""Fixtures: a WeChat Pay simulator on loopback, an adapter pointed at it, a notify sink."""
from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from channels.wechatpay import WeChatPayChannel, WeChatPayConfig
from channels.wechatpay.simulator import WeChatPaySimHandle, start_simulator
from gateway.testing.fixtures import Control, NotifySink, control_caller, eventually, notify_sink, session  # noqa: F401


@pytest.fixture
async def sim(sink: NotifySink) -> AsyncIterator[WeChatPaySimHandle]:
    # depends on the sink so that the simulator (and its notifies in flight) stops first
    handle = await start_simulator("127.0.0.1", 0, merchants=2)
    handle.simulator.notifier.retry_delays = [0.1, 0.2, 0.3]
    try:
        yield handle
    finally:
        await handle.stop()


def _answer(s: NotifySink) -> tuple[web.Response, bool]:
    # statuses to answer first, then 204
    status = s.answers.pop(0) if s.answers else 204
    if status < 300:
        return web.Response(status=status), True
    return web.json_response({"code": "FAIL", "message": "失败"}, status=status), False


@pytest.fixture
async def sink() -> AsyncIterator[NotifySink]:
    async with notify_sink(_answer) as s:
        yield s


MakeChannel = Callable[..., WeChatPayChannel]


@pytest.fixture
def make_channel(sim: WeChatPaySimHandle, session: aiohttp.ClientSession, sink: NotifySink) -> MakeChannel:
    def make(index: int = 0, **overrides: Any) -> WeChatPayChannel:
        cfg = {**sim.merchant_configs()[index], "notify_url": sink.url, "timeout_seconds": 3.0, **overrides}
        return WeChatPayChannel(WeChatPayConfig.model_validate(cfg), session)

    return make


@pytest.fixture
def channel(make_channel: MakeChannel) -> WeChatPayChannel:
    return make_channel()


@pytest.fixture
def control(sim: WeChatPaySimHandle, session: aiohttp.ClientSession) -> Control:
    """Call the simulator's control surface: ``await control("POST", "/faults", {...})``."""
    return control_caller(session, sim.control_url)
