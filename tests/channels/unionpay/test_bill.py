"""Settlement files: the fixed-width layout, its totals, a property round-trip, and the adapter's download."""
from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from channels.unionpay import UnionPayChannel
from channels.unionpay.bill import (
    ZM_FIELDS,
    ZM_RECORD_BYTES,
    BillFormatError,
    BillMismatchError,
    SettlementRow,
    build_zip,
    decode_file_content,
    encode_file_content,
    entry_names,
    parse_settlement,
    read_record,
    write_record,
)
from channels.unionpay.simulator import UnionPaySimHandle
from channels.unionpay.wire import CST
from gateway.channel import Method, PayRequest, RefundRequest
from gateway.errors import UpstreamProtocolError, UpstreamUnavailable, ValidationFailed

from .conftest import Control, MakeChannel, code, cst_today, gateway_id

DAY = dt.date(2024, 5, 1)
MER = "777290058110048"


def _row(**kw: Any) -> SettlementRow:
    base = dict(txn_type="01", txn_sub_type="06", biz_type="000000", trace_no="123456",
                trace_time=dt.datetime(2024, 5, 1, 10, 30, 20, tzinfo=CST), query_id="050110302012345678901",
                order_id="P20240501023015a1b2c3d4e5", amount=1500, settle=1500, fee=9, mer_id=MER,
                acc_no="621700******1234")
    return SettlementRow(**(base | kw))


REFUND = dict(txn_type="04", txn_sub_type="00", order_id="R20240501040000a1b2c3d4e5", amount=500, settle=-500,
              fee=-3, query_id="050112000012345678902", orig_qry_id="050110302012345678901",
              orig_order_id="P20240501023015a1b2c3d4e5", trace_time=dt.datetime(2024, 5, 1, 12, 0, tzinfo=CST))


def test_record_layout_byte_offsets() -> None:
    assert len(ZM_FIELDS) == 42
    line = write_record(_row().values())
    assert len(line) == ZM_RECORD_BYTES == sum(w for _, _, w, _ in ZM_FIELDS) + 41
    # field start offsets of the ACP ZM layout (0-based): 交易代码 0, 代理机构 4, 发送机构 16,
    # 系统跟踪号 28, 交易传输时间 35, 帐号 46, 交易金额 66, 查询流水号 87, 商户订单号 112
    assert line[0:3] == b"S22" and line[28:34] == b"123456" and line[35:45] == b"0501103020"
    assert line[46:65].rstrip() == b"621700******1234" and line[66:78] == b"000000001500"
    assert line[87:108] == b"050110302012345678901" and line[112:144].rstrip() == b"P20240501023015a1b2c3d4e5"
    rec = read_record(line, 1)
    assert (rec["merFee"], rec["settleAmt"], rec["settleNetAmt"]) == ("D000000000009", "C000000001500",
                                                                     "C000000001491")
    assert rec["txnType"] == "01" and rec["merId"] == MER


def test_gbk_text_is_cut_on_character_boundaries() -> None:
    values = {**_row().values(), "subMerAbbr": "沙箱医院门诊部住院部检验科放射科药剂科"}  # > 32 bytes in GBK
    line = write_record(values)
    assert len(line) == ZM_RECORD_BYTES
    assert read_record(line, 1)["subMerAbbr"] == "沙箱医院门诊部住院部检验科放射科"  # 16 characters = 32 bytes


def test_parse_a_settlement_zip() -> None:
    rows = [_row(), _row(**REFUND), _row(txn_type="31", txn_sub_type="00", order_id="P20240501023015a1b2UD",
                                       amount=700, settle=-700, fee=-4, orig_order_id="P20240501030000ffff",
                                       orig_qry_id="050111000012345678903")]
    bill = parse_settlement(build_zip(MER, DAY, rows), DAY, MER)
    assert (bill.total_count, bill.total_paid, bill.total_refunded, bill.total_fee) == (3, 1500, 1200, 2)
    pay, ref, undo = bill.lines
    assert (pay.kind, pay.amount, pay.fee, pay.status, pay.trade_type) == ("payment", 1500, 9, "SUCCESS", "01/06")
    assert pay.trade_time == dt.datetime(2024, 5, 1, 10, 30, 20, tzinfo=CST)
    assert (ref.kind, ref.amount, ref.fee, ref.out_trade_no, ref.out_refund_no, ref.status) == (
        "refund", -500, -3, "P20240501023015a1b2c3d4e5", "R20240501040000a1b2c3d4e5", "REFUND")
    assert ref.channel_trade_no == "050110302012345678901" and ref.channel_refund_no == "050112000012345678902"
    assert (undo.kind, undo.amount, undo.status, undo.out_refund_no) == ("refund", -700, "REVOKED", None)
    assert sum(line.amount for line in bill.lines) == bill.total_paid - bill.total_refunded


def test_summary_is_checked() -> None:
    rows = [_row(), _row(**REFUND)]
    good = build_zip(MER, DAY, rows)
    assert parse_settlement(good, DAY, MER).total_count == 2
    with pytest.raises(BillMismatchError, match="on 2024-05-02"):
        parse_settlement(good, DAY + dt.timedelta(days=1), MER)
    with pytest.raises(BillMismatchError):
        parse_settlement(good, DAY, "777290058110049")
    # records that do not add up to the summary
    zm, zmt = entry_names(MER, DAY)
    summary = zipfile.ZipFile(io.BytesIO(build_zip(MER, DAY, rows[:1]))).read(zmt)
    with pytest.raises(BillMismatchError, match="count"):
        parse_settlement(_zip({zm: _zm(rows), zmt: summary}), DAY, MER)
    tampered = _zm([_row(amount=1501, settle=1501), _row(**REFUND)])
    full_summary = zipfile.ZipFile(io.BytesIO(good)).read(zmt)
    with pytest.raises(BillMismatchError, match="credit"):
        parse_settlement(_zip({zm: tampered, zmt: full_summary}), DAY, MER)
    # no summary: refused unless the caller does without
    with pytest.raises(BillFormatError, match="ZMT"):
        parse_settlement(build_zip(MER, DAY, rows, summary=False), DAY, MER)
    bill = parse_settlement(build_zip(MER, DAY, rows, summary=False), DAY, MER, require_summary=False)
    assert (bill.total_paid, bill.total_refunded) == (1500, 500)


def _zm(rows: list[SettlementRow]) -> bytes:
    return b"".join(write_record(r.values()) + b"\r\n" for r in rows)


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize("mangle", [
    lambda line: line[:100],  # cut short
    lambda line: line[:34] + b"X" + line[35:],  # separator replaced
    lambda line: line[:66] + b"00000000150x" + line[78:],  # 交易金额 not digits
    lambda line: line.replace(b"C000000001500", b"X000000001500"),  # 结算金额 sign
    lambda line: line.replace(b"C000000001491", b"C000000001492"),  # 清算净额 ≠ 结算金额 − 手续费
    lambda line: line.replace(b"C000000001500", b"D000000001500").replace(b"C000000001491", b"D000000001509"),
    lambda line: line + b" trailing",
    lambda line: line[:35] + b"1340103020" + line[45:],  # no such date
])
def test_malformed_records_are_refused(mangle: Callable[..., Any]) -> None:
    line = write_record(_row().values())
    bad = mangle(line)
    assert bad != line
    zm, _ = entry_names(MER, DAY)
    with pytest.raises(BillFormatError):
        parse_settlement(_zip({zm: bad + b"\r\n"}), DAY, MER, require_summary=False)


def test_file_content_and_zip_errors() -> None:
    data = build_zip(MER, DAY, [_row()])
    assert decode_file_content(encode_file_content(data)) == data
    for bad in ("%%%", "aGVsbG8=", ""):
        with pytest.raises(BillFormatError):
            decode_file_content(bad)
    with pytest.raises(BillFormatError):
        parse_settlement(b"not a zip", DAY, MER)
    with pytest.raises(BillFormatError, match="ZM detail"):
        parse_settlement(_zip({"readme.txt": b"x"}), DAY, MER)


_ids = st.text(alphabet="0123456789ABCDEFabcdef", min_size=8, max_size=32)
_digits = st.text(alphabet="0123456789", min_size=21, max_size=21)


@st.composite
def _rows(draw: st.DrawFn) -> SettlementRow:
    kind = draw(st.sampled_from(["01", "04", "31"]))
    amount = draw(st.integers(min_value=1, max_value=10**11))
    fee = draw(st.integers(min_value=0, max_value=min(amount, 10**9)))
    when = draw(st.datetimes(min_value=dt.datetime(2024, 4, 30, 23, 0), max_value=dt.datetime(2024, 5, 1, 22, 59)))
    sign = 1 if kind == "01" else -1
    return _row(txn_type=kind, txn_sub_type="06" if kind == "01" else "00", amount=amount, settle=sign * amount,
                fee=sign * fee, trace_time=when.replace(microsecond=0, tzinfo=CST), order_id=draw(_ids),
                query_id=draw(_digits), orig_qry_id=draw(_digits) if kind != "01" else "",
                orig_order_id=draw(_ids) if kind != "01" else "",
                trace_no=draw(st.text(alphabet="0123456789", min_size=6, max_size=6)),
                term_id=draw(st.text(alphabet="ABCDEFGH0123456789", max_size=8)))


@settings(max_examples=120, deadline=None)
@given(st.lists(_rows(), max_size=30))
def test_settlement_round_trip(rows: list[SettlementRow]) -> None:
    content = encode_file_content(build_zip(MER, DAY, rows))
    bill = parse_settlement(decode_file_content(content), DAY, MER)
    assert bill.total_count == len(rows)
    assert bill.total_paid == sum(r.settle for r in rows if r.settle > 0)
    assert bill.total_refunded == -sum(r.settle for r in rows if r.settle < 0)
    assert bill.total_fee == sum(r.fee for r in rows)
    assert sum(line.amount for line in bill.lines) == bill.total_paid - bill.total_refunded
    for row, line in zip(rows, bill.lines, strict=True):
        refund = row.txn_type != "01"
        assert line.kind == ("refund" if refund else "payment")
        assert line.amount == row.settle and line.fee == row.fee and line.trade_time == row.trace_time
        assert line.raw["txnAmt"] == f"{row.amount:012d}" and line.raw["termId"] == row.term_id
        if refund:
            assert (line.out_trade_no, line.channel_refund_no, line.channel_trade_no) == (
                row.orig_order_id, row.query_id, row.orig_qry_id)
            assert line.out_refund_no == (row.order_id if row.txn_type == "04" else None)
        else:
            assert (line.out_trade_no, line.channel_trade_no) == (row.order_id, row.query_id)


@settings(max_examples=40, deadline=None)
@given(st.lists(_rows(), min_size=1, max_size=10), st.integers(min_value=1, max_value=99))
def test_any_tampered_amount_is_detected(rows: list[SettlementRow], delta: int) -> None:
    first = rows[0]
    sign = 1 if first.settle > 0 else -1
    tampered = [_row(**{**first.__dict__, "settle": first.settle + sign * delta}), *rows[1:]]
    zm, zmt = entry_names(MER, DAY)
    summary = zipfile.ZipFile(io.BytesIO(build_zip(MER, DAY, rows))).read(zmt)
    with pytest.raises(BillMismatchError):
        parse_settlement(_zip({zm: _zm(tampered), zmt: summary}), DAY, MER)


# --- the adapter against the simulator -----------------------------------------------------


def _pay(no: str, amount: int, last4: str = "0000") -> PayRequest:
    return PayRequest(out_trade_no=no, amount=amount, subject="检验费", method=Method.CODE, auth_code=code(last4))


async def _at_ten(control: Control) -> dt.date:
    """Put the simulator at 10:00 today (China time), far from the 23:00 settlement cut."""
    today = cst_today()
    await control("POST", "/clock", {"now": f"{today.isoformat()}T10:00:00+08:00"})
    return today


async def test_bill_totals_match_the_simulator(channel: UnionPayChannel, control: Control,
                                               sim: UnionPaySimHandle) -> None:
    today = await _at_ten(control)
    await control("POST", "/settings", {"refund_settle_seconds": 0})
    nos = [gateway_id() for _ in range(4)]
    for no, amount in zip(nos, (101, 2500, 99999, 4321), strict=True):
        await channel.pay(_pay(no, amount))
    await channel.refund(RefundRequest(out_trade_no=nos[1], out_refund_no=gateway_id("R"), amount=500, total=2500))
    assert (await channel.reverse(nos[3])).done
    await channel.pay(_pay(gateway_id(), 7, "9011"))  # declined: not in the file
    await channel.pay(_pay(gateway_id(), 9, "9004"))  # still processing: not in the file
    bill = await channel.download_bill(today)
    truth = await control("GET", f"/bills/{today.isoformat()}")
    assert bill.total_count == truth["count"] == 6 and len(bill.lines) == 6
    assert bill.total_paid == truth["paid"] == 101 + 2500 + 99999 + 4321
    assert bill.total_refunded == truth["refunded"] == 500 + 4321
    assert bill.total_fee == truth["fee"]
    assert sum(line.amount for line in bill.lines) == bill.total_paid - bill.total_refunded
    fees = {line.out_trade_no: line.fee for line in bill.lines if line.kind == "payment"}
    assert fees[nos[2]] == sim.simulator.fee(99999) == 600
    refund = next(line for line in bill.lines if line.status == "REFUND")
    assert (refund.out_trade_no, refund.amount, refund.kind) == (nos[1], -500, "refund")
    undo = next(line for line in bill.lines if line.status == "REVOKED")
    assert (undo.out_trade_no, undo.amount, undo.fee) == (nos[3], -4321, -sim.simulator.fee(4321))
    assert {line.merchant_id for line in bill.lines} == {channel.config.mer_id}


async def test_bill_edges(channel: UnionPayChannel, make_channel: MakeChannel, control: Control) -> None:
    today = await _at_ten(control)
    empty = await channel.download_bill(today - dt.timedelta(days=3))  # a day without trades
    assert empty.total_count == 0 and empty.lines == []
    with pytest.raises(ValidationFailed):
        # MMDD would name last year's day (two days ahead: after 23:00 tomorrow is already the 清算日)
        await channel.download_bill(today + dt.timedelta(days=2))
    with pytest.raises(ValidationFailed):
        await channel.download_bill(today - dt.timedelta(days=400))
    await control("POST", "/settings", {"bill_unavailable": [today.strftime("%m%d")]})
    with pytest.raises(UpstreamUnavailable):  # 98 文件不存在: not ready, ask later
        await channel.download_bill(today)
    await control("POST", "/settings", {"bill_unavailable": [], "bill_summary": False})
    with pytest.raises(UpstreamProtocolError):
        await channel.download_bill(today)
    lenient = make_channel(bill_summary_required=False)
    await lenient.pay(_pay(gateway_id(), 300))
    assert (await lenient.download_bill(today)).total_paid == 300


async def test_settlement_day_follows_the_simulator_clock(channel: UnionPayChannel, control: Control) -> None:
    today = cst_today()
    day = today - dt.timedelta(days=2)
    await control("POST", "/clock", {"now": f"{(day - dt.timedelta(days=1)).isoformat()}T23:30:00+08:00"})
    late = gateway_id()  # paid after 23:00 the day before: settled on `day`
    await channel.pay(_pay(late, 250))
    await control("POST", "/clock", {"now": f"{day.isoformat()}T09:00:00+08:00"})
    early = gateway_id()
    await channel.pay(_pay(early, 350))
    await control("DELETE", "/clock")
    bill = await channel.download_bill(day)
    assert [line.out_trade_no for line in bill.lines] == [late, early]
    assert bill.lines[0].trade_time.date() == day - dt.timedelta(days=1)  # the year/day come out right
    assert (await channel.download_bill(day - dt.timedelta(days=1))).total_count == 0
