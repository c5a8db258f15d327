"""A public SOAP client works against the simulator unchanged: WSDL, WS-Security, faults."""
from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
import zeep
import zeep.exceptions
from lxml import etree
from zeep.wsse.username import UsernameToken

from his_adapters.simhis import CST
from his_adapters.soap.simulator import SIM_PASSWORD, SIM_USERNAME, SoapHisSimHandle


def _client(wsdl_url: str, *, password: str = SIM_PASSWORD, digest: bool = True) -> zeep.Client:
    return zeep.Client(wsdl_url, wsse=UsernameToken(SIM_USERNAME, password, use_digest=digest))


def _call(wsdl_url: str, trade_code: str, inner: str, **kw: Any) -> etree._Element:
    client = _client(wsdl_url, **kw)
    answer = client.service.HisService(tradeCode=trade_code, inputXml=inner)
    return etree.fromstring(answer.encode())


async def test_client_loads_the_wsdl_and_queries_pending(sim: SoapHisSimHandle) -> None:
    patient = next(p for p in sim.hospital.patients.values() if sim.hospital.pending(p.patient_id))
    inner = f"<Request><TradeCode>1001</TradeCode><CardNo>{patient.card_no}</CardNo></Request>"
    resp = await asyncio.to_thread(_call, sim.wsdl_url, "1001", inner)
    assert resp.findtext("ResultCode") == "0"
    assert resp.findtext("PatientName") == patient.name
    orders = {o.findtext("OrderNo") for o in resp.iterfind("OrderList/Order")}
    assert orders == {c.charge_id for c in sim.hospital.pending(patient.patient_id)}


async def test_client_writes_back_with_a_password_text_token(sim: SoapHisSimHandle) -> None:
    charge = next(c for c in sim.hospital.charges.values() if c.status == "pending")
    paid_at = dt.datetime.now(CST).strftime("%Y-%m-%d %H:%M:%S")
    inner = (f"<Request><OrderNos>{charge.charge_id}</OrderNos><PayAmt>{charge.amount // 100}."
             f"{charge.amount % 100:02d}</PayAmt><PayMode>ZFB</PayMode><PlatformTradeNo>Z-1</PlatformTradeNo>"
             f"<PayTime>{paid_at}</PayTime></Request>")
    resp = await asyncio.to_thread(_call, sim.wsdl_url, "1002", inner, digest=False)
    assert resp.findtext("ResultCode") == "0" and resp.findtext("ReceiptNo")
    record = sim.hospital.find_record("Z-1")
    assert record is not None and record.amount == charge.amount and record.channel == "ZFB"


async def test_client_sees_soap_faults(sim: SoapHisSimHandle) -> None:
    sim.hospital.faults.set("bill", "error", count=1)
    inner = f"<Request><BillDate>{dt.datetime.now(CST).date()}</BillDate><BillType>GH</BillType></Request>"
    with pytest.raises(zeep.exceptions.Fault) as info:
        await asyncio.to_thread(_call, sim.wsdl_url, "1005", inner)
    assert "HIS内部错误" in info.value.message
    with pytest.raises(zeep.exceptions.Fault) as bad:
        await asyncio.to_thread(_call, sim.wsdl_url, "1005", inner, password="wrong")
    assert "用户名或密码错误" in bad.value.message
    resp = await asyncio.to_thread(_call, sim.wsdl_url, "1005", inner)
    assert resp.findtext("ResultCode") == "0" and resp.findtext("TotalCount") == "0"


async def test_wsdl_names_the_running_endpoint(sim: SoapHisSimHandle) -> None:
    client = await asyncio.to_thread(_client, sim.wsdl_url)
    service = client.wsdl.services["HisService"]
    port = service.ports["HisServicePort"]
    assert port.binding_options["address"] == sim.endpoint
    assert set(port.binding._operations) == {"HisService", "HisInline"}
