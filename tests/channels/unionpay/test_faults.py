"""Broken upstream calls: the adapter says "unknown", never "failed"."""
from __future__ import annotations

import time

import pytest

from channels.unionpay import UnionPayChannel
from gateway.channel import Method, PayRequest, RefundRequest, TradeStatus
from gateway.errors import UpstreamProtocolError, UpstreamTimeout, UpstreamUnavailable

from .conftest import Control, MakeChannel, code, cst_today, gateway_id

BACK = "/gateway/api/backTransReq.do"
QUERY = "/gateway/api/queryTrans.do"


def code_pay(no: str, auth_code: str | None = None) -> PayRequest:
    return PayRequest(out_trade_no=no, amount=800, subject="药费", method=Method.CODE, auth_code=auth_code or code())


async def test_bad_answer_signature_is_protocol_error(channel: UnionPayChannel, control: Control) -> None:
    no = gateway_id()
    await control("POST", "/faults", {"kind": "bad_signature", "path": BACK, "count": 1})
    with pytest.raises(UpstreamProtocolError, match="not signed"):
        await channel.pay(code_pay(no))
    # the consume went through; only the answer was unverifiable
    assert (await channel.query(no)).status is TradeStatus.SUCCEEDED


async def test_missing_signature_is_protocol_error(channel: UnionPayChannel, control: Control) -> None:
    await control("POST", "/faults", {"kind": "no_signature", "path": QUERY})
    with pytest.raises(UpstreamProtocolError):
        await channel.query(gateway_id())
    # an unverifiable decline must not be trusted either
    await control("DELETE", "/faults")
    await control("POST", "/faults", {"kind": "bad_signature", "path": BACK})
    with pytest.raises(UpstreamProtocolError):
        await channel.pay(code_pay(gateway_id(), code("9014")))  # 30, unverifiable


async def test_timeout_before_is_upstream_timeout(make_channel: MakeChannel, control: Control) -> None:
    channel = make_channel(timeout_seconds=0.5)
    no = gateway_id()
    await control("POST", "/faults", {"kind": "timeout", "path": BACK, "delay_seconds": 3, "count": 1})
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout):
        await channel.pay(code_pay(no))
    assert time.monotonic() - started < 2.0
    assert (await channel.query(no)).status is TradeStatus.NOT_FOUND  # nothing happened upstream


async def test_timeout_after_charge(make_channel: MakeChannel, control: Control) -> None:
    channel = make_channel(timeout_seconds=0.5)
    no = gateway_id()
    await control("POST", "/faults", {"kind": "timeout", "path": BACK, "delay_seconds": 3, "when": "after"})
    with pytest.raises(UpstreamTimeout):
        await channel.pay(code_pay(no))
    assert (await channel.query(no)).status is TradeStatus.SUCCEEDED


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_is_unavailable(channel: UnionPayChannel, control: Control, status: int) -> None:
    no = gateway_id()
    await control("POST", "/faults", {"kind": "http_error", "status": status, "path": BACK, "count": 1})
    with pytest.raises(UpstreamUnavailable):
        await channel.pay(code_pay(no))
    assert (await channel.query(no)).status is TradeStatus.NOT_FOUND
    assert (await channel.pay(code_pay(no))).status is TradeStatus.SUCCEEDED  # fault used up


async def test_5xx_after_the_refund_took_effect(channel: UnionPayChannel, control: Control) -> None:
    await control("POST", "/settings", {"refund_settle_seconds": 0})
    no, rno = gateway_id(), gateway_id("R")
    await channel.pay(code_pay(no))
    await control("POST", "/faults", {"kind": "http_error", "status": 502, "path": BACK, "when": "after",
                                      "count": 1})
    with pytest.raises(UpstreamUnavailable):
        await channel.refund(RefundRequest(out_trade_no=no, out_refund_no=rno, amount=800, total=800))
    assert (await channel.query_refund(rno, no)).status.value == "succeeded"


async def test_connection_reset_is_unavailable(channel: UnionPayChannel, control: Control) -> None:
    no = gateway_id()
    await control("POST", "/faults", {"kind": "reset", "path": BACK, "when": "after", "count": 1})
    with pytest.raises(UpstreamUnavailable):
        await channel.pay(code_pay(no))
    assert (await control("GET", f"/orders/{no}"))["state"] == "SUCCESS"  # charged, answer lost


async def test_reads_retry_on_connection_errors(channel: UnionPayChannel, control: Control) -> None:
    no = gateway_id()
    await channel.pay(code_pay(no))
    await control("POST", "/faults", {"kind": "reset", "path": QUERY, "count": 2})
    assert (await channel.query(no)).status is TradeStatus.SUCCEEDED  # the third attempt answers
    assert (await control("GET", "/faults"))[0]["fired"] == 2
    await control("POST", "/faults", {"kind": "reset", "path": QUERY})  # persistent
    with pytest.raises(UpstreamUnavailable):
        await channel.query(no)


async def test_writes_are_not_retried(channel: UnionPayChannel, control: Control) -> None:
    await control("POST", "/faults", {"kind": "reset", "path": BACK, "count": 1})
    with pytest.raises(UpstreamUnavailable):
        await channel.pay(code_pay(gateway_id()))
    assert (await control("GET", "/faults"))[0]["fired"] == 1


async def test_follow_up_query_failure_leaves_paying(channel: UnionPayChannel, control: Control) -> None:
    no = gateway_id()
    await control("POST", "/faults", {"kind": "http_error", "path": QUERY, "count": 1})
    res = await channel.pay(code_pay(no))  # accepted; the follow-up query broke
    assert res.status is TradeStatus.PAYING
    assert (await channel.query(no)).status is TradeStatus.SUCCEEDED


async def test_undo_faults(channel: UnionPayChannel, control: Control) -> None:
    no = gateway_id()
    await channel.pay(code_pay(no))
    await control("POST", "/faults", {"kind": "timeout", "path": BACK, "delay_seconds": 5, "when": "after",
                                      "count": 1})
    with pytest.raises(UpstreamTimeout):
        await channel.reverse(no)
    # the undo was accepted before the answer was lost: the next reverse finds it
    assert (await channel.reverse(no)).done
    assert (await channel.query(no)).status is TradeStatus.REVERSED


async def test_file_transfer_faults(channel: UnionPayChannel, control: Control) -> None:
    await control("POST", "/faults", {"kind": "http_error", "status": 503, "path": "/", "count": 1})
    with pytest.raises(UpstreamUnavailable):
        await channel.download_bill(cst_today())
    await control("POST", "/faults", {"kind": "bad_signature", "path": "/", "count": 1})
    with pytest.raises(UpstreamProtocolError):
        await channel.download_bill(cst_today())
    bill = await channel.download_bill(cst_today())
    assert bill.total_count == 0


async def test_latency_within_timeout_is_fine(channel: UnionPayChannel, control: Control) -> None:
    await control("POST", "/faults", {"kind": "latency", "delay_seconds": 0.3, "path": BACK})
    started = time.monotonic()
    assert (await channel.pay(code_pay(gateway_id()))).status is TradeStatus.SUCCEEDED
    assert time.monotonic() - started >= 0.3


async def test_fault_rate_and_filters(channel: UnionPayChannel, control: Control) -> None:
    await control("POST", "/faults", {"kind": "http_error", "path": "/never-called", "rate": 1.0})
    await control("POST", "/faults", {"kind": "http_error", "rate": 0.0})  # never fires
    assert (await channel.pay(code_pay(gateway_id()))).status is TradeStatus.SUCCEEDED
    bad = await control("POST", "/faults", {"kind": "nonsense"}, expect=400)
    assert "kind" in bad["error"]
    await control("POST", "/faults", {"kind": "http_error", "status": 404}, expect=400)
    await control("POST", "/faults", {"kind": "latency", "rate": 2}, expect=400)
    listed = await control("GET", "/faults")
    await control("DELETE", f"/faults/{listed[0]['id']}")
    assert len(await control("GET", "/faults")) == 1
    await control("DELETE", "/faults/nope", expect=404)
    await control("DELETE", "/faults")
    assert await control("GET", "/faults") == []
    # the control surface itself is never faulted
    await control("POST", "/faults", {"kind": "reset"})
    assert (await control("GET", "/"))["channel"] == "unionpay"
