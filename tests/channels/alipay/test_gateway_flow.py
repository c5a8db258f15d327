"""The unified API through the real gateway to the Alipay simulator, over loopback HTTP.

The plugin is handed to the core as a runtime plugin unless it is already bundled
or installed as an entry point; everything else is the production path: API,
ledger, resolver, ``/v1/notify/alipay/{merchant}``.
"""
from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from channels.alipay import plugin as alipay_plugin
from channels.alipay.adapter import AlipayChannel
from channels.alipay.simulator import AlipaySimHandle, start_simulator
from gateway.api.app import create_app
from gateway.core import Core
from gateway.demo import setup_sandbox
from gateway.plugins import BUNDLED
from gateway.testing import SignedClient
from gateway.testing.pytest_plugin import make_test_settings, reset_test_databases

from .conftest import eventually

FAST = (0.5, 1.0, 1.5, 2.0)


@dataclass
class Gw:
    core: Core
    client: SignedClient
    sim: AlipaySimHandle

    async def sim_call(self, method: str, path: str, body: Any = None) -> Any:
        async with aiohttp.ClientSession() as s, s.request(method, self.sim.control_url + path, json=body) as r:
            return await r.json()

    async def status(self, pid: str) -> str:
        _, body = await self.client.get(f"/v1/payments/{pid}")
        return body["status"]

    async def becomes(self, pid: str, status: str, timeout: float = 15) -> None:
        async def check() -> bool:
            return await self.status(pid) == status

        await eventually(check, timeout)


def _extra_plugins() -> list[tuple[str, Any]]:
    known = {name for name, _ in BUNDLED} | {ep.name for ep in metadata.entry_points(group="yinyi")}
    return [] if "alipay" in known else [("alipay", alipay_plugin)]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Gw]:
    settings = make_test_settings(tmp_path, port=_port(), disabled_plugins=["wechatpay"])
    handle = await start_simulator("127.0.0.1", 0, merchants=1)
    handle.simulator.notifier.retry_delays = [0.2, 0.5]
    core = Core(settings, extra_plugins=_extra_plugins())
    await core.migrate()
    await reset_test_databases(settings, core.engine)
    await core.start(background=True, run_migrations=False)
    sandbox = await setup_sandbox(core, {"alipay": handle})
    runner = web.AppRunner(create_app(core=core), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", settings.port).start()
    client = SignedClient(f"http://127.0.0.1:{settings.port}", sandbox["caller"]["app_id"],
                          sandbox["caller"]["secret"])
    await client.__aenter__()
    try:
        yield Gw(core, client, handle)
    finally:
        await client.__aexit__(None, None, None)
        await handle.stop()
        await runner.cleanup()


def body(**kw: Any) -> dict[str, Any]:
    out = {"out_trade_no": "T" + secrets.token_hex(6), "amount": 2500, "subject": "门诊缴费",
           "business_type": "outpatient", "method": "code", "campus": "main",
           "auth_code": "2865432109876" + secrets.choice("01234") + "0000"}
    out.update(kw)
    return {k: v for k, v in out.items() if v is not None}


async def test_code_payment_refunds_and_reverse(gw: Gw) -> None:
    status, p = await gw.client.post("/v1/payments", body())  # the channel is told by the code's digits
    assert status == 200 and (p["status"], p["channel"]) == ("SUCCEEDED", "alipay") and p["channel_trade_no"]
    pid = p["payment_id"]
    _, r1 = await gw.client.post(f"/v1/payments/{pid}/refunds", {"out_refund_no": "RF1", "amount": 300})
    assert r1["status"] == "SUCCEEDED"
    assert await gw.status(pid) == "PARTIALLY_REFUNDED"
    _, r2 = await gw.client.post(f"/v1/payments/{pid}/refunds", {"out_refund_no": "RF2", "amount": 2200})
    assert r2["status"] == "SUCCEEDED" and await gw.status(pid) == "REFUNDED"
    truth = await gw.sim_call("GET", f"/orders/{pid}")
    assert truth["refunds"] == [r1["refund_id"], r2["refund_id"]] and truth["trade_status"] == "TRADE_CLOSED"
    _, q = await gw.client.post("/v1/payments", body())
    _, rev = await gw.client.post(f"/v1/payments/{q['payment_id']}/reverse")
    assert rev["status"] == "REVERSED"
    assert (await gw.sim_call("GET", f"/orders/{q['payment_id']}"))["cancel_action"] == "refund"


async def test_declined_code_is_failed_with_the_sub_code(gw: Gw) -> None:
    _, p = await gw.client.post("/v1/payments", body(auth_code="286543210987659011"))
    assert p["status"] == "FAILED" and p["error_code"] == "ACQ.BUYER_BALANCE_NOT_ENOUGH"


async def test_in_process_settled_by_the_resolver(gw: Gw, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(AlipayChannel, "code_poll_schedule", FAST)
    await gw.sim_call("POST", "/scripts", {"outcome": "INPROCESS", "then": "success", "after_seconds": 0.7})
    _, p = await gw.client.post("/v1/payments", body())
    assert p["status"] == "PAYING"
    await gw.becomes(p["payment_id"], "SUCCEEDED")


async def test_still_in_process_after_the_schedule_is_cancelled(gw: Gw, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(AlipayChannel, "code_poll_schedule", FAST)
    monkeypatch.setattr(AlipayChannel, "reverse_retry_seconds", 0.5)
    _, hang = await gw.client.post("/v1/payments", body(auth_code="286543210987659004"))
    # 9005: the cancel answers retry_flag=Y until the patient gives up (after 3 s)
    await gw.sim_call("POST", "/scripts", {"outcome": "INPROCESS", "then": "fail", "after_seconds": 3,
                                           "cancel_retry": True})
    _, busy = await gw.client.post("/v1/payments", body())
    await gw.becomes(hang["payment_id"], "REVERSED")
    assert (await gw.sim_call("GET", f"/orders/{hang['payment_id']}"))["cancel_action"] == "close"
    await gw.becomes(busy["payment_id"], "REVERSED")
    assert (await gw.sim_call("GET", f"/orders/{busy['payment_id']}"))["trade_status"] == "TRADE_CLOSED"


async def test_qr_settles_by_notify_and_close(gw: Gw) -> None:
    _, p = await gw.client.post("/v1/payments", body(method="qr", channel="alipay", auth_code=None))
    assert p["status"] == "PAYING" and p["code_url"].startswith("https://qr.alipay.com/")
    await gw.sim_call("POST", f"/orders/{p['payment_id']}/pay")
    await gw.becomes(p["payment_id"], "SUCCEEDED", timeout=5)
    log = await gw.sim_call("GET", "/notifies")
    assert log[0]["delivered"] and log[0]["attempts"][0]["answer"] == "success"
    _, q = await gw.client.post("/v1/payments", body(method="qr", channel="alipay", auth_code=None))
    status, c = await gw.client.post(f"/v1/payments/{q['payment_id']}/close")
    assert status == 200 and c["status"] == "CLOSED"
    assert (await gw.sim_call("POST", f"/orders/{q['payment_id']}/pay"))["code"] == "ACQ.TRADE_NOT_EXIST"


async def test_jsapi_and_h5(gw: Gw) -> None:
    _, j = await gw.client.post("/v1/payments", body(method="jsapi", channel="alipay", auth_code=None,
                                                     openid="2088102146225135"))
    assert j["status"] == "PAYING" and j["jsapi_params"]["tradeNO"] == j["channel_trade_no"]
    _, h = await gw.client.post("/v1/payments", body(method="h5", channel="alipay", auth_code=None))
    assert h["status"] == "PAYING" and h["h5_url"].startswith(gw.sim.gateway_url)


async def test_unscanned_qr_is_not_failed_before_it_expires(gw: Gw, monkeypatch: pytest.MonkeyPatch) -> None:
    gw.core.settings.not_found_grace_seconds = 0.5
    monkeypatch.setattr(AlipayChannel, "query_interval", 0.5)
    _, p = await gw.client.post("/v1/payments", body(method="qr", channel="alipay", auth_code=None))
    await asyncio.sleep(2.5)
    assert await gw.status(p["payment_id"]) == "PAYING"
