"""A simulator of Hello Bank over real HTTP, for the demo and the tests.

``start_simulator()`` creates sandbox merchants, serves the bank's API (``POST
/api/...``, see ``sim_bank.py``) and a control surface under ``/_sim/``:

- ``POST /_sim/orders/{out_trade_no}/confirm``: the patient pays an open QR order or
  confirms a payment code on the phone;
- ``GET /_sim/orders/{out_trade_no}``: the bank's own record of an order (its truth);
- ``POST /_sim/faults`` ``{"kind", "path", "when", "count", "rate", "delay_seconds"}``,
  ``GET`` and ``DELETE /_sim/faults``: break calls to the API.

Both order routes take ``?merchant_no=`` when several merchants share a number.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import random
import secrets
import socket
import struct
import time
from dataclasses import asdict, dataclass
from typing import Any

import aiohttp
from aiohttp import web

from gateway.channel import SimulatorInfo

from .sim_bank import HelloBank, Merchant, Order
from .wire import CHANNEL, CLOCK_SKEW_SECONDS, MERCHANT, NONCE, SIGNATURE, TIMESTAMP, dumps, sign, verify

FAULT_KINDS = ("timeout", "http_error", "reset", "bad_signature")
NOTIFY_DELAYS = (0, 1, 2, 4, 8)  # first attempt, then retries while the merchant does not answer 2xx


@dataclass
class Fault:
    """``before`` the bank acts nothing happens; ``after``, the bank has acted and the
    answer is lost (timeout, reset, 5xx) or spoiled (bad_signature)."""

    kind: str
    when: str = "before"
    path: str | None = None  # the exact request path (e.g. /api/pay); None: every API call
    count: int | None = 1  # how many more calls it breaks; None: until cleared
    rate: float = 1.0  # the chance that it breaks a matching call
    delay_seconds: float = 5.0  # how long a timeout keeps the caller waiting before dropping it
    id: str = ""
    fired: int = 0


class HelloBankSimulatorApp:
    def __init__(self, bank: HelloBank) -> None:
        self.bank = bank
        self.faults: list[Fault] = []
        self.session: aiohttp.ClientSession | None = None  # for notifies, opened by start()
        bank.deliver = self.deliver
        self.app = web.Application()
        self.app.router.add_post("/api/{op:.+}", self.api)
        self.app.router.add_post("/_sim/orders/{out_trade_no}/confirm", self.confirm)
        self.app.router.add_get("/_sim/orders/{out_trade_no}", self.truth)
        self.app.router.add_post("/_sim/faults", self.add_fault)
        self.app.router.add_get("/_sim/faults", self.list_faults)
        self.app.router.add_delete("/_sim/faults", self.clear_faults)

    async def start(self) -> None:
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))

    async def stop(self) -> None:
        await self.bank.stop()
        if self.session is not None:
            await self.session.close()

    async def deliver(self, m: Merchant, url: str, body: bytes) -> None:
        """POST a signed notify, retrying until the merchant answers 2xx or the delays run out."""
        assert self.session is not None
        for delay in NOTIFY_DELAYS:
            await asyncio.sleep(delay)
            ts, nonce = str(int(time.time())), secrets.token_hex(12)
            headers = {"Content-Type": "application/json", MERCHANT: m.merchant_no, TIMESTAMP: ts, NONCE: nonce,
                       SIGNATURE: sign(m.api_key, "notify", ts, nonce, body)}
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with self.session.post(url, data=body, headers=headers) as resp:
                    if 200 <= resp.status < 300:
                        return

    # --- the API ------------------------------------------------------------------------
    def pick_fault(self, path: str) -> Fault | None:
        for f in self.faults:
            if (f.path and f.path != path) or f.count == 0 or random.random() >= f.rate:
                continue
            f.fired += 1
            f.count = None if f.count is None else f.count - 1
            return f
        return None

    async def api(self, request: web.Request) -> web.StreamResponse:
        path, body, h = request.path, await request.read(), request.headers
        m = self.bank.merchants.get(h.get(MERCHANT, ""))
        ts, nonce = h.get(TIMESTAMP, ""), h.get(NONCE, "")
        if m is None or nonce in m.nonces or not ts.isdigit() or abs(time.time() - int(ts)) > CLOCK_SKEW_SECONDS \
                or not verify(m.api_key, h.get(SIGNATURE), "request", path, ts, nonce, body):
            return web.json_response({"code": "SIGN_ERROR", "message": "bad or replayed signature"}, status=401)
        m.nonces.add(nonce)
        fault = self.pick_fault(path)
        if fault and fault.when == "before" and fault.kind != "bad_signature":
            return await self.fail(request, fault)
        op, data = self.bank.ops.get(path), None
        try:
            data = json.loads(body)
            ok = isinstance(data, dict) and data.get("merchant_no") == m.merchant_no
        except ValueError:
            ok = False
        if op is None:
            answer: dict[str, Any] | bytes = {"code": "NOT_FOUND", "message": f"no operation {path}"}
        elif fault and fault.when == "before":  # bad_signature before: the bank never acted
            answer = {"code": "SYSTEM_BUSY"}
        else:
            answer = op(m, data) if ok else {"code": "INVALID_REQUEST",
                                             "message": "the body is not a JSON object for this merchant"}
        if fault and fault.when == "after" and fault.kind != "bad_signature":
            return await self.fail(request, fault)
        raw = answer if isinstance(answer, bytes) else dumps(answer)
        their_ts = str(int(time.time()))
        signature = sign(m.api_key, "response", their_ts, nonce, raw)
        if fault and fault.kind == "bad_signature":  # well formed, but over something else
            signature = sign(m.api_key, "response", their_ts, nonce, raw + b" ")
        ctype = "text/csv" if isinstance(answer, bytes) else "application/json"
        return web.Response(body=raw, content_type=ctype, charset="utf-8",
                            headers={TIMESTAMP: their_ts, SIGNATURE: signature})

    @staticmethod
    async def fail(request: web.Request, fault: Fault) -> web.StreamResponse:
        if fault.kind == "http_error":
            return web.json_response({"code": "SYSTEM_BUSY", "message": "系统繁忙"}, status=503)
        if fault.kind == "timeout":
            await asyncio.sleep(fault.delay_seconds)
        # drop the connection with a TCP reset, answering nothing
        if (transport := request.transport) is not None:
            if (sock := transport.get_extra_info("socket")) is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        return web.Response(status=500)  # never reaches the caller

    # --- control ------------------------------------------------------------------------
    def find(self, request: web.Request) -> tuple[Merchant, Order]:
        out, only = request.match_info["out_trade_no"], request.query.get("merchant_no")
        for m in self.bank.merchants.values():
            if out in m.orders and only in (None, m.merchant_no):
                return m, m.orders[out]
        raise web.HTTPNotFound(text=json.dumps({"error": f"no order {out}"}), content_type="application/json")

    async def confirm(self, request: web.Request) -> web.Response:
        m, order = self.find(request)
        if not self.bank.settle(m, order) and order.state not in ("SUCCESS", "REFUNDED"):
            return web.json_response({"error": f"the order is {order.state}"}, status=409)
        return web.json_response(order.wire())

    async def truth(self, request: web.Request) -> web.Response:
        m, order = self.find(request)
        return web.json_response({**order.wire(), "merchant_no": m.merchant_no,
                                  "refunds": [r.wire() for r in order.refunds]})

    async def add_fault(self, request: web.Request) -> web.Response:
        try:
            spec = await request.json()
            fault = Fault(**{k: spec[k] for k in ("kind", "when", "path", "count", "rate", "delay_seconds")
                             if k in spec}, id=secrets.token_hex(4))
            if fault.kind not in FAULT_KINDS or fault.when not in ("before", "after") or not 0 <= fault.rate <= 1:
                raise ValueError(f"kind is one of {FAULT_KINDS}, when before or after, rate within 0..1")
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        self.faults.append(fault)
        return web.json_response(asdict(fault), status=201)

    async def list_faults(self, request: web.Request) -> web.Response:
        return web.json_response([asdict(f) for f in self.faults])

    async def clear_faults(self, request: web.Request) -> web.Response:
        self.faults.clear()
        return web.json_response([])


class HelloBankSimHandle:
    """A running simulator: where it listens, its sandbox merchants, and ``stop()``."""

    def __init__(self, sim: HelloBankSimulatorApp, runner: web.AppRunner, base_url: str) -> None:
        self.sim, self._runner = sim, runner
        self.base_url, self.control_url = base_url, f"{base_url}/_sim"

    @property
    def info(self) -> SimulatorInfo:
        return SimulatorInfo(channel=CHANNEL, base_url=self.base_url, control_url=self.control_url,
                             merchants=[{"merchant_no": m.merchant_no, "api_key": m.api_key}
                                        for m in self.sim.bank.merchants.values()])

    def merchant_configs(self) -> list[dict[str, Any]]:
        """One ``HelloBankConfig``-valid dict per sandbox merchant."""
        return [{**m, "base_url": self.base_url} for m in self.info.merchants]

    async def stop(self) -> None:
        await self.sim.stop()
        await self._runner.cleanup()


async def start_simulator(host: str = "127.0.0.1", port: int = 0, *, merchants: int = 1) -> HelloBankSimHandle:
    """Start the simulator with ``merchants`` fresh sandbox merchants on ``host:port`` (0: any free port)."""
    if merchants < 1:
        raise ValueError("at least one merchant")
    bank = HelloBank([Merchant(f"HB{100001 + i:010d}", secrets.token_hex(16)) for i in range(merchants)])
    sim = HelloBankSimulatorApp(bank)
    runner = web.AppRunner(sim.app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound = runner.addresses[0][1]
        shown = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(host, f"[{host}]" if ":" in host else host)
        bank.base_url = f"http://{shown}:{bound}"
        await sim.start()
    except BaseException:
        await runner.cleanup()
        raise
    return HelloBankSimHandle(sim, runner, bank.base_url)
