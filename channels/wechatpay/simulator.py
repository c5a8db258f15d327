"""WeChat Pay simulator: the real v3 (and v2 payment-code) wire protocol on loopback.

``start_simulator()`` generates sandbox merchants (keys, serials, APIv3/v2 keys, a
platform key and its ``PUB_KEY_ID_…``), serves them over HTTP and returns a handle.
The public SDKs work against it unchanged: point their base URL at ``handle.base_url``.
The control surface lives under ``/_sim/`` (see ``docs/channels/wechatpay.md``).
"""
from __future__ import annotations

import socket
from typing import Any

from aiohttp import web

from gateway.channel import SimulatorInfo

from . import sim_control, sim_v2, sim_v3
from .sim_core import WeChatPaySimulator
from .sim_faults import FAULTS_KEY, FaultSet, fault_middleware
from .sim_model import SimMerchant


def build_app(sim: WeChatPaySimulator, faults: FaultSet | None = None) -> web.Application:
    # outermost first: faults see the finished (signed) answer; control errors are JSON
    app = web.Application(middlewares=[fault_middleware, sim_control.control_errors, sim_v3.v3_middleware])
    app[sim_v3.SIM_KEY] = sim
    app[FAULTS_KEY] = faults or FaultSet()
    sim_v3.add_routes(app)
    sim_v2.add_routes(app)
    sim_control.add_routes(app)
    return app


class WeChatPaySimHandle:
    """A running simulator: where it listens, its sandbox merchants, and ``stop()``."""

    def __init__(self, sim: WeChatPaySimulator, app: web.Application, runner: web.AppRunner,
                 base_url: str) -> None:
        self.simulator = sim
        self.app = app
        self.base_url = base_url
        self.control_url = f"{base_url}/_sim"
        self._runner = runner

    @property
    def faults(self) -> FaultSet:
        return self.app[FAULTS_KEY]

    @property
    def merchants(self) -> list[SimMerchant]:
        return list(self.simulator.merchants.values())

    @property
    def info(self) -> SimulatorInfo:
        return SimulatorInfo(
            channel="wechatpay",
            base_url=self.base_url,
            control_url=self.control_url,
            merchants=[m.info(self.base_url) for m in self.merchants],
        )

    def merchant_configs(self) -> list[dict[str, Any]]:
        """One ``WeChatPayConfig``-valid dict per sandbox merchant."""
        return [m.config(self.base_url) for m in self.merchants]

    async def stop(self) -> None:
        await self.simulator.notifier.stop()
        await self._runner.cleanup()

    async def __aenter__(self) -> WeChatPaySimHandle:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def start_simulator(host: str = "127.0.0.1", port: int = 0, *, merchants: int = 1) -> WeChatPaySimHandle:
    """Start a simulator with ``merchants`` fresh sandbox merchants on ``host:port``."""
    if merchants < 1:
        raise ValueError("at least one merchant")
    sim = WeChatPaySimulator([SimMerchant.generate(i) for i in range(merchants)])
    app = build_app(sim)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound = sock.getsockname()[1]
    # a wildcard bind is reached through loopback
    shown = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(
        host, f"[{host}]" if family == socket.AF_INET6 else host)
    sim.base_url = f"http://{shown}:{bound}"
    site = web.SockSite(runner, sock)
    try:
        await site.start()
        await sim.notifier.start()
    except BaseException:
        await runner.cleanup()
        raise
    return WeChatPaySimHandle(sim, app, runner, sim.base_url)
