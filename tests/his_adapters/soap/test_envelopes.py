"""SOAP 1.2, inline payloads, headers and tokens: what goes on the wire and what comes back."""
from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from lxml import etree

from gateway.errors import HisUnavailable
from gateway.his import PatientQuery, WriteBackStatus
from his_adapters.soap import SoapHisAdapter, SoapHisConfig
from his_adapters.soap.envelope import SOAP11_NS, SOAP12_NS, WSSE_NS
from his_adapters.soap.simulator import SoapHisSimHandle

from .conftest import MakeAdapter, merge, today, write_back_for


async def test_soap12_round_trip(sim: SoapHisSimHandle, make_adapter: MakeAdapter) -> None:
    adapter = make_adapter(soap_version="1.2")
    pid = next(p for p in sim.hospital.patients if sim.hospital.pending(p))
    charges = await adapter.pending_charges(PatientQuery(patient_id=pid))
    assert charges
    result = await adapter.write_back(write_back_for(charges[:1]))
    assert result.status is WriteBackStatus.RECORDED
    sim.hospital.faults.set("bill", "error", count=1)
    with pytest.raises(HisUnavailable, match="soap:Receiver"):
        await adapter.daily_bill(today(), charges[0].bill_type)


def inline_config(config: dict[str, Any]) -> dict[str, Any]:
    """The shipped configuration turned to the simulator's inline operation."""
    functions = {name: {**fn, "template": re.sub(r"</?Request>", "", fn["template"])}
                 for name, fn in config["functions"].items()}
    return merge(config, {"operation": "HisInline", "payload_style": "inline",
                          "soap_action": "http://simhis.yinyi/soap/HisInline", "functions": functions})


@pytest.mark.parametrize("version", ["1.1", "1.2"])
async def test_inline_payload_style(sim: SoapHisSimHandle, sim_config: dict[str, Any],
                                    session: aiohttp.ClientSession, version: str) -> None:
    config = SoapHisConfig.model_validate({**inline_config(sim_config), "soap_version": version})
    adapter = SoapHisAdapter(config, session)
    pid = next(p for p in sim.hospital.patients if sim.hospital.pending(p))
    charges = await adapter.pending_charges(PatientQuery(patient_id=pid))
    assert {c.charge_id for c in charges} == {c.charge_id for c in sim.hospital.pending(pid)}
    wb = write_back_for(charges[:1])
    assert (await adapter.write_back(wb)).status is WriteBackStatus.RECORDED
    assert (await adapter.write_back(wb)).status is WriteBackStatus.RECORDED
    bill = await adapter.daily_bill(today(), charges[0].bill_type)
    assert [ln.trade_no for ln in bill.lines] == [wb.payment_id]


# --- what the adapter sends: a capturing service that answers a fixed OK ---------------


@pytest.fixture
async def capture() -> AsyncIterator[dict[str, Any]]:
    seen: dict[str, Any] = {}

    async def answer(request: web.Request) -> web.Response:
        seen["headers"] = dict(request.headers)
        seen["body"] = await request.read()
        env = etree.fromstring(seen["body"])
        ns = etree.QName(env).namespace
        inner = "<Response><ResultCode>0</ResultCode><ReceiptNo>R1</ReceiptNo></Response>"
        if seen.get("inline"):
            payload = inner.replace("<Response>", "<ns:Out xmlns:ns='urn:x'>").replace("</Response>", "</ns:Out>")
        elif seen.get("nested"):  # the message as elements inside the result, not as a string
            payload = f"<Out><Result>{inner}</Result></Out>"
        else:
            payload = f"<Out><Result><![CDATA[{inner}]]></Result></Out>"
        return web.Response(body=f'<e:Envelope xmlns:e="{ns}"><e:Body>{payload}</e:Body></e:Envelope>'.encode(),
                            content_type="text/xml")

    app = web.Application()
    app.router.add_post("/ws", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    seen["url"] = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/ws"  # type: ignore[union-attr]
    try:
        yield seen
    finally:
        await runner.cleanup()


def _config(url: str, **overrides: Any) -> dict[str, Any]:
    fn = {"template": "<Req><Id>${payment_id}</Id><Day>${now|date}</Day></Req>", "trade_code": "T9",
          "result_code": "ResultCode", "ok_codes": ["0"], "mapping": {"fields": {"his_serial": "ReceiptNo"}}}
    return merge({"endpoint": url, "operation": "Call", "namespace": "urn:x", "trade_code_element": "code",
                  "message_element": "xml", "functions": {"write_back": fn, "write_back_query": fn}}, overrides)


async def test_soap11_request_shape(capture: dict[str, Any], session: aiohttp.ClientSession) -> None:
    cfg = SoapHisConfig.model_validate(_config(capture["url"], cdata=True, header_token={
        "name": "X-His-Token", "value": "tok-123"}))
    result = await SoapHisAdapter(cfg, session).query_write_back("P<&>1")
    assert result is not None and result.his_serial == "R1"
    assert capture["headers"]["SOAPAction"] == '"urn:x/Call"'
    assert capture["headers"]["Content-Type"].startswith("text/xml; charset=utf-8")
    assert capture["headers"]["X-His-Token"] == "tok-123"
    assert "tok-123" not in repr(cfg)
    env = etree.fromstring(capture["body"])
    assert etree.QName(env).namespace == SOAP11_NS
    op = env.find(f"{{{SOAP11_NS}}}Body/{{urn:x}}Call")
    assert op is not None and op.findtext("code") == "T9"
    assert b"<![CDATA[<Req><Id>P&lt;&amp;&gt;1</Id>" in capture["body"]
    inner = etree.fromstring(op.findtext("xml").encode())
    assert inner.findtext("Id") == "P<&>1"


async def test_soap12_request_shape_with_security(capture: dict[str, Any], session: aiohttp.ClientSession) -> None:
    cfg = SoapHisConfig.model_validate(_config(
        capture["url"], soap_version="1.2", soap_action="urn:x:act", qualified_parameters=True,
        ws_security={"username": "u", "password": "p", "digest": False},
        header_token={"location": "soap", "name": "Token", "namespace": "urn:t", "value": "tok"}))
    capture["nested"] = True
    result = await SoapHisAdapter(cfg, session).query_write_back("P1")
    assert result is not None and result.his_serial == "R1"
    assert capture["headers"]["Content-Type"] == 'application/soap+xml; charset=utf-8; action="urn:x:act"'
    assert "SOAPAction" not in capture["headers"]
    env = etree.fromstring(capture["body"])
    header = env.find(f"{{{SOAP12_NS}}}Header")
    assert header.findtext(f"{{{WSSE_NS}}}Security/{{{WSSE_NS}}}UsernameToken/{{{WSSE_NS}}}Password") == "p"
    assert header.findtext("{urn:t}Token") == "tok"
    op = env.find(f"{{{SOAP12_NS}}}Body/{{urn:x}}Call")
    assert op.findtext("{urn:x}code") == "T9" and op.find("{urn:x}xml") is not None


async def test_inline_request_shape_and_namespaced_answer(capture: dict[str, Any],
                                                          session: aiohttp.ClientSession) -> None:
    capture["inline"] = True
    fn = {"template": "<Id>${payment_id}</Id><Day>${now|date}</Day>"}
    cfg = SoapHisConfig.model_validate(_config(
        capture["url"], payload_style="inline", qualified_parameters=True,
        functions={"write_back_query": fn, "write_back": fn}))
    assert (await SoapHisAdapter(cfg, session).query_write_back("P1")).his_serial == "R1"
    op = etree.fromstring(capture["body"]).find(f"{{{SOAP11_NS}}}Body/{{urn:x}}Call")
    assert [etree.QName(c).localname for c in op] == ["code", "Id", "Day"]
    assert op.findtext("{urn:x}Id") == "P1"
