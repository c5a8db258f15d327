"""The adapter against the simulator, over real HTTP on loopback."""
from __future__ import annotations

import asyncio
import datetime as dt
from urllib.parse import parse_qs, urlsplit

import pytest

from channels.alipay import AlipayChannel, crypto
from gateway.channel import Method, PayRequest, RefundRequest, RefundStatus, TradeStatus
from gateway.errors import InvalidState, UpstreamProtocolError, UpstreamUnavailable, ValidationFailed

from .conftest import CODE, eventually, today


def code_pay(no: str, auth_code: str = CODE, amount: int = 1500) -> PayRequest:
    return PayRequest(out_trade_no=no, amount=amount, subject="门诊缴费-挂号费", method=Method.CODE,
                      auth_code=auth_code, device_id="POS-01", store_id="MZ01")


def order(no: str, amount: int = 2300, method: Method = Method.QR, **kw) -> PayRequest:  # type: ignore[no-untyped-def]
    return PayRequest(out_trade_no=no, amount=amount, subject="检验费", method=method, **kw)


def refund(no: str, req: str, amount: int, total: int = 1500) -> RefundRequest:
    return RefundRequest(out_trade_no=no, out_refund_no=req, amount=amount, total=total, reason="退号")


def test_channel_class_facts() -> None:
    assert (AlipayChannel.id, AlipayChannel.name_zh, AlipayChannel.name_en) == ("alipay", "支付宝", "Alipay")
    for ok in ("2845678901234567", "25" + "0" * 22, "301234567890123456", "286543210987654321"):
        assert AlipayChannel.matches_auth_code(ok), ok
    for bad in ("2445678901234567", "3145678901234567", "284567890123456", "28" + "0" * 23,
                "134567890123456789", "28456789O1234567"):
        assert not AlipayChannel.matches_auth_code(bad), bad
    assert AlipayChannel.code_poll_schedule == (5, 10, 15, 20, 25, 30)
    assert "25-30" in AlipayChannel.auth_code_hint and "16-24" in AlipayChannel.auth_code_hint


async def test_code_pay_success(channel: AlipayChannel, control) -> None:  # type: ignore[no-untyped-def]
    res = await channel.pay(code_pay("C1"))
    assert res.status is TradeStatus.SUCCEEDED
    assert res.paid_amount == 1500 and res.channel_trade_no and res.paid_at
    assert res.payer_id and res.payer_id.startswith("2088")
    truth = await control("GET", "/orders/C1")
    assert truth["trade_status"] == "TRADE_SUCCESS" and truth["trade_no"] == res.channel_trade_no
    assert (truth["store_id"], truth["terminal_id"], truth["auth_code"]) == ("MZ01", "POS-01", CODE)
    assert truth["notify_url"] is None  # code payments are settled without notifies
    again = await channel.pay(code_pay("C1"))  # a retry of a paid order: ACQ.TRADE_HAS_SUCCESS → its query
    assert again.status is TradeStatus.SUCCEEDED and again.channel_trade_no == res.channel_trade_no


async def test_in_process_then_query_success(channel: AlipayChannel, control) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/scripts", {"auth_code": "286543210987650001", "outcome": "INPROCESS",
                                       "then": "success", "after_seconds": 0.4})
    res = await channel.pay(code_pay("C2", "286543210987650001"))
    assert res.status is TradeStatus.PAYING and res.error_code == "10003" and res.channel_trade_no
    assert res.error_message == "order success pay inprocess"
    assert (await channel.query("C2")).status is TradeStatus.PENDING  # WAIT_BUYER_PAY
    await asyncio.sleep(0.5)
    done = await channel.query("C2")
    assert done.status is TradeStatus.SUCCEEDED and done.paid_amount == 1500


async def test_magic_in_process_code_and_patient_confirms(channel: AlipayChannel, control) -> None:  # type: ignore[no-untyped-def]
    assert (await channel.pay(code_pay("C3", "286543210987659001"))).status is TradeStatus.PAYING
    again = await channel.pay(code_pay("C3", "286543210987659001"))  # a retry while paying: 10003 again
    assert again.status is TradeStatus.PAYING
    await control("POST", "/orders/C3/pay", {"buyer_id": "2088102146225135"})
    paid = await channel.query("C3")
    assert paid.status is TradeStatus.SUCCEEDED and paid.payer_id == "2088102146225135"


async def test_large_amount_needs_confirmation(channel: AlipayChannel) -> None:
    assert (await channel.pay(code_pay("BIG", amount=100_001))).status is TradeStatus.PAYING


@pytest.mark.parametrize("code,expect,message", [
    ("286543210987659011", "ACQ.BUYER_BALANCE_NOT_ENOUGH", "买家余额不足"),
    ("286543210987659012", "ACQ.PAYMENT_AUTH_CODE_INVALID", "请顾客刷新付款码"),
    ("286543210987659013", "ACQ.BUYER_BANKCARD_BALANCE_NOT_ENOUGH", "用户银行卡余额不足"),
    ("286543210987659014", "ACQ.PAYMENT_REQUEST_HAS_RISK", "支付有风险"),
    ("994567890123456789", "ACQ.PAYMENT_AUTH_CODE_INVALID", "SOUNDWAVE_PARSER_FAIL"),
])
async def test_declines_are_failed_results(channel: AlipayChannel, code: str, expect: str, message: str) -> None:
    res = await channel.pay(code_pay("D1", code))
    assert res.status is TradeStatus.FAILED and res.error_code == expect
    assert message in (res.error_message or "")
    assert (await channel.query("D1")).status is TradeStatus.NOT_FOUND  # a decline leaves no trade
    assert (await channel.pay(code_pay("D1"))).status is TradeStatus.SUCCEEDED  # a fresh code may pay it


async def test_scripted_decline_by_control(channel: AlipayChannel, control) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/scripts", {"outcome": "ACQ.BUYER_PAYMENT_AMOUNT_DAY_LIMIT_ERROR"})
    assert (await channel.pay(code_pay("D2"))).error_code == "ACQ.BUYER_PAYMENT_AMOUNT_DAY_LIMIT_ERROR"
    assert (await channel.pay(code_pay("D3"))).status is TradeStatus.SUCCEEDED  # used up


@pytest.mark.parametrize("charged,not_charged", [("9021", "9022"), ("9024", "9023")])
async def test_system_error_and_20000_outcome_unknown(channel: AlipayChannel, charged: str,
                                                      not_charged: str) -> None:
    with pytest.raises(UpstreamUnavailable):
        await channel.pay(code_pay("S1", "28654321098765" + charged))
    assert (await channel.query("S1")).status is TradeStatus.SUCCEEDED  # charged after all
    with pytest.raises(UpstreamUnavailable):
        await channel.pay(code_pay("S2", "28654321098765" + not_charged))
    assert (await channel.query("S2")).status is TradeStatus.NOT_FOUND


async def test_reverse_in_process_closes_it(channel: AlipayChannel) -> None:
    assert (await channel.pay(code_pay("R0", "286543210987659004"))).status is TradeStatus.PAYING
    res = await channel.reverse("R0")
    assert res.done and res.error_message == "close"
    closed = await channel.query("R0")
    assert closed.status is TradeStatus.CLOSED and closed.paid_at is None


async def test_reverse_retry_flag_then_done(channel: AlipayChannel, control) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/scripts", {"outcome": "INPROCESS", "then": "fail", "after_seconds": 0.3,
                                       "cancel_retry": True})
    assert (await channel.pay(code_pay("R1"))).status is TradeStatus.PAYING
    first = await channel.reverse("R1")
    assert (first.done, first.retry, first.error_code) == (False, True, "ACQ.SYSTEM_ERROR")
    await asyncio.sleep(0.4)
    assert (await channel.reverse("R1")).done
    assert (await channel.query("R1")).status is TradeStatus.CLOSED  # the patient gave up: unpaid
    assert (await channel.reverse("R1")).done  # idempotent


async def test_reverse_paid_order_returns_money(channel: AlipayChannel) -> None:
    assert (await channel.pay(code_pay("R2"))).status is TradeStatus.SUCCEEDED
    res = await channel.reverse("R2")
    assert res.done and res.error_message == "refund"
    after = await channel.query("R2")
    assert after.status is TradeStatus.REVERSED and after.paid_at is not None
    assert (await channel.reverse("R2")).done
    bill = await channel.download_bill(today())
    kinds = sorted((line.kind, line.amount) for line in bill.lines if line.out_trade_no == "R2")
    assert kinds == [("payment", 1500), ("refund", -1500)]


async def test_reverse_unknown_number_blocks_it(channel: AlipayChannel) -> None:
    assert (await channel.reverse("NEVER-SEEN")).done  # nothing to revoke …
    late = await channel.pay(code_pay("NEVER-SEEN"))  # … and a late-arriving payment cannot charge
    assert late.status is TradeStatus.FAILED and late.error_code == "ACQ.TRADE_HAS_CLOSE"


async def test_reverse_of_refunded_order_is_refused(channel: AlipayChannel) -> None:
    await channel.pay(code_pay("R3"))
    await channel.refund(refund("R3", "R3-1", 100))
    res = await channel.reverse("R3")
    assert not res.done and not res.retry and res.error_code == "ACQ.TRADE_STATUS_ERROR"


async def test_precreate_qr_scan_and_pay(channel: AlipayChannel, control) -> None:  # type: ignore[no-untyped-def]
    res = await channel.pay(order("Q1", attach="visit=42", store_id="MZ02"))
    assert res.status is TradeStatus.PENDING and res.code_url.startswith("https://qr.alipay.com/bax")  # type: ignore[union-attr]
    # a precreated QR is not a trade until the patient scans it
    assert (await channel.query("Q1")).status is TradeStatus.NOT_FOUND
    same = await channel.pay(order("Q1", attach="visit=42", store_id="MZ02"))
    assert same.code_url == res.code_url  # an identical retry gets the same QR
    await control("POST", "/orders/Q1/scan")
    scanned = await channel.query("Q1")
    assert scanned.status is TradeStatus.PENDING and scanned.channel_trade_no
    await control("POST", "/orders/Q1/pay")
    paid = await channel.query("Q1")
    assert paid.status is TradeStatus.SUCCEEDED and paid.paid_amount == 2300
    assert AlipayChannel.unseen_until_opened == {Method.QR, Method.H5}


async def test_close_unscanned_qr_cancels_the_number(channel: AlipayChannel, control) -> None:  # type: ignore[no-untyped-def]
    await channel.pay(order("Q2"))
    await channel.close("Q2")
    assert (await channel.query("Q2")).status is TradeStatus.NOT_FOUND
    await control("POST", "/orders/Q2/pay", expect=404)  # the QR died with the close
    reused = await channel.pay(order("Q2"))
    assert reused.status is TradeStatus.FAILED and reused.error_code == "ACQ.TRADE_HAS_CLOSE"


async def test_close_scanned_qr_then_twice(channel: AlipayChannel, control) -> None:  # type: ignore[no-untyped-def]
    await channel.pay(order("Q3"))
    await control("POST", "/orders/Q3/scan")
    await channel.close("Q3")
    assert (await channel.query("Q3")).status is TradeStatus.CLOSED
    await channel.close("Q3")  # closing twice is fine (ACQ.TRADE_STATUS_ERROR, then the query says closed)
    await control("POST", "/orders/Q3/pay", expect=409)


async def test_close_paid_order_is_invalid_state(channel: AlipayChannel, control) -> None:  # type: ignore[no-untyped-def]
    await channel.pay(order("Q4"))
    await control("POST", "/orders/Q4/pay")
    with pytest.raises(InvalidState):
        await channel.close("Q4")


async def test_order_expiry(channel: AlipayChannel, control, sim) -> None:  # type: ignore[no-untyped-def]
    soon = sim.simulator.now() + dt.timedelta(minutes=5)
    await channel.pay(order("E1", expire_at=soon))
    await channel.pay(order("E2", expire_at=soon))
    await control("POST", "/orders/E2/scan")
    await control("POST", "/clock", {"offset_seconds": 600})
    assert (await channel.query("E1")).status is TradeStatus.NOT_FOUND  # never scanned, now dead
    assert (await channel.query("E2")).status is TradeStatus.CLOSED
    await control("POST", "/orders/E1/pay", expect=404)


async def test_jsapi_mini_program(channel: AlipayChannel, control, sim) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationFailed):
        await channel.pay(order("J0", method=Method.JSAPI))
    res = await channel.pay(order("J1", method=Method.JSAPI, openid="2088102146225135"))
    assert res.status is TradeStatus.PENDING and res.jsapi_params is not None
    truth = sim.simulator.lookup("J1")
    assert res.jsapi_params == {"tradeNO": truth.trade_no, "trade_no": truth.trade_no}
    assert res.channel_trade_no == truth.trade_no and truth.product == "JSAPI_PAY"
    assert (await channel.query("J1")).status is TradeStatus.PENDING  # created at once
    await control("POST", "/orders/J1/pay")
    paid = await channel.query("J1")
    assert paid.status is TradeStatus.SUCCEEDED and paid.payer_id == "2088102146225135"
    other = await channel.pay(order("J2", method=Method.JSAPI, openid="074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5"))
    assert other.status is TradeStatus.PENDING and sim.simulator.lookup("J2").buyer_open_id.startswith("074")


async def test_h5_wap_pay(channel: AlipayChannel, sim, session) -> None:  # type: ignore[no-untyped-def]
    res = await channel.pay(order("H1", method=Method.H5))
    assert res.status is TradeStatus.PENDING and res.h5_url.startswith(sim.gateway_url + "?")  # type: ignore[union-attr]
    params = {k: v[0] for k, v in parse_qs(urlsplit(res.h5_url).query).items()}  # type: ignore[arg-type]
    assert params["method"] == "alipay.trade.wap.pay" and "QUICK_WAP_WAY" in params["biz_content"]
    assert crypto.rsa_verify(sim.merchants[0].app_public, crypto.sign_content(params), params["sign"])
    assert (await channel.query("H1")).status is TradeStatus.NOT_FOUND  # not opened yet
    async with session.get(res.h5_url) as page:
        assert page.status == 200 and "检验费" in await page.text()
    assert (await channel.query("H1")).status is TradeStatus.PENDING
    async with session.post(f"{sim.control_url}/cashier?out_trade_no=H1") as paid:
        assert paid.status == 200
    assert (await channel.query("H1")).status is TradeStatus.SUCCEEDED
    async with session.get(res.h5_url) as again:  # the page of a paid order says so
        assert "交易已被支付" in await again.text()


async def test_full_and_partial_refunds(channel: AlipayChannel, control) -> None:  # type: ignore[no-untyped-def]
    await channel.pay(code_pay("F1", amount=1000))
    part = await channel.refund(refund("F1", "F1-a", 300, 1000))
    assert part.status is RefundStatus.SUCCEEDED and part.refunded_at is not None  # fund_change Y
    assert part.raw["refund_fee"] == "3.00" and part.raw["fund_change"] == "Y"
    assert (await channel.query("F1")).status is TradeStatus.SUCCEEDED  # partly refunded: still paid
    over = await channel.refund(refund("F1", "F1-b", 701, 1000))
    assert over.status is RefundStatus.FAILED and over.error_code == "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"
    assert over.error_message == "退款金额超限"
    rest = await channel.refund(refund("F1", "F1-c", 700, 1000))
    assert rest.status is RefundStatus.SUCCEEDED
    same = await channel.refund(refund("F1", "F1-c", 700, 1000))  # a retry: fund_change N, then the query
    assert same.status is RefundStatus.SUCCEEDED and same.raw["out_request_no"] == "F1-c"
    changed = await channel.refund(refund("F1", "F1-c", 600, 1000))
    assert changed.status is RefundStatus.FAILED and changed.error_code == "ACQ.DISCORDANT_REPEAT_REQUEST"
    assert (await channel.query_refund("F1-a", "F1")).status is RefundStatus.SUCCEEDED
    # refunded in full: the trade is TRADE_CLOSED with a payment time, no money kept
    assert (await channel.query("F1")).status is TradeStatus.REVERSED
    full = await channel.refund(refund("F1", "F1-d", 1, 1000))
    assert full.status is RefundStatus.FAILED and full.error_code == "ACQ.TRADE_STATUS_ERROR"
    truth = await control("GET", "/orders/F1")
    assert truth["refunds"] == ["F1-a", "F1-c"] and truth["refunded"] == "10.00"


async def test_refund_processing_then_settled(channel: AlipayChannel, control) -> None:  # type: ignore[no-untyped-def]
    await channel.pay(code_pay("P1"))
    await control("POST", "/settings", {"refund_settle_seconds": 0.3})
    res = await channel.refund(refund("P1", "P1-r", 500))
    assert res.status is RefundStatus.PROCESSING  # fund_change N, the query has no refund_status yet
    assert (await channel.query_refund("P1-r", "P1")).status is RefundStatus.PROCESSING

    async def settled():  # type: ignore[no-untyped-def]
        r = await channel.query_refund("P1-r", "P1")
        return r if r.status is RefundStatus.SUCCEEDED else None

    assert (await eventually(settled)).refunded_at is not None


async def test_refund_edge_cases(channel: AlipayChannel, control) -> None:  # type: ignore[no-untyped-def]
    missing = await channel.query_refund("NOPE", "NOPE")
    assert missing.status is RefundStatus.FAILED and missing.error_code == "ACQ.TRADE_NOT_EXIST"
    unknown = await channel.refund(refund("NOPE", "X", 1, 1))
    assert unknown.status is RefundStatus.FAILED and unknown.error_code == "ACQ.TRADE_NOT_EXIST"
    await channel.pay(order("UNPAID", method=Method.JSAPI, openid="2088102146225135"))
    unpaid = await channel.refund(refund("UNPAID", "U1", 1, 2300))
    assert unpaid.status is RefundStatus.FAILED and unpaid.error_code == "ACQ.TRADE_STATUS_ERROR"
    await channel.pay(code_pay("EC"))
    never = await channel.query_refund("EC-none", "EC")
    assert never.status is RefundStatus.FAILED and never.error_code == "REFUND_NOT_EXIST"
    await control("POST", "/settings", {"next_refund_errors": ["ACQ.SELLER_BALANCE_NOT_ENOUGH",
                                                               "ACQ.SYSTEM_ERROR", "20000"]})
    poor = await channel.refund(refund("EC", "EC-1", 10))
    assert poor.status is RefundStatus.FAILED and poor.error_message == "卖家余额不足"
    for _ in range(2):
        with pytest.raises(UpstreamUnavailable):
            await channel.refund(refund("EC", "EC-1", 10))
    assert (await channel.refund(refund("EC", "EC-1", 10))).status is RefundStatus.SUCCEEDED
    await control("POST", "/settings", {"next_refund_errors": ["ACQ.NONSENSE"]}, expect=400)


async def test_bill_totals_match_the_simulator(channel: AlipayChannel, control, sim) -> None:  # type: ignore[no-untyped-def]
    for i, amount in enumerate((101, 2500, 99999)):
        await channel.pay(code_pay(f"B{i}", amount=amount))
    await channel.pay(order("BQ", amount=4321))
    await control("POST", "/orders/BQ/pay")
    await channel.refund(refund("B1", "B1-r", 500, 2500))
    await channel.pay(order("UNPAID", amount=7))  # unpaid orders are not in the bill
    bill = await channel.download_bill(today())
    assert bill.total_count == 5 and len(bill.lines) == 5
    assert bill.total_paid == 101 + 2500 + 99999 + 4321
    assert bill.total_refunded == 500
    assert sum(line.amount for line in bill.lines) == bill.total_paid - bill.total_refunded
    fees = {line.out_trade_no: line.fee for line in bill.lines if line.kind == "payment"}
    assert fees["B2"] == sim.simulator.fee(99999) == 600
    assert bill.total_fee == sum(line.fee for line in bill.lines)
    line = next(line for line in bill.lines if line.kind == "refund")
    assert (line.out_refund_no, line.amount, line.out_trade_no) == ("B1-r", -500, "B1")
    assert {ln.merchant_id for ln in bill.lines} == {sim.merchants[0].pid}
    # a day without trades is an empty bill (isp.bill_not_exist), not an error
    empty = await channel.download_bill(today() - dt.timedelta(days=3))
    assert empty.total_count == 0 and empty.lines == []
    # a future day is refused: unknown outcome, never an empty bill
    with pytest.raises(UpstreamProtocolError):
        await channel.download_bill(today() + dt.timedelta(days=2))


async def test_bill_of_a_day_not_over_is_not_ready(channel: AlipayChannel) -> None:
    # the simulator serves a day's bill the same day; without trades it has none, and an
    # empty answer for a day that is not over must not read as "no trades"
    with pytest.raises(UpstreamUnavailable):
        await channel.download_bill(today())


async def test_simulator_clock_moves_bill_date(channel: AlipayChannel, control) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/clock", {"date": "2024-03-01"})
    await channel.pay(code_pay("OLD"))
    await control("DELETE", "/clock")
    bill = await channel.download_bill(dt.date(2024, 3, 1))
    assert [line.out_trade_no for line in bill.lines] == ["OLD"]
    assert bill.lines[0].trade_time.date() == dt.date(2024, 3, 1)


async def test_wrong_app_key_gets_invalid_signature(make_channel) -> None:  # type: ignore[no-untyped-def]
    other = crypto.private_key_pem(crypto.generate_private_key())
    res = await make_channel(app_private_key=other).pay(code_pay("K1"))
    assert res.status is TradeStatus.FAILED and res.error_code == "isv.invalid-signature"
    assert "验签出错" in (res.error_message or "")


async def test_wrong_alipay_key_is_protocol_error(make_channel, sim) -> None:  # type: ignore[no-untyped-def]
    # application 0 trusting application 1's Alipay key: every answer looks forged
    channel = make_channel(alipay_public_key=sim.merchant_configs()[1]["alipay_public_key"])
    with pytest.raises(UpstreamProtocolError):
        await channel.pay(code_pay("K2"))
    with pytest.raises(UpstreamProtocolError):
        await channel.query("K2")


async def test_second_merchant_is_separate(make_channel) -> None:  # type: ignore[no-untyped-def]
    a, b = make_channel(0), make_channel(1)
    await a.pay(code_pay("M1"))
    assert (await b.query("M1")).status is TradeStatus.NOT_FOUND
    assert (await b.pay(code_pay("M1"))).status is TradeStatus.SUCCEEDED


async def test_service_provider_mode(make_channel, sim, control) -> None:  # type: ignore[no-untyped-def]
    m = sim.merchants[0]
    channel = make_channel(app_auth_token=m.sub.app_auth_token, seller_id=m.sub.pid)
    res = await channel.pay(code_pay("SP1"))
    assert res.status is TradeStatus.SUCCEEDED
    assert (await control("GET", "/orders/SP1"))["seller_id"] == m.sub.pid
    assert (await make_channel().query("SP1")).status is TradeStatus.NOT_FOUND  # not the app's own
    r = await channel.refund(refund("SP1", "SP1-r", 5))
    assert r.status is RefundStatus.SUCCEEDED
    bill = await channel.download_bill(today())
    assert {line.merchant_id for line in bill.lines} == {m.sub.pid}
    bad = make_channel(app_auth_token="202405BBnot-a-token")
    refused = await bad.pay(code_pay("SP2"))
    assert refused.status is TradeStatus.FAILED and refused.error_code == "aop.invalid-app-auth-token"
    with pytest.raises(UpstreamProtocolError):
        await bad.query("SP1")
