"""Signing rules and wire vocabulary, checked by hand and against the public SDK's own code."""
from __future__ import annotations

import datetime as dt
import json
from urllib.parse import parse_qsl

import pytest
from alipay import AliPay

from channels.alipay import crypto
from channels.alipay.client import AlipayClient
from channels.alipay.config import AlipayConfig
from channels.alipay.wire import CST, Answer, format_time, normalise_sub_code, parse_time, trade_status
from gateway.channel import TradeStatus
from gateway.errors import UpstreamProtocolError

APP_KEY = crypto.generate_private_key()
ALIPAY_KEY = crypto.generate_private_key()


def sdk() -> AliPay:
    return AliPay(appid="2021000000000001", app_notify_url=None,
                  app_private_key_string=crypto.private_key_pem(APP_KEY, pkcs1=True),
                  alipay_public_key_string=crypto.public_key_pem(ALIPAY_KEY), sign_type="RSA2")


def client() -> AlipayClient:
    cfg = AlipayConfig(app_id="2021000000000001", app_private_key=crypto.private_key_pem(APP_KEY),  # type: ignore[arg-type]
                       alipay_public_key=crypto.public_key_pem(ALIPAY_KEY))
    return AlipayClient(cfg, session=None)  # type: ignore[arg-type]


def test_sign_content_rules_by_hand() -> None:
    params = {"method": "alipay.trade.query", "app_id": "2021", "sign": "SIG", "notify_url": "",
              "biz_content": '{"subject":"门诊 a+b&c"}', "sign_type": "RSA2", "charset": "utf-8"}
    assert crypto.sign_content(params) == (
        'app_id=2021&biz_content={"subject":"门诊 a+b&c"}&charset=utf-8&method=alipay.trade.query&sign_type=RSA2')
    assert crypto.notify_sign_content(params) == (
        'app_id=2021&biz_content={"subject":"门诊 a+b&c"}&charset=utf-8&method=alipay.trade.query')
    # ASCII order: upper case before lower case, "_" after letters in upper case
    assert crypto.sign_content({"b": "1", "B": "2", "a_b": "3", "ab": "4"}) == "B=2&a_b=3&ab=4&b=1"


def test_signatures_match_the_sdk() -> None:
    text = 'app_id=2021&biz_content={"a":"\\u95e8"}&sign_type=RSA2'
    # PKCS#1 v1.5 is deterministic: the same key and text give the same signature
    assert crypto.rsa_sign(APP_KEY, text) == sdk()._sign(text)
    assert crypto.rsa_verify(APP_KEY.public_key(), text, sdk()._sign(text))
    assert not crypto.rsa_verify(APP_KEY.public_key(), text + "x", sdk()._sign(text))
    assert not crypto.rsa_verify(APP_KEY.public_key(), text, "not base64!")
    assert crypto.rsa_verify(APP_KEY.public_key(), text, crypto.rsa_sign(APP_KEY, text, "RSA"), "RSA")
    with pytest.raises(ValueError):
        crypto.rsa_sign(APP_KEY, text, "MD5")


def test_sdk_request_verifies_with_our_rules() -> None:
    client_sdk = sdk()
    data = client_sdk.build_body("alipay.trade.pay", {"subject": "门诊缴费", "total_amount": 12.3},
                                 notify_url="http://h/n?a=1&b=2")
    params = dict(parse_qsl(client_sdk.sign_data(data)))
    assert params["biz_content"] == '{"subject":"\\u95e8\\u8bca\\u7f34\\u8d39","total_amount":12.3}'
    assert crypto.rsa_verify(APP_KEY.public_key(), crypto.sign_content(params), params["sign"])
    assert params["sign"] == crypto.sign_params({k: v for k, v in params.items() if k != "sign"}, APP_KEY)


def test_notify_signed_by_us_verifies_in_the_sdk() -> None:
    params = {"notify_type": "trade_status_sync", "out_trade_no": "T1", "subject": "门诊 a+b", "sign_type": "RSA2",
              "fund_bill_list": '[{&quot;amount&quot;:&quot;1.00&quot;}]'}
    params["sign"] = crypto.rsa_sign(ALIPAY_KEY, crypto.notify_sign_content(params))
    data = dict(params)
    sign = data.pop("sign")
    assert sdk().verify(data, sign)
    crypto.verify_notify(params, ALIPAY_KEY.public_key())
    with pytest.raises(crypto.SignatureError):
        crypto.verify_notify({**params, "out_trade_no": "T2"}, ALIPAY_KEY.public_key())
    with pytest.raises(crypto.SignatureError):
        crypto.verify_notify({**params, "sign_type": "RSA"}, ALIPAY_KEY.public_key())
    with pytest.raises(crypto.SignatureError):
        crypto.verify_notify({k: v for k, v in params.items() if k != "sign"}, ALIPAY_KEY.public_key())


def test_signed_answer_verifies_in_the_sdk_and_in_the_client() -> None:
    payload = {"code": "10000", "msg": "Success", "out_trade_no": "T1", "subject": "门诊"}
    text = crypto.signed_answer("alipay_trade_query_response", payload, ALIPAY_KEY)
    assert text.startswith('{"alipay_trade_query_response":{"code":"10000"') and '"sign":"' in text
    assert sdk()._verify_and_return_sync_response(text, "alipay_trade_query_response") == payload
    ans = client().verify_answer("alipay.trade.query", text.encode())
    assert ans.ok and ans.data == payload and ans.raw == json.dumps(payload, ensure_ascii=False,
                                                                     separators=(",", ":"))
    # braces and escapes inside strings, whitespace, members in another order: the raw text is what counts
    raw = '{ "a" : "}{\\"", "b":[1,{"c":"\\u95e8"}] }'
    spaced = f'{{"sign":"{crypto.rsa_sign(ALIPAY_KEY, raw)}",\n "alipay_trade_query_response" : {raw} }}'
    assert client().verify_answer("alipay.trade.query", spaced.encode()).data["b"][1]["c"] == "门"


@pytest.mark.parametrize("body", [
    b"not json",
    b'{"alipay_trade_query_response":{"code":"10000"}}',  # unsigned
    b'{"alipay_trade_query_response":{"code":"10000"},"sign":"AAAA"}',  # wrong sign
    b'{"other_response":{"code":"10000"},"sign":"AAAA"}',  # another method's answer
    b'{"alipay_trade_query_response":"x","sign":"AAAA"}',
    b'\xff\xfe',
])
def test_client_refuses_unverifiable_answers(body: bytes) -> None:
    with pytest.raises(UpstreamProtocolError):
        client().verify_answer("alipay.trade.query", body)


def test_error_response_is_read_when_signed() -> None:
    text = crypto.signed_answer("error_response", {"code": "40002", "msg": "Invalid Arguments",
                                                   "sub_code": "isv.invalid-signature", "sub_msg": "验签出错"},
                                ALIPAY_KEY)
    ans = client().verify_answer("alipay.trade.pay", text.encode())
    assert ans.error_response and not ans.ok and ans.refusal and ans.error_code == "isv.invalid-signature"


def test_top_level_spans() -> None:
    text = ' {"a":{"x":"}"} ,"b" :"s","c":[1,2]}  '
    spans = crypto.top_level_spans(text)
    assert {k: text[s:e] for k, (s, e, _) in spans.items()} == {"a": '{"x":"}"}', "b": '"s"', "c": "[1,2]"}
    assert crypto.top_level_spans("{}") == {}
    for bad in ('{"a":1,"a":2}', '{"a":1} x', "[1]", '{"a" 1}', '{"a":1;"b":2}', "{a:1}"):
        with pytest.raises(ValueError):
            crypto.top_level_spans(bad)


def test_times_and_statuses() -> None:
    assert parse_time("2024-05-01 10:00:01") == dt.datetime(2024, 5, 1, 10, 0, 1, tzinfo=CST)
    assert parse_time("2024-05-01 10:00:01.320") == dt.datetime(2024, 5, 1, 10, 0, 1, 320000, tzinfo=CST)
    assert parse_time(None) is None and parse_time("") is None
    assert format_time(dt.datetime(2024, 5, 1, 2, 0, tzinfo=dt.UTC)) == "2024-05-01 10:00:00"
    assert format_time(dt.datetime(2024, 5, 1, 2, 0)) == "2024-05-01 02:00:00"  # naive = China time
    assert trade_status("WAIT_BUYER_PAY", paid=False) is TradeStatus.PENDING
    assert trade_status("TRADE_SUCCESS", paid=True) is TradeStatus.SUCCEEDED
    assert trade_status("TRADE_FINISHED", paid=True) is TradeStatus.SUCCEEDED
    assert trade_status("TRADE_CLOSED", paid=False) is TradeStatus.CLOSED
    assert trade_status("TRADE_CLOSED", paid=True) is TradeStatus.REVERSED
    assert trade_status("SOMETHING_NEW", paid=False) is TradeStatus.PENDING  # never FAILED
    assert normalise_sub_code("aop.ACQ.SYSTEM_ERROR") == "ACQ.SYSTEM_ERROR"


@pytest.mark.parametrize("data,ok,unknown,refusal", [
    ({"code": "10000"}, True, False, False),
    ({"code": "10003"}, False, False, False),
    ({"code": "20000", "sub_code": "isp.unknow-error"}, False, True, False),
    ({"code": "40004", "sub_code": "ACQ.SYSTEM_ERROR"}, False, True, False),
    ({"code": "40004", "sub_code": "aop.ACQ.SYSTEM_ERROR"}, False, True, False),
    ({"code": "40004", "sub_code": "ACQ.BUYER_BALANCE_NOT_ENOUGH"}, False, False, True),
    ({"code": "40002", "sub_code": "isv.invalid-app-id"}, False, False, True),
    ({"code": "99999"}, False, False, False),
])
def test_answer_classes(data: dict, ok: bool, unknown: bool, refusal: bool) -> None:  # type: ignore[type-arg]
    ans = Answer("alipay.trade.pay", data)
    assert (ans.ok, ans.unknown, ans.refusal) == (ok, unknown, refusal)
