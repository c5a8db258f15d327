"""The adapter against the simulator, over real HTTP on loopback."""
from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from channels.wechatpay import WeChatPayChannel, crypto
from channels.wechatpay.wire import CST
from gateway.channel import (
    Method,
    PayRequest,
    RefundRequest,
    RefundStatus,
    TradeStatus,
)
from gateway.errors import InvalidState, UpstreamProtocolError, UpstreamUnavailable, ValidationFailed

from .conftest import eventually

CODE = "134567890123456780"


def _today() -> dt.date:
    """The bill date of a trade made now (China time, whatever the host's zone)."""
    return dt.datetime.now(CST).date()


def code_pay(no: str, auth_code: str = CODE, amount: int = 1500) -> PayRequest:
    return PayRequest(out_trade_no=no, amount=amount, subject="门诊缴费-挂号费", method=Method.CODE,
                      auth_code=auth_code, device_id="POS-01", store_id="MZ01")


def qr(no: str, amount: int = 2300, method: Method = Method.QR, **kw) -> PayRequest:  # type: ignore[no-untyped-def]
    return PayRequest(out_trade_no=no, amount=amount, subject="检验费", method=method, **kw)


def test_channel_class_facts() -> None:
    assert WeChatPayChannel.id == "wechatpay"
    assert WeChatPayChannel.matches_auth_code("134567890123456789")
    assert WeChatPayChannel.matches_auth_code("104567890123456789")
    assert not WeChatPayChannel.matches_auth_code("164567890123456789")
    assert not WeChatPayChannel.matches_auth_code("28456789012345678")
    assert not WeChatPayChannel.matches_auth_code("1345678901234567890")
    assert WeChatPayChannel.code_poll_schedule[-1] <= 50
    assert "18" in WeChatPayChannel.auth_code_hint and "10-15" in WeChatPayChannel.auth_code_hint


async def test_codepay_success(channel: WeChatPayChannel, control) -> None:  # type: ignore[no-untyped-def]
    res = await channel.pay(code_pay("C1"))
    assert res.status is TradeStatus.SUCCEEDED
    assert res.paid_amount == 1500 and res.channel_trade_no and res.payer_id and res.paid_at
    truth = await control("GET", "/orders/C1")
    assert truth["trade_state"] == "SUCCESS" and truth["transaction_id"] == res.channel_trade_no
    assert truth["trade_type"] == "MICROPAY" and truth["scene_info"] == {"device_id": "POS-01"}
    again = await channel.pay(code_pay("C1"))  # a retry of a paid order: ORDERPAID → its query
    assert again.status is TradeStatus.SUCCEEDED and again.channel_trade_no == res.channel_trade_no


async def test_userpaying_then_query_success(channel: WeChatPayChannel, control) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/scripts", {"auth_code": "134567890123450001", "outcome": "USERPAYING",
                                       "then": "success", "after_seconds": 0.4})
    res = await channel.pay(code_pay("C2", "134567890123450001"))
    assert res.status is TradeStatus.PAYING and res.error_code == "USERPAYING"
    assert (await channel.query("C2")).status is TradeStatus.PAYING
    await asyncio.sleep(0.5)
    done = await channel.query("C2")
    assert done.status is TradeStatus.SUCCEEDED and done.paid_amount == 1500


async def test_magic_userpaying_code_and_patient_confirms(channel: WeChatPayChannel, control) -> None:  # type: ignore[no-untyped-def]
    res = await channel.pay(code_pay("C3", "134567890123459001"))
    assert res.status is TradeStatus.PAYING
    await control("POST", "/orders/C3/pay")  # the patient enters the password now
    assert (await channel.query("C3")).status is TradeStatus.SUCCEEDED


async def test_large_amount_needs_password(channel: WeChatPayChannel) -> None:
    assert (await channel.pay(code_pay("BIG", amount=100_001))).status is TradeStatus.PAYING


@pytest.mark.parametrize("code,expect", [("134567890123459011", "NOTENOUGH"),
                                         ("134567890123459012", "AUTHCODEEXPIRE"),
                                         ("134567890123459013", "NOTSUPORTCARD"),
                                         ("994567890123456789", "AUTH_CODE_INVALID")])
async def test_declines_are_failed_results(channel: WeChatPayChannel, code: str, expect: str) -> None:
    res = await channel.pay(code_pay("D1", code))
    assert res.status is TradeStatus.FAILED
    assert res.error_code == expect and res.error_message
    if expect == "NOTENOUGH":
        assert res.error_message == "用户余额不足"
        assert (await channel.query("D1")).status is TradeStatus.FAILED  # PAYERROR
    if expect == "AUTH_CODE_INVALID":
        assert "18位数字" in res.error_message  # type: ignore[operator]


async def test_scripted_decline_by_control(channel: WeChatPayChannel, control) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/scripts", {"outcome": "BUYER_MISMATCH"})  # the next code, whatever it is
    assert (await channel.pay(code_pay("D2"))).error_code == "BUYER_MISMATCH"
    assert (await channel.pay(code_pay("D3"))).status is TradeStatus.SUCCEEDED  # used up


async def test_systemerror_outcome_unknown(channel: WeChatPayChannel) -> None:
    with pytest.raises(UpstreamUnavailable):
        await channel.pay(code_pay("S1", "134567890123459021"))
    assert (await channel.query("S1")).status is TradeStatus.SUCCEEDED  # charged after all
    with pytest.raises(UpstreamUnavailable):
        await channel.pay(code_pay("S2", "134567890123459022"))
    assert (await channel.query("S2")).status is TradeStatus.NOT_FOUND


async def test_reverse_while_user_paying_then_done(channel: WeChatPayChannel, control) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/scripts", {"outcome": "USERPAYING", "then": "fail", "after_seconds": 0.3})
    assert (await channel.pay(code_pay("R1"))).status is TradeStatus.PAYING
    first = await channel.reverse("R1")
    assert (first.done, first.retry, first.error_code) == (False, True, "USERPAYING")
    await asyncio.sleep(0.4)
    assert (await channel.reverse("R1")).done
    assert (await channel.query("R1")).status is TradeStatus.REVERSED
    assert (await channel.reverse("R1")).done  # idempotent
    assert (await channel.reverse("NEVER-SEEN")).done  # nothing to revoke


async def test_reverse_paid_order_returns_money(channel: WeChatPayChannel, control) -> None:  # type: ignore[no-untyped-def]
    assert (await channel.pay(code_pay("R2"))).status is TradeStatus.SUCCEEDED
    assert (await channel.reverse("R2")).done
    assert (await channel.query("R2")).status is TradeStatus.REVERSED
    bill = await channel.download_bill(_today())
    kinds = sorted((line.kind, line.amount) for line in bill.lines if line.out_trade_no == "R2")
    assert kinds == [("payment", 1500), ("refund", -1500)]


async def test_reverse_of_refunded_order_is_refused(channel: WeChatPayChannel) -> None:
    await channel.pay(code_pay("R3"))
    await channel.refund(RefundRequest(out_trade_no="R3", out_refund_no="R3-1", amount=100, total=1500))
    res = await channel.reverse("R3")
    assert not res.done and not res.retry and res.error_code == "INVALID_REQUEST"


async def test_native_qr_pending_then_closed(channel: WeChatPayChannel, control) -> None:  # type: ignore[no-untyped-def]
    res = await channel.pay(qr("Q1"))
    assert res.status is TradeStatus.PENDING and res.code_url.startswith("weixin://wxpay/bizpayurl?pr=")  # type: ignore[union-attr]
    assert (await channel.query("Q1")).status is TradeStatus.PENDING
    same = await channel.pay(qr("Q1"))  # an identical retry gets the same order
    assert same.code_url == res.code_url
    await channel.close("Q1")
    assert (await channel.query("Q1")).status is TradeStatus.CLOSED
    await channel.close("Q1")  # closing twice is fine
    await control("POST", "/orders/Q1/pay", expect=409)
    reused = await channel.pay(qr("Q1"))
    assert reused.status is TradeStatus.FAILED and reused.error_code == "ORDERCLOSED"


async def test_close_paid_order_is_invalid_state(channel: WeChatPayChannel, control) -> None:  # type: ignore[no-untyped-def]
    await channel.pay(qr("Q2"))
    await control("POST", "/orders/Q2/pay")
    with pytest.raises(InvalidState):
        await channel.close("Q2")


async def test_jsapi_params_are_signed(channel: WeChatPayChannel, sim) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationFailed):
        await channel.pay(qr("J0", method=Method.JSAPI))
    res = await channel.pay(qr("J1", method=Method.JSAPI, openid="oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"))
    p = res.jsapi_params
    assert res.status is TradeStatus.PENDING and p is not None
    assert set(p) == {"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"}
    assert p["appId"] == channel.config.appid and p["signType"] == "RSA"
    assert p["package"].startswith("prepay_id=wx")
    msg = f"{p['appId']}\n{p['timeStamp']}\n{p['nonceStr']}\n{p['package']}\n"
    assert crypto.rsa_verify(sim.merchants[0].merchant_public, msg, p["paySign"])
    truth = sim.simulator.lookup("J1")
    assert truth.openid == "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o" and p["package"] == f"prepay_id={truth.prepay_id}"


async def test_h5_url_and_checkout_page(channel: WeChatPayChannel, sim, session) -> None:  # type: ignore[no-untyped-def]
    res = await channel.pay(qr("H1", method=Method.H5, client_ip="203.0.113.9"))
    assert res.status is TradeStatus.PENDING and res.h5_url.startswith(sim.base_url)  # type: ignore[union-attr]
    async with session.get(res.h5_url) as page:
        assert page.status == 200 and "检验费" in await page.text()
    async with session.post(res.h5_url) as paid:
        assert paid.status == 200
    assert (await channel.query("H1")).status is TradeStatus.SUCCEEDED


async def test_full_and_partial_refunds(channel: WeChatPayChannel, sink) -> None:  # type: ignore[no-untyped-def]
    await channel.pay(code_pay("F1", amount=1000))
    part = await channel.refund(RefundRequest(out_trade_no="F1", out_refund_no="F1-a", amount=300, total=1000,
                                              reason="退号"))
    assert part.status is RefundStatus.PROCESSING and part.channel_refund_no
    done = await eventually(lambda: _refund_done(channel, "F1-a", "F1"))
    assert done.refunded_at is not None
    assert (await channel.query("F1")).status is TradeStatus.REFUNDED
    # refund more than what is left: refused with the service's code
    over = await channel.refund(RefundRequest(out_trade_no="F1", out_refund_no="F1-b", amount=701, total=1000))
    assert over.status is RefundStatus.FAILED and over.error_code == "INVALID_REQUEST"
    assert over.error_message == "申请退款金额超过订单可退金额"
    rest = await channel.refund(RefundRequest(out_trade_no="F1", out_refund_no="F1-c", amount=700, total=1000))
    assert rest.status is RefundStatus.PROCESSING
    same = await channel.refund(RefundRequest(out_trade_no="F1", out_refund_no="F1-c", amount=700, total=1000))
    assert same.channel_refund_no == rest.channel_refund_no  # a retry is idempotent
    changed = await channel.refund(RefundRequest(out_trade_no="F1", out_refund_no="F1-c", amount=600, total=1000))
    assert changed.status is RefundStatus.FAILED
    await eventually(lambda: _refund_done(channel, "F1-c", "F1"))
    full = await channel.refund(RefundRequest(out_trade_no="F1", out_refund_no="F1-d", amount=1, total=1000))
    assert full.error_message == "订单已全额退款"
    # both refunds were notified
    events = {(await channel.parse_notify(*await sink.next()))[0].out_refund_no for _ in range(2)}
    assert events == {"F1-a", "F1-c"}


async def _refund_done(channel: WeChatPayChannel, no: str, trade: str):  # type: ignore[no-untyped-def]
    r = await channel.query_refund(no, trade)
    return r if r.status is RefundStatus.SUCCEEDED else None


async def test_refund_edge_cases(channel: WeChatPayChannel, sim, control) -> None:  # type: ignore[no-untyped-def]
    missing = await channel.query_refund("NOPE", "NOPE")
    assert missing.status is RefundStatus.FAILED and missing.error_code == "RESOURCE_NOT_EXISTS"
    unknown = await channel.refund(RefundRequest(out_trade_no="NOPE", out_refund_no="X", amount=1, total=1))
    assert unknown.status is RefundStatus.FAILED and unknown.error_code == "RESOURCE_NOT_EXISTS"
    await channel.pay(qr("UNPAID"))
    unpaid = await channel.refund(RefundRequest(out_trade_no="UNPAID", out_refund_no="U1", amount=1, total=2300))
    assert unpaid.status is RefundStatus.FAILED
    await channel.pay(code_pay("AB"))
    await control("POST", "/settings", {"next_refund_status": ["ABNORMAL"], "refund_settle_seconds": 0})
    ab = await channel.refund(RefundRequest(out_trade_no="AB", out_refund_no="AB-1", amount=10, total=1500))
    assert ab.status is RefundStatus.PROCESSING and ab.error_code == "ABNORMAL"
    now = await channel.refund(RefundRequest(out_trade_no="AB", out_refund_no="AB-2", amount=10, total=1500))
    assert now.status is RefundStatus.SUCCEEDED  # settled synchronously when refund_settle_seconds is 0


async def test_bill_totals_match_the_simulator(channel: WeChatPayChannel, control, sim) -> None:  # type: ignore[no-untyped-def]
    for i, amount in enumerate((101, 2500, 99999)):
        await channel.pay(code_pay(f"B{i}", amount=amount))
    await channel.pay(qr("BQ", amount=4321))
    await control("POST", "/orders/BQ/pay")
    await control("POST", "/settings", {"refund_settle_seconds": 0})
    await channel.refund(RefundRequest(out_trade_no="B1", out_refund_no="B1-r", amount=500, total=2500))
    await channel.pay(qr("UNPAID", amount=7))  # unpaid orders are not in the bill
    bill = await channel.download_bill(_today())
    assert bill.total_count == 5 and len(bill.lines) == 5
    assert bill.total_paid == 101 + 2500 + 99999 + 4321
    assert bill.total_refunded == 500
    assert sum(line.amount for line in bill.lines) == bill.total_paid - bill.total_refunded
    fees = {line.out_trade_no: line.fee for line in bill.lines if line.kind == "payment"}
    assert fees["B2"] == sim.simulator.fee(99999) == 600
    refund = next(line for line in bill.lines if line.kind == "refund")
    assert (refund.out_refund_no, refund.amount, refund.status) == ("B1-r", -500, "SUCCESS")
    # a day without trades is an empty bill, not an error
    empty = await channel.download_bill(_today() - dt.timedelta(days=3))
    assert empty.total_count == 0 and empty.lines == []
    # a future day is a protocol-level refusal: unknown outcome, never an empty bill
    with pytest.raises(UpstreamProtocolError):
        await channel.download_bill(_today() + dt.timedelta(days=2))


async def test_simulator_clock_moves_bill_date(channel: WeChatPayChannel, control) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/clock", {"date": "2024-03-01"})
    await channel.pay(code_pay("OLD"))
    await control("DELETE", "/clock")
    bill = await channel.download_bill(dt.date(2024, 3, 1))
    assert [line.out_trade_no for line in bill.lines] == ["OLD"]
    assert bill.lines[0].trade_time.date() == dt.date(2024, 3, 1)


async def test_wrong_merchant_key_gets_sign_error(make_channel) -> None:  # type: ignore[no-untyped-def]
    other = crypto.private_key_pem(crypto.generate_private_key())
    channel = make_channel(private_key=other)
    res = await channel.pay(code_pay("K1"))
    assert res.status is TradeStatus.FAILED and res.error_code == "SIGN_ERROR"


async def test_wrong_platform_key_is_protocol_error(make_channel, sim) -> None:  # type: ignore[no-untyped-def]
    # merchant 0 trusting merchant 1's platform key: every answer looks forged
    cfg1 = sim.merchant_configs()[1]
    channel = make_channel(platform_public_key=cfg1["platform_public_key"])
    with pytest.raises(UpstreamProtocolError):
        await channel.pay(code_pay("K2"))
    wrong_id = make_channel(platform_public_key_id=cfg1["platform_public_key_id"])
    with pytest.raises(UpstreamProtocolError):
        await wrong_id.query("K2")


async def test_second_merchant_is_separate(make_channel) -> None:  # type: ignore[no-untyped-def]
    a, b = make_channel(0), make_channel(1)
    await a.pay(code_pay("M1"))
    assert (await b.query("M1")).status is TradeStatus.NOT_FOUND
    assert (await b.pay(code_pay("M1"))).status is TradeStatus.SUCCEEDED


async def test_partner_mode(make_channel, control, sim) -> None:  # type: ignore[no-untyped-def]
    channel = make_channel(sub_mchid="1600000001")
    res = await channel.pay(qr("P1", method=Method.JSAPI, openid="oSP"))
    assert res.status is TradeStatus.PENDING
    await control("POST", "/orders/P1/pay")
    paid = await channel.query("P1")
    assert paid.status is TradeStatus.SUCCEEDED and paid.raw["sub_mchid"] == "1600000001"
    assert paid.payer_id == "oSP"
    await control("POST", "/settings", {"refund_settle_seconds": 0})
    r = await channel.refund(RefundRequest(out_trade_no="P1", out_refund_no="P1-r", amount=5, total=2300))
    assert r.status is RefundStatus.SUCCEEDED
    assert (await channel.query_refund("P1-r", "P1")).status is RefundStatus.SUCCEEDED
    assert (await make_channel().query("P1")).status is TradeStatus.NOT_FOUND  # not the direct merchant's
    bill = await channel.download_bill(_today())
    assert {line.merchant_id for line in bill.lines} == {"1600000001"}
    assert await channel.pay(code_pay("P2")) and (await channel.reverse("P2")).done


async def test_long_subject_is_clipped_to_127_bytes(channel: WeChatPayChannel, sim, session) -> None:  # type: ignore[no-untyped-def]
    req = PayRequest(out_trade_no="LONG", amount=1, subject="门诊缴费" * 40, method=Method.QR)
    assert (await channel.pay(req)).status is TradeStatus.PENDING
    stored = sim.simulator.lookup("LONG").description
    assert len(stored.encode()) <= 127 and stored.startswith("门诊缴费门诊缴费")
    # a plain mapping is accepted as configuration too
    plain = WeChatPayChannel(sim.merchant_configs()[0], session)
    assert (await plain.query("LONG")).status is TradeStatus.PENDING
