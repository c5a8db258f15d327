"""The e-CNY channel over the reference bank simulator, every flow, over real HTTP on loopback."""
from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from channels.ecny import EcnyChannel
from gateway.channel import Capability, Method, PayRequest, RefundRequest, RefundStatus, TradeStatus
from gateway.errors import InvalidState, NotSupported, UpstreamUnavailable, ValidationFailed
from plugins.banks.refbank.wire import CST

from .conftest import ecny_code

CODE = "0123456789012345678"


def code_pay(no: str, auth_code: str = CODE, amount: int = 1500) -> PayRequest:
    return PayRequest(out_trade_no=no, amount=amount, subject="门诊缴费-挂号费", method=Method.CODE,
                      auth_code=auth_code, device_id="POS-01", store_id="MZ01")


def qr(no: str, amount: int = 2300, **kw) -> PayRequest:  # type: ignore[no-untyped-def]
    return PayRequest(out_trade_no=no, amount=amount, subject="检验费", method=Method.QR, **kw)


def today() -> dt.date:
    return dt.datetime.now(CST).date()


def test_channel_class_facts() -> None:
    assert (EcnyChannel.id, EcnyChannel.name_zh, EcnyChannel.name_en) == ("ecny", "数字人民币", "e-CNY")
    assert EcnyChannel.matches_auth_code("0123456789012345678")
    assert not EcnyChannel.matches_auth_code("012345678901234567")  # 18 digits
    assert not EcnyChannel.matches_auth_code("01234567890123456789")  # 20 digits
    assert not EcnyChannel.matches_auth_code("1123456789012345678")
    assert not EcnyChannel.matches_auth_code("134567890123456789")  # a WeChat Pay code
    assert "19" in EcnyChannel.auth_code_hint and "01" in EcnyChannel.auth_code_hint
    assert EcnyChannel.capabilities == frozenset({
        Capability.CODE, Capability.QR, Capability.REFUND, Capability.PARTIAL_REFUND, Capability.REVERSE,
        Capability.CLOSE, Capability.BILL})
    assert EcnyChannel.code_poll_schedule[-1] <= 50


async def test_codepay_success(channel: EcnyChannel, control) -> None:  # type: ignore[no-untyped-def]
    assert channel.bank_id == "refbank"
    res = await channel.pay(code_pay("C1"))
    assert res.status is TradeStatus.SUCCEEDED
    assert res.paid_amount == 1500 and res.channel_trade_no and res.paid_at and res.paid_at.tzinfo
    assert res.payer_id and "*" in res.payer_id  # the masked wallet id
    truth = await control("GET", "/orders/C1")
    assert truth["trade_status"] == "SUCCESS" and truth["bank_trade_no"] == res.channel_trade_no
    assert (truth["amount"], truth["device_id"], truth["store_id"]) == ("15.00", "POS-01", "MZ01")
    again = await channel.pay(code_pay("C1"))  # a retry of the same order: the same order, not a second charge
    assert again.status is TradeStatus.SUCCEEDED and again.channel_trade_no == res.channel_trade_no
    assert len(await control("GET", "/orders")) == 1
    assert (await channel.query("C1")).status is TradeStatus.SUCCEEDED


async def test_same_number_other_content_is_refused(channel: EcnyChannel) -> None:
    await channel.pay(code_pay("C1b"))
    res = await channel.pay(code_pay("C1b", amount=1600))
    assert res.status is TradeStatus.FAILED and res.error_code == "DUPLICATE_ORDER" and res.error_message


async def test_user_confirming_then_query_success(channel: EcnyChannel, control) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/scripts", {"auth_code": CODE, "outcome": "PAYING", "after_seconds": 1.0})
    res = await channel.pay(code_pay("C2"))
    assert res.status is TradeStatus.PAYING and res.error_code == "USER_CONFIRMING" and res.error_message
    assert (await channel.query("C2")).status is TradeStatus.PAYING
    await asyncio.sleep(1.1)
    done = await channel.query("C2")
    assert done.status is TradeStatus.SUCCEEDED and done.paid_amount == 1500


async def test_magic_confirming_code_and_patient_confirms(channel: EcnyChannel, control) -> None:  # type: ignore[no-untyped-def]
    assert (await channel.pay(code_pay("C3", ecny_code("9004")))).status is TradeStatus.PAYING
    await control("POST", "/orders/C3/pay")  # the patient confirms in the wallet app
    assert (await channel.query("C3")).status is TradeStatus.SUCCEEDED


async def test_processing_state(channel: EcnyChannel) -> None:
    res = await channel.pay(code_pay("C4", ecny_code("9005")))
    assert res.status is TradeStatus.PAYING and res.error_code == "PROCESSING"


async def test_above_password_free_limit_needs_confirmation(channel: EcnyChannel) -> None:
    assert (await channel.pay(code_pay("BIG", amount=100_001))).status is TradeStatus.PAYING
    assert (await channel.pay(code_pay("SMALL", amount=100_000))).status is TradeStatus.SUCCEEDED


@pytest.mark.parametrize("suffix,code", [("9011", "BALANCE_NOT_ENOUGH"), ("9012", "PAYCODE_EXPIRED"),
                                         ("9013", "WALLET_LIMIT_EXCEEDED"), ("9014", "WALLET_FROZEN"),
                                         ("9015", "PAYCODE_INVALID"), ("9016", "RISK_REJECTED")])
async def test_declines_are_failed_results(channel: EcnyChannel, suffix: str, code: str) -> None:
    res = await channel.pay(code_pay("D1", ecny_code(suffix)))
    assert res.status is TradeStatus.FAILED and res.error_code == code and res.error_message
    later = await channel.query("D1")
    if code == "PAYCODE_INVALID":  # refused before an order existed
        assert later.status is TradeStatus.NOT_FOUND
    else:
        assert later.status is TradeStatus.FAILED and later.error_code == code


async def test_malformed_code_is_declined(channel: EcnyChannel) -> None:
    res = await channel.pay(code_pay("D2", "134567890123456789"))
    assert res.status is TradeStatus.FAILED and res.error_code == "PAYCODE_INVALID"
    assert "01开头的19位数字" in (res.error_message or "")


async def test_scripted_decline_by_control(channel: EcnyChannel, control) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/scripts", {"outcome": "WALLET_FROZEN"})  # the next code, whatever it is
    assert (await channel.pay(code_pay("D3"))).error_code == "WALLET_FROZEN"
    assert (await channel.pay(code_pay("D4"))).status is TradeStatus.SUCCEEDED  # used up


async def test_patient_cancels(channel: EcnyChannel, control) -> None:  # type: ignore[no-untyped-def]
    assert (await channel.pay(code_pay("D5", ecny_code("9004")))).status is TradeStatus.PAYING
    await control("POST", "/orders/D5/fail", {"fail_code": "USER_CANCELLED"})
    res = await channel.query("D5")
    assert res.status is TradeStatus.FAILED and res.error_code == "USER_CANCELLED"
    assert res.error_message == "用户取消支付"


async def test_system_error_outcome_unknown(channel: EcnyChannel) -> None:
    with pytest.raises(UpstreamUnavailable):
        await channel.pay(code_pay("S1", ecny_code("9021")))
    assert (await channel.query("S1")).status is TradeStatus.SUCCEEDED  # charged after all
    with pytest.raises(UpstreamUnavailable):
        await channel.pay(code_pay("S2", ecny_code("9022")))
    assert (await channel.query("S2")).status is TradeStatus.NOT_FOUND


async def test_center_timeout_outcome_unknown(channel: EcnyChannel) -> None:
    with pytest.raises(UpstreamUnavailable) as info:
        await channel.pay(code_pay("S3", ecny_code("9023")))
    assert info.value.extra["upstream_code"] == "CENTER_TIMEOUT"
    assert (await channel.query("S3")).error_code == "CENTER_ERROR"
    with pytest.raises(UpstreamUnavailable):
        await channel.pay(code_pay("S4", ecny_code("9024")))
    assert (await channel.query("S4")).status is TradeStatus.SUCCEEDED


async def test_reverse_while_processing_then_done(channel: EcnyChannel, control) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/scripts", {"outcome": "PAYING", "sub_status": "PROCESSING", "then": "fail",
                                       "after_seconds": 1.0})
    assert (await channel.pay(code_pay("R1"))).status is TradeStatus.PAYING
    first = await channel.reverse("R1")
    assert (first.done, first.retry, first.error_code) == (False, True, "TRADE_PROCESSING")
    await asyncio.sleep(1.1)
    assert (await channel.reverse("R1")).done
    assert (await channel.query("R1")).status is TradeStatus.REVERSED
    assert (await channel.reverse("R1")).done  # idempotent
    assert (await channel.reverse("NEVER-SEEN")).done  # nothing to revoke


async def test_reverse_while_confirming_withdraws_the_prompt(channel: EcnyChannel, control) -> None:  # type: ignore[no-untyped-def]
    assert (await channel.pay(code_pay("R2", ecny_code("9004")))).status is TradeStatus.PAYING
    assert (await channel.reverse("R2")).done
    assert (await channel.query("R2")).status is TradeStatus.REVERSED
    await control("POST", "/orders/R2/pay", expect=409)  # the patient can no longer confirm


async def test_reverse_paid_order_returns_money(channel: EcnyChannel) -> None:
    assert (await channel.pay(code_pay("R3"))).status is TradeStatus.SUCCEEDED
    assert (await channel.reverse("R3")).done
    assert (await channel.query("R3")).status is TradeStatus.REVERSED
    bill = await channel.download_bill(today())
    lines = sorted((line.kind, line.amount, line.status) for line in bill.lines if line.out_trade_no == "R3")
    assert lines == [("payment", 1500, "PAY"), ("refund", -1500, "REVOKE")]


async def test_reverse_refused_after_refund_or_after_the_day(channel: EcnyChannel, control) -> None:  # type: ignore[no-untyped-def]
    await channel.pay(code_pay("R4"))
    await channel.refund(RefundRequest(out_trade_no="R4", out_refund_no="R4-1", amount=100, total=1500))
    res = await channel.reverse("R4")
    assert (res.done, res.retry, res.error_code) == (False, False, "REVOKE_NOT_ALLOWED")
    await channel.pay(code_pay("R5"))
    await control("POST", "/clock", {"offset_seconds": 86_400})
    res = await channel.reverse("R5")
    assert (res.done, res.retry, res.error_code) == (False, False, "REVOKE_EXPIRED")


async def test_qr_pending_then_closed(channel: EcnyChannel, control) -> None:  # type: ignore[no-untyped-def]
    res = await channel.pay(qr("Q1"))
    assert res.status is TradeStatus.PENDING and res.code_url and res.channel_trade_no
    assert (await channel.query("Q1")).status is TradeStatus.PENDING
    same = await channel.pay(qr("Q1"))  # an identical retry gets the same QR code
    assert same.code_url == res.code_url
    await channel.close("Q1")
    assert (await channel.query("Q1")).status is TradeStatus.CLOSED
    await channel.close("Q1")  # closing twice is fine
    await channel.close("NEVER-SEEN")
    await control("POST", "/orders/Q1/pay", expect=409)
    again = await channel.pay(qr("Q1"))
    assert again.status is TradeStatus.FAILED and again.error_code == "ORDER_CLOSED"


async def test_qr_paid_by_scanning(channel: EcnyChannel, session) -> None:  # type: ignore[no-untyped-def]
    res = await channel.pay(qr("Q2", attach="visit=7"))
    async with session.get(res.code_url) as page:  # what the wallet app opens
        assert page.status == 200 and "¥23.00" in await page.text()
    async with session.post(res.code_url) as page:
        assert "支付成功" in await page.text()
    paid = await channel.query("Q2")
    assert paid.status is TradeStatus.SUCCEEDED and paid.paid_amount == 2300 and paid.raw["attach"] == "visit=7"
    assert (await channel.pay(qr("Q2"))).status is TradeStatus.SUCCEEDED  # a retry of a paid order: its query
    with pytest.raises(InvalidState):
        await channel.close("Q2")


async def test_qr_expires(channel: EcnyChannel, control) -> None:  # type: ignore[no-untyped-def]
    expire = dt.datetime.now(CST) + dt.timedelta(minutes=5)
    assert (await channel.pay(qr("Q3", expire_at=expire))).status is TradeStatus.PENDING
    await control("POST", "/clock", {"offset_seconds": 600})
    assert (await channel.query("Q3")).status is TradeStatus.CLOSED


async def test_qr_needs_a_notify_url(make_channel) -> None:  # type: ignore[no-untyped-def]
    channel = make_channel(notify_url=None)
    with pytest.raises(ValidationFailed):
        await channel.pay(qr("Q4"))
    assert (await channel.pay(qr("Q4", notify_url="http://127.0.0.1:9/n"))).status is TradeStatus.PENDING


async def test_without_qr_in_the_contract(make_channel) -> None:  # type: ignore[no-untyped-def]
    channel = make_channel(qr_enabled=False)
    assert Capability.QR not in channel.available_capabilities
    assert Capability.CLOSE not in channel.available_capabilities
    with pytest.raises(NotSupported):
        await channel.pay(qr("Q5"))
    with pytest.raises(NotSupported):
        await channel.close("Q5")
    assert (await channel.pay(code_pay("Q5"))).status is TradeStatus.SUCCEEDED


@pytest.mark.parametrize("method", [Method.JSAPI, Method.H5])
async def test_other_methods_are_not_supported(channel: EcnyChannel, method: Method) -> None:
    with pytest.raises(NotSupported):
        await channel.pay(PayRequest(out_trade_no="X", amount=1, subject="x", method=method, openid="o1"))


async def test_code_pay_needs_a_code(channel: EcnyChannel) -> None:
    with pytest.raises(ValidationFailed):
        await channel.pay(PayRequest(out_trade_no="X", amount=1, subject="x", method=Method.CODE))


async def test_partial_refunds_full_and_beyond(channel: EcnyChannel, control) -> None:  # type: ignore[no-untyped-def]
    await channel.pay(code_pay("F1", amount=1000))
    r1 = await channel.refund(RefundRequest(out_trade_no="F1", out_refund_no="F1-1", amount=300, total=1000,
                                            reason="退一项检查"))
    assert r1.status is RefundStatus.PROCESSING and r1.channel_refund_no and r1.error_code is None
    again = await channel.refund(RefundRequest(out_trade_no="F1", out_refund_no="F1-1", amount=300, total=1000))
    assert again.channel_refund_no == r1.channel_refund_no  # idempotent
    other = await channel.refund(RefundRequest(out_trade_no="F1", out_refund_no="F1-1", amount=200, total=1000))
    assert (other.status, other.error_code) == (RefundStatus.FAILED, "DUPLICATE_REFUND")
    over = await channel.refund(RefundRequest(out_trade_no="F1", out_refund_no="F1-2", amount=701, total=1000))
    assert (over.status, over.error_code) == (RefundStatus.FAILED, "AMOUNT_EXCEEDS_REFUNDABLE")
    assert "7.00" in (over.error_message or "")
    wrong_total = await channel.refund(RefundRequest(out_trade_no="F1", out_refund_no="F1-3", amount=1, total=999))
    assert wrong_total.error_code == "TOTAL_AMOUNT_MISMATCH"
    assert (await channel.query("F1")).status is TradeStatus.REFUNDED
    await asyncio.sleep(1.1)
    done = await channel.query_refund("F1-1", "F1")
    assert done.status is RefundStatus.SUCCEEDED and done.refunded_at is not None
    rest = await channel.refund(RefundRequest(out_trade_no="F1", out_refund_no="F1-4", amount=700, total=1000))
    assert rest.status is RefundStatus.PROCESSING
    truth = await control("GET", "/orders/F1")
    assert truth["refunded_amount"] == "10.00" and truth["refunds"] == ["F1-1", "F1-4"]
    nothing_left = await channel.refund(RefundRequest(out_trade_no="F1", out_refund_no="F1-5", amount=1,
                                                      total=1000))
    assert nothing_left.error_code == "AMOUNT_EXCEEDS_REFUNDABLE"


async def test_refund_declines(channel: EcnyChannel, control) -> None:  # type: ignore[no-untyped-def]
    unknown = await channel.refund(RefundRequest(out_trade_no="NONE", out_refund_no="N-1", amount=1, total=1))
    assert (unknown.status, unknown.error_code) == (RefundStatus.FAILED, "ORDER_NOT_FOUND")
    assert (await channel.pay(code_pay("G1", ecny_code("9011")))).status is TradeStatus.FAILED
    unpaid = await channel.refund(RefundRequest(out_trade_no="G1", out_refund_no="G1-1", amount=1, total=1500))
    assert unpaid.error_code == "REFUND_NOT_ALLOWED"
    await channel.pay(code_pay("G2"))
    await control("POST", "/settings", {"next_refund_status": ["DECLINE"]})
    short = await channel.refund(RefundRequest(out_trade_no="G2", out_refund_no="G2-1", amount=1, total=1500))
    assert short.error_code == "MERCHANT_BALANCE_NOT_ENOUGH"
    missing = await channel.query_refund("G2-404", "G2")
    assert (missing.status, missing.error_code) == (RefundStatus.FAILED, "REFUND_NOT_FOUND")


async def test_refund_that_fails_later(channel: EcnyChannel, control) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/settings", {"next_refund_status": ["FAIL"], "refund_settle_seconds": 0.2})
    await channel.pay(code_pay("H1"))
    res = await channel.refund(RefundRequest(out_trade_no="H1", out_refund_no="H1-1", amount=1500, total=1500))
    assert res.status is RefundStatus.PROCESSING
    await asyncio.sleep(0.3)
    failed = await channel.query_refund("H1-1", "H1")
    assert (failed.status, failed.error_code) == (RefundStatus.FAILED, "WALLET_CLOSED") and failed.error_message
    assert (await channel.query("H1")).status is TradeStatus.SUCCEEDED  # nothing left refunded
    again = await channel.refund(RefundRequest(out_trade_no="H1", out_refund_no="H1-2", amount=1500, total=1500))
    assert again.status is RefundStatus.PROCESSING


async def test_refund_query_checks_the_order(channel: EcnyChannel) -> None:
    await channel.pay(code_pay("K1"))
    await channel.refund(RefundRequest(out_trade_no="K1", out_refund_no="K1-1", amount=1, total=1500))
    from gateway.errors import UpstreamProtocolError

    with pytest.raises(UpstreamProtocolError):
        await channel.query_refund("K1-1", "OTHER-ORDER")


async def test_merchants_are_separate(make_channel) -> None:  # type: ignore[no-untyped-def]
    a, b = make_channel(0), make_channel(1)
    await a.pay(code_pay("M1"))
    assert (await b.query("M1")).status is TradeStatus.NOT_FOUND
    assert (await b.pay(code_pay("M1"))).status is TradeStatus.SUCCEEDED  # the same number, another merchant


async def test_wrong_merchant_key_is_a_signed_decline(make_channel, sim) -> None:  # type: ignore[no-untyped-def]
    # merchant 0's id with merchant 1's key: the bank refuses (signed), nothing is charged
    other_key = sim.bank_configs()[1]["private_key"]
    channel = make_channel(0, private_key=other_key)
    res = await channel.pay(code_pay("W1"))
    assert (res.status, res.error_code) == (TradeStatus.FAILED, "SIGN_INVALID")
    wrong_id = make_channel(0, key_id="MK000000000000")
    assert (await wrong_id.pay(code_pay("W2"))).error_code == "KEY_NOT_FOUND"


async def test_the_gateways_callback_url_fills_a_missing_one(make_channel, control) -> None:  # type: ignore[no-untyped-def]
    channel = make_channel(notify_url=None)
    channel.notify_url = "http://127.0.0.1:9/v1/notify/ecny/mch_1"  # what the core sets after construction
    await channel.pay(qr("U1"))
    assert (await control("GET", "/orders/U1"))["notify_url"] == channel.notify_url
    await channel.pay(qr("U2", notify_url="http://127.0.0.1:9/own"))  # a request's own URL wins
    assert (await control("GET", "/orders/U2"))["notify_url"] == "http://127.0.0.1:9/own"
    await channel.pay(code_pay("U3"))
    await channel.refund(RefundRequest(out_trade_no="U3", out_refund_no="U3-1", amount=1, total=1500))
    assert (await control("GET", "/refunds/U3-1"))["notify_url"] == channel.notify_url
