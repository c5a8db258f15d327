"""Alipay simulator: the open platform gateway's wire protocol on loopback.

``start_simulator()`` generates sandbox applications (application key pair, Alipay
key pair, PID, one authorising sub-merchant), serves them over HTTP and returns a
handle. The public SDK works against it unchanged: point its gateway at
``handle.gateway_url``. The control surface lives under ``/_sim/`` (see
``docs/channels/alipay.md``).
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.channel import SimulatorInfo
from gateway.testing.simkit import ChannelSimHandle, serve_app

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


class AlipaySimHandle(ChannelSimHandle):
    """A running simulator: where it listens, its sandbox applications, and ``stop()``."""

    simulator: AlipaySimulator
    faults_key = FAULTS_KEY

    def __init__(self, sim: AlipaySimulator, app: web.Application, runner: web.AppRunner, base_url: str) -> None:
        super().__init__(sim, app, runner, base_url)
        self.gateway_url = f"{base_url}/gateway.do"

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


async def start_simulator(host: str = "127.0.0.1", port: int = 0, *, merchants: int = 1) -> AlipaySimHandle:
    """Start a simulator with ``merchants`` fresh sandbox applications on ``host:port``."""
    if merchants < 1:
        raise ValueError("at least one merchant")
    sim = AlipaySimulator([SimMerchant.generate(i) for i in range(merchants)])
    app = build_app(sim)
    runner, _ = await serve_app(app, host, port, on_bound=lambda url: setattr(sim, "base_url", url),
                                on_started=sim.notifier.start)
    return AlipaySimHandle(sim, app, runner, sim.base_url)
