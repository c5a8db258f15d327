"""The reference bank's e-CNY acquiring simulator, over real HTTP on loopback.

``start_simulator()`` generates sandbox merchants (merchant number, RSA key and key
id each) and a bank key, serves the bank API (``/ecny/v1/…``) and the control
surface (``/_sim/…``), and returns a handle. It is the e-CNY channel's simulator:
``handle.merchant_configs()`` are ``EcnyConfig`` dicts (``{"bank": "refbank",
"bank_config": {…}}``). See ``docs/channels/ecny.md``.
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.channel import SimulatorInfo
from gateway.testing.simkit import ChannelSimHandle, serve_app

from . import crypto, sim_api, sim_control
from .sim_core import RefBankSimulator
from .sim_faults import FAULTS_KEY, FaultSet, fault_middleware
from .sim_model import SimMerchant
from .wire import BANK_ID


def build_app(sim: RefBankSimulator, faults: FaultSet | None = None) -> web.Application:
    # outermost first: faults see the finished (signed) answer; control errors are JSON
    app = web.Application(middlewares=[fault_middleware, sim_control.control_errors, sim_api.api_middleware])
    app[sim_api.SIM_KEY] = sim
    app[FAULTS_KEY] = faults or FaultSet()
    sim_api.add_routes(app)
    sim_control.add_routes(app)
    return app


class RefBankSimHandle(ChannelSimHandle):
    """A running simulator: where it listens, its sandbox merchants, and ``stop()``."""

    simulator: RefBankSimulator
    faults_key = FAULTS_KEY

    def bank_configs(self) -> list[dict[str, Any]]:
        """One ``RefBankConfig``-valid dict per sandbox merchant."""
        sim = self.simulator
        return [m.bank_config(self.base_url, sim.bank_key, sim.bank_key_id) for m in self.merchants]

    def merchant_configs(self) -> list[dict[str, Any]]:
        """One ``EcnyConfig``-valid dict per sandbox merchant: ``{"bank": "refbank", "bank_config": …}``."""
        return [{"bank": BANK_ID, "bank_config": cfg} for cfg in self.bank_configs()]

    @property
    def info(self) -> SimulatorInfo:
        merchants = [
            {**cfg, "name": m.name, "merchant_public_key": crypto.public_key_pem(m.merchant_key),
             "sample_auth_code": "0123456789012345678"}
            for m, cfg in zip(self.merchants, self.merchant_configs(), strict=True)
        ]
        return SimulatorInfo(channel="ecny", base_url=self.base_url, control_url=self.control_url,
                             merchants=merchants)


async def start_simulator(host: str = "127.0.0.1", port: int = 0, *, merchants: int = 1) -> RefBankSimHandle:
    """Start a simulator with ``merchants`` fresh sandbox merchants on ``host:port`` (0: any free port)."""
    if merchants < 1:
        raise ValueError("at least one merchant")
    sim = RefBankSimulator([SimMerchant.generate(i) for i in range(merchants)])
    app = build_app(sim)
    runner, _ = await serve_app(app, host, port, on_bound=lambda url: setattr(sim, "base_url", url),
                                on_started=sim.notifier.start)
    return RefBankSimHandle(sim, app, runner, sim.base_url)
