"""The reference bank's e-CNY acquiring simulator, over real HTTP on loopback.

``start_simulator()`` generates sandbox merchants (merchant number, RSA key and key
id each) and a bank key, serves the bank API (``/ecny/v1/…``) and the control
surface (``/_sim/…``), and returns a handle. It is the e-CNY channel's simulator:
``handle.merchant_configs()`` are ``EcnyConfig`` dicts (``{"bank": "refbank",
"bank_config": {…}}``). See ``docs/channels/ecny.md``.
"""
from __future__ import annotations

import socket
from typing import Any

from aiohttp import web

from gateway.channel import SimulatorInfo

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


class RefBankSimHandle:
    """A running simulator: where it listens, its sandbox merchants, and ``stop()``."""

    def __init__(self, sim: RefBankSimulator, app: web.Application, runner: web.AppRunner, base_url: str) -> None:
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

    async def stop(self) -> None:
        await self.simulator.notifier.stop()
        await self._runner.cleanup()

    async def __aenter__(self) -> RefBankSimHandle:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def start_simulator(host: str = "127.0.0.1", port: int = 0, *, merchants: int = 1) -> RefBankSimHandle:
    """Start a simulator with ``merchants`` fresh sandbox merchants on ``host:port`` (0: any free port)."""
    if merchants < 1:
        raise ValueError("at least one merchant")
    sim = RefBankSimulator([SimMerchant.generate(i) for i in range(merchants)])
    app = build_app(sim)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        await runner.cleanup()
        raise
    bound = sock.getsockname()[1]
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
    return RefBankSimHandle(sim, app, runner, sim.base_url)
