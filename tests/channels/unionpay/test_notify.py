"""Back-end notifies: the simulator POSTs signed forms to backUrl; the adapter verifies them."""
from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import pytest

from channels.unionpay import UnionPayChannel, crypto, wire
from channels.unionpay.simulator import UnionPaySimHandle
from gateway.channel import Method, NotifyKind, PayRequest, RefundRequest, RefundStatus, TradeStatus
from gateway.errors import NotifyRejected

from .conftest import Control, NotifySink, code, eventually, gateway_id


def code_pay(no: str, auth_code: str | None = None) -> PayRequest:
    return PayRequest(out_trade_no=no, amount=5000, subject="住院预交金", method=Method.CODE,
                      auth_code=auth_code or code(), attach="visit42")


async def test_consume_notify_is_verified(channel: UnionPayChannel, sink: NotifySink) -> None:
    no = gateway_id()
    paid = await channel.pay(code_pay(no))
    headers, body = await sink.next()
    assert headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    fields = dict(parse_qsl(body.decode()))
    assert fields["txnType"] == "01" and fields["respCode"] == "00" and fields["orderId"] == no
    assert fields["signPubKeyCert"].startswith("-----BEGIN CERTIFICATE-----") and fields["signature"]
    assert fields["reqReserved"] == "visit42"
    event, answer = await channel.parse_notify(headers, body)
    assert event.kind is NotifyKind.PAYMENT and event.out_trade_no == no
    assert event.event_id == f"{paid.channel_trade_no}:00"
    assert event.trade is not None and event.trade.status is TradeStatus.SUCCEEDED
    assert event.trade.paid_amount == 5000 and event.trade.channel_trade_no == paid.channel_trade_no
    assert answer.status == 200


async def test_failed_consume_is_notified(channel: UnionPayChannel, sink: NotifySink) -> None:
    no = gateway_id()
    await channel.pay(code_pay(no, code("9011")))
    event, _ = await channel.parse_notify(*await sink.next())
    assert event.trade is not None and event.trade.status is TradeStatus.FAILED and event.trade.error_code == "64"


async def test_refund_and_undo_notifies(channel: UnionPayChannel, control: Control, sink: NotifySink) -> None:
    await control("POST", "/settings", {"refund_settle_seconds": 0})
    no, rno = gateway_id(), gateway_id("R")
    await channel.pay(code_pay(no))
    await sink.next()
    await channel.refund(RefundRequest(out_trade_no=no, out_refund_no=rno, amount=300, total=5000))
    event, _ = await channel.parse_notify(*await sink.next())
    assert event.kind is NotifyKind.REFUND and event.out_refund_no == rno and event.out_trade_no == no
    assert event.refund is not None and event.refund.status is RefundStatus.SUCCEEDED
    assert event.refund.refunded_at is not None
    other = gateway_id()
    await channel.pay(code_pay(other))
    await sink.next()
    assert (await channel.reverse(other)).done
    event, _ = await channel.parse_notify(*await sink.next())
    assert event.kind is NotifyKind.PAYMENT and event.out_trade_no == other
    assert event.trade is not None and event.trade.status is TradeStatus.REVERSED


async def test_notify_retried_until_200(channel: UnionPayChannel, control: Control, sink: NotifySink) -> None:
    sink.answers = [500, 404]
    await channel.pay(code_pay(gateway_id()))
    await sink.next()
    assert len(sink.received) == 3
    log = await eventually(lambda: _delivered(control))
    assert [a["status"] for a in log[0]["attempts"]] == [500, 404, 200]
    for headers, body in sink.received:  # every attempt verifies
        await channel.parse_notify(headers, body)


async def _delivered(control: Control) -> Any:
    log = await control("GET", "/notifies")
    return log if log and log[0]["delivered"] else None


async def test_renotify_from_control(channel: UnionPayChannel, control: Control, sink: NotifySink) -> None:
    no = gateway_id()
    await channel.pay(code_pay(no))
    first = await sink.next()
    assert (await control("POST", f"/orders/{no}/notify"))["sent"] is True
    again = await sink.next()
    assert (await channel.parse_notify(*first))[0].event_id == (await channel.parse_notify(*again))[0].event_id


def _notify_fields(mer_id: str, no: str = "P20240501023015a1b2c3d4e5", txn_type: str = "01"
                   ) -> dict[str, str]:
    return {"version": "5.1.0", "encoding": "UTF-8", "signMethod": "01", "accessType": "0", "merId": mer_id,
            "orderId": no, "txnTime": "20240501103015", "txnType": txn_type, "txnSubType": "06",
            "bizType": "000000", "txnAmt": "100", "currencyCode": "156", "queryId": "050110301512345678901",
            "traceNo": "123456", "traceTime": "0501103020", "respCode": "00", "respMsg": "成功[0000000]"}


async def test_forged_notifies_are_rejected(channel: UnionPayChannel, sim: UnionPaySimHandle) -> None:
    s, mer_id = sim.simulator, channel.config.mer_id
    good = wire.encode_form(s.sign(_notify_fields(mer_id)))
    event, _ = await channel.parse_notify({}, good)  # the genuine one passes
    assert event.out_trade_no == "P20240501023015a1b2c3d4e5"
    assert (await channel.parse_notify({}, wire.encode_answer(s.sign(_notify_fields(mer_id)))))[0]  # raw form too

    thief = crypto.generate_private_key()
    thief_cert = crypto.certificate_pem(crypto.build_certificate(thief, "中国银联股份有限公司", 99))
    cases: dict[str, bytes] = {
        # signed by another key, shipping its own certificate
        "other key": wire.encode_form(crypto.signed({**_notify_fields(mer_id), "signPubKeyCert": thief_cert},
                                                    thief)),
        # signed by another key, claiming UnionPay's certificate
        "other key, real cert": wire.encode_form(crypto.signed(
            {**_notify_fields(mer_id), "signPubKeyCert": s.cert_pem}, thief)),
        "tampered": good.replace(b"txnAmt=100", b"txnAmt=1"),
        "unsigned": wire.encode_form({k: v for k, v in s.sign(_notify_fields(mer_id)).items() if k != "signature"}),
        "other merchant": wire.encode_form(s.sign(_notify_fields(sim.merchants[1].mer_id))),
        "unsupported txnType": wire.encode_form(s.sign(_notify_fields(mer_id, txn_type="76"))),
        "no orderId": wire.encode_form(s.sign({k: v for k, v in _notify_fields(mer_id).items() if k != "orderId"})),
        "junk": b"hello world",
        "empty": b"",
    }
    for name, body in cases.items():
        with pytest.raises(NotifyRejected):
            await channel.parse_notify({}, body)
            pytest.fail(f"accepted: {name}")


def test_notify_failure_answer_makes_unionpay_retry(channel: UnionPayChannel) -> None:
    answer = channel.notify_failure_answer("busy")
    assert answer.status != 200 and answer.body == b"busy"
