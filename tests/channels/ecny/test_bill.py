"""The daily reconciliation file through the channel: totals agree with what happened at the bank."""
from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from channels.ecny import EcnyChannel
from gateway.channel import Method, PayRequest, RefundRequest
from gateway.errors import UpstreamUnavailable
from plugins.banks.refbank.recon import parse_recon, to_bill
from plugins.banks.refbank.wire import CST

from .conftest import ecny_code


def today() -> dt.date:
    return dt.datetime.now(CST).date()


def pay(no: str, amount: int, method: Method = Method.CODE) -> PayRequest:
    return PayRequest(out_trade_no=no, amount=amount, subject="门诊缴费", method=method,
                      auth_code=ecny_code() if method is Method.CODE else None)


async def test_bill_totals(channel: EcnyChannel, control) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/settings", {"refund_settle_seconds": 0, "fee_rate_bp": 30})
    await channel.pay(pay("B1", 12_345))
    await channel.pay(pay("B2", 1_000))
    await channel.pay(pay("B3", 99))
    await channel.pay(pay("B4", 500, Method.QR))
    await control("POST", "/orders/B4/pay")
    await channel.pay(pay("B5", 700, Method.QR))  # never paid: not in the file
    assert (await channel.pay(pay("B6", 800).model_copy(update={"auth_code": ecny_code("9011")}))).error_code
    await channel.refund(RefundRequest(out_trade_no="B1", out_refund_no="B1-1", amount=2_345, total=12_345))
    await channel.refund(RefundRequest(out_trade_no="B1", out_refund_no="B1-2", amount=10_000, total=12_345))
    await channel.refund(RefundRequest(out_trade_no="B3", out_refund_no="B3-1", amount=50, total=99))
    assert (await channel.reverse("B2")).done
    await asyncio.sleep(0.05)

    bill = await channel.download_bill(today())
    assert bill.bill_date == today()
    pays = {line.out_trade_no: line for line in bill.lines if line.kind == "payment"}
    backs = sorted((line.out_trade_no, line.out_refund_no, line.amount, line.status) for line in bill.lines
                   if line.kind == "refund")
    assert {no: line.amount for no, line in pays.items()} == {"B1": 12_345, "B2": 1_000, "B3": 99, "B4": 500}
    assert backs == [("B1", "B1-1", -2_345, "REFUND"), ("B1", "B1-2", -10_000, "REFUND"),
                     ("B2", None, -1_000, "REVOKE"), ("B3", "B3-1", -50, "REFUND")]
    assert (bill.total_count, bill.total_paid, bill.total_refunded) == (8, 13_944, 13_395)
    assert sum(line.amount for line in bill.lines) == bill.total_paid - bill.total_refunded
    # fees at 0.30 %, half up per payment; a full refund or a revoke gives the whole fee back
    assert {no: line.fee for no, line in pays.items()} == {"B1": 37, "B2": 3, "B3": 0, "B4": 2}
    assert bill.total_fee == sum(line.fee for line in bill.lines) == 0 + 0 + 0 + 2
    assert all(line.merchant_id == channel.bank.config.merchant_id for line in bill.lines)  # type: ignore[attr-defined]
    assert pays["B1"].channel_trade_no and pays["B4"].trade_type == "QRPAY"
    # the file the control surface shows is the one the bank sent
    preview = await control("GET", f"/bills/{today().isoformat()}")
    assert to_bill(parse_recon(preview)).lines == bill.lines


async def test_partial_refund_fee_share(channel: EcnyChannel, control) -> None:  # type: ignore[no-untyped-def]
    await control("POST", "/settings", {"refund_settle_seconds": 0, "fee_rate_bp": 60})
    await channel.pay(pay("P1", 10_000))  # fee 60
    await channel.refund(RefundRequest(out_trade_no="P1", out_refund_no="P1-1", amount=3_333, total=10_000))
    await channel.refund(RefundRequest(out_trade_no="P1", out_refund_no="P1-2", amount=6_667, total=10_000))
    bill = await channel.download_bill(today())
    fees = {line.out_refund_no: line.fee for line in bill.lines}
    assert fees == {None: 60, "P1-1": -20, "P1-2": -40} and bill.total_fee == 0


async def test_other_days_and_empty_days(channel: EcnyChannel, control) -> None:  # type: ignore[no-untyped-def]
    yesterday = today() - dt.timedelta(days=1)
    await control("POST", "/clock", {"date": yesterday.isoformat()})
    await channel.pay(pay("Y1", 4_200))
    await control("DELETE", "/clock")
    await channel.pay(pay("T1", 100))
    old = await channel.download_bill(yesterday)
    assert [line.out_trade_no for line in old.lines] == ["Y1"] and old.total_paid == 4_200
    assert [line.out_trade_no for line in (await channel.download_bill(today())).lines] == ["T1"]
    empty = await channel.download_bill(yesterday - dt.timedelta(days=30))
    assert empty.lines == [] and empty.total_count == 0 and empty.total_paid == 0


async def test_bill_not_ready(channel: EcnyChannel, control) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UpstreamUnavailable, match="not ready"):
        await channel.download_bill(today() + dt.timedelta(days=1))
    await control("POST", "/settings", {"bill_same_day": False})
    with pytest.raises(UpstreamUnavailable):
        await channel.download_bill(today())
    await control("POST", "/settings", {"bill_same_day": "yes"}, expect=400)


async def test_each_merchant_gets_its_own_file(make_channel) -> None:  # type: ignore[no-untyped-def]
    a, b = make_channel(0), make_channel(1)
    await a.pay(pay("A1", 100))
    await b.pay(pay("B1", 200))
    assert [line.out_trade_no for line in (await a.download_bill(today())).lines] == ["A1"]
    assert [line.out_trade_no for line in (await b.download_bill(today())).lines] == ["B1"]
