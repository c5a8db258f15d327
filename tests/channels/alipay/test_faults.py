"""Broken upstream calls: the adapter says "unknown", never "failed"."""
from __future__ import annotations

import time

import pytest

from channels.alipay import AlipayChannel
from gateway.channel import Method, PayRequest, RefundRequest, TradeStatus
from gateway.errors import UpstreamProtocolError, UpstreamTimeout, UpstreamUnavailable

from .conftest import CODE, today

PAY = "alipay.trade.pay"


def code_pay(no: str, auth_code: str = CODE) -> PayRequest:
    return PayRequest(out_trade_no=no, amount=800, subject="药费", method=Method.CODE, auth_code=auth_code)


async def test_bad_signature_is_protocol_error(channel: AlipayChannel, control) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/faults", {"kind": "bad_signature", "api": PAY, "count": 1})
    with pytest.raises(UpstreamProtocolError):
        await channel.pay(code_pay("BS1"))
    # the charge went through; only the answer was unverifiable
    assert (await channel.query("BS1")).status is TradeStatus.SUCCEEDED


async def test_missing_signature_is_protocol_error(channel: AlipayChannel, control) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/faults", {"kind": "no_signature", "api": "alipay.trade.query"})
    with pytest.raises(UpstreamProtocolError):
        await channel.query("ANY")
    # a signed-looking decline must not be trusted either
    await control("DELETE", "/faults")
    await control("POST", "/faults", {"kind": "bad_signature", "method": PAY})  # "method" = the API name
    with pytest.raises(UpstreamProtocolError):
        await channel.pay(code_pay("BS2", "286543210987659011"))  # a decline, unverifiable


async def test_timeout_is_upstream_timeout(make_channel, control) -> None:  # type: ignore[no-untyped-def]
    channel = make_channel(timeout_seconds=0.5)
    await control("POST", "/faults", {"kind": "timeout", "api": PAY, "delay_seconds": 3, "count": 1})
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout):
        await channel.pay(code_pay("TO1"))
    assert time.monotonic() - started < 2.0
    assert (await channel.query("TO1")).status is TradeStatus.NOT_FOUND  # before: nothing happened


async def test_timeout_after_charge(make_channel, control) -> None:  # type: ignore[no-untyped-def]
    channel = make_channel(timeout_seconds=0.5)
    await control("POST", "/faults", {"kind": "timeout", "api": PAY, "delay_seconds": 3, "when": "after"})
    with pytest.raises(UpstreamTimeout):
        await channel.pay(code_pay("TO2"))
    assert (await channel.query("TO2")).status is TradeStatus.SUCCEEDED


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_is_unavailable(channel: AlipayChannel, control, status: int) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/faults", {"kind": "http_error", "status": status, "api": PAY, "count": 1})
    with pytest.raises(UpstreamUnavailable):
        await channel.pay(code_pay("E1"))
    assert (await channel.query("E1")).status is TradeStatus.NOT_FOUND
    assert (await channel.pay(code_pay("E1"))).status is TradeStatus.SUCCEEDED  # fault used up


async def test_connection_reset_is_unavailable(channel: AlipayChannel, control) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/faults", {"kind": "reset", "api": PAY, "when": "after", "count": 1})
    with pytest.raises(UpstreamUnavailable):
        await channel.pay(code_pay("RS1"))
    truth = await control("GET", "/orders/RS1")
    assert truth["trade_status"] == "TRADE_SUCCESS"  # charged, answer lost


async def test_reads_retry_on_connection_errors(channel: AlipayChannel, control) -> None:  # type: ignore[no-untyped-def]
    await channel.pay(code_pay("RT1"))
    await control("POST", "/faults", {"kind": "reset", "api": "alipay.trade.query", "count": 2})
    assert (await channel.query("RT1")).status is TradeStatus.SUCCEEDED  # the third attempt answers
    assert (await control("GET", "/faults"))[0]["fired"] == 2
    await control("POST", "/faults", {"kind": "reset", "api": "alipay.trade.query"})  # persistent
    with pytest.raises(UpstreamUnavailable):
        await channel.query("RT1")


async def test_writes_are_not_retried(channel: AlipayChannel, control) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/faults", {"kind": "reset", "api": PAY, "count": 1})
    with pytest.raises(UpstreamUnavailable):
        await channel.pay(code_pay("NR1"))
    assert (await control("GET", "/faults"))[0]["fired"] == 1


async def test_latency_within_timeout_is_fine(channel: AlipayChannel, control) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/faults", {"kind": "latency", "delay_seconds": 0.3})
    started = time.monotonic()
    assert (await channel.pay(code_pay("L1"))).status is TradeStatus.SUCCEEDED
    assert time.monotonic() - started >= 0.3


async def test_fault_rate_and_filters(channel: AlipayChannel, control) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/faults", {"kind": "http_error", "api": "alipay.trade.refund"})
    await control("POST", "/faults", {"kind": "http_error", "rate": 0.0})  # never fires
    await control("POST", "/faults", {"kind": "http_error", "http_method": "GET"})  # the adapter POSTs
    await control("POST", "/faults", {"kind": "http_error", "path": "/downloadBillFile"})
    assert (await channel.pay(code_pay("FR1"))).status is TradeStatus.SUCCEEDED
    bad = await control("POST", "/faults", {"kind": "nonsense"}, expect=400)
    assert "kind" in bad["error"]
    await control("POST", "/faults", {"kind": "http_error", "status": 404}, expect=400)
    await control("POST", "/faults", {"kind": "latency", "rate": 2}, expect=400)
    listed = await control("GET", "/faults")
    assert [f["fired"] for f in listed] == [0, 0, 0, 0]
    assert listed[2]["http_method"] == "GET" and listed[0]["api"] == "alipay.trade.refund"
    await control("DELETE", f"/faults/{listed[0]['id']}")
    await control("DELETE", "/faults/nope", expect=404)
    assert len(await control("GET", "/faults")) == 3
    await control("DELETE", "/faults")
    assert await control("GET", "/faults") == []


async def test_5xx_on_refund_close_cancel(channel: AlipayChannel, control) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/faults", {"kind": "http_error", "status": 503, "http_method": "POST"})
    with pytest.raises(UpstreamUnavailable):
        await channel.refund(RefundRequest(out_trade_no="X", out_refund_no="Y", amount=1, total=1))
    with pytest.raises(UpstreamUnavailable):
        await channel.close("X")
    with pytest.raises(UpstreamUnavailable):
        await channel.reverse("X")


async def test_refund_answer_lost_then_retry_is_idempotent(channel: AlipayChannel, control) -> None:  # type: ignore[no-untyped-def]
    await channel.pay(code_pay("RF1"))
    await control("POST", "/faults", {"kind": "reset", "api": "alipay.trade.refund", "when": "after", "count": 1})
    req = RefundRequest(out_trade_no="RF1", out_refund_no="RF1-a", amount=800, total=800)
    with pytest.raises(UpstreamUnavailable):
        await channel.refund(req)
    again = await channel.refund(req)  # the same out_request_no: no second refund
    assert again.status.value == "succeeded"
    assert (await control("GET", "/orders/RF1"))["refunded"] == "8.00"


async def test_bill_download_faults(channel: AlipayChannel, control) -> None:  # type: ignore[no-untyped-def]
    await channel.pay(code_pay("BD1"))
    await control("POST", "/faults", {"kind": "reset", "path": "/downloadBillFile", "count": 1})
    bill = await channel.download_bill(today())  # a read: retried
    assert bill.total_paid == 800
    await control("POST", "/faults", {"kind": "http_error", "path": "/downloadBillFile", "count": 3})
    with pytest.raises(UpstreamUnavailable):
        await channel.download_bill(today())
    await control("POST", "/faults", {"kind": "bad_signature",
                                      "api": "alipay.data.dataservice.bill.downloadurl.query"})
    with pytest.raises(UpstreamProtocolError):
        await channel.download_bill(today())
