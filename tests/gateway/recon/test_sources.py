"""Bills into reconciliation lines: keys, summaries, and orders revoked within the day."""
from __future__ import annotations

import datetime as dt

import pytest

from gateway.channel import Bill, BillLine
from gateway.errors import BillSummaryMismatch
from gateway.his import HisBill, HisBillLine
from gateway.recon.sources import channel_bill_lines, check_channel_summary, check_his_summary, his_bill_lines

T = dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC)


def _line(out_trade_no: str, kind: str, amount: int, **kw: object) -> BillLine:
    return BillLine(trade_time=T, channel_trade_no="W" + out_trade_no, out_trade_no=out_trade_no, kind=kind,
                    amount=amount, **kw)  # type: ignore[arg-type]


def test_an_order_paid_and_revoked_the_same_day_nets_to_nothing() -> None:
    bill = Bill(bill_date=T.date(), lines=[
        _line("P1", "payment", 500, fee=3, status="SUCCESS"),
        _line("P2", "payment", 700, fee=4, status="SUCCESS"),
        _line("P2", "refund", -700, fee=-4, status="REVOKED", channel_refund_no="WR2"),
        _line("P1", "refund", -200, fee=-1, status="SUCCESS", out_refund_no="F1", channel_refund_no="WR1"),
    ], total_count=4, total_paid=1200, total_refunded=900)
    check_channel_summary(bill)
    lines = channel_bill_lines(bill, "wechatpay")
    assert [(x["txn_id"], x["kind"], x["amount"], x["fee"]) for x in lines] == [
        ("P1", "payment", 500, 3), ("F1", "refund", 200, -1)]
    assert lines[1]["order_ref"] == "P1" and lines[1]["channel_trade_no"] == "WR1"


def test_a_bill_that_disagrees_with_its_summary_is_refused() -> None:
    bill = Bill(bill_date=T.date(), lines=[_line("P1", "payment", 500)], total_count=1, total_paid=501,
                total_refunded=0)
    with pytest.raises(BillSummaryMismatch):
        check_channel_summary(bill)
    his = HisBill(day=T.date(), bill_type="outpatient_settlement", total_count=2, total_amount=300, lines=[
        HisBillLine(bill_type="outpatient_settlement", his_serial="S1", trade_no="P1", amount=500, occurred_at=T),
        HisBillLine(bill_type="outpatient_settlement", his_serial="S2", trade_no="P1", refund_no="F1", kind="refund",
                    amount=200, occurred_at=T)])
    check_his_summary(his)  # 500 − 200
    assert [(x["txn_id"], x["kind"]) for x in his_bill_lines(his)] == [("P1", "payment"), ("F1", "refund")]
    cancelled = his.model_copy(update={"lines": [*his.lines, HisBillLine(
        bill_type="outpatient_settlement", his_serial="S3", trade_no="P9", amount=900, status="cancelled",
        occurred_at=T)], "total_count": 3})
    check_his_summary(cancelled)  # a cancelled line counts, but adds no money
    with pytest.raises(BillSummaryMismatch):
        check_his_summary(his.model_copy(update={"total_amount": 500}))
