"""Several real gateway processes on one database (and Redis when configured), and crashes.

- fifty identical concurrent requests spread over two processes make one charge;
- a gateway killed (SIGKILL) mid-payment and restarted settles every payment to the
  channel's truth.
"""
from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.core import Core
from gateway.demo import setup_sandbox
from gateway.testing import SignedClient
from gateway.testing.pytest_plugin import reset_test_databases
from tests.conftest import free_port, wait_for
from tests.gateway.procs import GatewayProcess
from tests.gateway.test_payments import pay_body


async def _prepare(settings, wechat_sim) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    core = Core(settings)
    await core.migrate()
    await reset_test_databases(settings, core.engine)
    await core.start(background=False, run_migrations=False)
    try:
        return await setup_sandbox(core, {"wechatpay": wechat_sim})
    finally:
        await core.stop()


async def _sim_orders(wechat_sim) -> dict[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    async with aiohttp.ClientSession() as s:
        async with s.get(wechat_sim.base_url + "/_sim/orders") as r:
            return {o["out_trade_no"]: o for o in await r.json()}


async def _sim_fault(wechat_sim, spec: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    async with aiohttp.ClientSession() as s:
        async with s.post(wechat_sim.base_url + "/_sim/faults", json=spec) as r:
            assert r.status == 201


async def test_fifty_identical_requests_across_two_processes_charge_once(settings, wechat_sim, tmp_path: Path) -> None:
    sandbox = await _prepare(settings, wechat_sim)
    ports = [free_port(), free_port()]
    procs = [GatewayProcess(settings, p, tmp_path / f"gw{i}.log") for i, p in enumerate(ports)]
    try:
        await asyncio.gather(*(p.start() for p in procs))
        await _sim_fault(wechat_sim, {"kind": "latency", "path": "codepay", "delay_seconds": 0.5})
        caller = sandbox["caller"]
        clients = [SignedClient(p.base_url, caller["app_id"], caller["secret"]) for p in procs]
        for c in clients:
            await c.__aenter__()
        req = pay_body()
        results = await asyncio.gather(*(clients[i % 2].post("/v1/payments", req) for i in range(50)))
        for c in clients:
            await c.__aexit__(None, None, None)
    finally:
        for p in procs:
            p.stop()
    assert all(status == 200 for status, _ in results), [b for s, b in results if s != 200][:3]
    ids = {body["payment_id"] for _, body in results}
    assert len(ids) == 1
    orders = await _sim_orders(wechat_sim)
    assert sum(1 for o in orders.values() if o["out_trade_no"] in ids) == 1


async def test_killed_mid_payment_and_restarted_settles_every_payment(settings, wechat_sim, tmp_path: Path) -> None:
    sandbox = await _prepare(settings, wechat_sim)
    port = free_port()
    extra = {"YINYI_NOT_FOUND_GRACE_SECONDS": "1"}
    gw = GatewayProcess(settings, port, tmp_path / "gw.log", extra_env=extra)
    await gw.start()
    # Half the charges happen and their answers are held (the gateway dies before
    # hearing); the other half are still on their way to the channel.
    await _sim_fault(wechat_sim, {"kind": "latency", "path": "codepay", "when": "after", "delay_seconds": 3,
                                  "rate": 0.5})
    await _sim_fault(wechat_sim, {"kind": "latency", "path": "codepay", "when": "before", "delay_seconds": 3})
    caller = sandbox["caller"]
    bodies = [pay_body(amount=100 + i) for i in range(12)]
    async with SignedClient(gw.base_url, caller["app_id"], caller["secret"]) as c:
        tasks = [asyncio.create_task(c.post("/v1/payments", b)) for b in bodies]
        await asyncio.sleep(1.0)
        gw.kill()
        await asyncio.gather(*tasks, return_exceptions=True)
    # Clear the faults so the restarted gateway's queries are answered.
    async with aiohttp.ClientSession() as s:
        await s.delete(wechat_sim.base_url + "/_sim/faults")
    await asyncio.sleep(3.5)  # let the held requests reach the simulator and finish there
    gw2 = GatewayProcess(settings, port, tmp_path / "gw2.log", extra_env=extra)
    await gw2.start()
    try:
        core = Core(settings)
        await core.start(background=False, run_migrations=False)
        try:
            from sqlalchemy import select

            from gateway.db.models import Payment

            async def all_settled() -> list[Payment] | None:
                async with core.sm() as s:
                    rows = list((await s.execute(select(Payment))).scalars())
                open_ = [p for p in rows if p.status in ("CREATED", "PAYING", "UNKNOWN")]
                return None if open_ or not rows else rows

            rows = await wait_for(all_settled, timeout=40, interval=0.5)
            recovered = []
            for p in rows:
                events = await core.ledger.payment_events(p.id)
                if any(e.source in ("query", "resolver") for e in events):
                    recovered.append((p.status, [e.to_status for e in events]))
        finally:
            await core.stop()
    finally:
        gw2.stop()
    orders = await _sim_orders(wechat_sim)
    assert rows, "no payment intent reached the ledger before the kill"
    mismatches = []
    for p in rows:
        truth = orders.get(p.id, {}).get("trade_state", "ABSENT")
        expected = {"SUCCESS": "SUCCEEDED", "ABSENT": "FAILED", "REVOKED": "REVERSED", "PAYERROR": "FAILED"}[truth]
        if p.status != expected:
            mismatches.append((p.id, p.status, truth))
    assert not mismatches, mismatches
    charged = sum(1 for o in orders.values() if o["trade_state"] == "SUCCESS")
    assert charged == sum(1 for p in rows if p.status == "SUCCEEDED")
    assert any(p.status == "SUCCEEDED" for p in rows), "the test should include payments charged before the kill"
    # The restarted gateway's resolver, not the original requests, settled the intents.
    assert any(status == "SUCCEEDED" for status, _ in recovered), recovered
    assert all(trail[0] == "CREATED" for _, trail in recovered)
