"""The v2 XML payment-code family: adapter micropay and raw orderquery/reverse."""
from __future__ import annotations

import secrets

import aiohttp
import pytest

from channels.wechatpay import WeChatPayChannel, crypto, wire
from gateway.channel import Method, PayRequest, TradeStatus
from gateway.errors import UpstreamProtocolError, UpstreamUnavailable


def code_pay(no: str, auth_code: str = "134567890123456789", amount: int = 660) -> PayRequest:
    return PayRequest(out_trade_no=no, amount=amount, subject="门诊-西药费", method=Method.CODE,
                      auth_code=auth_code, client_ip="10.1.2.3", device_id="WIN-03")


@pytest.fixture(params=["MD5", "HMAC-SHA256"])
def v2channel(make_channel, request) -> WeChatPayChannel:  # type: ignore[no-untyped-def]
    return make_channel(use_v2_micropay=True, v2_sign_type=request.param)


async def test_v2_micropay_success(v2channel: WeChatPayChannel, control) -> None:  # type: ignore[no-untyped-def]
    res = await v2channel.pay(code_pay("V1"))
    assert res.status is TradeStatus.SUCCEEDED and res.paid_amount == 660 and res.channel_trade_no
    assert res.paid_at is not None and res.payer_id
    truth = await control("GET", "/orders/V1")
    assert truth["api"] == "v2" and truth["trade_state"] == "SUCCESS"
    assert (await v2channel.query("V1")).channel_trade_no == res.channel_trade_no  # same order for v3


async def test_v2_micropay_userpaying_and_declines(v2channel: WeChatPayChannel) -> None:
    paying = await v2channel.pay(code_pay("V2", "134567890123459001"))
    assert paying.status is TradeStatus.PAYING and paying.error_message == "需要用户输入支付密码"
    declined = await v2channel.pay(code_pay("V3", "134567890123459011"))
    assert declined.status is TradeStatus.FAILED and declined.error_code == "NOTENOUGH"
    invalid = await v2channel.pay(code_pay("V4", "1234"))
    assert invalid.error_code == "AUTH_CODE_INVALID" and "18位数字" in (invalid.error_message or "")
    with pytest.raises(UpstreamUnavailable):
        await v2channel.pay(code_pay("V5", "134567890123459021"))
    assert (await v2channel.pay(code_pay("V5"))).status is TradeStatus.SUCCEEDED  # ORDERPAID → query


async def test_v2_wrong_key_is_protocol_error(make_channel) -> None:  # type: ignore[no-untyped-def]
    channel = make_channel(use_v2_micropay=True, api_v2_key="k" * 32)
    with pytest.raises(UpstreamProtocolError):  # return_code=FAIL 签名错误: unsigned, so not a decline
        await channel.pay(code_pay("V6"))


async def test_v2_5xx_is_unavailable(v2channel: WeChatPayChannel, control) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/faults", {"kind": "http_error", "path": "/pay/micropay", "count": 1})
    with pytest.raises(UpstreamUnavailable):
        await v2channel.pay(code_pay("V7"))


async def _v2(session: aiohttp.ClientSession, sim, path: str, params: dict[str, str],  # type: ignore[no-untyped-def]
              sign_type: str = "MD5") -> dict[str, str]:
    m = sim.merchants[0]
    full = {"appid": m.appid, "mch_id": m.mchid, "nonce_str": secrets.token_hex(8), **params}
    if sign_type != "MD5":
        full["sign_type"] = sign_type
    full["sign"] = crypto.v2_sign(full, m.api_v2_key, sign_type)
    async with session.post(sim.base_url + path, data=wire.to_xml(full)) as resp:
        answer = wire.from_xml(await resp.read())
    if answer["return_code"] == "SUCCESS":
        assert crypto.v2_verify(answer, m.api_v2_key, sign_type), "answer not signed"
    return answer


async def test_raw_v2_orderquery_and_reverse(session, sim) -> None:  # type: ignore[no-untyped-def]
    pay = await _v2(session, sim, "/pay/micropay", {"body": "药费", "out_trade_no": "X1", "total_fee": "1",
                                                    "spbill_create_ip": "10.0.0.1",
                                                    "auth_code": "134567890123450000"})
    assert pay["result_code"] == "SUCCESS" and pay["total_fee"] == "1" and len(pay["time_end"]) == 14
    q = await _v2(session, sim, "/pay/orderquery", {"out_trade_no": "X1"}, "HMAC-SHA256")
    assert q["trade_state"] == "SUCCESS" and q["transaction_id"] == pay["transaction_id"]
    missing = await _v2(session, sim, "/pay/orderquery", {"out_trade_no": "NOPE"})
    assert (missing["result_code"], missing["err_code"]) == ("FAIL", "ORDERNOTEXIST")

    paying = await _v2(session, sim, "/pay/micropay", {"body": "药费", "out_trade_no": "X2", "total_fee": "1",
                                                       "spbill_create_ip": "10.0.0.1",
                                                       "auth_code": "134567890123459004"})
    assert (paying["result_code"], paying["err_code"]) == ("FAIL", "USERPAYING")
    busy = await _v2(session, sim, "/secapi/pay/reverse", {"out_trade_no": "X2"})
    assert (busy["err_code"], busy["recall"]) == ("USERPAYING", "Y")
    sim.simulator.fail(sim.simulator.lookup("X2"))
    done = await _v2(session, sim, "/secapi/pay/reverse", {"out_trade_no": "X2"})
    assert (done["result_code"], done["recall"]) == ("SUCCESS", "N")
    q2 = await _v2(session, sim, "/pay/orderquery", {"out_trade_no": "X2"})
    assert q2["trade_state"] == "REVOKED"


async def test_raw_v2_bad_sign(session, sim) -> None:  # type: ignore[no-untyped-def]
    m = sim.merchants[0]
    params = {"appid": m.appid, "mch_id": m.mchid, "nonce_str": "n", "out_trade_no": "X", "sign": "BAD"}
    async with session.post(sim.base_url + "/pay/orderquery", data=wire.to_xml(params)) as resp:
        answer = wire.from_xml(await resp.read())
    assert answer == {"return_code": "FAIL", "return_msg": "签名错误"}
