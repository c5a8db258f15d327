"""Every channel under 20% injected faults, through the gateway: no payment ends wrong.

For each channel with a simulator driver: payments (and refunds) go through the
signed API while a fifth of every kind of upstream call is broken (timeouts, 5xx,
resets, bad signatures; before or after the upstream acted). Then the faults stop,
the resolver settles, and every payment must agree with the channel's own truth:
none charged twice, none reported FAILED while money moved, none left open.
"""
from __future__ import annotations

import asyncio
import importlib
import random
from typing import Any

import aiohttp
import pytest

from channels.wechatpay.adapter import WeChatPayChannel
from gateway.channel import Capability, TradeStatus
from gateway.plugins import build_plugin_manager, build_registry
from tests.conftest import start_gateway, stop_gateway, wait_for

# channel id -> "module:DriverClass" of its simulator driver
DRIVERS = {
    "wechatpay": "channels.wechatpay.conformance:WeChatPayDriver",
    "unionpay": "channels.unionpay.conformance:UnionPayDriver",
    "alipay": "channels.alipay.conformance:AlipayDriver",
    "ecny": "plugins.banks.refbank.conformance:RefBankDriver",
}
PAID = {TradeStatus.SUCCEEDED, TradeStatus.REFUNDED}
EXPECTED = {TradeStatus.SUCCEEDED: {"SUCCEEDED", "PARTIALLY_REFUNDED", "REFUNDED"},
            TradeStatus.REFUNDED: {"SUCCEEDED", "PARTIALLY_REFUNDED", "REFUNDED"},
            TradeStatus.REVERSED: {"REVERSED"}, TradeStatus.CLOSED: {"CLOSED", "FAILED"},
            TradeStatus.FAILED: {"FAILED"}, TradeStatus.NOT_FOUND: {"FAILED", "CLOSED"},
            TradeStatus.PENDING: {"CLOSED"}}


def _driver_class(channel: str) -> Any:
    mod, _, name = DRIVERS[channel].partition(":")
    return getattr(importlib.import_module(mod), name)


def _registered() -> dict[str, Any]:
    pm, _ = build_plugin_manager()
    return build_registry(pm).channels


@pytest.mark.parametrize("channel", sorted(DRIVERS))
async def test_twenty_percent_faults_every_payment_settles_to_the_truth(settings, channel: str, monkeypatch) -> None:
    cls = _registered()[channel]
    # Settle fast in tests: short payment-code schedule and reverse retries.
    monkeypatch.setattr(cls, "code_poll_schedule", (1, 2, 3, 4, 6, 8))
    monkeypatch.setattr(cls, "reverse_retry_seconds", 1.0)
    monkeypatch.setattr(cls, "query_interval", 1.0)
    settings.upstream_timeout_seconds = 2.0
    settings.not_found_grace_seconds = 2.0
    factory = build_registry(build_plugin_manager()[0]).simulators[channel]
    handle = await factory("127.0.0.1", 0)
    gw, runner = await start_gateway(settings, {channel: handle})
    control = aiohttp.ClientSession()
    driver = _driver_class(channel)(handle, control)
    rnd = random.Random(20261125)
    try:
        kinds = ["timeout", "http_error", "reset", "bad_signature"]

        async def faults_for_round(round_no: int) -> None:
            # One kind at a time at 20% on every operation; the kinds rotate between rounds.
            await driver.clear_faults()
            for op in ("pay", "query", "refund", "reverse", "close"):
                await driver.inject(kinds[round_no % 4], op, when=rnd.choice(["before", "after"]), count=None,
                                    rate=0.2)

        use_code = cls.supports(Capability.CODE)
        bodies = []
        for i in range(40):
            body = {"out_trade_no": f"S{i:03d}", "amount": 500 + i, "subject": "soak", "business_type": "outpatient",
                    "campus": "main"}
            if use_code:
                body |= {"method": "code", "auth_code": driver.auth_code(rnd.choice(
                    ["success", "success", "success", "decline", "paying_then_success"]))}
            else:
                body |= {"method": "qr", "channel": channel}
            bodies.append(body)

        async def one(body: dict[str, Any]) -> Any:
            for _ in range(3):  # a caller retries its own request on a broken answer
                try:
                    status, p = await gw.client.post("/v1/payments", body)
                except aiohttp.ClientError:
                    continue
                if status == 200:
                    return p
            return None

        results: list[Any] = []
        for round_no in range(4):
            await faults_for_round(round_no)
            results += await asyncio.gather(*(one(b) for b in bodies[round_no::4]))
        if not use_code:
            for p in results:
                if p and p["status"] == "PAYING":
                    await driver.confirm(p["payment_id"])
        # Some refunds while faults are still on.
        for p in [p for p in results if p and p["status"] == "SUCCEEDED"][:5]:
            await gw.client.post(f"/v1/payments/{p['payment_id']}/refunds", {"out_refund_no": f"R{p['out_trade_no']}",
                                                                             "amount": 100})
        await driver.clear_faults()
        from sqlalchemy import select

        from gateway.db.models import Payment, Refund, utcnow

        async def settled() -> list[Payment] | None:
            async with gw.core.rsm() as s:
                rows = list((await s.execute(select(Payment))).scalars())
                refunds = list((await s.execute(select(Refund))).scalars())
            # Expire open QR orders so the resolver closes them; nudge the schedule.
            for p in rows:
                if p.status in ("CREATED", "PAYING", "UNKNOWN"):
                    await gw.core.ledger.update_payment(p.id, next_check_at=utcnow())
            open_ = [p for p in rows if p.status in ("CREATED", "PAYING", "UNKNOWN") or p.needs_review]
            open_r = [r for r in refunds if r.status in ("PROCESSING", "UNKNOWN")]
            return None if open_ or open_r else rows

        rows = await wait_for(settled, timeout=90, interval=1.0)
        assert len(rows) == len(bodies)  # retries never made a second payment
        wrong = []
        for p in rows:
            truth = await driver.truth(p.id)
            if p.status not in EXPECTED[truth]:
                wrong.append((p.out_trade_no, p.status, truth.value))
            if truth in PAID:
                assert p.status != "FAILED", f"{p.id} reported FAILED while the channel took the money"
        assert not wrong, wrong
        await gw.core.ilog.flush()
        stats = await gw.core.ilog.stats()
        abnormal = sum(r["abnormal"] for r in stats if r["direction"] == "out")
        outbound = sum(r["total"] for r in stats if r["direction"] == "out")
        print(f"\n{channel}: {outbound} upstream calls, {abnormal} broken;",
              {st: sum(1 for p in rows if p.status == st) for st in {p.status for p in rows}})
        assert abnormal >= 4, "the faults hardly fired"
        assert any(p.status in ("SUCCEEDED", "PARTIALLY_REFUNDED") for p in rows)
    finally:
        await control.close()
        await stop_gateway(gw, runner)
        await handle.stop()
