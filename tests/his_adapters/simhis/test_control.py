"""The ``/_sim/`` control surface, mounted on a bare application over loopback HTTP."""
from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from his_adapters.simhis import SimHospital
from his_adapters.simhis.control import add_control_routes


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, SimHospital, aiohttp.ClientSession]]:
    hospital = SimHospital(seed=5, patients=4)
    app = web.Application()
    add_control_routes(app, hospital)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    async with aiohttp.ClientSession() as session:
        try:
            yield f"http://127.0.0.1:{port}/_sim", hospital, session
        finally:
            await runner.cleanup()


async def _call(session: aiohttp.ClientSession, method: str, url: str, body: Any = None) -> tuple[int, Any]:
    async with session.request(method, url, json=body) as resp:
        return resp.status, await resp.json()


async def test_health_and_patients(served: tuple[str, SimHospital, aiohttp.ClientSession]) -> None:
    url, hospital, session = served
    status, health = await _call(session, "GET", url + "/health")
    assert status == 200 and health["status"] == "ok" and health["patients"] == 4
    status, patients = await _call(session, "GET", url + "/patients")
    assert [p["patient_id"] for p in patients] == list(hospital.patients)
    assert all(p["pending"] and p["visits"] for p in patients)
    assert patients[0]["pending"][0]["created_at"].endswith("+00:00")


async def test_add_charge_and_read_records(served: tuple[str, SimHospital, aiohttp.ClientSession]) -> None:
    url, hospital, session = served
    pid = next(iter(hospital.patients))
    status, charge = await _call(session, "POST", url + "/charges", {
        "patient_id": pid, "amount": 1234, "bill_type": "outpatient_registration",
        "items": [{"name": "挂号费", "amount": 1234}]})
    assert status == 201 and charge["charge_id"].startswith("GH") and charge["items"][0]["name"] == "挂号费"
    record = hospital.record_payment(payment_id="P1", charge_ids=[charge["charge_id"]], amount=1234, channel="WX",
                                     channel_trade_no=None, paid_at=dt.datetime.now(dt.UTC))
    day = record.occurred_at.astimezone(dt.timezone(dt.timedelta(hours=8))).date().isoformat()
    for query in ("?payment_id=P1", f"?day={day}", "?bill_type=outpatient_registration", ""):
        status, records = await _call(session, "GET", url + "/records" + query)
        assert status == 200 and [r["payment_id"] for r in records] == ["P1"], query
    status, records = await _call(session, "GET", url + "/records?day=2001-01-01")
    assert records == []
    status, cancelled = await _call(session, "POST", url + f"/records/{record.his_serial}/cancel")
    assert status == 200 and cancelled["status"] == "cancelled"


async def test_control_errors_are_json(served: tuple[str, SimHospital, aiohttp.ClientSession]) -> None:
    url, _, session = served
    assert (await _call(session, "POST", url + "/charges", {"patient_id": "nobody", "amount": 1}))[0] == 404
    assert (await _call(session, "POST", url + "/charges", {"patient_id": "x", "amount": "1.00"}))[0] == 400
    assert (await _call(session, "POST", url + "/faults", {"op": "bill", "kind": "slow"}))[0] == 400
    async with session.post(url + "/faults", data=b"{") as resp:
        assert resp.status == 400 and "JSON" in (await resp.json())["error"]


async def test_faults_round_trip(served: tuple[str, SimHospital, aiohttp.ClientSession]) -> None:
    url, hospital, session = served
    status, body = await _call(session, "POST", url + "/faults",
                               {"op": "write_back", "kind": "timeout", "count": 1, "after": True})
    assert status == 201 and body["faults"] == {"write_back": {"kind": "timeout", "after": True, "count": 1}}
    assert (await _call(session, "GET", url + "/faults"))[1]["faults"]["write_back"]["kind"] == "timeout"
    await _call(session, "DELETE", url + "/faults")
    assert hospital.faults.take("write_back") is None
