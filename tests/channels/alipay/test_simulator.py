"""The simulator's handle, control surface and gateway checks; plugin wiring; configuration."""
from __future__ import annotations

import datetime as dt
import json
from urllib.parse import urlencode

import aiohttp
import pytest
from pydantic import ValidationError

from channels.alipay import AlipayChannel, AlipayConfig, crypto
from channels.alipay import plugin as alipay_plugin
from channels.alipay.simulator import start_simulator
from channels.alipay.wire import CST, format_time
from gateway.channel import Method, PayRequest, SimulatorInfo
from gateway.registry import Registrar, Registry


async def test_handle_api(sim) -> None:  # type: ignore[no-untyped-def]
    assert sim.base_url.startswith("http://127.0.0.1:") and sim.control_url == sim.base_url + "/_sim"
    assert sim.gateway_url == sim.base_url + "/gateway.do"
    info = sim.info
    assert isinstance(info, SimulatorInfo) and info.channel == "alipay" and info.control_url == sim.control_url
    assert len(info.merchants) == 2
    m = info.merchants[0]
    assert m["app_private_key"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert m["alipay_public_key"].startswith("-----BEGIN PUBLIC KEY-----")
    assert len(m["app_id"]) == 16 and m["seller_id"].startswith("2088") and m["sub_seller_id"].startswith("2088")
    assert AlipayChannel.matches_auth_code(m["sample_auth_code"])
    configs = sim.merchant_configs()
    assert len({c["app_id"] for c in configs}) == 2
    for cfg in configs:
        parsed = AlipayConfig.model_validate(cfg)
        assert parsed.gateway_url == sim.gateway_url
        assert "SecretStr" in repr(parsed.app_private_key) and cfg["app_private_key"] not in repr(parsed)
    info.model_dump_json()  # serialisable for sandbox.json


async def test_control_index_and_truth(sim, control, channel) -> None:  # type: ignore[no-untyped-def]
    index = await control("GET", "/")
    assert "…9001" in index["magic_auth_codes"] and "INPROCESS" in index["script_outcomes"]
    assert index["channel"] == "alipay" and index["gateway_url"] == sim.gateway_url
    await channel.pay(PayRequest(out_trade_no="CT1", amount=1, subject="x", method=Method.QR))
    orders = await control("GET", "/orders")
    assert [(o["out_trade_no"], o["state"]) for o in orders] == [("CT1", "PRECREATED")]
    await control("GET", "/orders/NOPE", expect=404)
    await control("POST", "/orders/NOPE/pay", expect=404)
    await control("POST", "/orders/CT1/notify", expect=409)  # not a trade yet
    await control("POST", "/orders/CT1/fail", expect=409)  # not scanned
    await control("POST", "/orders/CT1/pay")
    assert (await control("POST", "/orders/CT1/notify"))["sent"] is True
    await control("POST", "/orders/CT1/pay", expect=409)  # already paid
    await control("POST", "/orders/CT1/scan", expect=409)
    await control("GET", "/refunds/NOPE", expect=404)
    await control("POST", "/reset")
    assert await control("GET", "/orders") == []


async def test_control_scripts_settings_clock(control) -> None:  # type: ignore[no-untyped-def]
    s = await control("POST", "/scripts", {"outcome": "inprocess", "then": "hang", "times": 2}, expect=201)
    assert s["outcome"] == "INPROCESS" and s["times"] == 2
    await control("POST", "/scripts", {"outcome": "EXPLODE"}, expect=400)
    await control("POST", "/scripts", {"outcome": "SUCCESS", "then": "later"}, expect=400)
    assert len(await control("GET", "/scripts")) == 1
    await control("DELETE", "/scripts")
    assert await control("GET", "/scripts") == []
    st = await control("POST", "/settings", {"refund_settle_seconds": 0.5, "fee_rate_bp": 20,
                                             "notify_retry_delays": [1, 2],
                                             "next_refund_errors": "ACQ.SELLER_BALANCE_NOT_ENOUGH"})
    assert st["fee_rate_bp"] == 20 and st["notify_retry_delays"] == [1.0, 2.0]
    assert st["next_refund_errors"] == ["ACQ.SELLER_BALANCE_NOT_ENOUGH"]
    clock = await control("POST", "/clock", {"now": "2024-01-02T03:04:05+08:00"})
    assert clock["now"].startswith("2024-01-02 03:04")
    assert (await control("POST", "/clock", {"offset_seconds": 86400}))["offset_seconds"] == 86400
    assert (await control("DELETE", "/clock"))["offset_seconds"] == 0
    await control("POST", "/clock", {}, expect=400)


def _common(m, method: str, biz: dict, **extra: str) -> dict[str, str]:  # type: ignore[no-untyped-def,type-arg]
    params = {"app_id": m.app_id, "method": method, "format": "JSON", "charset": "utf-8", "sign_type": "RSA2",
              "timestamp": format_time(dt.datetime.now(CST)), "version": "1.0",
              "biz_content": json.dumps(biz, ensure_ascii=False), **extra}
    params["sign"] = crypto.sign_params(params, m.app_key)
    return params


async def _gateway(session, sim, *, query=None, form=None, charset="utf-8") -> dict:  # type: ignore[no-untyped-def,type-arg]
    url = sim.gateway_url + ("?" + urlencode(query, encoding=charset) if query else "")
    data = urlencode(form, encoding=charset).encode() if form else None
    headers = {"Content-Type": f"application/x-www-form-urlencoded;charset={charset}"} if form else {}
    async with session.request("POST" if form else "GET", url, data=data, headers=headers) as resp:
        assert resp.status == 200
        text = await resp.text()
    spans = crypto.top_level_spans(text)
    key = next(k for k in spans if k != "sign")
    if "sign" in spans:  # every answer about a known application is signed over the raw text
        start, end, _ = spans[key]
        assert crypto.rsa_verify(sim.merchants[0].alipay_key.public_key(), text[start:end], spans["sign"][2])
    return {key: spans[key][2], "signed": "sign" in spans}


async def test_query_form_or_both_are_accepted(sim, session) -> None:  # type: ignore[no-untyped-def]
    m = sim.merchants[0]
    biz = {"out_trade_no": "G1", "total_amount": "1.00", "subject": "挂号费"}
    p = _common(m, "alipay.trade.precreate", biz)
    a = await _gateway(session, sim, form=p)  # everything in the form
    assert a["alipay_trade_precreate_response"]["code"] == "10000"
    p = _common(m, "alipay.trade.query", {"out_trade_no": "G1"})
    both = await _gateway(session, sim, query={k: v for k, v in p.items() if k != "biz_content"},
                          form={"biz_content": p["biz_content"]})
    assert both["alipay_trade_query_response"]["sub_code"] == "ACQ.TRADE_NOT_EXIST"
    gbk = _common(m, "alipay.trade.precreate", {**biz, "out_trade_no": "G2"}, charset="GBK")
    assert (await _gateway(session, sim, query=gbk, charset="gbk"))["alipay_trade_precreate_response"][
        "code"] == "10000"
    assert sim.simulator.lookup("G2").subject == "挂号费"


@pytest.mark.parametrize("change,sub_code,code", [
    ({"app_id": None}, "isv.missing-app-id", "40001"),
    ({"app_id": "2021000000000000"}, "isv.invalid-app-id", "40002"),
    ({"method": None}, "isv.missing-method", "40001"),
    ({"sign": None}, "isv.missing-signature", "40001"),
    ({"sign_type": "MD5"}, "isv.invalid-signature-type", "40002"),
    ({"timestamp": "2024/01/01"}, "isv.invalid-timestamp", "40002"),
    ({"version": None}, "isv.missing-version", "40001"),
    ({"charset": "latin-1"}, "isv.invalid-charset", "40002"),
    ({"method": "alipay.trade.nonsense"}, "isv.invalid-method", "40002"),
    ({"app_auth_token": "bogus"}, "aop.invalid-app-auth-token", "20001"),
    ({"biz_content": '{"out_trade_no":"X"}'}, "isv.invalid-signature", "40002"),  # changed after signing
])
async def test_gateway_refusals(sim, session, change, sub_code: str, code: str) -> None:  # type: ignore[no-untyped-def]
    m = sim.merchants[0]
    resign = change.keys() & {"method", "sign_type", "timestamp", "version", "charset", "app_auth_token"}
    params = _common(m, "alipay.trade.query", {"out_trade_no": "G1"})
    params.update({k: v for k, v in change.items() if v is not None})
    for k in [k for k, v in change.items() if v is None]:
        params.pop(k, None)
    if resign and "sign" in params and change.get("sign_type") != "MD5":
        params["sign"] = crypto.sign_params(params, m.app_key, params.get("sign_type", "RSA2"))
    ans = await _gateway(session, sim, query=params)
    err = ans["error_response"]
    assert (err["code"], err["sub_code"]) == (code, sub_code) and err["sub_msg"] and err["msg"]
    assert ans["signed"] is (sub_code not in ("isv.missing-app-id", "isv.invalid-app-id"))
    if sub_code == "isv.invalid-signature":
        assert err["sub_msg"].endswith("app_id=" + m.app_id + '&biz_content={"out_trade_no":"X"}&charset=utf-8'
                                       + "&format=JSON&method=alipay.trade.query&sign_type=RSA2&timestamp="
                                       + params["timestamp"] + "&version=1.0")


async def test_biz_content_errors_and_unknown_paths(sim, session) -> None:  # type: ignore[no-untyped-def]
    m = sim.merchants[0]
    params = _common(m, "alipay.trade.pay", {})
    params["biz_content"] = "not json"
    params["sign"] = crypto.sign_params(params, m.app_key)
    ans = await _gateway(session, sim, query=params)
    assert ans["alipay_trade_pay_response"]["sub_code"] == "ACQ.INVALID_PARAMETER"
    for biz, hint in [({"out_trade_no": "P1", "scene": "face", "auth_code": "2865432109876543",
                        "subject": "x", "total_amount": "1"}, "scene"),
                      ({"out_trade_no": "P1", "scene": "bar_code", "auth_code": "2865432109876543",
                        "subject": "x", "total_amount": "1.001"}, "total_amount"),
                      ({"out_trade_no": "P 1", "scene": "bar_code", "subject": "x", "total_amount": "1"},
                       "out_trade_no")]:
        ans = await _gateway(session, sim, query=_common(m, "alipay.trade.pay", biz))
        assert hint in ans["alipay_trade_pay_response"]["sub_msg"]
    async with session.get(sim.base_url + "/downloadBillFile.resource?fileId=nope") as resp:
        assert resp.status == 404
    async with session.get(sim.base_url + "/elsewhere") as resp:
        assert resp.status == 404


async def test_wap_pay_page_errors(sim, session) -> None:  # type: ignore[no-untyped-def]
    m = sim.merchants[0]
    params = _common(m, "alipay.trade.wap.pay", {"out_trade_no": "W1", "total_amount": "1.00", "subject": "x",
                                                 "product_code": "QUICK_WAP_WAY"})
    params["sign"] = params["sign"][::-1]
    async with session.get(sim.gateway_url + "?" + urlencode(params)) as resp:
        text = await resp.text()
        assert "isv.invalid-signature" in text and resp.content_type == "text/html"


async def test_start_on_explicit_port_and_stop() -> None:
    handle = await start_simulator("127.0.0.1", 0)
    port = int(handle.base_url.rsplit(":", 1)[1])
    await handle.stop()
    async with await start_simulator("127.0.0.1", port, merchants=1) as again:
        assert again.base_url.endswith(f":{port}") and len(again.info.merchants) == 1
    async with aiohttp.ClientSession() as s:
        with pytest.raises(aiohttp.ClientConnectionError):
            await s.get(again.control_url + "/")
    with pytest.raises(ValueError):
        await start_simulator(merchants=0)


def test_plugin_registers_channel_and_simulator() -> None:
    registry = Registry()
    reg = Registrar(registry, "alipay")
    alipay_plugin.yinyi_register_channels(register=reg)
    alipay_plugin.yinyi_register_simulators(register=reg)
    assert registry.channels["alipay"] is AlipayChannel
    assert registry.simulators["alipay"] is start_simulator
    assert registry.detect_channel("286543210987654321") == "alipay"


def test_plugin_coexists_with_wechatpay() -> None:
    from channels.wechatpay import plugin as wechat_plugin

    registry = Registry()
    for name, module in (("wechatpay", wechat_plugin), ("alipay", alipay_plugin)):
        module.yinyi_register_channels(register=Registrar(registry, name))
    assert registry.detect_channel("286543210987654321") == "alipay"
    assert registry.detect_channel("134567890123456789") == "wechatpay"


def test_config_validation(sim) -> None:  # type: ignore[no-untyped-def]
    cfg = sim.merchant_configs()[0]
    bare = AlipayConfig.model_validate({**cfg, "app_private_key": crypto.bare_key(cfg["app_private_key"]),
                                        "alipay_public_key": crypto.bare_key(cfg["alipay_public_key"])})
    pkcs8 = crypto.private_key_pem(sim.merchants[0].app_key)
    assert crypto.load_private_key(bare.app_private_key.get_secret_value()).private_numbers() == \
        crypto.load_private_key(crypto.bare_key(pkcs8)).private_numbers()
    for bad in ({"app_private_key": "not a key"}, {"alipay_public_key": "nope"}, {"app_id": "123"},
                {"seller_id": "1234"}, {"sign_type": "RSA"}, {"gateway_url": "ftp://x"}, {"unknown": 1},
                {"timeout_seconds": 0}):
        with pytest.raises(ValidationError):
            AlipayConfig.model_validate({**cfg, **bad})
    ok = AlipayConfig.model_validate({k: v for k, v in cfg.items() if k not in ("gateway_url", "seller_id")})
    assert ok.gateway_url == "https://openapi.alipay.com/gateway.do" and ok.timeout_seconds == 10
    assert not ok.partner
    token = AlipayConfig.model_validate({**cfg, "app_auth_token": "202405BBabc"})
    assert token.partner and "202405BBabc" not in repr(token)
