"""The simulator's handle, control surface and request checks; plugin wiring; configuration."""
from __future__ import annotations

import aiohttp
import pytest
from pydantic import ValidationError

from channels.unionpay import UnionPayChannel, UnionPayConfig, crypto, wire
from channels.unionpay import plugin as unionpay_plugin
from channels.unionpay.simulator import UnionPaySimHandle, start_simulator
from gateway.channel import Method, PayRequest, SimulatorInfo
from gateway.registry import Registrar, Registry

from .conftest import Control, code, gateway_id


async def test_handle_api(sim: UnionPaySimHandle) -> None:
    assert sim.base_url.startswith("http://127.0.0.1:") and sim.control_url == sim.base_url + "/_sim"
    info = sim.info
    assert isinstance(info, SimulatorInfo) and info.channel == "unionpay" and info.control_url == sim.control_url
    assert len(info.merchants) == 2
    m = info.merchants[0]
    assert len(m["mer_id"]) == 15 and m["cert_id"].isdigit()
    assert m["private_key"].startswith("-----BEGIN PRIVATE KEY-----")
    assert m["unionpay_public_key"].startswith("-----BEGIN PUBLIC KEY-----")
    assert m["unionpay_certificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert UnionPayChannel.matches_auth_code(m["sample_auth_code"])
    configs = sim.merchant_configs()
    assert len({c["mer_id"] for c in configs}) == 2
    for cfg in configs:
        parsed = UnionPayConfig.model_validate(cfg)
        assert parsed.base_url == sim.base_url and parsed.file_transfer_url == sim.base_url + "/"
        assert "SecretStr" in repr(parsed.private_key) and cfg["private_key"] not in repr(parsed)
    # the certificate given to merchants works as the configured key too
    UnionPayConfig.model_validate({**configs[0], "unionpay_public_key": m["unionpay_certificate"]})
    info.model_dump_json()  # serialisable for sandbox.json


async def test_control_index_and_truth(sim: UnionPaySimHandle, control: Control, channel: UnionPayChannel) -> None:
    index = await control("GET", "/")
    assert "…9001" in index["magic_auth_codes"] and "PROCESSING" in index["script_outcomes"]
    assert "bad_signature" in index["fault_kinds"] and index["settle_date"]
    no = gateway_id()
    await channel.pay(PayRequest(out_trade_no=no, amount=1, subject="x", method=Method.CODE,
                                 auth_code=code("9004")))
    assert [o["order_id"] for o in await control("GET", "/orders")] == [no]
    await control("GET", "/orders/NOPE0000", expect=404)
    await control("POST", "/orders/NOPE0000/pay", expect=404)
    await control("POST", f"/orders/{no}/notify", expect=409)  # still processing
    await control("POST", f"/orders/{no}/fail", {"code": "00"}, expect=400)
    await control("POST", f"/orders/{no}/pay")
    await control("POST", f"/orders/{no}/pay", expect=409)  # already paid
    assert (await control("POST", f"/orders/{no}/notify"))["sent"] is True
    await control("GET", "/refunds/NOPE0000", expect=404)
    await control("POST", "/reset")
    assert await control("GET", "/orders") == []


async def test_control_scripts_settings_clock(control: Control) -> None:
    s = await control("POST", "/scripts", {"outcome": "processing", "then": "hang", "times": 2}, expect=201)
    assert s["outcome"] == "PROCESSING" and s["times"] == 2
    await control("POST", "/scripts", {"outcome": "EXPLODE"}, expect=400)
    await control("POST", "/scripts", {"outcome": "DECLINE", "code": "00"}, expect=400)
    assert len(await control("GET", "/scripts")) == 1
    await control("DELETE", "/scripts")
    assert await control("GET", "/scripts") == []
    st = await control("POST", "/settings", {"refund_settle_seconds": 0, "fee_rate_bp": 20,
                                             "notify_retry_delays": [1, 2], "bill_summary": False})
    assert st["fee_rate_bp"] == 20 and st["notify_retry_delays"] == [1.0, 2.0] and st["bill_summary"] is False
    await control("POST", "/settings", {"bill_summary": "no"}, expect=400)
    await control("POST", "/settings", {"next_refund_result": "77"}, expect=400)
    await control("POST", "/settings", {"bill_unavailable": ["1301x"]}, expect=400)
    clock = await control("POST", "/clock", {"now": "2024-01-02T23:04:05+08:00"})
    assert clock["now"].startswith("2024-01-02T23:04") and clock["settle_date"] == "2024-01-03"
    assert (await control("POST", "/clock", {"offset_seconds": 86400}))["offset_seconds"] == 86400
    assert (await control("DELETE", "/clock"))["offset_seconds"] == 0
    await control("POST", "/clock", {}, expect=400)


async def _post(session: aiohttp.ClientSession, url: str, fields: dict[str, str]) -> dict[str, str]:
    async with session.post(url, data=wire.encode_form(fields),
                            headers={"Content-Type": "application/x-www-form-urlencoded"}) as resp:
        assert resp.status == 200
        return wire.decode_answer(await resp.read())


async def test_request_checks_answer_signed_refusals(sim: UnionPaySimHandle, session: aiohttp.ClientSession) -> None:
    m, s = sim.merchants[0], sim.simulator
    url = sim.base_url + wire.QUERY_PATH
    base = {"version": "5.1.0", "encoding": "UTF-8", "signMethod": "01", "accessType": "0", "merId": m.mer_id,
            "certId": m.cert_id, "txnType": "00", "txnSubType": "00", "bizType": "000201",
            "orderId": gateway_id(), "txnTime": "20240501103015"}
    pinned = crypto.load_public_key(s.public_key_pem)

    async def ask(fields: dict[str, str], to: str = url) -> dict[str, str]:
        ans = await _post(session, to, fields)
        crypto.verify_answer(ans, pinned)  # refusals are signed too
        return ans

    assert (await ask(crypto.signed(base, m.key)))["respCode"] == "34"  # well formed: no such order
    assert (await ask(base))["respCode"] == "11"  # unsigned
    assert (await ask(crypto.signed(base, crypto.generate_private_key())))["respCode"] == "11"
    assert (await ask(crypto.signed({**base, "certId": "1"}, m.key)))["respCode"] == "11"
    other = sim.merchants[1]
    assert (await ask(crypto.signed({**base, "merId": other.mer_id}, m.key)))["respCode"] == "11"
    assert (await ask(crypto.signed({**base, "version": "5.0.0"}, m.key)))["respCode"] == "10"
    assert (await ask(crypto.signed({**base, "txnType": "01"}, m.key)))["respCode"] == "10"
    missing = {k: v for k, v in base.items() if k != "txnTime"}
    assert (await ask(crypto.signed(missing, m.key)))["respCode"] == "13"
    async with session.post(url, data=b"a=1&a=2") as resp:
        assert wire.decode_answer(await resp.read())["respCode"] == "10"
    # a consume with an unsupported bizType, and a duplicate order
    back = sim.base_url + wire.BACK_TRANS_PATH
    consume = {**base, "txnType": "01", "txnSubType": "06", "bizType": "000000", "channelType": "08",
               "txnAmt": "100", "currencyCode": "156", "qrNo": code(), "backUrl": "http://127.0.0.1:9/n"}
    assert (await ask(crypto.signed({**consume, "bizType": "000201"}, m.key), back))["respCode"] == "10"
    ok = await ask(crypto.signed(consume, m.key), back)
    assert ok["respCode"] == "00" and ok["respMsg"] == "成功[0000000]" and ok["signPubKeyCert"] == s.cert_pem
    assert (await ask(crypto.signed(consume, m.key), back))["respCode"] == "12"
    assert (await ask(crypto.signed(consume, m.key)))["respCode"] == "10"  # a consume sent to the query URL


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
    reg = Registrar(registry, "unionpay")
    unionpay_plugin.yinyi_register_channels(register=reg)
    unionpay_plugin.yinyi_register_simulators(register=reg)
    assert registry.channels["unionpay"] is UnionPayChannel
    assert registry.simulators["unionpay"] is start_simulator
    assert registry.detect_channel("6212345678901234567") == "unionpay"


def test_config_validation(sim: UnionPaySimHandle) -> None:
    cfg = sim.merchant_configs()[0]
    for bad in ({"mer_id": "123"}, {"cert_id": "abc"}, {"private_key": "not a key"},
                {"unionpay_public_key": "not a key"}, {"base_url": "ftp://x"}, {"back_url": "x"},
                {"timeout_seconds": 0}, {"unknown": 1}):
        with pytest.raises(ValidationError):
            UnionPayConfig.model_validate({**cfg, **bad})
    ok = UnionPayConfig.model_validate({k: v for k, v in cfg.items() if k not in ("base_url", "file_transfer_url")})
    assert ok.base_url == "https://gateway.95516.com" and ok.file_transfer_url == "https://filedownload.95516.com/"
    assert ok.timeout_seconds == 10 and ok.query_after_accept and ok.bill_summary_required
    assert UnionPayConfig.model_validate({**cfg, "base_url": cfg["base_url"] + "/"}).base_url == cfg["base_url"]
