"""A simulator of the insurance centre over real HTTP, speaking the adapter's wire.

``start_simulator(host, port, profile=...)`` serves one sandbox hospital with
seeded persons (see :func:`.sim_core.default_persons`), generates the profile's
credentials (OAuth client, SM2 keys, SM4 key, TIF token) and returns a handle whose
``config()`` is a ready ``NhsaConfig`` mapping. Control surface: ``/_sim/``.
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.channel import SimulatorInfo
from gateway.testing.simkit import SimHandleBase, serve_app

from . import sim_control, sim_http
from .profiles import RegionProfile, resolve_profile
from .sim_core import InsuranceCentre
from .sim_faults import FaultSet
from .sim_security import SimPlain, sim_security_for

FIXMEDINS_CODE = "H43010000001"
FIXMEDINS_NAME = "模拟医院 (sandbox hospital)"
ADMVS = "430100"


def build_app(centre: InsuranceCentre, security: SimPlain, faults: FaultSet | None = None) -> web.Application:
    app = web.Application(middlewares=[sim_control.control_errors])
    app[sim_http.CENTRE_KEY] = centre
    app[sim_http.SECURITY_KEY] = security
    app[sim_http.FAULTS_KEY] = faults or FaultSet()
    sim_http.add_routes(app)
    sim_control.add_routes(app)
    return app


class NhsaSimHandle(SimHandleBase):
    def __init__(self, centre: InsuranceCentre, security: SimPlain, app: web.Application, runner: web.AppRunner,
                 base_url: str) -> None:
        self.centre = centre
        self.security = security
        self.app = app
        self.base_url = base_url
        self.control_url = f"{base_url}/_sim"
        self._runner = runner

    @property
    def profile(self) -> RegionProfile:
        return self.centre.profile

    @property
    def faults(self) -> FaultSet:
        return self.app[sim_http.FAULTS_KEY]

    @property
    def info(self) -> SimulatorInfo:
        return SimulatorInfo(channel="nhsa", base_url=self.base_url, control_url=self.control_url,
                             merchants=[{"fixmedins_code": FIXMEDINS_CODE, "fixmedins_name": FIXMEDINS_NAME,
                                         "mdtrtarea_admvs": ADMVS, "profile": self.profile.name}])

    def config(self, **overrides: Any) -> dict[str, Any]:
        """An ``NhsaConfig``-valid mapping pointing at this simulator."""
        return {"base_url": self.base_url, "fixmedins_code": FIXMEDINS_CODE, "fixmedins_name": FIXMEDINS_NAME,
                "mdtrtarea_admvs": ADMVS, "opter": "KIOSK01", "opter_name": "自助机01", "opter_type": "2",
                "dev_no": "KIOSK01", "profile": self.profile.model_dump(), **self.security.credentials(),
                **overrides}

    def system_configs(self) -> list[dict[str, Any]]:
        return [{"id": f"nhsa-{self.profile.name}", "name": FIXMEDINS_NAME, "adapter": "nhsa",
                 "config": self.config()}]



async def start_simulator(host: str = "127.0.0.1", port: int = 0, *,
                          profile: str | RegionProfile = "national") -> NhsaSimHandle:
    region = resolve_profile(profile)
    centre = InsuranceCentre(fixmedins_code=FIXMEDINS_CODE, mdtrtarea_admvs=ADMVS, profile=region)
    security = sim_security_for(region.security)
    app = build_app(centre, security)
    runner, base_url = await serve_app(app, host, port)
    return NhsaSimHandle(centre, security, app, runner, base_url)
