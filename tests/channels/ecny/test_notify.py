"""Callbacks: the bank signs them, the channel verifies them; forgeries are rejected."""
from __future__ import annotations

import json
import time

import pytest

from channels.ecny import EcnyChannel
from gateway.channel import Method, NotifyKind, PayRequest, RefundRequest, RefundStatus, TradeStatus
from gateway.errors import NotifyRejected
from plugins.banks.refbank import crypto
from plugins.banks.refbank.sim_notify import build_notify

from .conftest import ecny_code, eventually


async def test_qr_paid_and_the_notify_verifies(channel: EcnyChannel, control, sink) -> None:  # type: ignore[no-untyped-def]
    res = await channel.pay(PayRequest(out_trade_no="N1", amount=5000, subject="住院预交金", method=Method.QR,
                                       attach="visit=42"))
    assert res.status is TradeStatus.PENDING
    paid = await control("POST", "/orders/N1/pay", {"wallet_seed": "patient-001"})
    assert paid["trade_status"] == "SUCCESS"
    headers, body = await sink.next()
    assert headers["X-Ecny-Key-Id"] == channel.bank.config.bank_key_id  # type: ignore[attr-defined]
    assert headers["X-Ecny-Merchant-Id"] == channel.bank.config.merchant_id  # type: ignore[attr-defined]
    assert headers["X-Ecny-Sign-Type"] == "RSA-SHA256"
    notice = json.loads(body)
    assert notice["notify_type"] == "TRADE.SUCCESS" and notice["data"]["amount"] == "50.00"
    event, answer = await channel.parse_notify(headers, body)
    assert event.kind is NotifyKind.PAYMENT and event.out_trade_no == "N1" and event.event_id == notice["notify_id"]
    assert event.trade is not None and event.trade.status is TradeStatus.SUCCEEDED
    assert event.trade.paid_amount == 5000 and event.trade.payer_id == paid["wallet_id"]
    assert event.trade.raw["attach"] == "visit=42"
    assert answer.status == 200 and json.loads(answer.body) == {"code": "SUCCESS", "message": "成功"}


async def test_confirmed_code_payment_notifies(channel: EcnyChannel, control, sink) -> None:  # type: ignore[no-untyped-def]
    await channel.pay(PayRequest(out_trade_no="N2", amount=300, subject="x", method=Method.CODE,
                                 auth_code=ecny_code("9004")))
    await control("POST", "/orders/N2/pay")
    event, _ = await channel.parse_notify(*await sink.next())
    assert event.out_trade_no == "N2" and event.trade and event.trade.status is TradeStatus.SUCCEEDED


async def test_refund_notifies(channel: EcnyChannel, control, sink) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/settings", {"refund_settle_seconds": 0.1, "next_refund_status": ["SUCCESS", "FAIL"]})
    await channel.pay(PayRequest(out_trade_no="N3", amount=300, subject="x", method=Method.CODE,
                                 auth_code=ecny_code()))
    await sink.next()  # the payment's own callback
    await channel.refund(RefundRequest(out_trade_no="N3", out_refund_no="N3-a", amount=100, total=300))
    event, _ = await channel.parse_notify(*await sink.next())
    assert event.kind is NotifyKind.REFUND and (event.out_refund_no, event.out_trade_no) == ("N3-a", "N3")
    assert event.refund is not None and event.refund.status is RefundStatus.SUCCEEDED and event.refund.refunded_at
    await channel.refund(RefundRequest(out_trade_no="N3", out_refund_no="N3-b", amount=200, total=300))
    event, _ = await channel.parse_notify(*await sink.next())
    assert event.refund is not None and event.refund.status is RefundStatus.FAILED
    assert event.refund.error_code == "WALLET_CLOSED"


async def test_notify_retried_until_acknowledged(channel: EcnyChannel, control, sink) -> None:  # type: ignore[no-untyped-def]
    sink.answers = [500, 404]
    await channel.pay(PayRequest(out_trade_no="N4", amount=1, subject="x", method=Method.QR))
    await control("POST", "/orders/N4/pay")
    await sink.next()
    assert len(sink.received) == 3
    log = await eventually(lambda: _delivered(control))
    assert [a["status"] for a in log[0]["attempts"]] == [500, 404, 200]
    # each attempt is signed afresh, verifies, and carries the same notify id
    ids = set()
    for headers, body in sink.received:
        event, _ = await channel.parse_notify(headers, body)
        ids.add(event.event_id)
    assert len(ids) == 1
    assert len({h["X-Ecny-Nonce"] for h, _ in sink.received}) == 3


async def _delivered(control):  # type: ignore[no-untyped-def]
    return [d for d in await control("GET", "/notifies") if d["delivered"]]


async def test_renotify_from_control(channel: EcnyChannel, control, sink) -> None:  # type: ignore[no-untyped-def]
    await channel.pay(PayRequest(out_trade_no="N5", amount=1, subject="x", method=Method.CODE, auth_code=ecny_code()))
    first, _ = await channel.parse_notify(*await sink.next())
    assert (await control("POST", "/orders/N5/notify"))["sent"]
    second, _ = await channel.parse_notify(*await sink.next())
    assert first.out_trade_no == second.out_trade_no == "N5"


def _forge(sim, channel: EcnyChannel, **kw):  # type: ignore[no-untyped-def]
    data = {"merchant_id": channel.bank.config.merchant_id, "out_trade_no": "F1",  # type: ignore[attr-defined]
            "bank_trade_no": "ECNY1", "trade_status": "SUCCESS", "amount": "999.00",
            "pay_time": "20240501100000"}
    args = {"bank_key": sim.simulator.bank_key, "bank_key_id": sim.simulator.bank_key_id,
            "merchant_id": channel.bank.config.merchant_id, "notify_type": "TRADE.SUCCESS",  # type: ignore[attr-defined]
            "data": data}
    args.update(kw)
    return build_notify(**args)


async def test_genuine_forgery_check_baseline(channel: EcnyChannel, sim) -> None:  # type: ignore[no-untyped-def]
    event, _ = await channel.parse_notify(*_forge(sim, channel))
    assert event.trade is not None and event.trade.paid_amount == 99900


@pytest.mark.parametrize("case", ["other key", "tampered", "stale", "no headers", "other merchant data",
                                  "signed for another merchant", "unknown key id", "not json", "unknown type",
                                  "unreadable trade"])
async def test_forged_notifies_are_rejected(channel: EcnyChannel, make_channel, sim, case: str) -> None:  # type: ignore[no-untyped-def]
    mid = channel.bank.config.merchant_id  # type: ignore[attr-defined]
    if case == "other key":
        headers, body = _forge(sim, channel, bank_key=crypto.generate_private_key())
    elif case == "tampered":
        headers, body = _forge(sim, channel)
        body = body.replace(b"999.00", b"1.00")
    elif case == "stale":
        headers, body = _forge(sim, channel, timestamp=str(int(time.time()) - 600))
    elif case == "no headers":
        _, body = _forge(sim, channel)
        headers = {"Content-Type": "application/json"}
    elif case == "other merchant data":
        other = make_channel(1).bank.config.merchant_id
        headers, body = _forge(sim, channel, data={"merchant_id": other, "out_trade_no": "F1",
                                                   "trade_status": "SUCCESS", "amount": "1.00",
                                                   "pay_time": "20240501100000"})
    elif case == "signed for another merchant":
        # a genuine callback for merchant B replayed to merchant A's endpoint
        other = make_channel(1)
        headers, body = _forge(sim, other)
    elif case == "unknown key id":
        headers, body = _forge(sim, channel, bank_key_id="BK999")
    elif case == "not json":
        body = b"<xml/>"
        headers = crypto.sign_headers(sim.simulator.bank_key, sim.simulator.bank_key_id, "NOTIFY", mid, body)
    elif case == "unknown type":
        headers, body = _forge(sim, channel, notify_type="ACCOUNT.CLOSED")
    else:
        headers, body = _forge(sim, channel, data={"merchant_id": mid, "out_trade_no": "F1",
                                                   "trade_status": "SUCCESS", "amount": 999})
    with pytest.raises(NotifyRejected):
        await channel.parse_notify(headers, body)


def test_notify_failure_answer(channel: EcnyChannel) -> None:
    answer = channel.notify_failure_answer("稍后重试")
    assert answer.status == 500 and json.loads(answer.body) == {"code": "FAIL", "message": "稍后重试"}
