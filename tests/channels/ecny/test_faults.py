"""Broken calls to the bank: the channel says "unknown" (an Upstream* error), never "failed"."""
from __future__ import annotations

import datetime as dt
import time

import pytest

from channels.ecny import EcnyChannel
from gateway.channel import Method, PayRequest, RefundRequest, TradeStatus
from gateway.errors import UpstreamProtocolError, UpstreamTimeout, UpstreamUnavailable
from plugins.banks.refbank.wire import CST

from .conftest import ecny_code

CODEPAY = "/ecny/v1/trade/codepay"
QUERY = "/ecny/v1/trade/query"


def code_pay(no: str, auth_code: str = "0123456789012345678") -> PayRequest:
    return PayRequest(out_trade_no=no, amount=800, subject="药费", method=Method.CODE, auth_code=auth_code)


async def test_bad_answer_signature_is_protocol_error(channel: EcnyChannel, control) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/faults", {"kind": "bad_signature", "path": CODEPAY, "count": 1})
    with pytest.raises(UpstreamProtocolError):
        await channel.pay(code_pay("BS1"))
    # the charge went through; only the answer was unverifiable
    assert (await channel.query("BS1")).status is TradeStatus.SUCCEEDED


async def test_unverifiable_decline_is_not_a_decline(channel: EcnyChannel, control) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/faults", {"kind": "bad_signature", "path": CODEPAY})
    with pytest.raises(UpstreamProtocolError):
        await channel.pay(code_pay("BS2", ecny_code("9011")))  # BALANCE_NOT_ENOUGH, but unverifiable
    await control("DELETE", "/faults")
    await control("POST", "/faults", {"kind": "no_signature", "path": QUERY})
    with pytest.raises(UpstreamProtocolError):
        await channel.query("BS2")


async def test_timeout_before_is_upstream_timeout(make_channel, control) -> None:  # type: ignore[no-untyped-def]
    channel = make_channel(timeout_seconds=0.5)
    await control("POST", "/faults", {"kind": "timeout", "path": CODEPAY, "delay_seconds": 3, "count": 1})
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout):
        await channel.pay(code_pay("TO1"))
    assert time.monotonic() - started < 2.0
    assert (await channel.query("TO1")).status is TradeStatus.NOT_FOUND  # nothing happened at the bank


async def test_timeout_after_charge(make_channel, control) -> None:  # type: ignore[no-untyped-def]
    channel = make_channel(timeout_seconds=0.5)
    await control("POST", "/faults", {"kind": "timeout", "path": CODEPAY, "delay_seconds": 3, "when": "after"})
    with pytest.raises(UpstreamTimeout):
        await channel.pay(code_pay("TO2"))
    assert (await channel.query("TO2")).status is TradeStatus.SUCCEEDED


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_is_unavailable(channel: EcnyChannel, control, status: int) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/faults", {"kind": "http_error", "status": status, "path": CODEPAY, "count": 1})
    with pytest.raises(UpstreamUnavailable) as info:
        await channel.pay(code_pay("E1"))
    assert info.value.extra["http_status"] == status
    assert (await channel.query("E1")).status is TradeStatus.NOT_FOUND
    assert (await channel.pay(code_pay("E1"))).status is TradeStatus.SUCCEEDED  # the fault is used up


async def test_5xx_after_the_bank_acted(channel: EcnyChannel, control) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/faults", {"kind": "http_error", "status": 502, "path": CODEPAY, "when": "after"})
    with pytest.raises(UpstreamUnavailable):
        await channel.pay(code_pay("E2"))
    assert (await control("GET", "/orders/E2"))["trade_status"] == "SUCCESS"


async def test_connection_reset_is_unavailable(channel: EcnyChannel, control) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/faults", {"kind": "reset", "path": CODEPAY, "when": "after", "count": 1})
    with pytest.raises(UpstreamUnavailable):
        await channel.pay(code_pay("RS1"))
    assert (await control("GET", "/orders/RS1"))["trade_status"] == "SUCCESS"  # charged, answer lost


async def test_reads_retry_on_connection_errors(channel: EcnyChannel, control) -> None:  # type: ignore[no-untyped-def]
    await channel.pay(code_pay("RT1"))
    await control("POST", "/faults", {"kind": "reset", "path": QUERY, "count": 2})
    assert (await channel.query("RT1")).status is TradeStatus.SUCCEEDED  # the third attempt answers
    assert (await control("GET", "/faults"))[0]["fired"] == 2
    await control("POST", "/faults", {"kind": "reset", "path": QUERY})  # persistent
    with pytest.raises(UpstreamUnavailable):
        await channel.query("RT1")


async def test_writes_are_not_retried(channel: EcnyChannel, control) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/faults", {"kind": "reset", "path": CODEPAY, "count": 1})
    with pytest.raises(UpstreamUnavailable):
        await channel.pay(code_pay("NR1"))
    assert (await control("GET", "/faults"))[0]["fired"] == 1


async def test_latency_within_timeout_is_fine(channel: EcnyChannel, control) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/faults", {"kind": "latency", "delay_seconds": 0.3})
    started = time.monotonic()
    assert (await channel.pay(code_pay("L1"))).status is TradeStatus.SUCCEEDED
    assert time.monotonic() - started >= 0.3


async def test_fault_rate_filters_and_validation(channel: EcnyChannel, control) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/faults", {"kind": "http_error", "path": "/refund/", "rate": 1.0})
    await control("POST", "/faults", {"kind": "http_error", "rate": 0.0})  # never fires
    await control("POST", "/faults", {"kind": "reset", "method": "GET"})  # the bank API is POST only
    assert (await channel.pay(code_pay("FR1"))).status is TradeStatus.SUCCEEDED
    with pytest.raises(UpstreamUnavailable):
        await channel.refund(RefundRequest(out_trade_no="FR1", out_refund_no="FR1-1", amount=1, total=800))
    bad = await control("POST", "/faults", {"kind": "nonsense"}, expect=400)
    assert "kind" in bad["error"]
    await control("POST", "/faults", {"kind": "http_error", "status": 404}, expect=400)
    await control("POST", "/faults", {"kind": "latency", "rate": 2}, expect=400)
    listed = await control("GET", "/faults")
    await control("DELETE", f"/faults/{listed[0]['id']}")
    assert len(await control("GET", "/faults")) == 2
    await control("DELETE", "/faults/nope", expect=404)
    await control("DELETE", "/faults")
    assert await control("GET", "/faults") == []


async def test_control_surface_is_never_faulted(channel: EcnyChannel, control) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/faults", {"kind": "http_error"})
    assert (await control("GET", "/"))["bank"] == "refbank"


@pytest.mark.parametrize("status,body,error", [
    (429, b'{"code":"RATE_LIMITED","message":"x"}', UpstreamUnavailable),  # overload: unknown, no signature needed
    (200, b'{"code":"SUCCESS","data":{}}', UpstreamProtocolError),  # unsigned 200: never trusted
    (401, b'{"code":"SIGN_INVALID"}', UpstreamProtocolError),  # an unsigned "refusal" is not a decline either
])
async def test_a_front_end_that_is_not_the_bank(make_channel, status: int, body: bytes, error: type) -> None:  # type: ignore[no-untyped-def]
    """A proxy in front of the bank answering on its own (real HTTP, another server)."""
    from aiohttp import web

    async def answer(request: web.Request) -> web.Response:
        return web.Response(status=status, body=body, content_type="application/json")

    app = web.Application()
    app.router.add_post("/ecny/v1/trade/codepay", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        channel = make_channel(base_url=f"http://127.0.0.1:{port}")
        with pytest.raises(error):
            await channel.pay(code_pay("RL1"))
    finally:
        await runner.cleanup()


async def test_faults_on_every_write(channel: EcnyChannel, control) -> None:  # type: ignore[no-untyped-def]
    await channel.pay(code_pay("W1"))
    await control("POST", "/faults", {"kind": "http_error", "status": 503, "path": "/ecny/v1/refund/apply",
                                      "when": "after", "count": 1})
    with pytest.raises(UpstreamUnavailable):
        await channel.refund(RefundRequest(out_trade_no="W1", out_refund_no="W1-1", amount=100, total=800))
    assert (await control("GET", "/refunds/W1-1"))["refund_status"] in ("PROCESSING", "SUCCESS")  # it happened
    # the retry with the same number finds the same refund
    again = await channel.refund(RefundRequest(out_trade_no="W1", out_refund_no="W1-1", amount=100, total=800))
    assert again.error_code is None
    await control("POST", "/faults", {"kind": "reset", "path": "/ecny/v1/trade/revoke", "count": 1})
    with pytest.raises(UpstreamUnavailable):
        await channel.reverse("W1")
    await control("POST", "/faults", {"kind": "timeout", "path": "/ecny/v1/trade/close", "delay_seconds": 5,
                                      "count": 1})
    with pytest.raises(UpstreamTimeout):
        await (await _short(channel)).close("W1")


async def _short(channel: EcnyChannel) -> EcnyChannel:
    cfg = channel.config.model_dump()
    cfg["bank_config"] = {**cfg["bank_config"], "timeout_seconds": 0.5}
    return EcnyChannel(cfg, channel.session)


async def test_bill_download_faults(channel: EcnyChannel, control) -> None:  # type: ignore[no-untyped-def]
    await channel.pay(code_pay("B1"))
    day = dt.datetime.now(CST).date()
    await control("POST", "/faults", {"kind": "reset", "path": "/bill/", "count": 1})
    assert (await channel.download_bill(day)).total_paid == 800  # a read: retried
    await control("POST", "/faults", {"kind": "bad_signature", "path": "/bill/", "count": 1})
    with pytest.raises(UpstreamProtocolError):  # a file whose signature fails is not trusted
        await channel.download_bill(day)
