"""Mixed settlements under faults: a failed, abandoned or late top-up reverses the
insurance settlement; timeouts at each step and a crash leave the gateway's ledger
and the simulated centre in agreement (nothing standing at the centre without a
completed settlement, no money kept without one)."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.core import Core
from gateway.demo import setup_sandbox
from gateway.testing import SignedClient
from gateway.testing.pytest_plugin import reset_test_databases
from insurance.nhsa.simulator import NhsaSimHandle
from tests.conftest import Gateway, free_port, start_gateway, stop_gateway, wait_for
from tests.gateway.procs import GatewayProcess
from tests.gateway.test_insurance_flow import (centre_settlement, configure_centre, fault, identify, insurance_settings,
                                               is_status, nhsa_sim, outpatient_visit, settle_body, sim_call,
                                               small_accounts, standing_at_centre, ZHANGSAN_PSN)
from tests.gateway.test_payments import code

__all__ = ["nhsa_sim"]


async def wechat_order(wechat_sim: Any, payment_id: str) -> dict[str, Any] | None:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{wechat_sim.base_url}/_sim/orders/{payment_id}") as r:
            return await r.json() if r.status == 200 else None


async def wechat_fault(wechat_sim: Any, spec: dict[str, Any]) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.post(wechat_sim.base_url + "/_sim/faults", json=spec) as r:
            assert r.status == 201, await r.text()


async def assert_consistent(g: Gateway, sim: NhsaSimHandle, wechat_sim: Any, s: dict[str, Any],
                            mdtrt_id: str) -> None:
    """The ledger and the centre (and the channel) agree about one settlement."""
    standing = await standing_at_centre(sim, mdtrt_id)
    order = await wechat_order(wechat_sim, s["payment_id"]) if s.get("payment_id") else None
    kept = order is not None and order["trade_state"] == "SUCCESS" and not order.get("refunds")
    if s["status"] == "COMPLETED":
        assert [r["setl_id"] for r in standing] == [s["setl_id"]], standing
        assert s["amounts"]["cash"] == 0 or kept, order
    else:
        assert s["status"] in ("REVERSED", "FAILED"), s
        assert standing == [], standing
        if order is not None and order["trade_state"] in ("SUCCESS", "REFUND"):
            _, refund = await g.client.get(f"/v1/refunds/{s['refund_id']}")
            assert refund["amount"] == s["amounts"]["cash"], refund


@pytest.fixture
async def fgw(tmp_path: Path, wechat_sim: Any, nhsa_sim: NhsaSimHandle) -> AsyncIterator[Gateway]:
    settings = insurance_settings(tmp_path, insurance_topup_timeout_seconds=3, upstream_timeout_seconds=2,
                                  not_found_grace_seconds=1)
    g, runner = await start_gateway(settings, {"wechatpay": wechat_sim})
    await configure_centre(g, nhsa_sim)
    await small_accounts(nhsa_sim)
    try:
        yield g
    finally:
        await stop_gateway(g, runner)


async def _start(g: Gateway, **kw: Any) -> tuple[dict[str, Any], dict[str, Any], int]:
    person = await identify(g)
    visit, total = await outpatient_visit(g, person)
    return person, visit, total


async def test_declined_top_up_reverses_the_insurance_settlement(fgw: Gateway, nhsa_sim: NhsaSimHandle,
                                                                 wechat_sim: Any) -> None:
    person, visit, total = await _start(fgw)
    body = settle_body(person, visit, total, top_up={"method": "code", "auth_code": code("9011")})
    status, s = await fgw.client.post("/v1/insurance/settlements", body)
    assert status == 200 and s["status"] == "REVERSED" and s["reason"] == "topup_failed", s
    assert s["reason_zh"] and s["top_up"]["status"] == "FAILED" and s["error_code"] == "NOTENOUGH"
    assert (await centre_settlement(nhsa_sim, s["setl_id"]))["reversed_by"] == s["reversal"]["setl_id"]
    person_now = await sim_call(nhsa_sim, "GET", f"/persons/{ZHANGSAN_PSN}")
    assert person_now["acct_balance"] == 1000 and person_now["wallet_balance"] == 2000
    await assert_consistent(fgw, nhsa_sim, wechat_sim, s, visit["mdtrt_id"])


async def test_caller_cancels_while_the_top_up_is_pending(fgw: Gateway, nhsa_sim: NhsaSimHandle,
                                                          wechat_sim: Any) -> None:
    person, visit, total = await _start(fgw)
    body = settle_body(person, visit, total, top_up={"method": "qr", "channel": "wechatpay"})
    _, s = await fgw.client.post("/v1/insurance/settlements", body)
    assert s["status"] == "TOPUP_PENDING" and s["top_up"]["code_url"], s
    status, c = await fgw.client.post(f"/v1/insurance/settlements/{s['settlement_id']}/cancel", {})
    assert status == 200 and c["status"] == "REVERSED" and c["reason"] == "topup_cancelled", c
    assert c["top_up"]["status"] == "CLOSED"
    await assert_consistent(fgw, nhsa_sim, wechat_sim, c, visit["mdtrt_id"])
    assert (await wechat_order(wechat_sim, c["payment_id"]))["trade_state"] == "CLOSED"


async def test_top_up_timeout_reverses(fgw: Gateway, nhsa_sim: NhsaSimHandle, wechat_sim: Any) -> None:
    person, visit, total = await _start(fgw)
    _, s = await fgw.client.post("/v1/insurance/settlements", settle_body(
        person, visit, total, top_up={"method": "qr", "channel": "wechatpay"}))
    assert s["status"] == "TOPUP_PENDING"
    done = await wait_for(lambda: is_status(fgw, s["settlement_id"], "REVERSED"), timeout=15)
    assert done["reason"] == "topup_timeout"
    await assert_consistent(fgw, nhsa_sim, wechat_sim, done, visit["mdtrt_id"])


@pytest.mark.parametrize("when", ["before", "after"])
async def test_settle_call_timeout_is_resolved_by_2601_before_any_money(
        fgw: Gateway, nhsa_sim: NhsaSimHandle, wechat_sim: Any, when: str) -> None:
    person, visit, total = await _start(fgw)
    await fault(nhsa_sim, "2207", when=when)
    status, err = await fgw.client.post("/v1/insurance/settlements", settle_body(person, visit, total))
    assert (status, err["code"]) == (422, "INSURANCE_SETTLEMENT_FAILED"), err
    assert err["cause"] == "INSURANCE_TIMEOUT" and err["reason"] == "settle_unknown"
    s = await is_status(fgw, err["settlement_id"], "FAILED")
    assert s is not None and s["payment_id"] is None  # no money was asked for
    calls = await sim_call(nhsa_sim, "GET", "/calls")
    assert any(c["infno"] == "2601" for c in calls)
    await assert_consistent(fgw, nhsa_sim, wechat_sim, s, visit["mdtrt_id"])
    # The caller starts again with a new out_settle_no and it works.
    await sim_call(nhsa_sim, "DELETE", "/faults")
    status, ok = await fgw.client.post("/v1/insurance/settlements", settle_body(person, visit, total))
    assert status == 200 and ok["status"] == "COMPLETED", ok
    await assert_consistent(fgw, nhsa_sim, wechat_sim, ok, visit["mdtrt_id"])


# "after": the channel charged but its answer was lost; whether the resolver learns of
# the success before the top-up deadline (COMPLETED) or the deadline revokes the
# charge first (REVERSED, money returned), ledger, centre and channel must agree.
@pytest.mark.parametrize("when,final", [("before", ("REVERSED",)), ("after", ("COMPLETED", "REVERSED"))])
async def test_top_up_call_timeout_ends_consistently(fgw: Gateway, nhsa_sim: NhsaSimHandle, wechat_sim: Any,
                                                     when: str, final: tuple[str, ...]) -> None:
    person, visit, total = await _start(fgw)
    await wechat_fault(wechat_sim, {"kind": "timeout", "path": "codepay", "when": when, "delay_seconds": 4,
                                    "count": 1})
    _, s = await fgw.client.post("/v1/insurance/settlements", settle_body(person, visit, total))
    assert s["status"] in ("TOPUP_PENDING", "REVERSING", *final), s
    done = await wait_for(lambda: is_status(fgw, s["settlement_id"], "COMPLETED", "REVERSED"), timeout=30)
    assert done["status"] in final, done
    await assert_consistent(fgw, nhsa_sim, wechat_sim, done, visit["mdtrt_id"])


@pytest.mark.parametrize("when", ["before", "after"])
async def test_reversal_call_timeout_is_retried_until_reversed(fgw: Gateway, nhsa_sim: NhsaSimHandle,
                                                               wechat_sim: Any, when: str) -> None:
    person, visit, total = await _start(fgw)
    await fault(nhsa_sim, "2208", when=when)
    _, s = await fgw.client.post("/v1/insurance/settlements", settle_body(
        person, visit, total, top_up={"method": "code", "auth_code": code("9011")}))
    assert s["status"] in ("REVERSING", "REVERSED"), s
    done = await wait_for(lambda: is_status(fgw, s["settlement_id"], "REVERSED"), timeout=20)
    assert (await centre_settlement(nhsa_sim, done["setl_id"]))["reversed_by"]
    await assert_consistent(fgw, nhsa_sim, wechat_sim, done, visit["mdtrt_id"])


async def test_double_cancel_and_reverse_of_a_reversed_settlement_are_clear(fgw: Gateway, nhsa_sim: NhsaSimHandle
                                                                            ) -> None:
    person, visit, total = await _start(fgw)
    _, s = await fgw.client.post("/v1/insurance/settlements", settle_body(
        person, visit, total, top_up={"method": "code", "auth_code": code("9011")}))
    assert s["status"] == "REVERSED"
    status, again = await fgw.client.post(f"/v1/insurance/settlements/{s['settlement_id']}/cancel", {})
    assert status == 200 and again["status"] == "REVERSED"
    status, err = await fgw.client.post(f"/v1/insurance/settlements/{s['settlement_id']}/reverse", {})
    assert (status, err["code"]) == (409, "INSURANCE_ALREADY_REVERSED")


async def test_gateway_killed_during_the_settle_call_recovers_on_restart(
        tmp_path: Path, wechat_sim: Any, nhsa_sim: NhsaSimHandle) -> None:
    settings = insurance_settings(tmp_path, insurance_call_grace_seconds=1)
    core = Core(settings)
    await core.migrate()
    await reset_test_databases(settings, core.engine)
    await core.start(background=False, run_migrations=False)
    try:
        sandbox = await setup_sandbox(core, {"wechatpay": wechat_sim})
    finally:
        await core.stop()
    port = free_port()
    proc = GatewayProcess(settings, port, tmp_path / "gw1.log",
                          extra_env={"YINYI_INSURANCE_CALL_GRACE_SECONDS": "3"})
    await proc.start()
    caller = sandbox["caller"]
    try:
        first = Gateway(proc.base_url, core, sandbox, SignedClient(proc.base_url, caller["app_id"], caller["secret"]),
                        SignedClient(proc.base_url, sandbox["admin"]["app_id"], sandbox["admin"]["secret"]), settings)
        async with first.client, first.admin:
            await configure_centre(first, nhsa_sim, timeout_seconds=20)
            await small_accounts(nhsa_sim)
            person, visit, total = await _start(first)
            # The centre settles, then holds its answer; the gateway dies waiting for it.
            await fault(nhsa_sim, "2207", when="after", delay_seconds=6)
            task = asyncio.create_task(first.client.post("/v1/insurance/settlements",
                                                         settle_body(person, visit, total)))
            await wait_for(lambda: _settled_at_centre(nhsa_sim, visit["mdtrt_id"]), timeout=10)
            proc.kill()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        proc.stop()
    assert len(await standing_at_centre(nhsa_sim, visit["mdtrt_id"])) == 1  # left standing by the crash
    g, runner = await start_gateway(settings, {"wechatpay": wechat_sim}, fresh=False)
    try:
        from sqlalchemy import select

        from gateway.db.models import InsuranceSettlement

        async with g.core.rsm() as s:
            row = (await s.execute(select(InsuranceSettlement))).scalars().one()
        assert row.status == "CREATED" and row.settle_msgids
        done = await wait_for(lambda: is_status(g, row.id, "FAILED"), timeout=20)
        assert done["reason"] == "settle_unknown"
        await assert_consistent(g, nhsa_sim, wechat_sim, done, visit["mdtrt_id"])
    finally:
        await stop_gateway(g, runner)


async def _settled_at_centre(sim: NhsaSimHandle, mdtrt_id: str) -> bool:
    return bool(await standing_at_centre(sim, mdtrt_id))
