"""Fixtures: the REST HIS simulator on loopback and adapters built from its shipped configuration."""
from __future__ import annotations

import copy
import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from gateway.his import WriteBack
from gateway.testing.fixtures import Control, control_caller, loopback_server, session  # noqa: F401
from his_adapters.rest import RestHisAdapter, RestHisConfig
from his_adapters.rest.simulator import RestHisSimHandle, start_simulator
from his_adapters.simhis import CST, Charge, SimHospital


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


@pytest.fixture
async def sim() -> AsyncIterator[RestHisSimHandle]:
    handle = await start_simulator("127.0.0.1", 0, hospital=SimHospital(seed=11, patients=8))
    try:
        yield handle
    finally:
        await handle.stop()


MakeAdapter = Callable[..., RestHisAdapter]


@pytest.fixture
def system(sim: RestHisSimHandle) -> dict[str, Any]:
    return sim.system_configs()[0]


@pytest.fixture
def make_adapter(system: dict[str, Any], session: aiohttp.ClientSession) -> MakeAdapter:
    """An adapter from the shipped configuration, with ``overrides`` deep-merged into it."""

    def make(**overrides: Any) -> RestHisAdapter:
        cfg = deep_merge(system["config"], {"timeout_seconds": 3.0, **overrides})
        return RestHisAdapter(RestHisConfig.model_validate(cfg), session)

    return make


@pytest.fixture
def adapter(make_adapter: MakeAdapter) -> RestHisAdapter:
    return make_adapter()


@pytest.fixture
def hospital(sim: RestHisSimHandle) -> SimHospital:
    return sim.hospital


def china_today() -> dt.date:
    return dt.datetime.now(CST).date()


def write_back_for(charge: Charge | list[Charge], payment_id: str, *, amount: int | None = None,
                   channel: str = "wechatpay", **extra: Any) -> WriteBack:
    charges = charge if isinstance(charge, list) else [charge]
    return WriteBack(
        payment_id=payment_id, out_trade_no=f"T{payment_id}", app_id="kiosk-1",
        amount=sum(c.amount for c in charges) if amount is None else amount, channel=channel, method="code",
        channel_trade_no=f"42000{payment_id}", paid_at=dt.datetime.now(dt.UTC).replace(microsecond=0),
        patient_id=charges[0].patient_id, visit_no=charges[0].visit_no, charge_ids=[c.charge_id for c in charges],
        bill_type=charges[0].bill_type, **extra)


def first_pending(hospital: SimHospital, bill_type: str | None = None) -> Charge:
    return next(c for c in hospital.charges.values()
                if c.status == "pending" and (bill_type is None or c.bill_type == bill_type))


@pytest.fixture
def control(sim: RestHisSimHandle, session: aiohttp.ClientSession) -> Control:
    return control_caller(session, sim.control_url)


class ScriptedHis:
    """A loopback HTTP server answering each path with a canned body: for answers no honest HIS gives."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.answers: dict[str, tuple[int, str | bytes, str]] = {}
        self.requests: list[tuple[str, str, bytes]] = []

    def answer(self, path: str, body: Any, *, status: int = 200, content_type: str = "application/json") -> None:
        import json

        text = body if isinstance(body, str | bytes) else json.dumps(body, ensure_ascii=False)
        self.answers[path] = (status, text, content_type)


@pytest.fixture
async def scripted() -> AsyncIterator[ScriptedHis]:
    from aiohttp import web

    holder: dict[str, ScriptedHis] = {}

    async def handle(request: web.Request) -> web.Response:
        his = holder["his"]
        his.requests.append((request.method, request.path_qs, await request.read()))
        status, body, content_type = his.answers.get(request.path, (404, "not found", "text/plain"))
        if isinstance(body, bytes):
            return web.Response(status=status, body=body, content_type=content_type)
        return web.Response(status=status, text=body, content_type=content_type)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    async with loopback_server(app) as base_url:
        holder["his"] = ScriptedHis(base_url)
        yield holder["his"]


@pytest.fixture
def scripted_adapter(system: dict[str, Any], scripted: ScriptedHis,
                     session: aiohttp.ClientSession) -> Callable[..., RestHisAdapter]:
    """The shipped configuration, unsigned, pointed at the scripted server."""

    def make(**overrides: Any) -> RestHisAdapter:
        cfg = deep_merge(system["config"], {"base_url": scripted.base_url, "auth": {"scheme": "none"},
                                            "timeout_seconds": 3.0, **overrides})
        return RestHisAdapter(RestHisConfig.model_validate(cfg), session)

    return make
