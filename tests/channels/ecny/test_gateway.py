"""The unified API through the e-CNY channel to the reference bank simulator, over real HTTP.

The e-CNY and reference bank plugins are added to the core at run time unless they
are already bundled or installed as entry points.
"""
from __future__ import annotations

import importlib.metadata
import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import channels.ecny.plugin as ecny_plugin
import plugins.banks.refbank.plugin as refbank_plugin
from channels.ecny import EcnyChannel
from gateway.api.app import create_app
from gateway.config import Settings
from gateway.core import Core
from gateway.demo import setup_sandbox
from gateway.plugins import BUNDLED
from gateway.testing import SignedClient
from plugins.banks.refbank.simulator import RefBankSimHandle, start_simulator
from gateway.testing.pytest_plugin import reset_test_databases
from tests.conftest import Gateway, stop_gateway, wait_for

from .conftest import ecny_code


def extra_plugins() -> list[tuple[str, Any]]:
    loaded = {m for _n, m in BUNDLED} | {ep.value for ep in importlib.metadata.entry_points(group="yinyi")}
    return [(n, m) for n, m in (("ecny", ecny_plugin), ("refbank", refbank_plugin)) if m.__name__ not in loaded]


@pytest.fixture
async def ecny_sim() -> AsyncIterator[RefBankSimHandle]:
    handle = await start_simulator("127.0.0.1", 0, merchants=1)
    handle.simulator.notifier.retry_delays = [0.2, 0.5, 1.0]
    try:
        yield handle
    finally:
        await handle.stop()


@pytest.fixture
async def egw(settings: Settings, ecny_sim: RefBankSimHandle) -> AsyncIterator[Gateway]:
    core = Core(settings, extra_plugins=extra_plugins())
    await core.migrate()
    await reset_test_databases(settings, core.engine)
    await core.start(run_migrations=False)
    sandbox = await setup_sandbox(core, {"ecny": ecny_sim})
    runner = web.AppRunner(create_app(core=core), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", settings.port).start()
    base = f"http://127.0.0.1:{settings.port}"
    client = SignedClient(base, sandbox["caller"]["app_id"], sandbox["caller"]["secret"])
    admin = SignedClient(base, sandbox["admin"]["app_id"], sandbox["admin"]["secret"])
    await client.__aenter__()
    await admin.__aenter__()
    gw = Gateway(base, core, sandbox, client, admin, settings)
    try:
        yield gw
    finally:
        await stop_gateway(gw, runner)


def pay_body(**kw: Any) -> dict[str, Any]:
    body = {"out_trade_no": "E" + secrets.token_hex(6), "amount": 2500, "subject": "门诊缴费",
            "business_type": "outpatient", "method": "code", "auth_code": ecny_code(), "campus": "main"}
    body.update(kw)
    return {k: v for k, v in body.items() if v is not None}


async def sim(gw: Gateway, method: str, path: str, body: Any = None) -> Any:
    base = gw.sandbox["simulators"]["ecny"]["control_url"]
    async with aiohttp.ClientSession() as s:
        async with s.request(method, base + path, json=body) as r:
            return await r.json()


async def _is(gw: Gateway, pid: str, status: str) -> bool:
    _, body = await gw.client.get(f"/v1/payments/{pid}")
    return body["status"] == status


async def test_sandbox_has_an_ecny_merchant(egw: Gateway) -> None:
    info = egw.sandbox["simulators"]["ecny"]
    assert info["channel"] == "ecny" and info["gateway_merchant_ids"] == ["mch_ecny_1"]
    assert info["merchants"][0]["bank"] == "refbank"
    adapter = await egw.core.directory.adapter_for("mch_ecny_1")
    assert isinstance(adapter, EcnyChannel) and adapter.bank_id == "refbank"


async def test_pay_by_code_detects_ecny(egw: Gateway) -> None:
    status, p = await egw.client.post("/v1/payments", pay_body())
    assert status == 200, p
    assert (p["status"], p["channel"], p["merchant_id"]) == ("SUCCEEDED", "ecny", "mch_ecny_1")
    truth = await sim(egw, "GET", f"/orders/{p['payment_id']}")
    assert truth["trade_status"] == "SUCCESS" and truth["amount"] == "25.00"
    assert p["channel_trade_no"] == truth["bank_trade_no"]


async def test_declined_code_is_failed_with_the_banks_code(egw: Gateway) -> None:
    _, p = await egw.client.post("/v1/payments", pay_body(auth_code=ecny_code("9011")))
    assert p["status"] == "FAILED" and p["error_code"] == "BALANCE_NOT_ENOUGH"


async def test_confirming_then_success_settled_by_the_resolver(egw: Gateway, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(EcnyChannel, "code_poll_schedule", (0.5, 1, 2, 3, 4, 6, 8, 10))
    await sim(egw, "POST", "/scripts", {"outcome": "PAYING", "after_seconds": 1})
    _, p = await egw.client.post("/v1/payments", pay_body())
    assert p["status"] == "PAYING"
    await wait_for(lambda: _is(egw, p["payment_id"], "SUCCEEDED"), timeout=15)


async def test_still_confirming_after_the_schedule_is_revoked(egw: Gateway, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(EcnyChannel, "code_poll_schedule", (0.5, 1, 1.5))
    _, p = await egw.client.post("/v1/payments", pay_body(auth_code=ecny_code("9004")))
    assert p["status"] == "PAYING"
    await wait_for(lambda: _is(egw, p["payment_id"], "REVERSED"), timeout=15)
    assert (await sim(egw, "GET", f"/orders/{p['payment_id']}"))["trade_status"] == "REVOKED"


async def test_charged_but_answer_lost_becomes_unknown_then_succeeded(egw: Gateway) -> None:
    await sim(egw, "POST", "/faults", {"kind": "reset", "path": "codepay", "when": "after", "count": 1})
    _, p = await egw.client.post("/v1/payments", pay_body())
    assert p["status"] == "UNKNOWN"  # never FAILED: the bank did not answer
    await wait_for(lambda: _is(egw, p["payment_id"], "SUCCEEDED"), timeout=15)


async def test_qr_settles_by_the_banks_notify(egw: Gateway) -> None:
    status, p = await egw.client.post("/v1/payments", pay_body(method="qr", channel="ecny", auth_code=None))
    assert status == 200 and p["status"] == "PAYING" and "/_sim/qr/" in p["code_url"]
    await sim(egw, "POST", f"/orders/{p['payment_id']}/pay", {})
    await wait_for(lambda: _is(egw, p["payment_id"], "SUCCEEDED"))
    deliveries = await sim(egw, "GET", "/notifies")
    assert deliveries and deliveries[0]["delivered"]
    assert json.loads(deliveries[0]["attempts"][-1]["answer"])["code"] == "SUCCESS"


async def test_forged_notify_is_rejected(egw: Gateway) -> None:
    _, p = await egw.client.post("/v1/payments", pay_body(method="qr", channel="ecny", auth_code=None))
    forged = json.dumps({"notify_id": "N1", "notify_type": "TRADE.SUCCESS", "merchant_id": "x",
                         "data": {"out_trade_no": p["payment_id"]}}).encode()
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{egw.base_url}/v1/notify/ecny/mch_ecny_1", data=forged,
                          headers={"Content-Type": "application/json"}) as r:
            assert r.status == 400
    assert await _is(egw, p["payment_id"], "PAYING")


async def test_refunds_partial_then_the_rest(egw: Gateway) -> None:
    _, p = await egw.client.post("/v1/payments", pay_body(amount=1000))
    pid = p["payment_id"]
    status, r1 = await egw.client.post(f"/v1/payments/{pid}/refunds", {"out_refund_no": "RF1", "amount": 300})
    assert status == 200, r1
    status, r2 = await egw.client.post(f"/v1/payments/{pid}/refunds", {"out_refund_no": "RF2", "amount": 700})
    assert status == 200, r2
    for rid in (r1["refund_id"], r2["refund_id"]):
        await wait_for(lambda rid=rid: _refund_is(egw, rid, "SUCCEEDED"), timeout=15)
    _, final = await egw.client.get(f"/v1/payments/{pid}")
    assert final["status"] == "REFUNDED" and final["refunded_amount"] == 1000
    truth = await sim(egw, "GET", f"/orders/{pid}")
    assert truth["refunded_amount"] == "10.00" and truth["trade_status"] == "REFUND"


async def _refund_is(gw: Gateway, rid: str, status: str) -> bool:
    _, body = await gw.client.get(f"/v1/refunds/{rid}")
    return body["status"] == status


async def test_reverse_a_paid_code_payment(egw: Gateway) -> None:
    _, p = await egw.client.post("/v1/payments", pay_body())
    status, r = await egw.client.post(f"/v1/payments/{p['payment_id']}/reverse")
    assert status == 200 and r["status"] == "REVERSED"
    assert (await sim(egw, "GET", f"/orders/{p['payment_id']}"))["trade_status"] == "REVOKED"
