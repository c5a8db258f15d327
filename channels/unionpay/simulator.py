"""UnionPay ACP simulator: the real 5.1.0 wire protocol on loopback.

``start_simulator()`` generates sandbox merchants (merId, signing key, certId) and
UnionPay's own signing key and certificate, serves the ACP endpoints over HTTP and
returns a handle. The control surface lives under ``/_sim/`` (see
``docs/channels/unionpay.md``).
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from channels.wechatpay.sim_faults import FaultSet
from gateway.channel import SimulatorInfo
from gateway.testing.simkit import ChannelSimHandle, serve_app

from . import sim_control, sim_gateway
from .sim_core import UnionPaySimulator
from .sim_gateway import FAULTS_KEY, SIM_KEY, fault_middleware
from .sim_model import SimMerchant


def build_app(sim: UnionPaySimulator, faults: FaultSet | None = None) -> web.Application:
    # outermost first: faults see the finished (signed) answer; control errors are JSON
    app = web.Application(middlewares=[fault_middleware, sim_control.control_errors])
    app[SIM_KEY] = sim
    app[FAULTS_KEY] = faults or FaultSet()
    sim_gateway.add_routes(app)
    sim_control.add_routes(app)
    return app


class UnionPaySimHandle(ChannelSimHandle):
    """A running simulator: where it listens, its sandbox merchants, and ``stop()``."""

    simulator: UnionPaySimulator
    faults_key = FAULTS_KEY

    @property
    def info(self) -> SimulatorInfo:
        sim = self.simulator
        return SimulatorInfo(
            channel="unionpay",
            base_url=self.base_url,
            control_url=self.control_url,
            merchants=[m.info(self.base_url, sim.public_key_pem, sim.cert_pem) for m in self.merchants],
        )

    def merchant_configs(self) -> list[dict[str, Any]]:
        """One ``UnionPayConfig``-valid dict per sandbox merchant."""
        return [m.config(self.base_url, self.simulator.public_key_pem) for m in self.merchants]


async def start_simulator(host: str = "127.0.0.1", port: int = 0, *, merchants: int = 1) -> UnionPaySimHandle:
    """Start a simulator with ``merchants`` fresh sandbox merchants on ``host:port``."""
    if merchants < 1:
        raise ValueError("at least one merchant")
    sim = UnionPaySimulator([SimMerchant.generate(i) for i in range(merchants)])
    app = build_app(sim)
    runner, _ = await serve_app(app, host, port, on_bound=lambda url: setattr(sim, "base_url", url),
                                on_started=sim.notifier.start)
    return UnionPaySimHandle(sim, app, runner, sim.base_url)
