"""Broken upstream calls: the adapter says "unknown", never "failed"."""
from __future__ import annotations

import time

import pytest

from channels.wechatpay import WeChatPayChannel
from gateway.channel import Method, PayRequest, RefundRequest, TradeStatus
from gateway.errors import UpstreamProtocolError, UpstreamTimeout, UpstreamUnavailable

CODEPAY = "/v3/pay/transactions/codepay"


def code_pay(no: str) -> PayRequest:
    return PayRequest(out_trade_no=no, amount=800, subject="药费", method=Method.CODE,
                      auth_code="114567890123456789")


async def test_bad_response_signature_is_protocol_error(channel: WeChatPayChannel, control) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/faults", {"kind": "bad_signature", "path": CODEPAY, "count": 1})
    with pytest.raises(UpstreamProtocolError):
        await channel.pay(code_pay("BS1"))
    # the charge went through; only the answer was unverifiable
    assert (await channel.query("BS1")).status is TradeStatus.SUCCEEDED


async def test_missing_signature_is_protocol_error(channel: WeChatPayChannel, control) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/faults", {"kind": "no_signature", "path": "/out-trade-no/", "method": "GET"})
    with pytest.raises(UpstreamProtocolError):
        await channel.query("ANY")
    # a signed-looking decline must not be trusted either
    await control("DELETE", "/faults")
    await control("POST", "/faults", {"kind": "bad_signature", "path": CODEPAY})
    with pytest.raises(UpstreamProtocolError):
        await channel.pay(PayRequest(out_trade_no="BS2", amount=1, subject="x", method=Method.CODE,
                                     auth_code="134567890123459011"))  # NOTENOUGH, unverifiable


async def test_timeout_is_upstream_timeout(make_channel, control) -> None:  # type: ignore[no-untyped-def]
    channel = make_channel(timeout_seconds=0.5)
    await control("POST", "/faults", {"kind": "timeout", "path": CODEPAY, "delay_seconds": 3, "count": 1})
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout):
        await channel.pay(code_pay("TO1"))
    assert time.monotonic() - started < 2.0
    # before-fault: nothing happened upstream
    assert (await channel.query("TO1")).status is TradeStatus.NOT_FOUND


async def test_timeout_after_charge(make_channel, control) -> None:  # type: ignore[no-untyped-def]
    channel = make_channel(timeout_seconds=0.5)
    await control("POST", "/faults", {"kind": "timeout", "path": CODEPAY, "delay_seconds": 3, "when": "after"})
    with pytest.raises(UpstreamTimeout):
        await channel.pay(code_pay("TO2"))
    assert (await channel.query("TO2")).status is TradeStatus.SUCCEEDED


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_is_unavailable(channel: WeChatPayChannel, control, status: int) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/faults", {"kind": "http_error", "status": status, "path": CODEPAY, "count": 1})
    with pytest.raises(UpstreamUnavailable):
        await channel.pay(code_pay("E1"))
    assert (await channel.query("E1")).status is TradeStatus.NOT_FOUND
    assert (await channel.pay(code_pay("E1"))).status is TradeStatus.SUCCEEDED  # fault used up


async def test_connection_reset_is_unavailable(channel: WeChatPayChannel, control) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/faults", {"kind": "reset", "path": CODEPAY, "when": "after", "count": 1})
    with pytest.raises(UpstreamUnavailable):
        await channel.pay(code_pay("RS1"))
    truth = await control("GET", "/orders/RS1")
    assert truth["trade_state"] == "SUCCESS"  # charged, answer lost


async def test_reads_retry_on_connection_errors(channel: WeChatPayChannel, control) -> None:  # type: ignore[no-untyped-def]
    await channel.pay(code_pay("RT1"))
    await control("POST", "/faults", {"kind": "reset", "method": "GET", "count": 2})
    assert (await channel.query("RT1")).status is TradeStatus.SUCCEEDED  # third attempt answers
    faults = await control("GET", "/faults")
    assert faults[0]["fired"] == 2
    await control("POST", "/faults", {"kind": "reset", "method": "GET"})  # persistent
    with pytest.raises(UpstreamUnavailable):
        await channel.query("RT1")


async def test_writes_are_not_retried(channel: WeChatPayChannel, control) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/faults", {"kind": "reset", "path": CODEPAY, "count": 1})
    with pytest.raises(UpstreamUnavailable):
        await channel.pay(code_pay("NR1"))
    assert (await control("GET", "/faults"))[0]["fired"] == 1


async def test_latency_within_timeout_is_fine(channel: WeChatPayChannel, control) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/faults", {"kind": "latency", "delay_seconds": 0.3})
    started = time.monotonic()
    assert (await channel.pay(code_pay("L1"))).status is TradeStatus.SUCCEEDED
    assert time.monotonic() - started >= 0.3


async def test_fault_rate_and_filters(channel: WeChatPayChannel, control) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/faults", {"kind": "http_error", "path": "/refund/", "rate": 1.0})
    await control("POST", "/faults", {"kind": "http_error", "rate": 0.0})  # never fires
    assert (await channel.pay(code_pay("FR1"))).status is TradeStatus.SUCCEEDED
    bad = await control("POST", "/faults", {"kind": "nonsense"}, expect=400)
    assert "kind" in bad["error"]
    await control("POST", "/faults", {"kind": "http_error", "status": 404}, expect=400)
    listed = await control("GET", "/faults")
    await control("DELETE", f"/faults/{listed[0]['id']}")
    assert len(await control("GET", "/faults")) == 1
    await control("DELETE", "/faults")
    assert await control("GET", "/faults") == []


async def test_5xx_on_refund_and_close(channel: WeChatPayChannel, control) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/faults", {"kind": "http_error", "status": 503, "method": "POST"})
    with pytest.raises(UpstreamUnavailable):
        await channel.refund(RefundRequest(
            out_trade_no="X", out_refund_no="Y", amount=1, total=1))
    with pytest.raises(UpstreamUnavailable):
        await channel.close("X")
