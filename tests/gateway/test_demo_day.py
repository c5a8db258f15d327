"""``yinyi demo`` starts with a day of activity: payments through the four channels' simulators at
four entries, refunds, one single-sided case whose refund waits for approval, reconciled T+0; and a
restart on the same data directory adds nothing and keeps the day balanced."""
from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import aiohttp
import pyotp
import pytest

from gateway.demo import run_demo

# the demo's simulators listen at the gateway's port plus these offsets
OFFSETS = (0, 1, 2, 3, 4, 20, 21, 30, 31, 32)


def free_base_port() -> int:
    """A port whose demo offsets are all free now."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + max(OFFSETS) > 65000:
            continue
        try:
            socks = []
            for off in OFFSETS:
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", base + off))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    pytest.skip("no free port range for the demo")


async def overview_as(base: str, sandbox: dict[str, Any], username: str) -> dict[str, Any]:
    user = next(u for u in sandbox["console"]["users"] if u["username"] == username)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
        async with s.post(f"{base}/console/api/login", json={"username": username, "password": user["password"]}) as r:
            assert r.status == 200, await r.text()
            token = (await r.json())["login_token"]
        async with s.post(f"{base}/console/api/login/totp",
                          json={"login_token": token, "code": pyotp.TOTP(user["totp_secret"]).now()}) as r:
            assert r.status == 200, await r.text()
        async with s.get(f"{base}/console/api/overview") as r:
            assert r.status == 200, await r.text()
            return dict(await r.json())


async def start_demo(data_dir: Path, port: int) -> tuple[asyncio.Task[Any], asyncio.Event, dict[str, Any]]:
    ready, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_demo(port=port, data_dir=str(data_dir), ready=ready, stop=stop))
    waiter = asyncio.create_task(ready.wait())
    done, _ = await asyncio.wait({task, waiter}, timeout=90, return_when=asyncio.FIRST_COMPLETED)
    if waiter not in done:
        waiter.cancel()
        stop.set()
        if task in done:
            task.result()  # raises what stopped the demo
        raise AssertionError("the demo did not start in time")
    return task, stop, json.loads((data_dir / "sandbox.json").read_text(encoding="utf-8"))


async def test_demo_starts_with_a_day_of_activity_and_restarts_without_repeating_it(tmp_path: Path) -> None:
    port = free_base_port()
    base = f"http://127.0.0.1:{port}"
    task, stop, sandbox = await start_demo(tmp_path, port)
    try:
        today = sandbox["today"]
        assert 20 <= today["payments"] <= 30, today
        assert today["refunds"] >= 2 and today["case"]["status"] == "APPROVING", today
        o = await overview_as(base, sandbox, "fin-zhao")
        assert o["totals"]["count"] == today["payments"]
        assert o["totals"]["paid"] == today["paid"] and o["totals"]["refunded"] == today["refunded"]
        assert {e["key"] for e in o["by_entry"]} == {"window-3", "kiosk-01", "clinic-qr", "mini-program"}
        assert {c["key"] for c in o["by_channel"]} == {"wechatpay", "alipay", "unionpay", "ecny"}
        assert {"code", "qr", "jsapi"} <= {m["key"] for m in o["by_method"]}
        assert o["open_cases"] == 1 and o["open_cases_amount"] == today["case"]["amount"]
        assert o["pending_approvals_for_me"] == 1  # cashier-li applied, fin-zhao (finance) decides
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)

    # the same data directory again: nothing is made twice, the simulated HIS is told what it had recorded
    task, stop, again = await start_demo(tmp_path, port)
    try:
        assert again["today"] == today
        o2 = await overview_as(base, again, "dir-qian")
        assert o2["totals"] == o["totals"]
        assert o2["open_cases"] == 1 and o2["pending_approvals_for_me"] == 1
        assert o2["open_differences"] == o["open_differences"]
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
