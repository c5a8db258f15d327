"""Wire-level unit tests: signatures, AES-GCM, v2 signing, XML, status mapping."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from wechatpayv3 import utils as sdk

from channels.wechatpay import crypto, wire
from gateway.channel import RefundStatus, TradeStatus

KEY = crypto.generate_private_key()
OTHER = crypto.generate_private_key()


def test_request_signature_round_trip() -> None:
    body = '{"mchid":"1900000109","description":"挂号费"}'
    header = crypto.build_authorization("POST", "/v3/pay/transactions/native", body, mchid="1900000109",
                                        serial_no="ABC123", key=KEY, timestamp="1700000000", nonce="N0NCE")
    auth = crypto.parse_authorization(header)
    assert (auth.mchid, auth.serial_no, auth.timestamp, auth.nonce_str) == ("1900000109", "ABC123", "1700000000",
                                                                            "N0NCE")
    msg = b"POST\n/v3/pay/transactions/native\n1700000000\nN0NCE\n" + body.encode() + b"\n"
    assert crypto.request_message("POST", "/v3/pay/transactions/native", "1700000000", "N0NCE", body) == msg
    assert crypto.rsa_verify(KEY.public_key(), msg, auth.signature)
    assert not crypto.rsa_verify(OTHER.public_key(), msg, auth.signature)
    assert not crypto.rsa_verify(KEY.public_key(), msg.replace(b"1900000109", b"1900000110"), auth.signature)


def test_get_message_has_empty_body_line() -> None:
    assert crypto.request_message("GET", "/v3/x?mchid=1", "1", "n", b"") == b"GET\n/v3/x?mchid=1\n1\nn\n\n"


def test_authorization_fields_in_any_order_and_sdk_form() -> None:
    sdk_header = sdk.build_authorization("/v3/pay/transactions/id/1?mchid=2", "GET", "2", "SERIAL", KEY)
    auth = crypto.parse_authorization(sdk_header)
    msg = crypto.request_message("GET", "/v3/pay/transactions/id/1?mchid=2", auth.timestamp, auth.nonce_str, b"")
    assert auth.mchid == "2" and auth.serial_no == "SERIAL"
    assert crypto.rsa_verify(KEY.public_key(), msg, auth.signature)


@pytest.mark.parametrize("bad", ["", "Bearer x", 'WECHATPAY2-SHA256-RSA2048 mchid="1"',
                                 "WECHATPAY2-SHA256-RSA2048 mchid=1,nonce_str=2"])
def test_bad_authorization_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        crypto.parse_authorization(bad)


def test_response_signature_verifies_with_sdk_and_ours() -> None:
    body = '{"code_url":"weixin://wxpay/bizpayurl?pr=abc"}'
    headers = crypto.signed_headers(KEY, "PUB_KEY_ID_0112", body)
    assert headers["Wechatpay-Signature-Type"] == "WECHATPAY2-SHA256-RSA2048"
    crypto.verify_signed(headers, body.encode(), key=KEY.public_key(), serial="PUB_KEY_ID_0112")
    # the SDK's own verifier agrees
    assert sdk.rsa_verify(headers["Wechatpay-Timestamp"], headers["Wechatpay-Nonce"], body,
                          headers["Wechatpay-Signature"], KEY.public_key())
    # lower-case header names (e.g. a framework's mapping) are fine
    crypto.verify_signed({k.lower(): v for k, v in headers.items()}, body, key=KEY.public_key(),
                         serial="PUB_KEY_ID_0112")


def test_response_signature_failures() -> None:
    body = b'{"a":1}'
    good = crypto.signed_headers(KEY, "PUB_KEY_ID_1", body)
    cases = {
        "tampered body": (good, b'{"a":2}', "PUB_KEY_ID_1"),
        "other key": (crypto.signed_headers(OTHER, "PUB_KEY_ID_1", body), body, "PUB_KEY_ID_1"),
        "unknown serial": (good, body, "PUB_KEY_ID_2"),
        "missing": ({k: v for k, v in good.items() if k != "Wechatpay-Signature"}, body, "PUB_KEY_ID_1"),
        "stale": (crypto.signed_headers(KEY, "PUB_KEY_ID_1", body, timestamp=str(int(time.time()) - 301)),
                  body, "PUB_KEY_ID_1"),
        "future": (crypto.signed_headers(KEY, "PUB_KEY_ID_1", body, timestamp=str(int(time.time()) + 400)),
                   body, "PUB_KEY_ID_1"),
        "garbage sig": ({**good, "Wechatpay-Signature": "%%%"}, body, "PUB_KEY_ID_1"),
    }
    for name, (headers, payload, serial) in cases.items():
        with pytest.raises(crypto.SignatureError):
            crypto.verify_signed(headers, payload, key=KEY.public_key(), serial=serial)
            pytest.fail(name)


def test_204_signature_over_empty_body() -> None:
    headers = crypto.signed_headers(KEY, "PUB_KEY_ID_1", b"")
    assert crypto.response_message(headers["Wechatpay-Timestamp"], headers["Wechatpay-Nonce"], b"").endswith(b"\n\n")
    crypto.verify_signed(headers, b"", key=KEY.public_key(), serial="PUB_KEY_ID_1")


def test_aes_gcm_round_trip_and_sdk_compat() -> None:
    key = "0123456789abcdefghijABCDEFGHIJ01"
    plain = json.dumps({"out_trade_no": "T1", "trade_state": "SUCCESS", "note": "支付成功"}, ensure_ascii=False)
    ct = crypto.aes_gcm_encrypt(key, plain, "a1b2c3d4e5f6", "transaction")
    assert len(base64.b64decode(ct)) == len(plain.encode()) + 16  # ciphertext || 16-byte tag
    assert crypto.aes_gcm_decrypt(key, "a1b2c3d4e5f6", ct, "transaction").decode() == plain
    assert sdk.aes_decrypt("a1b2c3d4e5f6", ct, "transaction", key) == plain
    with pytest.raises(ValueError):
        crypto.aes_gcm_decrypt(key, "a1b2c3d4e5f6", ct, "refund")  # wrong AAD
    with pytest.raises(ValueError):
        crypto.aes_gcm_decrypt("X" * 32, "a1b2c3d4e5f6", ct, "transaction")  # wrong key


def test_v2_sign_known_vector() -> None:
    # the worked example of the v2 signing rules, computed step by step
    params = {"appid": "wxd930ea5d5a258f4f", "mch_id": "10000100", "device_info": "1000", "body": "test",
              "nonce_str": "ibuaiVcKdpRxkhJA", "sign": "ignored", "empty": ""}
    key = "192006250b4c09247ec02edce69f6a2d"
    expected_string = ("appid=wxd930ea5d5a258f4f&body=test&device_info=1000&mch_id=10000100"
                       "&nonce_str=ibuaiVcKdpRxkhJA&key=192006250b4c09247ec02edce69f6a2d")
    assert crypto.v2_sign_string(params, key) == expected_string
    assert crypto.v2_sign(params, key, "MD5") == "9A0A8659F005D6984697E2CA0A9CF3B7"
    assert crypto.v2_sign(params, key, "MD5") == hashlib.md5(expected_string.encode()).hexdigest().upper()
    assert crypto.v2_sign(params, key, "HMAC-SHA256") == (
        "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6")
    assert crypto.v2_sign(params, key, "HMAC-SHA256") == hmac.new(
        key.encode(), expected_string.encode(), hashlib.sha256).hexdigest().upper()
    signed = {**params, "sign": crypto.v2_sign(params, key)}
    assert crypto.v2_verify(signed, key)
    assert not crypto.v2_verify({**signed, "body": "tampered"}, key)
    with pytest.raises(ValueError):
        crypto.v2_sign(params, key, "SHA1")


def test_xml_round_trip_and_safety() -> None:
    params = {"return_code": "SUCCESS", "body": "门诊缴费 <&> ]]> end", "total_fee": 1, "skip": ""}
    data = wire.to_xml(params)
    assert wire.from_xml(data) == {"return_code": "SUCCESS", "body": "门诊缴费 <&> ]]> end", "total_fee": "1"}
    with pytest.raises(ValueError):
        wire.from_xml(b'<!DOCTYPE x [<!ENTITY a "b">]><xml><a>&a;</a></xml>')
    with pytest.raises(ValueError):
        wire.from_xml(b"<xml><a>")
    with pytest.raises(ValueError):
        wire.to_xml({"bad key": "x"})


@pytest.mark.parametrize("state,status", [
    ("SUCCESS", TradeStatus.SUCCEEDED), ("REFUND", TradeStatus.REFUNDED), ("NOTPAY", TradeStatus.PENDING),
    ("CLOSED", TradeStatus.CLOSED), ("REVOKED", TradeStatus.REVERSED), ("USERPAYING", TradeStatus.PAYING),
    ("PAYERROR", TradeStatus.FAILED), ("ACCEPT", TradeStatus.PENDING), ("", TradeStatus.PENDING),
    (None, TradeStatus.PENDING),
])
def test_trade_state_mapping(state: str | None, status: TradeStatus) -> None:
    assert wire.trade_status(state) is status


def test_refund_state_mapping() -> None:
    assert wire.refund_status("SUCCESS") is RefundStatus.SUCCEEDED
    assert wire.refund_status("CLOSED") is RefundStatus.FAILED
    assert wire.refund_status("ABNORMAL") is RefundStatus.PROCESSING
    assert wire.refund_status("WHATEVER") is RefundStatus.PROCESSING


def test_time_format() -> None:
    import datetime as dt

    t = dt.datetime(2024, 5, 1, 2, 0, tzinfo=dt.UTC)
    assert wire.format_time(t) == "2024-05-01T10:00:00+08:00"
    assert wire.parse_time("2024-05-01T10:00:00+08:00") == t
    assert wire.parse_v2_time("20240501100000") == t


def test_wire_models_dump_compact_utf8() -> None:
    body = wire.OrderRequest(appid="wx1", mchid="1", description="挂号", out_trade_no="T1",
                             amount=wire.Amount(total=1)).dump()
    assert body == '{"appid":"wx1","mchid":"1","description":"挂号","out_trade_no":"T1","amount":{"total":1,"currency":"CNY"}}'.encode()


def test_pem_helpers_accept_bare_base64() -> None:
    pem = crypto.public_key_pem(KEY)
    bare = "".join(pem.strip().splitlines()[1:-1])
    assert crypto.load_public_key(bare).public_numbers() == KEY.public_key().public_numbers()
    priv = crypto.private_key_pem(KEY)
    assert crypto.load_private_key(priv).private_numbers() == KEY.private_numbers()
    assert crypto.new_pub_key_id().startswith("PUB_KEY_ID_")
    assert len(crypto.new_apiv3_key()) == 32
    assert len(crypto.new_serial_no()) == 40
    sk = wire.SandboxKey.generate()
    signed = crypto.rsa_sign(crypto.load_private_key(sk.private_pem), "m")
    assert crypto.rsa_verify(crypto.load_public_key(sk.public_pem), "m", signed)
    assert sk.pub_key_id.startswith("PUB_KEY_ID_") and len(sk.serial_no) == 40
