"""The public ``wechatpayv3`` SDK, unchanged, in public-key mode, against the simulator.

The SDK is synchronous (requests); it runs in a worker thread while the simulator
serves on the event loop.
"""
from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
from typing import Any

import pytest
from wechatpayv3 import WeChatPay, WeChatPayType

from channels.wechatpay.bill import parse_tradebill
from channels.wechatpay.wire import CST

from .conftest import eventually


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def wxpay(sim, sink) -> WeChatPay:  # type: ignore[no-untyped-def]
    cfg = sim.merchant_configs()[0]
    client = WeChatPay(
        wechatpay_type=WeChatPayType.NATIVE,
        mchid=cfg["mchid"],
        private_key=cfg["private_key"],
        cert_serial_no=cfg["serial_no"],
        appid=cfg["appid"],
        apiv3_key=cfg["apiv3_key"],
        notify_url=sink.url,
        public_key=cfg["platform_public_key"],
        public_key_id=cfg["platform_public_key_id"],
        timeout=(5, 10),
    )
    client._core._gate_way = sim.base_url
    return client


async def call(fn: Any, *args: Any, **kwargs: Any) -> tuple[int, Any]:
    code, message = await asyncio.to_thread(fn, *args, **kwargs)
    return code, (json.loads(message) if isinstance(message, str) and message else message)


async def test_sdk_native_query_close(wxpay: WeChatPay, control) -> None:  # type: ignore[no-untyped-def]
    code, data = await call(wxpay.pay, description="门诊缴费", out_trade_no="SDK1", amount={"total": 1})
    assert code == 200 and data["code_url"].startswith("weixin://")
    code, data = await call(wxpay.query, out_trade_no="SDK1")
    assert code == 200 and data["trade_state"] == "NOTPAY"
    code, _ = await call(wxpay.close, out_trade_no="SDK1")
    assert code == 204
    code, data = await call(wxpay.query, out_trade_no="SDK1")
    assert data["trade_state"] == "CLOSED"
    code, data = await call(wxpay.query, out_trade_no="NOPE")
    assert code == 404 and data == {"code": "ORDER_NOT_EXIST", "message": "订单不存在"}


async def test_sdk_jsapi_and_h5(wxpay: WeChatPay) -> None:
    code, data = await call(wxpay.pay, description="挂号费", out_trade_no="SDK2", amount={"total": 2},
                            payer={"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}, pay_type=WeChatPayType.JSAPI)
    assert code == 200 and data["prepay_id"].startswith("wx")
    code, data = await call(wxpay.pay, description="挂号费", out_trade_no="SDK3", amount={"total": 3},
                            scene_info={"payer_client_ip": "203.0.113.5", "h5_info": {"type": "Wap"}},
                            pay_type=WeChatPayType.H5)
    assert code == 200 and "/_sim/checkout?prepay_id=" in data["h5_url"]


async def test_sdk_codepay_userpaying_reverse(wxpay: WeChatPay, control) -> None:  # type: ignore[no-untyped-def]
    common = {"description": "药费", "amount": {"total": 500}, "pay_type": WeChatPayType.CODEPAY,
              "scene_info": {"store_info": {"id": "MZ01"}, "device_ip": "10.0.0.8"}}
    code, data = await call(wxpay.pay, out_trade_no="SDK4", payer={"auth_code": "134567890123456789"}, **common)
    assert code == 200 and data["trade_state"] == "SUCCESS"
    code, data = await call(wxpay.pay, out_trade_no="SDK5", payer={"auth_code": "134567890123459004"}, **common)
    assert code == 202 and data["trade_state"] == "USERPAYING"  # the 202 answer is signed too
    code, data = await call(wxpay.codepay_reverse, out_trade_no="SDK5")
    assert code == 403 and data["code"] == "USERPAYING"
    await control("POST", "/orders/SDK5/fail")
    code, data = await call(wxpay.codepay_reverse, out_trade_no="SDK5")
    assert code == 200 and data["out_trade_no"] == "SDK5"
    code, data = await call(wxpay.query, out_trade_no="SDK5")
    assert data["trade_state"] == "REVOKED"
    code, data = await call(wxpay.pay, out_trade_no="SDK6", payer={"auth_code": "134567890123459011"}, **common)
    assert code == 403 and data == {"code": "NOTENOUGH", "message": "用户余额不足"}


async def test_sdk_refund_and_query(wxpay: WeChatPay, control) -> None:  # type: ignore[no-untyped-def]
    await call(wxpay.pay, description="检查费", out_trade_no="SDK7", amount={"total": 900})
    await control("POST", "/orders/SDK7/pay")
    code, data = await call(wxpay.refund, out_refund_no="SDK7-r1", amount={"refund": 400, "total": 900,
                                                                           "currency": "CNY"},
                            out_trade_no="SDK7", reason="退检查")
    assert code == 200 and data["status"] == "PROCESSING" and data["amount"]["refund"] == 400
    code, data = await call(wxpay.refund, out_refund_no="SDK7-r2", amount={"refund": 501, "total": 900,
                                                                           "currency": "CNY"},
                            out_trade_no="SDK7")
    assert code == 400 and data["code"] == "INVALID_REQUEST"

    async def settled() -> bool:
        code, data = await call(wxpay.query_refund, out_refund_no="SDK7-r1")
        return code == 200 and data["status"] == "SUCCESS"

    await eventually(settled)


async def test_sdk_trade_bill_and_download(wxpay: WeChatPay, sim) -> None:  # type: ignore[no-untyped-def]
    await call(wxpay.pay, description="药费", out_trade_no="SDK8", amount={"total": 1234},
               payer={"auth_code": "134567890123456789"}, scene_info={"store_info": {"id": "1"}},
               pay_type=WeChatPayType.CODEPAY)
    day = sim.simulator.now().date()
    code, data = await call(wxpay.trade_bill, bill_date=day.isoformat())
    assert code == 200 and data["hash_type"] == "SHA1"
    code, content = await asyncio.to_thread(wxpay.download_bill, data["download_url"])
    assert code == 200 and content[:2] == b"\x1f\x8b"
    raw = gzip.decompress(content)
    assert hashlib.sha1(raw).hexdigest() == data["hash_value"]  # noqa: S324
    bill = parse_tradebill(raw, day)
    assert bill.total_paid == 1234 and bill.lines[0].out_trade_no == "SDK8"
    assert bill.lines[0].trade_time.tzinfo == CST
    code, _ = await call(wxpay.trade_bill, bill_date="2000-01-01")
    assert code == 400


async def test_sdk_callback_decrypts_simulator_notify(wxpay: WeChatPay, control, sink) -> None:  # type: ignore[no-untyped-def]
    await call(wxpay.pay, description="住院预交金", out_trade_no="SDK9", amount={"total": 10000})
    await control("POST", "/orders/SDK9/pay")
    headers, body = await sink.next()
    result = await asyncio.to_thread(wxpay.callback, headers, body)
    assert result is not None, "the SDK rejected the simulator's notify"
    assert result["event_type"] == "TRANSACTION.SUCCESS"
    assert result["resource"]["out_trade_no"] == "SDK9" and result["resource"]["trade_state"] == "SUCCESS"
    assert result["resource"]["amount"]["total"] == 10000
    # and a tampered one is refused by the SDK as well
    assert await asyncio.to_thread(wxpay.callback, headers, body.replace(b"SUCCESS", b"SUCCES5")) is None


async def test_sdk_sign_error_for_a_wrong_key(wxpay: WeChatPay) -> None:
    from wechatpayv3.utils import load_private_key

    from channels.wechatpay import crypto

    wxpay._core._private_key = load_private_key(crypto.private_key_pem(crypto.generate_private_key()))
    code, data = await call(wxpay.query, out_trade_no="X")
    assert code == 401 and data["code"] == "SIGN_ERROR"
