"""The simulator's handle, control surface and request authentication; plugin wiring."""
from __future__ import annotations

import aiohttp
import pytest
from pydantic import ValidationError

from channels.wechatpay import WeChatPayChannel, WeChatPayConfig, crypto
from channels.wechatpay import plugin as wechat_plugin
from channels.wechatpay.simulator import start_simulator
from gateway.channel import Method, PayRequest, SimulatorInfo, TradeStatus
from gateway.registry import Registrar, Registry


async def test_handle_api(sim) -> None:  # type: ignore[no-untyped-def]
    assert sim.base_url.startswith("http://127.0.0.1:") and sim.control_url == sim.base_url + "/_sim"
    info = sim.info
    assert isinstance(info, SimulatorInfo) and info.channel == "wechatpay" and info.control_url == sim.control_url
    assert len(info.merchants) == 2
    m = info.merchants[0]
    assert m["platform_public_key_id"].startswith("PUB_KEY_ID_")
    assert m["private_key"].startswith("-----BEGIN PRIVATE KEY-----")
    assert m["platform_public_key"].startswith("-----BEGIN PUBLIC KEY-----")
    assert len(m["apiv3_key"]) == 32 and len(m["api_v2_key"]) == 32
    configs = sim.merchant_configs()
    assert len({c["mchid"] for c in configs}) == 2
    for cfg in configs:
        parsed = WeChatPayConfig.model_validate(cfg)
        assert parsed.base_url == sim.base_url
        assert "SecretStr" in repr(parsed.private_key) and cfg["private_key"] not in repr(parsed)
    info.model_dump_json()  # serialisable for sandbox.json


async def test_control_index_and_truth(sim, control, channel) -> None:  # type: ignore[no-untyped-def]
    index = await control("GET", "/")
    assert "…9001" in index["magic_auth_codes"] and "USERPAYING" in index["script_outcomes"]
    await channel.pay(PayRequest(out_trade_no="CT1", amount=1, subject="x", method=Method.QR))
    assert [o["out_trade_no"] for o in await control("GET", "/orders")] == ["CT1"]
    await control("GET", "/orders/NOPE", expect=404)
    await control("POST", "/orders/NOPE/pay", expect=404)
    await control("POST", "/orders/CT1/notify", expect=409)  # not paid yet
    await control("POST", "/orders/CT1/pay")
    assert (await control("POST", "/orders/CT1/notify"))["sent"] is True
    await control("POST", "/orders/CT1/pay", expect=409)  # already paid
    await control("GET", "/refunds/NOPE", expect=404)
    await control("POST", "/reset")
    assert await control("GET", "/orders") == []


async def test_control_scripts_settings_clock(control) -> None:  # type: ignore[no-untyped-def]
    s = await control("POST", "/scripts", {"outcome": "userpaying", "then": "hang", "times": 2}, expect=201)
    assert s["outcome"] == "USERPAYING" and s["times"] == 2
    await control("POST", "/scripts", {"outcome": "EXPLODE"}, expect=400)
    assert len(await control("GET", "/scripts")) == 1
    await control("DELETE", "/scripts")
    assert await control("GET", "/scripts") == []
    st = await control("POST", "/settings", {"refund_settle_seconds": 0, "fee_rate_bp": 20,
                                             "notify_retry_delays": [1, 2]})
    assert st["fee_rate_bp"] == 20 and st["notify_retry_delays"] == [1.0, 2.0]
    await control("POST", "/settings", {"next_refund_status": "LOST"}, expect=400)
    clock = await control("POST", "/clock", {"now": "2024-01-02T03:04:05+08:00"})
    assert clock["now"].startswith("2024-01-02T03:04")
    assert (await control("POST", "/clock", {"offset_seconds": 86400}))["offset_seconds"] == 86400
    assert (await control("DELETE", "/clock"))["offset_seconds"] == 0
    await control("POST", "/clock", {}, expect=400)


async def test_unsigned_and_badly_signed_requests_get_sign_error(sim, session) -> None:  # type: ignore[no-untyped-def]
    url = sim.base_url + "/v3/pay/transactions/out-trade-no/X?mchid=" + sim.merchants[0].mchid
    async with session.get(url) as resp:
        assert resp.status == 401 and (await resp.json())["code"] == "SIGN_ERROR"
        assert resp.headers["Wechatpay-Serial"].startswith("PUB_KEY_ID_")  # errors are signed too
    m = sim.merchants[0]
    path = "/v3/pay/transactions/out-trade-no/X?mchid=" + m.mchid
    # signed for another path (e.g. a proxy rewrote it)
    auth = crypto.build_authorization("GET", path + "&x=1", b"", mchid=m.mchid, serial_no=m.merchant_serial,
                                      key=m.merchant_key)
    async with session.get(sim.base_url + path, headers={"Authorization": auth}) as resp:
        assert resp.status == 401
    # stale timestamp
    auth = crypto.build_authorization("GET", path, b"", mchid=m.mchid, serial_no=m.merchant_serial,
                                      key=m.merchant_key, timestamp="1600000000")
    async with session.get(sim.base_url + path, headers={"Authorization": auth}) as resp:
        assert resp.status == 401 and "时间戳" in (await resp.json())["message"]
    # wrong serial
    auth = crypto.build_authorization("GET", path, b"", mchid=m.mchid, serial_no="00", key=m.merchant_key)
    async with session.get(sim.base_url + path, headers={"Authorization": auth}) as resp:
        assert resp.status == 401 and "序列号" in (await resp.json())["message"]
    # correct: a signed 404
    auth = crypto.build_authorization("GET", path, b"", mchid=m.mchid, serial_no=m.merchant_serial,
                                      key=m.merchant_key)
    async with session.get(sim.base_url + path, headers={"Authorization": auth}) as resp:
        body = await resp.read()
        assert resp.status == 404
        crypto.verify_signed(resp.headers, body, key=m.platform_key.public_key(), serial=m.pub_key_id)


async def test_body_merchant_must_match_signer(make_channel, sim) -> None:  # type: ignore[no-untyped-def]
    # merchant 0's keys, merchant 1's appid: the service refuses the pairing
    channel = make_channel(appid=sim.merchants[1].appid)
    res = await channel.pay(PayRequest(out_trade_no="AM1", amount=1, subject="x", method=Method.QR))
    assert res.status is TradeStatus.FAILED and res.error_code == "APPID_MCHID_NOT_MATCH"


async def test_start_on_explicit_port_and_stop() -> None:
    handle = await start_simulator("127.0.0.1", 0)
    port = int(handle.base_url.rsplit(":", 1)[1])
    await handle.stop()
    again = await start_simulator("127.0.0.1", port, merchants=1)
    try:
        assert again.base_url.endswith(f":{port}") and len(again.info.merchants) == 1
    finally:
        await again.stop()
    async with aiohttp.ClientSession() as s:
        with pytest.raises(aiohttp.ClientConnectionError):
            await s.get(again.control_url + "/")


def test_plugin_registers_channel_and_simulator() -> None:
    registry = Registry()
    reg = Registrar(registry, "wechatpay")
    wechat_plugin.yinyi_register_channels(register=reg)
    wechat_plugin.yinyi_register_simulators(register=reg)
    assert registry.channels["wechatpay"] is WeChatPayChannel
    assert registry.simulators["wechatpay"] is start_simulator
    assert registry.detect_channel("134567890123456789") == "wechatpay"


def test_config_validation(sim) -> None:  # type: ignore[no-untyped-def]
    cfg = sim.merchant_configs()[0]
    with pytest.raises(ValidationError):
        WeChatPayConfig.model_validate({**cfg, "apiv3_key": "short"})
    with pytest.raises(ValidationError):
        WeChatPayConfig.model_validate({**cfg, "private_key": "not a key"})
    with pytest.raises(ValidationError):
        WeChatPayConfig.model_validate({**cfg, "platform_public_key_id": "ABC"})
    with pytest.raises(ValidationError):
        WeChatPayConfig.model_validate({**{k: v for k, v in cfg.items() if k != "api_v2_key"},
                                        "use_v2_micropay": True})
    with pytest.raises(ValidationError):
        WeChatPayConfig.model_validate({**cfg, "unknown": 1})
    ok = WeChatPayConfig.model_validate({**cfg, "base_url": cfg["base_url"] + "/"})
    assert not ok.base_url.endswith("/") and ok.timeout_seconds == 10
