"""Notifies: the simulator sends encrypted, signed callbacks; the adapter verifies them."""
from __future__ import annotations

import json
import time

import pytest

from channels.wechatpay import WeChatPayChannel, crypto
from channels.wechatpay.sim_notify import build_notify
from gateway.channel import Method, NotifyKind, PayRequest, RefundRequest, RefundStatus, TradeStatus
from gateway.errors import NotifyRejected

from .conftest import eventually


async def test_qr_patient_pays_and_notify_is_verified(channel: WeChatPayChannel, control, sink) -> None:  # type: ignore[no-untyped-def]
    res = await channel.pay(PayRequest(out_trade_no="N1", amount=5000, subject="住院预交金", method=Method.QR,
                                       attach="visit=42"))
    assert res.status is TradeStatus.PENDING
    paid = await control("POST", "/orders/N1/pay", {"openid": "oPatient001"})
    assert paid["trade_state"] == "SUCCESS"
    headers, body = await sink.next()
    assert headers["Wechatpay-Serial"] == channel.config.platform_public_key_id
    assert headers["Wechatpay-Signature-Type"] == "WECHATPAY2-SHA256-RSA2048"
    envelope = json.loads(body)
    assert envelope["event_type"] == "TRANSACTION.SUCCESS" and envelope["resource_type"] == "encrypt-resource"
    assert b"out_trade_no" not in body and b"oPatient001" not in body  # the resource is encrypted
    event, answer = await channel.parse_notify(headers, body)
    assert event.kind is NotifyKind.PAYMENT and event.out_trade_no == "N1" and event.event_id == envelope["id"]
    assert event.trade is not None and event.trade.status is TradeStatus.SUCCEEDED
    assert event.trade.paid_amount == 5000 and event.trade.payer_id == "oPatient001"
    assert event.trade.raw["attach"] == "visit=42"
    assert answer.status in (200, 204)


async def test_refund_notify(channel: WeChatPayChannel, sink) -> None:  # type: ignore[no-untyped-def]
    await channel.pay(PayRequest(out_trade_no="N2", amount=300, subject="x", method=Method.CODE,
                                 auth_code="124567890123456789"))
    await channel.refund(RefundRequest(out_trade_no="N2", out_refund_no="N2-r", amount=300, total=300))
    event, _ = await channel.parse_notify(*await sink.next())
    assert event.kind is NotifyKind.REFUND and event.out_refund_no == "N2-r" and event.out_trade_no == "N2"
    assert event.refund is not None and event.refund.status is RefundStatus.SUCCEEDED
    assert event.refund.refunded_at is not None


async def test_notify_retried_until_accepted(channel: WeChatPayChannel, control, sink) -> None:  # type: ignore[no-untyped-def]
    sink.answers = [500, 503]
    await channel.pay(PayRequest(out_trade_no="N3", amount=1, subject="x", method=Method.QR))
    await control("POST", "/orders/N3/pay")
    await sink.next()
    assert len(sink.received) == 3
    log = await eventually(lambda: _delivered(control))
    assert [a["status"] for a in log[0]["attempts"]] == [500, 503, 204]
    # each attempt is signed afresh and each verifies
    for headers, body in sink.received:
        await channel.parse_notify(headers, body)


async def _delivered(control):  # type: ignore[no-untyped-def]
    log = await control("GET", "/notifies")
    return log if log and log[0]["delivered"] else None


def _payment_resource(mchid: str, no: str = "FAKE") -> dict:  # type: ignore[type-arg]
    return {"mchid": mchid, "appid": "wx1", "out_trade_no": no, "transaction_id": "4200001",
            "trade_type": "NATIVE", "trade_state": "SUCCESS", "success_time": "2024-05-01T10:00:00+08:00",
            "payer": {"openid": "o1"}, "amount": {"total": 100, "payer_total": 100, "currency": "CNY"}}


async def test_forged_and_stale_notifies_are_rejected(channel: WeChatPayChannel, sim) -> None:  # type: ignore[no-untyped-def]
    m0, m1 = sim.merchants
    good_headers, good_body = build_notify(m0, "TRANSACTION.SUCCESS", _payment_resource(m0.mchid))
    event, _ = await channel.parse_notify(good_headers, good_body)  # the genuine one passes
    assert event.out_trade_no == "FAKE"

    cases: dict[str, tuple[dict[str, str], bytes]] = {}
    # signed by another key
    h, b = build_notify(m1, "TRANSACTION.SUCCESS", _payment_resource(m0.mchid))
    cases["other platform key"] = ({**h, "Wechatpay-Serial": m0.pub_key_id}, b)
    cases["unknown serial"] = (h, b)
    # too old / too far ahead
    cases["stale"] = build_notify(m0, "TRANSACTION.SUCCESS", _payment_resource(m0.mchid),
                                  timestamp=str(int(time.time()) - 301))
    cases["future"] = build_notify(m0, "TRANSACTION.SUCCESS", _payment_resource(m0.mchid),
                                   timestamp=str(int(time.time()) + 600))
    # tampered body, missing headers
    cases["tampered"] = (good_headers, good_body.replace(b'"TRANSACTION.SUCCESS"', b'"REFUND.SUCCESS"'))
    cases["unsigned"] = ({"Content-Type": "application/json"}, good_body)
    # properly signed but encrypted with another APIv3 key
    sneaky = m0.__class__(**{**m0.__dict__, "apiv3_key": m1.apiv3_key})
    cases["wrong apiv3 key"] = build_notify(sneaky, "TRANSACTION.SUCCESS", _payment_resource(m0.mchid))
    # properly signed and encrypted, but about another merchant
    cases["other merchant"] = build_notify(m0, "TRANSACTION.SUCCESS", _payment_resource(m1.mchid))
    # properly signed, not a notify at all
    junk = b'{"hello":"world"}'
    cases["junk"] = (crypto.signed_headers(m0.platform_key, m0.pub_key_id, junk), junk)
    for name, (headers, body) in cases.items():
        with pytest.raises(NotifyRejected):
            await channel.parse_notify(headers, body)
            pytest.fail(f"accepted: {name}")


async def test_notify_failure_answer_makes_channel_retry(channel: WeChatPayChannel) -> None:
    answer = channel.notify_failure_answer("busy")
    assert answer.status >= 500 and json.loads(answer.body) == {"code": "FAIL", "message": "busy"}
