"""The adapter against the simulator, over real HTTP on loopback."""
from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp

import pytest

from channels.unionpay import UnionPayChannel, crypto
from channels.unionpay.simulator import UnionPaySimHandle
from gateway.channel import (
    Capability,
    Method,
    PayRequest,
    RefundRequest,
    RefundResult,
    RefundStatus,
    TradeStatus,
)
from gateway.errors import NotSupported, UpstreamProtocolError, UpstreamUnavailable, ValidationFailed

from .conftest import Control, MakeChannel, NotifySink, code, eventually, gateway_id, plain_id


def code_pay(no: str, auth_code: str | None = None, amount: int = 1500, **kw: Any) -> PayRequest:
    return PayRequest(out_trade_no=no, amount=amount, subject="门诊缴费-挂号费", method=Method.CODE,
                      auth_code=auth_code or code(), device_id="POS-01", **kw)


def refund(no: str, rno: str, amount: int, total: int = 1500, **kw: Any) -> RefundRequest:
    return RefundRequest(out_trade_no=no, out_refund_no=rno, amount=amount, total=total, **kw)


def test_channel_class_facts() -> None:
    c = UnionPayChannel
    assert (c.id, c.name_zh, c.name_en) == ("unionpay", "银联云闪付", "UnionPay QuickPass")
    assert c.capabilities == {Capability.CODE, Capability.REFUND, Capability.PARTIAL_REFUND, Capability.REVERSE,
                              Capability.BILL}
    assert c.matches_auth_code("6212345678901234567")
    assert not c.matches_auth_code("621234567890123456")  # 18 digits
    assert not c.matches_auth_code("6312345678901234567")
    assert not c.matches_auth_code("134567890123456789")
    assert "62" in c.auth_code_hint and "19" in c.auth_code_hint
    assert list(c.code_poll_schedule) == sorted(c.code_poll_schedule) and c.code_poll_schedule[-1] <= 60


async def test_consume_then_query_success(channel: UnionPayChannel, control: Control) -> None:
    no = gateway_id()
    res = await channel.pay(code_pay(no))
    # accepted, then the adapter's own follow-up query found the final result
    assert res.status is TradeStatus.SUCCEEDED
    assert res.paid_amount == 1500 and res.channel_trade_no and res.paid_at and res.payer_id
    assert re.fullmatch(r"621700\*{6}\d{4}", res.payer_id)
    assert "signature" not in res.raw and "signPubKeyCert" not in res.raw
    truth = await control("GET", f"/orders/{no}")
    assert truth["state"] == "SUCCESS" and truth["query_id"] == res.channel_trade_no
    assert truth["txn_time"] == channel.clock.known(no)
    again = await channel.query(no)
    assert again.status is TradeStatus.SUCCEEDED and again.channel_trade_no == res.channel_trade_no


async def test_consume_accepted_is_paying_without_follow_up(make_channel: MakeChannel, control: Control) -> None:
    channel = make_channel(query_after_accept=False)
    no = plain_id()  # no embedded time: the adapter remembers the txnTime it sent
    res = await channel.pay(code_pay(no))
    assert res.status is TradeStatus.PAYING and res.error_code is None
    assert (await channel.query(no)).status is TradeStatus.SUCCEEDED
    # another adapter instance cannot query it: the txnTime is unknown there
    with pytest.raises(UpstreamProtocolError, match="txnTime"):
        await make_channel().query(no)


async def test_gateway_ids_need_no_memory(make_channel: MakeChannel) -> None:
    no = gateway_id()
    assert (await make_channel().pay(code_pay(no))).status is TradeStatus.SUCCEEDED
    assert (await make_channel().query(no)).status is TradeStatus.SUCCEEDED  # a fresh instance derives it


async def test_processing_then_success(channel: UnionPayChannel, control: Control) -> None:
    c = code()
    await control("POST", "/scripts", {"auth_code": c, "outcome": "PROCESSING", "then": "success",
                                       "after_seconds": 0.4})
    no = gateway_id()
    res = await channel.pay(code_pay(no, c))
    assert res.status is TradeStatus.PAYING and res.error_code == "05"
    assert (await channel.query(no)).status is TradeStatus.PAYING
    await asyncio.sleep(0.5)
    done = await channel.query(no)
    assert done.status is TradeStatus.SUCCEEDED and done.paid_amount == 1500


async def test_magic_processing_code_and_patient_confirms(channel: UnionPayChannel, control: Control) -> None:
    no = gateway_id()
    assert (await channel.pay(code_pay(no, code("9004")))).status is TradeStatus.PAYING
    await control("POST", f"/orders/{no}/pay")
    assert (await channel.query(no)).status is TradeStatus.SUCCEEDED


async def test_large_amount_needs_password(channel: UnionPayChannel) -> None:
    assert (await channel.pay(code_pay(gateway_id(), amount=100_001))).status is TradeStatus.PAYING


@pytest.mark.parametrize("last4,expect", [("9011", "64"), ("9012", "63"), ("9013", "65")])
async def test_declined_after_acceptance(channel: UnionPayChannel, last4: str, expect: str) -> None:
    no = gateway_id()
    res = await channel.pay(code_pay(no, code(last4)))
    assert res.status is TradeStatus.FAILED and res.error_code == expect and res.error_message
    q = await channel.query(no)
    assert q.status is TradeStatus.FAILED and q.error_code == expect
    if expect == "64":
        assert q.error_message == "卡上的余额不足"


@pytest.mark.parametrize("auth_code,expect", [(code("9014"), "30"), (code("9015"), "38"),
                                              ("6212345", "10"), ("1345678901234567890", "10")])
async def test_refused_at_once(channel: UnionPayChannel, auth_code: str, expect: str) -> None:
    no = gateway_id()
    res = await channel.pay(code_pay(no, auth_code))
    assert res.status is TradeStatus.FAILED and res.error_code == expect and res.error_message
    assert (await channel.query(no)).status is TradeStatus.NOT_FOUND  # nothing was recorded


async def test_scripted_decline_by_control(channel: UnionPayChannel, control: Control) -> None:
    await control("POST", "/scripts", {"outcome": "DECLINE", "code": "64"})  # the next code, whatever it is
    assert (await channel.pay(code_pay(gateway_id()))).error_code == "64"
    assert (await channel.pay(code_pay(gateway_id()))).status is TradeStatus.SUCCEEDED  # used up


async def test_in_doubt_and_busy_answers(channel: UnionPayChannel) -> None:
    charged, lost = gateway_id(), gateway_id()
    res = await channel.pay(code_pay(charged, code("9021")))  # 03, but charged
    assert res.status is TradeStatus.PAYING and res.error_code == "03"
    assert (await channel.query(charged)).status is TradeStatus.SUCCEEDED
    res = await channel.pay(code_pay(lost, code("9022")))  # 03, nothing recorded
    assert res.status is TradeStatus.PAYING
    assert (await channel.query(lost)).status is TradeStatus.NOT_FOUND
    busy = gateway_id()
    with pytest.raises(UpstreamUnavailable):
        await channel.pay(code_pay(busy, code("9023")))
    assert (await channel.query(busy)).status is TradeStatus.NOT_FOUND


async def test_duplicate_consume_answers_with_its_state(channel: UnionPayChannel) -> None:
    no = gateway_id()
    first = await channel.pay(code_pay(no))
    again = await channel.pay(code_pay(no))  # same orderId and txnTime: 12 重复交易 → query
    assert again.status is TradeStatus.SUCCEEDED and again.channel_trade_no == first.channel_trade_no


async def test_undo_same_day(channel: UnionPayChannel, control: Control, sink: NotifySink) -> None:
    no = gateway_id()
    assert (await channel.pay(code_pay(no))).status is TradeStatus.SUCCEEDED
    res = await channel.reverse(no)
    assert res.done and res.error_code is None
    undo = await control("GET", f"/refunds/{no}UD")
    assert undo["kind"] == "undo" and undo["state"] == "SUCCESS" and undo["orig_order_id"] == no
    assert undo["txn_time"] == channel.clock.known(no)  # the undo reuses the consume's txnTime
    assert (await channel.query(no)).status is TradeStatus.REVERSED
    assert (await channel.reverse(no)).done  # idempotent: the undo is found again
    assert len(await control("GET", "/orders?kind=undo")) == 1
    assert (await channel.reverse(gateway_id())).done  # nothing to revoke
    # the undo notify reports the consume as revoked
    events = [(await channel.parse_notify(*await sink.next()))[0] for _ in range(2)]
    assert [(e.out_trade_no, e.trade.status) for e in events if e.trade] == [
        (no, TradeStatus.SUCCEEDED), (no, TradeStatus.REVERSED)]


async def test_undo_while_processing_then_done(channel: UnionPayChannel, control: Control) -> None:
    await control("POST", "/scripts", {"outcome": "PROCESSING", "then": "fail", "code": "69", "after_seconds": 0.3})
    no = gateway_id()
    assert (await channel.pay(code_pay(no))).status is TradeStatus.PAYING
    first = await channel.reverse(no)
    assert (first.done, first.retry, first.error_code) == (False, True, "05")
    await asyncio.sleep(0.4)
    second = await channel.reverse(no)  # the consume failed: no money kept
    assert second.done and second.error_code == "69"


async def test_undo_refused_after_refund_or_next_day(channel: UnionPayChannel, control: Control) -> None:
    await control("POST", "/settings", {"refund_settle_seconds": 0})
    refunded = gateway_id()
    await channel.pay(code_pay(refunded))
    await channel.refund(refund(refunded, gateway_id("R"), 100))
    res = await channel.reverse(refunded)
    assert (res.done, res.retry, res.error_code) == (False, False, "45")
    yesterday = gateway_id()
    await channel.pay(code_pay(yesterday))
    await control("POST", "/clock", {"offset_seconds": 86400})
    res = await channel.reverse(yesterday)
    assert (res.done, res.retry, res.error_code) == (False, False, "35") and "当日" in (res.error_message or "")


async def test_undo_without_back_url_is_refused_locally(make_channel: MakeChannel, session: aiohttp.ClientSession,
                                                        sim: UnionPaySimHandle) -> None:
    payer = make_channel()
    no = gateway_id()
    await payer.pay(code_pay(no))
    fresh = UnionPayChannel(sim.merchant_configs()[0], session)  # no back_url configured, nothing learned
    res = await fresh.reverse(no)
    assert (res.done, res.retry, res.error_code) == (False, False, "NO_BACK_URL")


async def test_full_and_partial_refunds(channel: UnionPayChannel, control: Control, sink: NotifySink) -> None:
    no = gateway_id()
    paid = await channel.pay(code_pay(no, amount=1000))
    ra, rb, rc, rd = (gateway_id("R") for _ in range(4))
    part = await channel.refund(refund(no, ra, 300, 1000, channel_trade_no=paid.channel_trade_no))
    assert part.status is RefundStatus.PROCESSING and part.channel_refund_no
    done = await eventually(lambda: _refund_done(channel, ra, no))
    assert done.refunded_at is not None and done.channel_refund_no == part.channel_refund_no
    assert (await channel.query(no)).status is TradeStatus.SUCCEEDED  # a refunded consume is still paid
    # more than what is left: refused with the service's code
    over = await channel.refund(refund(no, rb, 701, 1000))
    assert over.status is RefundStatus.FAILED and over.error_code == "36"
    assert over.error_message == "与原交易信息不符"
    rest = await channel.refund(refund(no, rc, 700, 1000))
    assert rest.status is RefundStatus.PROCESSING
    same = await channel.refund(refund(no, rc, 700, 1000))  # a retry: 12 重复交易 → that refund
    assert same.channel_refund_no == rest.channel_refund_no
    changed = await channel.refund(refund(no, rc, 600, 1000))
    assert changed.status is RefundStatus.FAILED and changed.error_code == "12"
    await eventually(lambda: _refund_done(channel, rc, no))
    full = await channel.refund(refund(no, rd, 1, 1000))
    assert full.status is RefundStatus.FAILED and full.error_code == "45"
    truth = await control("GET", f"/orders/{no}")
    assert truth["refunded"] == 1000 and truth["refunds"] == [ra, rc]
    events = {}
    for _ in range(3):
        event, _ = await channel.parse_notify(*await sink.next())
        events[event.out_refund_no or event.out_trade_no] = event
    assert events[ra].refund.status is RefundStatus.SUCCEEDED and events[ra].out_trade_no == no
    assert events[rc].refund.status is RefundStatus.SUCCEEDED


async def _refund_done(channel: UnionPayChannel, rno: str, no: str) -> RefundResult | None:
    r = await channel.query_refund(rno, no)
    return r if r.status is RefundStatus.SUCCEEDED else None


async def test_refund_edge_cases(channel: UnionPayChannel, control: Control) -> None:
    missing = await channel.query_refund(gateway_id("R"), gateway_id())
    assert missing.status is RefundStatus.FAILED and missing.error_code == "34"
    unknown = await channel.refund(refund(gateway_id(), gateway_id("R"), 1))
    assert unknown.status is RefundStatus.FAILED and unknown.error_code == "34"
    pending = gateway_id()
    await channel.pay(code_pay(pending, code("9004")))
    unpaid = await channel.refund(refund(pending, gateway_id("R"), 1))
    assert unpaid.status is RefundStatus.FAILED and unpaid.error_code == "05"
    await control("POST", f"/orders/{pending}/fail", {"code": "69"})
    # the channel's refusal when the adapter is handed the queryId of an unpaid consume
    q = (await control("GET", f"/orders/{pending}"))["query_id"]
    refused = await channel.refund(refund(pending, gateway_id("R"), 1, channel_trade_no=q))
    assert refused.status is RefundStatus.FAILED and refused.error_code == "35"
    # a refund the issuer turns down, seen by the follow-up query
    await control("POST", "/settings", {"next_refund_result": ["60"], "refund_settle_seconds": 0})
    no = gateway_id()
    await channel.pay(code_pay(no))
    bad = await channel.refund(refund(no, gateway_id("R"), 10))
    assert bad.status is RefundStatus.FAILED and bad.error_code == "60"
    assert (await control("GET", f"/orders/{no}"))["refunded"] == 0  # the money is refundable again
    ok = await channel.refund(refund(no, plain_id("RF"), 1500))
    assert ok.status is RefundStatus.SUCCEEDED


async def test_local_validation(make_channel: MakeChannel, session: aiohttp.ClientSession,
                                sim: UnionPaySimHandle) -> None:
    channel = make_channel()
    with pytest.raises(NotSupported):
        await channel.pay(PayRequest(out_trade_no=gateway_id(), amount=1, subject="x", method=Method.QR))
    with pytest.raises(ValidationFailed):
        await channel.pay(code_pay("C1"))  # not an ACP orderId
    with pytest.raises(ValidationFailed):
        await channel.pay(PayRequest(out_trade_no=gateway_id(), amount=1, subject="x", method=Method.CODE))
    with pytest.raises(ValidationFailed):
        await channel.pay(code_pay(gateway_id(), attach="a=b&c"))
    bare = UnionPayChannel(sim.merchant_configs()[0], session)
    with pytest.raises(ValidationFailed, match="backUrl"):
        await bare.pay(code_pay(gateway_id()))
    with pytest.raises(ValidationFailed):
        await channel.refund(refund(gateway_id(), "R-1", 1))


async def test_wrong_merchant_key_gets_signature_refusal(make_channel: MakeChannel) -> None:
    channel = make_channel(private_key=crypto.private_key_pem(crypto.generate_private_key()))
    res = await channel.pay(code_pay(gateway_id()))
    assert res.status is TradeStatus.FAILED and res.error_code == "11" and res.error_message == "验证签名失败"


async def test_wrong_unionpay_key_is_protocol_error(make_channel: MakeChannel) -> None:
    channel = make_channel(unionpay_public_key=crypto.public_key_pem(crypto.generate_private_key()))
    with pytest.raises(UpstreamProtocolError):
        await channel.pay(code_pay(gateway_id()))


async def test_second_merchant_is_separate(make_channel: MakeChannel) -> None:
    a, b = make_channel(0), make_channel(1)
    no = gateway_id()
    await a.pay(code_pay(no))
    assert (await b.query(no)).status is TradeStatus.NOT_FOUND
    assert (await b.pay(code_pay(no))).status is TradeStatus.SUCCEEDED
