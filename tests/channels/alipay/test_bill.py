"""Detail bill parser and writer: a fixed example, broken files, and write→parse property tests."""
from __future__ import annotations

import datetime as dt
import io
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.alipay.bill import (
    HEADER,
    AlipayBillRow,
    BillFormatError,
    BillMismatchError,
    clean_text,
    detail_text,
    parse_bill,
    write_bill_zip,
    write_detail,
)
from channels.alipay.wire import CST

DAY = dt.date(2024, 5, 1)
T = "\t"

SAMPLE = "\r\n".join([
    "#支付宝业务明细查询",
    "#账号：[20881234567890120156]",
    "#起始日期：[2024年05月01日 00:00:00]   终止日期：[2024年05月02日 00:00:00]",
    "#-----------------------------------------业务明细列表----------------------------------------",
    ",".join(HEADER),
    f"2024050122001412345678901234{T},YY20240501001{T},交易,门诊缴费,2024-05-01 10:00:00,2024-05-01 10:00:05,"
    f"MZ01,,,POS-01,138****1234,12.30,12.30,0.00,0.00,0.00,0.00,0.00,,0.00,0.00,{T},-0.07,0.00,",
    f"2024050122001412345678901235{T},YY20240501002{T},交易,检验费,2024-05-01 11:00:00,2024-05-01 11:00:01,"
    f",,,,158****0001,0.06,0.06,0.00,0.00,0.00,0.00,0.00,,0.00,0.00,{T},0.00,0.00,",
    f"2024050122001412345678901234{T},YY20240501001{T},退款,门诊缴费,2024-05-01 10:00:00,2024-05-01 18:30:00,"
    f"MZ01,,,POS-01,138****1234,12.30,-2.30,0.00,0.00,0.00,0.00,0.00,,0.00,0.00,RF001{T},0.01,0.00,",
    "#-----------------------------------------业务明细列表结束------------------------------------",
    "#交易合计：2笔，商家实收共12.36元，商家优惠共0.00元，支付宝红包共0.00元，集分宝共0.00元，支付宝优惠共0.00元，"
    "商家红包共0.00元，卡消费共0.00元，服务费共-0.07元，分润共0.00元",
    "#退款合计：1笔，商家实收共-2.30元，商家优惠共0.00元，支付宝红包共0.00元，集分宝共0.00元，支付宝优惠共0.00元，"
    "商家红包共0.00元，卡消费共0.00元，服务费共0.01元，分润共0.00元",
    "#导出时间：[2024年05月02日 09:10:21]",
]) + "\r\n"


def test_parse_sample_bill() -> None:
    bill = parse_bill(SAMPLE.encode("gbk"), DAY)
    assert (bill.total_count, bill.total_paid, bill.total_refunded, bill.total_fee) == (3, 1236, 230, 6)
    pay, small, ref = bill.lines
    assert (pay.kind, pay.amount, pay.fee, pay.out_trade_no, pay.status) == ("payment", 1230, 7, "YY20240501001",
                                                                          "SUCCESS")
    assert pay.channel_trade_no == "2024050122001412345678901234"  # the trailing tab is gone
    assert pay.trade_time == dt.datetime(2024, 5, 1, 10, 0, 5, tzinfo=CST)
    assert pay.out_refund_no is None and pay.merchant_id == "2088123456789012"
    assert (small.amount, small.fee) == (6, 0)
    assert (ref.kind, ref.amount, ref.fee, ref.out_refund_no) == ("refund", -230, -1, "RF001")
    assert ref.raw["商品名称"] == "门诊缴费" and ref.raw["订单金额（元）"] == "12.30"
    assert sum(line.amount for line in bill.lines) == bill.total_paid - bill.total_refunded


def test_mismatching_footer_is_refused() -> None:
    with pytest.raises(BillMismatchError, match="counts"):
        parse_bill(SAMPLE.replace("#交易合计：2笔", "#交易合计：3笔"), DAY)
    with pytest.raises(BillMismatchError, match="商家实收"):
        parse_bill(SAMPLE.replace("商家实收共12.36元", "商家实收共12.37元"), DAY)
    with pytest.raises(BillMismatchError, match="商家实收"):
        parse_bill(SAMPLE.replace("商家实收共-2.30元", "商家实收共-2.31元"), DAY)
    with pytest.raises(BillMismatchError, match="服务费"):
        parse_bill(SAMPLE.replace("服务费共-0.07元", "服务费共-0.08元"), DAY)


@pytest.mark.parametrize("mangle,match", [
    (lambda s: s.replace("#支付宝业务明细查询", "#支付宝账务明细查询"), "支付宝业务明细查询"),
    (lambda s: s.replace("支付宝交易号,", "交易号,", 1), "lacks"),
    (lambda s: s.replace(",12.30,12.30,", ",12.30,12.3x,", 1), "yuan"),
    (lambda s: s.replace("2024-05-01 10:00:05", "2024/05/01 10:00", 1), "完成时间"),
    (lambda s: s.replace(",交易,检验费", ",收费,检验费", 1), "业务类型"),
    (lambda s: s.replace(",-2.30,", ",2.30,", 1), "退款"),
    (lambda s: s.replace(",0.01,0.00,\r\n#---", ",0.01\r\n#---", 1), "fields"),
    (lambda s: s.replace("#退款合计", "#合计", 1), "footer"),
    (lambda s: s.replace("业务明细列表结束", "业务明细列表", 1), "结束"),
    (lambda s: s.replace("[2024年05月01日 00:00:00]", "[2024年04月30日 00:00:00]", 1), "not 2024-05-01"),
    (lambda s: s + "1,2,3\r\n", "after the end"),
])
def test_malformed_bills_are_refused(mangle, match: str) -> None:  # type: ignore[no-untyped-def]
    text = mangle(SAMPLE)
    assert text != SAMPLE
    with pytest.raises(BillFormatError, match=match):
        parse_bill(text, DAY)


def _row(**kw) -> AlipayBillRow:  # type: ignore[no-untyped-def]
    base = dict(
        trade_no="2024050122001400000000000001", out_trade_no="T1", kind="交易", subject="挂号",
        created_at=dt.datetime(2024, 5, 1, 9, 0, tzinfo=CST), finished_at=dt.datetime(2024, 5, 1, 9, 0, 5, tzinfo=CST),
        store_id="", store_name="", operator="", terminal_id="", buyer_account="138****0000", order_amount=100,
        receipt_amount=100, red_packet=0, jifenbao=0, alipay_discount=0, merchant_discount=0, voucher_amount=0,
        voucher_name="", merchant_red_packet=0, card_amount=0, refund_request_no="", service_fee=-1, share=0,
        memo="")
    return AlipayBillRow(**(base | kw))


def test_zip_layout_gbk_names_and_files() -> None:
    data = write_bill_zip([_row()], "2088123456789012", DAY, dt.datetime(2024, 5, 2, 9, 0, tzinfo=CST))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = zf.infolist()
        assert all(not (i.flag_bits & 0x800) for i in infos)  # GBK names, no UTF-8 flag
        names = [i.filename.encode("cp437").decode("gbk") for i in infos]
        assert names == ["20881234567890120156_20240501_业务明细.csv", "20881234567890120156_20240501_业务明细(汇总).csv"]
        detail = zf.read(infos[0]).decode("gbk")
        summary = zf.read(infos[1]).decode("gbk")
    assert detail.startswith("#支付宝业务明细查询\r\n#账号：[20881234567890120156]\r\n")
    assert "2024050122001400000000000001\t,T1\t,交易," in detail
    assert "#交易合计：1笔，商家实收共1.00元" in detail and "#导出时间：[2024年05月02日 09:00:00]" in detail
    assert summary.startswith("#支付宝业务汇总查询") and "\r\n合计,,1,0,1.00,1.00," in summary
    assert detail_text(data) == detail
    assert parse_bill(data, DAY).total_paid == 100


def test_zip_with_utf8_names_and_broken_archives() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("20881234567890120156_20240501_业务明细.csv", SAMPLE.encode("gbk"))
        zf.writestr("20881234567890120156_20240501_业务明细(汇总).csv", b"#")
    assert parse_bill(buf.getvalue(), DAY).total_count == 3
    with pytest.raises(BillFormatError, match="one 业务明细"):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("readme.txt", b"x")
        parse_bill(buf.getvalue(), DAY)
    with pytest.raises(BillFormatError, match="corrupt"):
        parse_bill(b"PK\x03\x04garbage", DAY)


def test_writer_neutralises_separators() -> None:
    row = _row(subject='a,b\nc"d\te', memo="x\r\ny 😀")
    text = write_detail([row], "20881234567890120156", DAY, dt.datetime(2024, 5, 2, tzinfo=CST))
    bill = parse_bill(text.encode("gbk"), DAY)
    assert bill.lines[0].raw["商品名称"] == "a，b c'd e"
    assert bill.lines[0].raw["备注"] == "x  y ?"
    assert clean_text("门诊,缴费") == "门诊，缴费"


_gbk_text = st.text(alphabet=st.characters(codec="gbk", exclude_categories=("Cs", "Cc", "Zl", "Zp")),
                    max_size=12).map(str.strip)
_ids = st.text(alphabet="0123456789ABCDEFabcdef_-", min_size=1, max_size=32)


@st.composite
def _rows(draw) -> AlipayBillRow:  # type: ignore[no-untyped-def]
    refund = draw(st.booleans())
    amount = draw(st.integers(min_value=1, max_value=10**10))
    fee = draw(st.integers(min_value=0, max_value=amount))
    created = draw(st.datetimes(min_value=dt.datetime(2024, 5, 1), max_value=dt.datetime(2024, 5, 1, 23, 59)))
    return _row(
        trade_no=draw(_ids), out_trade_no=draw(_ids), kind="退款" if refund else "交易", subject=draw(_gbk_text),
        created_at=created.replace(microsecond=0, tzinfo=CST),
        finished_at=created.replace(microsecond=0, tzinfo=CST) + dt.timedelta(seconds=draw(st.integers(0, 60))),
        store_id=draw(_gbk_text), terminal_id=draw(_gbk_text), order_amount=amount + draw(st.integers(0, 100)),
        receipt_amount=-amount if refund else amount, refund_request_no=draw(_ids) if refund else "",
        service_fee=fee if refund else -fee, memo=draw(_gbk_text),
    )


@settings(max_examples=150, deadline=None)
@given(st.lists(_rows(), max_size=25))
def test_write_parse_round_trip(rows: list[AlipayBillRow]) -> None:
    data = write_bill_zip(rows, "2088123456789012", DAY, dt.datetime(2024, 5, 2, 9, 0, tzinfo=CST))
    bill = parse_bill(data, DAY)
    pays = [r for r in rows if r.kind == "交易"]
    refunds = [r for r in rows if r.kind == "退款"]
    assert bill.total_count == len(rows)
    assert bill.total_paid == sum(r.receipt_amount for r in pays)
    assert bill.total_refunded == -sum(r.receipt_amount for r in refunds)
    assert bill.total_fee == -sum(r.service_fee for r in rows) == sum(line.fee for line in bill.lines)
    assert sum(line.amount for line in bill.lines) == bill.total_paid - bill.total_refunded
    for row, line in zip(rows, bill.lines, strict=True):
        assert line.kind == ("refund" if row.kind == "退款" else "payment")
        assert line.amount == row.receipt_amount and line.fee == -row.service_fee
        assert line.trade_time == row.finished_at
        assert (line.channel_trade_no, line.out_trade_no) == (row.trade_no, row.out_trade_no)
        assert line.out_refund_no == (row.refund_request_no if row.kind == "退款" else None)
        assert line.raw["商品名称"] == clean_text(row.subject).strip()
        assert line.raw["备注"] == clean_text(row.memo).strip()


@settings(max_examples=50, deadline=None)
@given(st.lists(_rows(), min_size=1, max_size=10), st.integers(min_value=1, max_value=99))
def test_any_tampered_amount_is_detected(rows: list[AlipayBillRow], delta: int) -> None:
    first = rows[0]
    sign = -1 if first.kind == "退款" else 1
    tampered = [AlipayBillRow(**{**first.__dict__, "receipt_amount": first.receipt_amount + sign * delta}),
                *rows[1:]]
    exported = dt.datetime(2024, 5, 2, tzinfo=CST)
    good = write_detail(rows, "20881234567890120156", DAY, exported).splitlines()
    bad = write_detail(tampered, "20881234567890120156", DAY, exported).splitlines()
    bad[-3:] = good[-3:]  # the honest footer
    with pytest.raises(BillMismatchError):
        parse_bill("\r\n".join(bad), DAY)
