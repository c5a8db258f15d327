"""The public ``python-alipay-sdk``, unchanged, against the simulator.

The SDK is synchronous (``urlopen``); it runs in a worker thread while the
simulator serves on the event loop. It sends every call as a GET query with a
compact, ``\\uXXXX``-escaped ``biz_content`` and verifies every answer's ``sign``
over the raw ``…_response`` text.
"""
from __future__ import annotations

import asyncio
import json
import urllib.request
from typing import Any
from urllib.parse import parse_qsl

import pytest
from alipay import AliPay
from alipay.exceptions import AliPayException, AliPayValidationError

from channels.alipay import crypto
from channels.alipay.bill import parse_bill

from .conftest import today


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.delenv("http_proxy", raising=False)
    monkeypatch.delenv("HTTP_PROXY", raising=False)


@pytest.fixture
def sdk(sim) -> AliPay:  # type: ignore[no-untyped-def]
    cfg = sim.merchant_configs()[0]
    client = AliPay(appid=cfg["app_id"], app_notify_url=None, app_private_key_string=cfg["app_private_key"],
                    alipay_public_key_string=cfg["alipay_public_key"], sign_type="RSA2")
    client._gateway = sim.base_url + "/gateway.do"
    return client


async def call(fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    return await asyncio.to_thread(fn, *args, **kwargs)


async def test_sdk_pay_query_refund_query(sdk: AliPay, control) -> None:  # type: ignore[no-untyped-def]
    paid = await call(sdk.api_alipay_trade_pay, "SDK1", "bar_code", "286543210987654321", "门诊缴费",
                      total_amount="12.30", store_id="MZ01")
    assert paid["code"] == "10000" and paid["msg"] == "Success" and paid["total_amount"] == "12.30"
    assert paid["trade_no"] and paid["gmt_payment"] and paid["fund_bill_list"][0]["fund_channel"] == "ALIPAYACCOUNT"
    q = await call(sdk.api_alipay_trade_query, out_trade_no="SDK1")
    assert q["trade_status"] == "TRADE_SUCCESS" and q["send_pay_date"] and q["store_id"] == "MZ01"
    by_no = await call(sdk.api_alipay_trade_query, trade_no=paid["trade_no"])
    assert by_no["out_trade_no"] == "SDK1"
    r = await call(sdk.api_alipay_trade_refund, "2.30", out_trade_no="SDK1", out_request_no="SDK1-r1",
                   refund_reason="退号")
    assert (r["code"], r["fund_change"], r["refund_fee"]) == ("10000", "Y", "2.30")
    again = await call(sdk.api_alipay_trade_refund, "2.30", out_trade_no="SDK1", out_request_no="SDK1-r1")
    assert (again["fund_change"], again["refund_fee"]) == ("N", "2.30")  # idempotent retry
    over = await call(sdk.api_alipay_trade_refund, 10.01, out_trade_no="SDK1", out_request_no="SDK1-r2")
    assert (over["code"], over["sub_code"], over["sub_msg"]) == ("40004", "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL",
                                                                 "退款金额超限")
    rq = await call(sdk.api_alipay_trade_fastpay_refund_query, "SDK1-r1", out_trade_no="SDK1")
    assert (rq["refund_status"], rq["refund_amount"], rq["out_request_no"]) == ("REFUND_SUCCESS", "2.30", "SDK1-r1")
    none = await call(sdk.api_alipay_trade_fastpay_refund_query, "SDK1-none", out_trade_no="SDK1")
    assert none == {"code": "10000", "msg": "Success"}  # no such refund: no refund data at all
    missing = await call(sdk.api_alipay_trade_query, out_trade_no="NOPE")
    assert (missing["code"], missing["sub_code"], missing["sub_msg"]) == ("40004", "ACQ.TRADE_NOT_EXIST",
                                                                          "交易不存在")


async def test_sdk_in_process_and_cancel(sdk: AliPay, control) -> None:  # type: ignore[no-untyped-def]
    res = await call(sdk.api_alipay_trade_pay, "SDK2", "bar_code", "286543210987659004", "药费", total_amount=5)
    assert (res["code"], res["msg"]) == ("10003", " order success pay inprocess")
    assert (await call(sdk.api_alipay_trade_query, out_trade_no="SDK2"))["trade_status"] == "WAIT_BUYER_PAY"
    c = await call(sdk.api_alipay_trade_cancel, out_trade_no="SDK2")
    assert (c["code"], c["retry_flag"], c["action"]) == ("10000", "N", "close")
    assert (await call(sdk.api_alipay_trade_query, out_trade_no="SDK2"))["trade_status"] == "TRADE_CLOSED"
    paid = await call(sdk.api_alipay_trade_pay, "SDK3", "bar_code", "286543210987654321", "药费", total_amount=5)
    assert paid["code"] == "10000"
    c = await call(sdk.api_alipay_trade_cancel, out_trade_no="SDK3")
    assert (c["action"], c["retry_flag"]) == ("refund", "N") and c["gmt_refund_pay"]
    busy = await call(sdk.api_alipay_trade_pay, "SDK4", "bar_code", "286543210987659005", "药费", total_amount=5)
    assert busy["code"] == "10003"
    c = await call(sdk.api_alipay_trade_cancel, out_trade_no="SDK4")
    assert (c["code"], c["sub_code"], c["retry_flag"]) == ("40004", "ACQ.SYSTEM_ERROR", "Y")
    declined = await call(sdk.api_alipay_trade_pay, "SDK5", "bar_code", "286543210987659011", "药费",
                          total_amount=5)
    assert (declined["code"], declined["sub_code"], declined["sub_msg"]) == (
        "40004", "ACQ.BUYER_BALANCE_NOT_ENOUGH", "买家余额不足")
    assert declined["buyer_pay_amount"] == "0.00"


async def test_sdk_precreate_close(sdk: AliPay, control) -> None:  # type: ignore[no-untyped-def]
    pre = await call(sdk.api_alipay_trade_precreate, subject="检验费（血常规）", out_trade_no="SDK6",
                     total_amount=23)
    assert pre["code"] == "10000" and pre["qr_code"].startswith("https://qr.alipay.com/bax")
    truth = await control("GET", "/orders/SDK6")
    assert truth["subject"] == "检验费（血常规）" and truth["total_amount"] == "23.00"  # \uXXXX decoded
    closed = await call(sdk.api_alipay_trade_close, out_trade_no="SDK6")
    assert (closed["code"], closed["sub_code"]) == ("40004", "ACQ.TRADE_NOT_EXIST")  # not scanned yet
    await control("POST", "/orders/SDK6/scan")
    closed = await call(sdk.api_alipay_trade_close, out_trade_no="SDK6")
    assert closed["code"] == "10000" and closed["trade_no"] == truth["trade_no"]


async def test_sdk_bill_url_and_download(sdk: AliPay, sim) -> None:  # type: ignore[no-untyped-def]
    await call(sdk.api_alipay_trade_pay, "SDK7", "bar_code", "286543210987654321", "药费", total_amount="12.34")
    day = today()
    ans = await call(sdk.server_api, "alipay.data.dataservice.bill.downloadurl.query",
                     {"bill_type": "trade", "bill_date": day.isoformat()})
    assert ans["code"] == "10000" and ans["bill_download_url"].startswith(sim.base_url)
    assert f"{sim.merchants[0].pid}_{day:%Y%m%d}.csv.zip" in ans["bill_download_url"]

    def fetch() -> bytes:
        with urllib.request.urlopen(ans["bill_download_url"], timeout=5) as resp:  # noqa: S310 - loopback
            return resp.read()

    data = await asyncio.to_thread(fetch)
    bill = parse_bill(data, day)
    assert bill.total_paid == 1234 and bill.lines[0].out_trade_no == "SDK7"
    none = await call(sdk.server_api, "alipay.data.dataservice.bill.downloadurl.query",
                      {"bill_type": "trade", "bill_date": "2000-01-01"})
    assert (none["code"], none["sub_code"]) == ("40004", "isp.bill_not_exist")


async def test_sdk_verifies_simulator_notify(sdk: AliPay, control, sink) -> None:  # type: ignore[no-untyped-def]
    await call(sdk.api_alipay_trade_precreate, subject="住院预交金", out_trade_no="SDK8", total_amount="100.00",
               notify_url=sink.url)
    await control("POST", "/orders/SDK8/pay")
    _, body = await sink.next()
    data = dict(parse_qsl(body.decode(), keep_blank_values=True))
    signature = data.pop("sign")
    assert await asyncio.to_thread(sdk.verify, dict(data), signature), "the SDK rejected the simulator's notify"
    assert data["trade_status"] == "TRADE_SUCCESS" and data["out_trade_no"] == "SDK8"
    tampered = {**data, "total_amount": "1.00"}
    assert not await asyncio.to_thread(sdk.verify, tampered, signature)


async def test_sdk_sees_gateway_errors(sdk: AliPay, sim) -> None:  # type: ignore[no-untyped-def]
    wrong = AliPay(appid=sdk.appid, app_notify_url=None,
                   app_private_key_string=crypto.private_key_pem(crypto.generate_private_key()),
                   alipay_public_key_string=sim.merchant_configs()[0]["alipay_public_key"], sign_type="RSA2")
    wrong._gateway = sdk._gateway
    with pytest.raises(AliPayException) as err:
        await call(wrong.api_alipay_trade_query, out_trade_no="X")
    raw = json.loads(str(err.value).split("message:", 1)[1])
    assert raw["error_response"]["sub_code"] == "isv.invalid-signature" and raw["sign"]
    # trusting another Alipay key: the SDK refuses the (genuine) answer
    other = AliPay(appid=sdk.appid, app_notify_url=None,
                   app_private_key_string=sim.merchant_configs()[0]["app_private_key"],
                   alipay_public_key_string=sim.merchant_configs()[1]["alipay_public_key"], sign_type="RSA2")
    other._gateway = sdk._gateway
    with pytest.raises(AliPayValidationError):
        await call(other.api_alipay_trade_query, out_trade_no="X")
    with pytest.raises(AliPayException):
        await call(sdk.server_api, "alipay.trade.nonsense", {})
