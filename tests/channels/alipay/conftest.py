"""Fixtures: an Alipay simulator on loopback, an adapter pointed at it, a notify sink."""
from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from channels.alipay import AlipayChannel, AlipayConfig
from channels.alipay.simulator import AlipaySimHandle, start_simulator
from channels.alipay.wire import CST
from gateway.testing.fixtures import Control, NotifySink, control_caller, eventually, notify_sink, session  # noqa: F401

CODE = "286543210987654320"  # a valid payment code that simply succeeds


def today() -> dt.date:
    """The bill date of a trade made now (China time, whatever the host's zone)."""
    return dt.datetime.now(CST).date()


def _answer(s: NotifySink) -> tuple[web.Response, bool]:
    # (status, text) pairs to answer first, then 200 success
    status, text = s.answers.pop(0) if s.answers else (200, "success")
    return web.Response(status=status, text=text, content_type="text/plain"), status == 200 and text == "success"


@pytest.fixture
async def sink() -> AsyncIterator[NotifySink]:
    async with notify_sink(_answer) as s:
        yield s


@pytest.fixture
async def sim(sink: NotifySink) -> AsyncIterator[AlipaySimHandle]:
    # depends on the sink so that the simulator (and its notifies in flight) stops first
    handle = await start_simulator("127.0.0.1", 0, merchants=2)
    handle.simulator.notifier.retry_delays = [0.1, 0.2, 0.3]
    try:
        yield handle
    finally:
        await handle.stop()


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


@pytest.fixture
def control(sim: AlipaySimHandle, session: aiohttp.ClientSession) -> Control:
    """Call the simulator's control surface: ``await control("POST", "/faults", {...})``."""
    return control_caller(session, sim.control_url)
