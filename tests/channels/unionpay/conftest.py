"""Fixtures: a UnionPay simulator on loopback, an adapter pointed at it, a notify sink."""
from __future__ import annotations

import datetime as dt
import itertools
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from channels.unionpay import UnionPayChannel, UnionPayConfig
from channels.unionpay.simulator import UnionPaySimHandle, start_simulator
from channels.unionpay.wire import CST
from gateway.testing.fixtures import Control, NotifySink, control_caller, eventually, notify_sink, session  # noqa: F401

_seq = itertools.count(1)


def gateway_id(prefix: str = "P") -> str:
    """An order number in the gateway's ledger form: prefix, UTC yyyyMMddHHmmss, 10 hex digits."""
    now = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
    return f"{prefix}{now}{secrets.token_hex(5)}"


def plain_id(prefix: str = "ORDER") -> str:
    """An order number without an embedded time (the adapter remembers its txnTime)."""
    return f"{prefix}{next(_seq):06d}{secrets.token_hex(2).upper()}"


def code(last4: str = "0000") -> str:
    """A payment code (62 + 17 digits) ending in ``last4``."""
    return "62" + f"{secrets.randbelow(10**13):013d}" + last4


def cst_today() -> dt.date:
    return dt.datetime.now(CST).date()


@pytest.fixture
async def sim(sink: NotifySink) -> AsyncIterator[UnionPaySimHandle]:
    # depends on the sink so that the simulator (and its notifies in flight) stops first
    handle = await start_simulator("127.0.0.1", 0, merchants=2)
    handle.simulator.notifier.retry_delays = [0.1, 0.2, 0.3]
    try:
        yield handle
    finally:
        await handle.stop()


def _answer(s: NotifySink) -> tuple[web.Response, bool]:
    # statuses to answer first, then 200
    status = s.answers.pop(0) if s.answers else 200
    return web.Response(status=status, text="ok" if status == 200 else "busy"), status == 200


@pytest.fixture
async def sink() -> AsyncIterator[NotifySink]:
    async with notify_sink(_answer) as s:
        yield s


MakeChannel = Callable[..., UnionPayChannel]


@pytest.fixture
def make_channel(sim: UnionPaySimHandle, session: aiohttp.ClientSession, sink: NotifySink) -> MakeChannel:
    def make(index: int = 0, **overrides: Any) -> UnionPayChannel:
        cfg = {**sim.merchant_configs()[index], "back_url": sink.url, "timeout_seconds": 3.0, **overrides}
        return UnionPayChannel(UnionPayConfig.model_validate(cfg), session)

    return make


@pytest.fixture
def channel(make_channel: MakeChannel) -> UnionPayChannel:
    return make_channel()


@pytest.fixture
def control(sim: UnionPaySimHandle, session: aiohttp.ClientSession) -> Control:
    """Call the simulator's control surface: ``await control("POST", "/faults", {...})``."""
    return control_caller(session, sim.control_url)
