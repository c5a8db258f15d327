"""The UnionPay package plugged into a real gateway: unified API → adapter → simulator, notifies back."""
from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from channels.unionpay import plugin as unionpay_plugin
from channels.unionpay.simulator import UnionPaySimHandle, start_simulator
from gateway.api.app import create_app
from gateway.core import Core
from gateway.demo import setup_sandbox
from gateway.testing import SignedClient
from gateway.testing.pytest_plugin import make_test_settings, reset_test_databases
from tests.conftest import free_port, wait_for

from .conftest import code


class Env:
    def __init__(self, core: Core, client: SignedClient, sim: UnionPaySimHandle) -> None:
        self.core, self.client, self.sim = core, client, sim

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        async with aiohttp.ClientSession() as s:
            async with s.request(method, self.sim.control_url + path, json=body) as r:
                return await r.json()

    async def status(self, pid: str) -> str:
        _, body = await self.client.get(f"/v1/payments/{pid}")
        return body["status"]


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    settings = make_test_settings(tmp_path, port=free_port())
    sim = await start_simulator("127.0.0.1", 0)
    sim.simulator.notifier.retry_delays = [0.2, 0.5]
    core = Core(settings, extra_plugins=[("unionpay", unionpay_plugin)])
    await core.migrate()
    await reset_test_databases(settings, core.engine)
    await core.start(background=True, run_migrations=False)
    sandbox = await setup_sandbox(core, {"unionpay": sim})
    runner = web.AppRunner(create_app(core=core), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", settings.port).start()
    client = SignedClient(f"http://127.0.0.1:{settings.port}", sandbox["caller"]["app_id"],
                          sandbox["caller"]["secret"])
    await client.__aenter__()
    try:
        yield Env(core, client, sim)
    finally:
        await client.__aexit__(None, None, None)
        await sim.stop()
        await runner.cleanup()  # stops the core too


def pay_body(**kw: Any) -> dict[str, Any]:
    body = {"out_trade_no": "T" + secrets.token_hex(6), "amount": 2500, "subject": "门诊缴费",
            "business_type": "outpatient", "method": "code", "auth_code": code(), "campus": "main",
            "entry": "window-3", "operator": "cashier-07"}
    return body | kw


async def test_code_payment_succeeds_and_the_notify_is_accepted(env: Env) -> None:
    status, p = await env.client.post("/v1/payments", pay_body())
    assert status == 200, p
    assert p["channel"] == "unionpay" and p["status"] == "SUCCEEDED" and p["channel_trade_no"]
    truth = await env.control("GET", f"/orders/{p['payment_id']}")
    assert truth["state"] == "SUCCESS" and truth["back_url"].endswith(f"/v1/notify/unionpay/{p['merchant_id']}")

    async def delivered() -> Any:
        log = await env.control("GET", "/notifies")
        return log if log and log[0]["delivered"] else None

    log = await wait_for(delivered)
    assert log[0]["attempts"][-1]["status"] == 200


async def test_processing_payment_settles_in_the_background(env: Env) -> None:
    c = code()
    await env.control("POST", "/scripts", {"auth_code": c, "outcome": "PROCESSING", "then": "success",
                                           "after_seconds": 1})
    _, p = await env.client.post("/v1/payments", pay_body(auth_code=c))
    assert p["status"] == "PAYING"
    await wait_for(lambda: _is(env, p["payment_id"], "SUCCEEDED"), timeout=15)


async def test_declined_payment_fails_with_the_channel_code(env: Env) -> None:
    _, p = await env.client.post("/v1/payments", pay_body(auth_code=code("9011")))
    assert p["status"] == "FAILED" and p["error_code"] == "64"


async def test_refund_and_reverse_through_the_api(env: Env) -> None:
    await env.control("POST", "/settings", {"refund_settle_seconds": 0.3})
    _, p = await env.client.post("/v1/payments", pay_body(amount=1000))
    pid = p["payment_id"]
    status, r = await env.client.post(f"/v1/payments/{pid}/refunds", {"out_refund_no": "RF1", "amount": 300})
    assert status == 200 and r["status"] in ("PROCESSING", "SUCCEEDED"), r
    await wait_for(lambda: _refund_is(env, r["refund_id"], "SUCCEEDED"), timeout=15)
    assert await env.status(pid) == "PARTIALLY_REFUNDED"
    _, other = await env.client.post("/v1/payments", pay_body())
    status, rev = await env.client.post(f"/v1/payments/{other['payment_id']}/reverse")
    assert status == 200 and rev["status"] == "REVERSED", rev
    undo = await env.control("GET", f"/refunds/{other['payment_id']}UD")
    assert undo["state"] == "SUCCESS" and undo["amount"] == 2500


async def _is(env: Env, pid: str, status: str) -> bool:
    return await env.status(pid) == status


async def _refund_is(env: Env, rid: str, status: str) -> bool:
    _, body = await env.client.get(f"/v1/refunds/{rid}")
    return body["status"] == status
