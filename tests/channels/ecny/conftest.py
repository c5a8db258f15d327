"""Fixtures: the reference bank simulator on loopback, an e-CNY channel pointed at it, a notify sink."""
from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from channels.ecny import EcnyChannel, EcnyConfig
from gateway.testing.fixtures import Control, NotifySink, control_caller, eventually, notify_sink, session  # noqa: F401
from plugins.banks.refbank.simulator import RefBankSimHandle, start_simulator

ACK = b'{"code":"SUCCESS","message":"\xe6\x88\x90\xe5\x8a\x9f"}'


def ecny_code(suffix: str = "") -> str:
    """A payment code (19 digits, ``01…``); the last four digits may pick a simulator outcome."""
    return "01" + "".join(secrets.choice("0123456789") for _ in range(17 - len(suffix))) + suffix


def _answer(s: NotifySink) -> tuple[web.Response, bool]:
    # statuses to answer first, then 200 + SUCCESS
    status = s.answers.pop(0) if s.answers else 200
    if status == 200:
        return web.Response(status=200, body=ACK, content_type="application/json"), True
    return web.json_response({"code": "FAIL", "message": "失败"}, status=status), False


@pytest.fixture
async def sink() -> AsyncIterator[NotifySink]:
    async with notify_sink(_answer) as s:
        yield s


@pytest.fixture
async def sim(sink: NotifySink) -> AsyncIterator[RefBankSimHandle]:
    # depends on the sink so that the simulator (and its callbacks in flight) stops first
    handle = await start_simulator("127.0.0.1", 0, merchants=2)
    handle.simulator.notifier.retry_delays = [0.1, 0.2, 0.3]
    try:
        yield handle
    finally:
        await handle.stop()


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


@pytest.fixture
def control(sim: RefBankSimHandle, session: aiohttp.ClientSession) -> Control:
    """Call the simulator's control surface: ``await control("POST", "/faults", {...})``."""
    return control_caller(session, sim.control_url, text_ok=True)
