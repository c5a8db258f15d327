"""Every planned HIS fault becomes the exception the core expects; unsafe XML is refused."""
from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.errors import HisError, HisProtocolError, HisRejected, HisTimeout, HisUnavailable
from gateway.his import PatientQuery, WriteBackResult, WriteBackStatus
from his_adapters.soap import SoapHisAdapter
from his_adapters.soap.simulator import SoapHisSimHandle

from .conftest import MakeAdapter, refund_for, today, write_back_for

Call = Callable[[], Awaitable[Any]]


async def _calls(sim: SoapHisSimHandle, adapter: SoapHisAdapter) -> dict[str, Call]:
    """One ready call per operation (set up before any fault is planned)."""
    pid = next(p for p in sim.hospital.patients if len(sim.hospital.pending(p)) >= 1)
    charges = await adapter.pending_charges(PatientQuery(patient_id=pid))
    paid = write_back_for(charges[:1])
    await adapter.write_back(paid)
    other = next(p for p in sim.hospital.patients if p != pid and sim.hospital.pending(p))
    to_pay = write_back_for(await adapter.pending_charges(PatientQuery(patient_id=other)))
    return {
        "pending": lambda: adapter.pending_charges(PatientQuery(patient_id=pid)),
        "write_back": lambda: adapter.write_back(to_pay),
        "write_back_query": lambda: adapter.query_write_back(paid.payment_id),
        "refund_write_back": lambda: adapter.write_back_refund(refund_for(paid, 1)),
        "bill": lambda: adapter.daily_bill(today(), paid.bill_type),
    }


EXPECTED: dict[str, type[HisError]] = {
    "timeout": HisTimeout, "error": HisUnavailable, "malformed": HisProtocolError,
    "unknown_status": HisProtocolError, "down": HisUnavailable,
}
OPS = ("pending", "write_back", "write_back_query", "refund_write_back", "bill")


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("kind", sorted(EXPECTED))
async def test_fault_kinds_raise(sim: SoapHisSimHandle, adapter: SoapHisAdapter, op: str, kind: str) -> None:
    calls = await _calls(sim, adapter)
    sim.hospital.faults.set(op, kind, count=1)
    with pytest.raises(EXPECTED[kind]):
        await calls[op]()
    await calls[op]()  # the fault was used up: the next call goes through


@pytest.mark.parametrize("op", OPS)
async def test_refuse_fault(sim: SoapHisSimHandle, adapter: SoapHisAdapter, op: str) -> None:
    calls = await _calls(sim, adapter)
    sim.hospital.faults.set(op, "refuse", count=1)
    if op in ("write_back", "refund_write_back"):
        result = await calls[op]()
        assert isinstance(result, WriteBackResult)
        assert result.status is WriteBackStatus.REJECTED and result.error_code == "-1"
    else:
        with pytest.raises(HisRejected) as info:
            await calls[op]()
        assert info.value.extra["his_code"] == "-1"


async def test_faults_planned_through_the_control_routes(sim: SoapHisSimHandle, adapter: SoapHisAdapter,
                                                         session: aiohttp.ClientSession) -> None:
    async with session.post(f"{sim.control_url}/faults", json={"op": "*", "kind": "error", "count": 1}) as resp:
        assert resp.status == 201
    with pytest.raises(HisUnavailable, match="soap:Server"):
        await adapter.daily_bill(today(), "outpatient_settlement")
    async with session.get(f"{sim.control_url}/health") as resp:
        assert (await resp.json())["status"] == "ok"


async def test_timeout_after_recording_then_retry_records_once(sim: SoapHisSimHandle,
                                                               adapter: SoapHisAdapter) -> None:
    pid = next(p for p in sim.hospital.patients if sim.hospital.pending(p))
    wb = write_back_for((await adapter.pending_charges(PatientQuery(patient_id=pid)))[:1])
    sim.hospital.faults.set("write_back", "timeout", count=1, after=True)
    with pytest.raises(HisTimeout):
        await adapter.write_back(wb)
    assert sim.hospital.find_record(wb.payment_id) is not None  # the HIS did record it
    found = await adapter.query_write_back(wb.payment_id)
    retried = await adapter.write_back(wb)
    assert retried.status is WriteBackStatus.RECORDED
    assert found is not None and retried.his_serial == found.his_serial
    assert len([r for r in sim.hospital.records if r.payment_id == wb.payment_id]) == 1


@pytest.mark.parametrize("kind", ["down", "malformed", "error"])
async def test_other_after_faults_then_retry(sim: SoapHisSimHandle, adapter: SoapHisAdapter, kind: str) -> None:
    pid = next(p for p in sim.hospital.patients if sim.hospital.pending(p))
    wb = write_back_for((await adapter.pending_charges(PatientQuery(patient_id=pid)))[:1])
    sim.hospital.faults.set("write_back", kind, count=1, after=True)
    with pytest.raises(HisError):
        await adapter.write_back(wb)
    assert (await adapter.write_back(wb)).status is WriteBackStatus.RECORDED
    assert len([r for r in sim.hospital.records if r.payment_id == wb.payment_id]) == 1


async def test_connection_refused_is_unavailable(make_adapter: MakeAdapter) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the call: nothing listens there
    adapter = make_adapter(endpoint=f"http://127.0.0.1:{port}/his/soap", timeout_seconds=2)
    with pytest.raises(HisUnavailable):
        await adapter.pending_charges(PatientQuery(card_no="1"))


async def test_wrong_credentials_are_a_client_fault(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter(ws_security={"password": "wrong"})
    with pytest.raises(HisProtocolError, match="soap:Client"):
        await adapter.pending_charges(PatientQuery(card_no="1"))
    text = make_adapter(ws_security={"digest": False})
    with pytest.raises(HisRejected):  # authenticated with a PasswordText token; the patient is unknown
        await text.pending_charges(PatientQuery(card_no="1"))


# --- a hostile or broken service: a plain HTTP server answering what each test says ---------


@pytest.fixture
async def rogue() -> AsyncIterator[dict[str, Any]]:
    state: dict[str, Any] = {"status": 200, "body": b"", "type": "text/xml"}

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=state["status"], body=state["body"], content_type=state["type"])

    app = web.Application()
    app.router.add_post("/ws", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state["url"] = f"http://127.0.0.1:{port}/ws"
    try:
        yield state
    finally:
        await runner.cleanup()


def _wrapped(inner: str) -> bytes:
    escaped = inner.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return (f'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
            f'<ns:HisServiceResponse xmlns:ns="http://simhis.yinyi/soap"><HisServiceResult>{escaped}'
            f'</HisServiceResult></ns:HisServiceResponse></soap:Body></soap:Envelope>').encode()


async def test_external_entity_in_envelope_is_refused(rogue: dict[str, Any], make_adapter: MakeAdapter,
                                                      tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    rogue["body"] = (f'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x SYSTEM "file://{secret}">]>'
                     '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
                     '<r>&x;</r></soap:Body></soap:Envelope>').encode()
    adapter = make_adapter(endpoint=rogue["url"])
    with pytest.raises(HisProtocolError, match="DOCTYPE") as info:
        await adapter.pending_charges(PatientQuery(card_no="1"))
    assert "TOP-SECRET" not in str(info.value)


async def test_external_entity_in_inner_message_is_refused(rogue: dict[str, Any], make_adapter: MakeAdapter,
                                                           tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    rogue["body"] = _wrapped(f'<!DOCTYPE Response [<!ENTITY x SYSTEM "file://{secret}">]>'
                             '<Response><ResultCode>0</ResultCode><PatientID>&x;</PatientID></Response>')
    adapter = make_adapter(endpoint=rogue["url"])
    with pytest.raises(HisProtocolError, match="DOCTYPE"):
        await adapter.pending_charges(PatientQuery(card_no="1"))


async def test_entity_expansion_is_refused(rogue: dict[str, Any], make_adapter: MakeAdapter) -> None:
    lol = "".join(f'<!ENTITY l{i} "{"&l%d;" % (i - 1) * 10}">' for i in range(1, 8))
    rogue["body"] = _wrapped(f'<!DOCTYPE Response [<!ENTITY l0 "lol">{lol}]>'
                             '<Response><ResultCode>&l7;</ResultCode></Response>')
    with pytest.raises(HisProtocolError):
        await make_adapter(endpoint=rogue["url"]).pending_charges(PatientQuery(card_no="1"))


async def test_simulator_refuses_external_entities(sim: SoapHisSimHandle, session: aiohttp.ClientSession) -> None:
    body = ('<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
            '<ns:HisService xmlns:ns="http://simhis.yinyi/soap"><tradeCode>1001</tradeCode>'
            '<inputXml>&x;</inputXml></ns:HisService></soap:Body></soap:Envelope>')
    async with session.post(sim.endpoint, data=body, headers={"Content-Type": "text/xml"}) as resp:
        text = await resp.text()
    assert resp.status == 500 and "soap:Client" in text and "DOCTYPE" in text and "root:" not in text


@pytest.mark.parametrize(("status", "body", "expected"), [
    (502, b"<html><body>502 Bad Gateway</body></html>", HisUnavailable),
    (404, b"<html><body>not found</body></html>", HisProtocolError),
    (200, b"not xml at all", HisProtocolError),
    (200, _wrapped("<Response><ResultContent>no code</ResultContent></Response>"), HisProtocolError),
    (200, _wrapped("<Response><ResultCode>0</ResultCode>"), HisProtocolError),
])
async def test_broken_answers(rogue: dict[str, Any], make_adapter: MakeAdapter, status: int, body: bytes,
                              expected: type[HisError]) -> None:
    rogue.update(status=status, body=body, type="text/html" if body.startswith(b"<html") else "text/xml")
    with pytest.raises(expected):
        await make_adapter(endpoint=rogue["url"]).pending_charges(PatientQuery(card_no="1"))
