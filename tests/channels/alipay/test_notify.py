"""Notifies: the simulator POSTs signed trade_status_sync forms; the adapter verifies them."""
from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

import pytest

from channels.alipay import AlipayChannel, crypto
from channels.alipay.sim_notify import build_notify, notify_params, sign_notify
from gateway.channel import Method, NotifyKind, PayRequest, RefundRequest, RefundStatus, TradeStatus
from gateway.errors import NotifyRejected

from .conftest import CODE, eventually


def form(body: bytes) -> dict[str, str]:
    return dict(parse_qsl(body.decode(), keep_blank_values=True))


async def test_qr_patient_pays_and_notify_is_verified(channel: AlipayChannel, control, sink) -> None:  # type: ignore[no-untyped-def]
    await channel.pay(PayRequest(out_trade_no="N1", amount=5000, subject="住院预交金", method=Method.QR,
                                 attach="visit=42"))
    paid = await control("POST", "/orders/N1/pay", {"buyer_id": "2088102146225135"})
    assert paid["trade_status"] == "TRADE_SUCCESS"
    headers, body = await sink.next()
    assert headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    params = form(body)
    assert params["notify_type"] == "trade_status_sync" and params["sign_type"] == "RSA2"
    assert params["app_id"] == channel.config.app_id and params["seller_id"] == channel.config.seller_id
    assert params["fund_bill_list"].startswith("[{&quot;amount&quot;")  # the service's own escaping
    assert "" not in params.values()  # empty values are never sent
    event, answer = await channel.parse_notify(headers, body)
    assert event.kind is NotifyKind.PAYMENT and event.out_trade_no == "N1"
    assert event.event_id == params["notify_id"]
    assert event.trade is not None and event.trade.status is TradeStatus.SUCCEEDED
    assert event.trade.paid_amount == 5000 and event.trade.payer_id == "2088102146225135"
    assert event.trade.paid_at is not None and event.trade.raw["body"] == "visit=42"
    assert (answer.status, answer.body, answer.content_type) == (200, b"success", "text/plain")


async def test_close_notify(channel: AlipayChannel, control, sink) -> None:  # type: ignore[no-untyped-def]
    await channel.pay(PayRequest(out_trade_no="N2", amount=100, subject="x", method=Method.JSAPI,
                                 openid="2088102146225135"))
    await channel.close("N2")
    event, _ = await channel.parse_notify(*await sink.next())
    assert event.kind is NotifyKind.PAYMENT and event.trade is not None
    assert event.trade.status is TradeStatus.CLOSED and event.trade.paid_at is None


async def test_refund_notifies(channel: AlipayChannel, control, sink) -> None:  # type: ignore[no-untyped-def]
    await channel.pay(PayRequest(out_trade_no="N3", amount=300, subject="x", method=Method.QR))
    await control("POST", "/orders/N3/pay")
    await sink.next()  # the payment
    await channel.refund(RefundRequest(out_trade_no="N3", out_refund_no="N3-a", amount=100, total=300))
    headers, body = await sink.next()
    assert form(body)["trade_status"] == "TRADE_SUCCESS" and form(body)["refund_fee"] == "1.00"
    event, _ = await channel.parse_notify(headers, body)
    assert event.kind is NotifyKind.REFUND and (event.out_trade_no, event.out_refund_no) == ("N3", "N3-a")
    assert event.refund is not None and event.refund.status is RefundStatus.SUCCEEDED
    assert event.refund.refunded_at is not None  # gmt_refund carries milliseconds
    await channel.refund(RefundRequest(out_trade_no="N3", out_refund_no="N3-b", amount=200, total=300))
    headers, body = await sink.next()
    assert form(body)["trade_status"] == "TRADE_CLOSED" and form(body)["refund_fee"] == "3.00"
    event, _ = await channel.parse_notify(headers, body)
    assert event.kind is NotifyKind.REFUND and event.out_refund_no == "N3-b"


async def test_cancel_of_paid_order_notifies_reversal(sim, channel: AlipayChannel, sink) -> None:  # type: ignore[no-untyped-def]
    await channel.pay(PayRequest(out_trade_no="N4", amount=300, subject="x", method=Method.CODE, auth_code=CODE))
    order = sim.simulator.lookup("N4")
    order.notify_url = sink.url  # as if the cashier had given one
    assert (await channel.reverse("N4")).done
    event, _ = await channel.parse_notify(*await sink.next())
    assert event.kind is NotifyKind.PAYMENT and event.trade is not None
    assert event.trade.status is TradeStatus.REVERSED and event.trade.paid_amount == 300


async def test_notify_retried_until_success(channel: AlipayChannel, control, sink) -> None:  # type: ignore[no-untyped-def]
    sink.answers = [(500, "oops"), (200, "fail"), (200, "SUCCESS!")]
    await channel.pay(PayRequest(out_trade_no="N5", amount=1, subject="x", method=Method.QR))
    await control("POST", "/orders/N5/pay")
    await sink.next()
    assert len(sink.received) == 4

    async def delivered():  # type: ignore[no-untyped-def]
        log = await control("GET", "/notifies")
        return log if log and log[0]["delivered"] else None

    log = await eventually(delivered)
    assert [a["status"] for a in log[0]["attempts"]] == [500, 200, 200, 200]
    assert [a["answer"] for a in log[0]["attempts"]][-1] == "success"
    ids = {form(body)["notify_id"] for _, body in sink.received}
    assert len(ids) == 1  # the same notification each time
    for headers, body in sink.received:  # each attempt is signed and verifies
        await channel.parse_notify(headers, body)


def _params(sim, no: str = "FAKE", **over: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    m = sim.merchants[0]
    base = {"notify_time": "2024-05-01 10:00:01", "notify_type": "trade_status_sync", "notify_id": "n1",
            "charset": "utf-8", "version": "1.0", "app_id": m.app_id, "auth_app_id": m.app_id,
            "trade_no": "2024050122001400000000000001", "out_trade_no": no, "buyer_id": "2088102146225135",
            "seller_id": m.pid, "trade_status": "TRADE_SUCCESS", "total_amount": "1.00",
            "receipt_amount": "1.00", "gmt_create": "2024-05-01 10:00:00", "gmt_payment": "2024-05-01 10:00:01"}
    return base | over


async def test_forged_notifies_are_rejected(channel: AlipayChannel, sim) -> None:  # type: ignore[no-untyped-def]
    m0, m1 = sim.merchants
    headers, good = build_notify(m0, _params(sim))
    event, _ = await channel.parse_notify(headers, good)  # the genuine one passes
    assert event.out_trade_no == "FAKE" and event.trade.status is TradeStatus.SUCCEEDED  # type: ignore[union-attr]

    cases: dict[str, bytes] = {}
    cases["other Alipay key"] = build_notify(m1, _params(sim))[1]
    cases["tampered"] = good.replace(b"total_amount=1.00", b"total_amount=9.00")
    cases["sign removed"] = urlencode({k: v for k, v in form(good).items() if k != "sign"}).encode()
    cases["sign_type RSA"] = urlencode({**form(good), "sign_type": "RSA"}).encode()
    cases["another application"] = build_notify(m0, _params(sim, app_id=m1.app_id))[1]
    cases["another seller"] = build_notify(m0, _params(sim, seller_id=m1.pid))[1]
    cases["another notify_type"] = build_notify(m0, _params(sim, notify_type="trade_refund_sync"))[1]
    cases["no out_trade_no"] = urlencode(sign_notify(m0, {k: v for k, v in _params(sim).items()
                                                          if k != "out_trade_no"})).encode()
    cases["bad time"] = build_notify(m0, _params(sim, gmt_payment="yesterday"))[1]
    cases["repeated parameter"] = good + b"&out_trade_no=OTHER"
    cases["not a form"] = b'{"out_trade_no":"FAKE"}'
    cases["not utf-8"] = "out_trade_no=门诊".encode("gbk")
    cases["empty"] = b""
    for name, body in cases.items():
        with pytest.raises(NotifyRejected):
            await channel.parse_notify(headers, body)
            pytest.fail(f"accepted: {name}")


async def test_notify_signature_rules(channel: AlipayChannel, sim) -> None:  # type: ignore[no-untyped-def]
    m0 = sim.merchants[0]
    params = _params(sim, subject="门诊缴费 a+b&c=d")
    signed = sign_notify(m0, params)
    # the signature leaves out sign and sign_type and covers the decoded values
    content = crypto.notify_sign_content(signed)
    assert "sign_type" not in content and "subject=门诊缴费 a+b&c=d" in content
    assert crypto.rsa_verify(m0.alipay_key.public_key(), content, signed["sign"])
    event, _ = await channel.parse_notify({}, urlencode(signed).encode())
    assert event.trade.raw["subject"] == "门诊缴费 a+b&c=d"  # type: ignore[union-attr]
    # params built by the simulator never carry empty values (the SDK would sign them)
    assert "" not in notify_params(m0, _sim_order(sim)).values()


def _sim_order(sim):  # type: ignore[no-untyped-def]
    from channels.alipay.sim_model import SimOrder

    return SimOrder(app_id=sim.merchants[0].app_id, seller_id=sim.merchants[0].pid,
                    auth_app_id=sim.merchants[0].app_id, out_trade_no="X", product="JSAPI_PAY", total=1,
                    subject="s", created_at=sim.simulator.now(), trade_no="2024")


async def test_notify_failure_answer_makes_channel_retry(channel: AlipayChannel) -> None:
    answer = channel.notify_failure_answer("busy")
    assert answer.body == b"fail" and answer.content_type == "text/plain" and answer.body != b"success"
