"""Property: a bill written to CSV or .xlsx in the import format parses back to the same lines."""
from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.his import HIS_BILL_TYPES, HisBill, HisBillLine
from his_adapters.fileimport import parse_bill_file, write_bill_csv, write_bill_xlsx

DAY = dt.date(2024, 5, 20)
START = dt.datetime(2024, 5, 19, 16, tzinfo=dt.UTC)  # local midnight of DAY at +08:00

ids = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789-", min_size=1, max_size=24)
names = st.text(alphabet="王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高伟芳娜秀英敏静丽强磊·", min_size=2, max_size=6)
optional = st.one_of(st.none(), ids)


@st.composite
def bill_lines(draw: st.DrawFn) -> list[HisBillLine]:
    serials = draw(st.lists(ids, min_size=0, max_size=12, unique=True))
    lines = []
    for serial in serials:
        kind = draw(st.sampled_from(["payment", "refund"]))
        lines.append(HisBillLine(
            bill_type=draw(st.sampled_from([b.value for b in HIS_BILL_TYPES])), his_serial=serial,
            trade_no=draw(optional), channel_trade_no=draw(optional),
            refund_no=draw(optional) if kind == "refund" else None, kind=kind,
            amount=draw(st.integers(min_value=1, max_value=99_999_999_999)),
            patient_id=draw(optional), patient_name=draw(st.one_of(st.none(), names)), visit_no=draw(optional),
            department=draw(st.one_of(st.none(), st.sampled_from(["内科", "外科", "儿科"]))),
            operator=draw(optional), channel=draw(st.sampled_from([None, "wechatpay", "alipay", "unionpay", "cash"])),
            status=draw(st.sampled_from(["normal", "cancelled"])),
            occurred_at=START + dt.timedelta(seconds=draw(st.integers(min_value=0, max_value=86399)))))
    return lines


def _same(parsed: HisBill | list[HisBill], lines: list[HisBillLine]) -> None:
    bills = [parsed] if isinstance(parsed, HisBill) else parsed
    got = sorted((line.model_dump(exclude={"raw"}) for b in bills for line in b.lines), key=lambda d: d["his_serial"])
    assert got == sorted((line.model_dump(exclude={"raw"}) for line in lines), key=lambda d: d["his_serial"])
    if len(bills) == 1:
        net = sum(x.amount if x.kind == "payment" else -x.amount for x in lines if x.status == "normal")
        assert (bills[0].total_count, bills[0].total_amount) == (len(lines), net)


def _bill(lines: list[HisBillLine]) -> HisBill:
    return HisBill(day=DAY, bill_type="outpatient_settlement", lines=lines)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=bill_lines(), encoding=st.sampled_from(["utf-8", "utf-8-sig", "gb18030"]), english=st.booleans())
def test_csv_round_trip(lines: list[HisBillLine], encoding: str, english: bool) -> None:
    data = write_bill_csv(_bill(lines), encoding=encoding, english_headers=english)
    _same(parse_bill_file(data, filename="bill.csv", day=DAY, default_bill_type="outpatient_settlement"), lines)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=bill_lines(), title=st.booleans())
def test_xlsx_round_trip(lines: list[HisBillLine], title: bool) -> None:
    data = write_bill_xlsx(_bill(lines), title="对账单" if title else None)
    _same(parse_bill_file(data, filename="bill.xlsx", day=DAY, default_bill_type="outpatient_settlement"), lines)
