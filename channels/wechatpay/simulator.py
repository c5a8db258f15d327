"""WeChat Pay simulator: the real v3 (and v2 payment-code) wire protocol on loopback.

``start_simulator()`` generates sandbox merchants (keys, serials, APIv3/v2 keys, a
platform key and its ``PUB_KEY_ID_…``), serves them over HTTP and returns a handle.
The public SDKs work against it unchanged: point their base URL at ``handle.base_url``.
The control surface lives under ``/_sim/`` (see ``docs/channels/wechatpay.md``).
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.channel import SimulatorInfo
from gateway.testing.simkit import ChannelSimHandle, serve_app

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


class WeChatPaySimHandle(ChannelSimHandle):
    """A running simulator: where it listens, its sandbox merchants, and ``stop()``."""

    simulator: WeChatPaySimulator
    faults_key = FAULTS_KEY

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


async def start_simulator(host: str = "127.0.0.1", port: int = 0, *, merchants: int = 1) -> WeChatPaySimHandle:
    """Start a simulator with ``merchants`` fresh sandbox merchants on ``host:port``."""
    if merchants < 1:
        raise ValueError("at least one merchant")
    sim = WeChatPaySimulator([SimMerchant.generate(i) for i in range(merchants)])
    app = build_app(sim)
    runner, _ = await serve_app(app, host, port, on_bound=lambda url: setattr(sim, "base_url", url),
                                on_started=sim.notifier.start)
    return WeChatPaySimHandle(sim, app, runner, sim.base_url)
