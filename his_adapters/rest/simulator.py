"""REST/JSON HIS simulator: a vendor-style JSON interface over the shared simulated hospital.

``start_simulator()`` serves it over real HTTP and returns a handle whose
``system_configs()`` is the shipped ``configs/his/rest-sim.toml`` pointed at it, so
the demo and the tests run exactly the configuration a hospital would copy. The
control surface (patients, charges, records, faults) is under ``/_sim/``.
"""
from __future__ import annotations

import copy
import secrets
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.channel import SimulatorInfo
from gateway.testing.simkit import SimHandleBase, serve_app

from ..config_file import load_system_toml
from ..simhis.control import add_control_routes
from ..simhis.model import SimHospital
from .sim_routes import RestHisRoutes
from .sim_wire import SANDBOX_APP_ID

SIMULATOR_NAME = "his-rest"
CONFIG_FILE = Path(__file__).resolve().parents[2] / "configs" / "his" / "rest-sim.toml"


def build_app(hospital: SimHospital, apps: dict[str, str]) -> web.Application:
    app = web.Application()
    RestHisRoutes(hospital, apps).add_to(app)
    add_control_routes(app, hospital)
    return app


class RestHisSimHandle(SimHandleBase):
    """A running REST HIS simulator."""

    def __init__(self, hospital: SimHospital, runner: web.AppRunner, base_url: str, app_id: str,
                 secret: str) -> None:
        self.hospital = hospital
        self.base_url = base_url
        self.control_url = f"{base_url}/_sim"
        self.app_id = app_id
        self.secret = secret
        self._runner = runner

    @property
    def info(self) -> SimulatorInfo:
        return SimulatorInfo(channel=SIMULATOR_NAME, base_url=self.base_url, merchants=[],
                             control_url=self.control_url)

    def system_configs(self) -> list[dict[str, Any]]:
        """The shipped sandbox system, its base URL and credentials pointed at this simulator."""
        system = load_system_toml(CONFIG_FILE)
        config = copy.deepcopy(system["config"])
        config["base_url"] = self.base_url
        auth = config.setdefault("auth", {})
        auth.pop("secret_env", None)
        auth.update(app_id=self.app_id, secret=self.secret)
        return [{**system, "config": config}]



async def start_simulator(host: str = "127.0.0.1", port: int = 0, *, hospital: SimHospital | None = None,
                          app_id: str = SANDBOX_APP_ID, secret: str | None = None) -> RestHisSimHandle:
    """Serve a REST HIS over ``hospital`` (a fresh seeded one by default) on ``host:port``.

    The secret is random unless given: use ``handle.secret`` or ``system_configs()``.
    """
    hospital = hospital or SimHospital()
    secret = secret or secrets.token_hex(16)
    app = build_app(hospital, {app_id: secret})
    runner, base_url = await serve_app(app, host, port)
    return RestHisSimHandle(hospital, runner, base_url, app_id, secret)
