"""Alipay simulator: the open platform gateway's wire protocol on loopback.

``start_simulator()`` generates sandbox applications (application key pair, Alipay
key pair, PID, one authorising sub-merchant), serves them over HTTP and returns a
handle. The public SDK works against it unchanged: point its gateway at
``handle.gateway_url``. The control surface lives under ``/_sim/`` (see
``docs/channels/alipay.md``).
"""
from __future__ import annotations

import socket
from typing import Any

from aiohttp import web

from gateway.channel import SimulatorInfo

from . import sim_control, sim_gateway
from .sim_core import SIM_KEY, AlipaySimulator
from .sim_faults import FAULTS_KEY, FaultSet, fault_middleware
from .sim_model import SimMerchant


def build_app(sim: AlipaySimulator, faults: FaultSet | None = None) -> web.Application:
    # outermost first: faults see the finished (signed) answer; control errors are JSON
    app = web.Application(middlewares=[fault_middleware, sim_control.control_errors])
    app[SIM_KEY] = sim
    app[FAULTS_KEY] = faults or FaultSet()
    sim_gateway.add_routes(app)
    sim_control.add_routes(app)
    return app


class AlipaySimHandle:
    """A running simulator: where it listens, its sandbox applications, and ``stop()``."""

    def __init__(self, sim: AlipaySimulator, app: web.Application, runner: web.AppRunner, base_url: str) -> None:
        self.simulator = sim
        self.app = app
        self.base_url = base_url
        self.gateway_url = f"{base_url}/gateway.do"
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
            channel="alipay",
            base_url=self.base_url,
            control_url=self.control_url,
            merchants=[m.info(self.base_url) for m in self.merchants],
        )

    def merchant_configs(self) -> list[dict[str, Any]]:
        """One ``AlipayConfig``-valid dict per sandbox application."""
        return [m.config(self.base_url) for m in self.merchants]

    async def stop(self) -> None:
        await self.simulator.notifier.stop()
        await self._runner.cleanup()

    async def __aenter__(self) -> AlipaySimHandle:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def start_simulator(host: str = "127.0.0.1", port: int = 0, *, merchants: int = 1) -> AlipaySimHandle:
    """Start a simulator with ``merchants`` fresh sandbox applications on ``host:port``."""
    if merchants < 1:
        raise ValueError("at least one merchant")
    sim = AlipaySimulator([SimMerchant.generate(i) for i in range(merchants)])
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
    return AlipaySimHandle(sim, app, runner, sim.base_url)
