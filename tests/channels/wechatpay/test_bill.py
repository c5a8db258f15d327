"""Trade bill parser and writer: fixed examples and write→parse property tests."""
from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.wechatpay.bill import (
    BillFormatError,
    BillMismatchError,
    TradeBillRow,
    parse_tradebill,
    write_tradebill,
)
from channels.wechatpay.wire import CST

DAY = dt.date(2021, 1, 28)

SAMPLE = (
    "\ufeff交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,"
    "货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,"
    "商户数据包,手续费,费率,订单金额,申请退款金额,费率备注\r\n"
    "`2021-01-28 17:07:11,`wx81be0b7c2a2a2f4d,`1900000109,`0,`,`4200000912202101281234567890,`YY20210128001,"
    "`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`NATIVE,`SUCCESS,`OTHERS,`CNY,`12.30,`0.00,`0,`0,`0.00,`0.00,`,`,"
    "`门诊缴费,`,`0.07380,`0.60%,`12.30,`0.00,`\r\n"
    "`2021-01-28 18:00:00,`wx81be0b7c2a2a2f4d,`1900000109,`0,`,`4200000912202101281234567890,`YY20210128001,"
    "`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`NATIVE,`REFUND,`OTHERS,`CNY,`0.00,`0.00,`50300000001,`RF001,`2.30,`0.00,"
    "`ORIGINAL,`SUCCESS,`门诊缴费,`,`-0.01380,`0.60%,`0.00,`2.30,`\r\n"
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\r\n"
    "`2,`12.30,`2.30,`0.00,`0.06000,`12.30,`2.30\r\n"
)


def test_parse_sample_bill() -> None:
    bill = parse_tradebill(SAMPLE.encode(), DAY)
    assert (bill.total_count, bill.total_paid, bill.total_refunded, bill.total_fee) == (2, 1230, 230, 6)
    pay, ref = bill.lines
    assert (pay.kind, pay.amount, pay.fee, pay.out_trade_no, pay.status) == ("payment", 1230, 7, "YY20210128001",
                                                                          "SUCCESS")
    assert pay.trade_time == dt.datetime(2021, 1, 28, 17, 7, 11, tzinfo=CST)
    assert pay.channel_refund_no is None and pay.merchant_id == "1900000109"
    assert (ref.kind, ref.amount, ref.fee, ref.out_refund_no, ref.channel_refund_no) == (
        "refund", -230, -1, "RF001", "50300000001")
    assert ref.raw["商品名称"] == "门诊缴费"


def test_mismatching_summary_is_refused() -> None:
    with pytest.raises(BillMismatchError, match="总交易单数|counts"):
        parse_tradebill(SAMPLE.replace("`2,`12.30", "`3,`12.30"), DAY)
    with pytest.raises(BillMismatchError, match="应结订单"):
        parse_tradebill(SAMPLE.replace("`2,`12.30,", "`2,`12.31,"), DAY)
    with pytest.raises(BillMismatchError, match="退款金额"):
        parse_tradebill(SAMPLE.replace("`12.30,`2.30,`0.00,`0.06", "`12.30,`2.31,`0.00,`0.06"), DAY)
    with pytest.raises(BillMismatchError, match="手续费"):
        parse_tradebill(SAMPLE.replace("`0.06000", "`0.09000"), DAY)


@pytest.mark.parametrize("mangle", [
    lambda s: s.replace("`门诊缴费,`,`0.07380", "门诊缴费,`,`0.07380", 1).replace("`门诊缴费", "门诊缴费", 0),
    lambda s: s.replace("`12.30,`0.00,`0,", "`12.3x,`0.00,`0,", 1),
    lambda s: s.replace("总交易单数", "合计"),
    lambda s: s.replace("交易时间,", "时间,", 1),
    lambda s: s.replace("`2021-01-28 17:07:11", "`2021/01/28", 1),
    lambda s: s.replace(",`0.60%,`12.30,`0.00,`\r\n", ",`0.60%,`12.30,`0.00\r\n", 1),
])
def test_malformed_bills_are_refused(mangle) -> None:  # type: ignore[no-untyped-def]
    text = mangle(SAMPLE)
    assert text != SAMPLE
    with pytest.raises(BillFormatError):
        parse_tradebill(text, DAY)


def test_narrow_bill_type_columns_by_name() -> None:
    text = (
        "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,"
        "应结订单金额,代金券金额,商品名称,商户数据包,手续费,费率,订单金额,费率备注\n"
        "`2021-01-28 09:00:00,`wx1,`1900000109,`0,`,`42001,`T1,`o1,`MICROPAY,`SUCCESS,`OTHERS,`CNY,`1.00,`0.00,"
        "`挂号,`,`0.01,`0.60%,`1.00,`\n"
        "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\n"
        "`1,`1.00,`0.00,`0.00,`0.01,`1.00,`0.00\n"
    )
    bill = parse_tradebill(text, DAY)
    assert bill.total_paid == 100 and bill.lines[0].amount == 100 and bill.lines[0].trade_type == "MICROPAY"


def test_writer_neutralises_backticks_and_newlines() -> None:
    row = _row(subject="a`b\nc,`d", attach="x\r\ny")
    bill = parse_tradebill(write_tradebill([row]), DAY)
    assert bill.lines[0].raw["商品名称"] == "a'b c,'d"
    assert bill.lines[0].raw["商户数据包"] == "x  y"


def _row(**kw) -> TradeBillRow:  # type: ignore[no-untyped-def]
    base = dict(
        trade_time=dt.datetime(2021, 1, 28, 10, 0, tzinfo=CST), appid="wx1", mchid="1900000109", sub_mchid="0",
        device_id="", transaction_id="4200001", out_trade_no="T1", openid="o1", trade_type="NATIVE",
        trade_state="SUCCESS", bank_type="OTHERS", currency="CNY", settle_amount=100, coupon_amount=0,
        refund_id="0", out_refund_no="0", refund_amount=0, recharge_coupon_refund=0, refund_type="",
        refund_status="", subject="挂号", attach="", fee=1, rate="0.60%", order_amount=100,
        apply_refund_amount=0, rate_note="")
    return TradeBillRow(**(base | kw))


_text = st.text(alphabet=st.characters(blacklist_characters="`\r\n,", blacklist_categories=("Cs", "Cc")),
                max_size=12).map(str.strip)
_ids = st.text(alphabet="0123456789ABCDEFabcdef_-", min_size=1, max_size=32)


@st.composite
def _rows(draw) -> TradeBillRow:  # type: ignore[no-untyped-def]
    refund = draw(st.booleans())
    amount = draw(st.integers(min_value=1, max_value=10**10))
    fee = draw(st.integers(min_value=0, max_value=amount))
    when = draw(st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2030, 1, 1)))
    return _row(
        trade_time=when.replace(microsecond=0, tzinfo=CST),
        transaction_id=draw(_ids), out_trade_no=draw(_ids), openid=draw(_ids),
        trade_type=draw(st.sampled_from(["NATIVE", "JSAPI", "MWEB", "MICROPAY"])),
        trade_state="REFUND" if refund else "SUCCESS",
        settle_amount=0 if refund else amount, order_amount=0 if refund else amount,
        refund_amount=amount if refund else 0, apply_refund_amount=amount if refund else 0,
        refund_id="50" + draw(_ids) if refund else "0", out_refund_no="R" + draw(_ids) if refund else "0",
        refund_type="ORIGINAL" if refund else "", refund_status="SUCCESS" if refund else "",
        fee=-fee if refund else fee, subject=draw(_text), attach=draw(_text),
    )


@settings(max_examples=150, deadline=None)
@given(st.lists(_rows(), max_size=25))
def test_write_parse_round_trip(rows: list[TradeBillRow]) -> None:
    bill = parse_tradebill(write_tradebill(rows).encode(), DAY)
    assert bill.total_count == len(rows)
    assert bill.total_paid == sum(r.settle_amount for r in rows)
    assert bill.total_refunded == sum(r.refund_amount for r in rows)
    assert bill.total_fee == sum(r.fee for r in rows)
    assert sum(line.amount for line in bill.lines) == bill.total_paid - bill.total_refunded
    for row, line in zip(rows, bill.lines, strict=True):
        refund = row.trade_state == "REFUND"
        assert line.kind == ("refund" if refund else "payment")
        assert line.amount == (-row.refund_amount if refund else row.settle_amount)
        assert line.fee == row.fee
        assert line.trade_time == row.trade_time
        assert (line.channel_trade_no, line.out_trade_no, line.trade_type) == (
            row.transaction_id, row.out_trade_no, row.trade_type)
        if refund:
            assert (line.channel_refund_no, line.out_refund_no) == (row.refund_id, row.out_refund_no)
        assert line.raw["商品名称"] == row.subject and line.raw["商户数据包"] == row.attach


@settings(max_examples=50, deadline=None)
@given(st.lists(_rows(), min_size=1, max_size=10), st.integers(min_value=1, max_value=99))
def test_any_tampered_amount_is_detected(rows: list[TradeBillRow], delta: int) -> None:
    tampered = [rows[0].__class__(**{**rows[0].__dict__,
                                     "settle_amount": rows[0].settle_amount + delta,
                                     "refund_amount": rows[0].refund_amount + delta}), *rows[1:]]
    good_summary = write_tradebill(rows).splitlines()[-1]
    bad_text = write_tradebill(tampered).splitlines()
    bad_text[-1] = good_summary
    with pytest.raises(BillMismatchError):
        parse_tradebill("\n".join(bad_text), DAY)
