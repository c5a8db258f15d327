"""Bill import from CSV and .xlsx: encodings, Excel cells, summaries, errors with row numbers."""
from __future__ import annotations

import datetime as dt
import io
import zipfile
from typing import Any

import pytest
from openpyxl import Workbook

from gateway.his import HisBill
from his_adapters.fileimport import BillFileError, parse_bill_file, write_bill_csv, write_bill_xlsx
from his_adapters.fileimport.samples import SAMPLE_DAY, SAMPLES_DIR, sample_bills

DAY = SAMPLE_DAY
HEADER = ["业务流水号", "交易类型", "金额(元)", "交易时间", "支付渠道", "状态"]


def _core(bills: HisBill | list[HisBill]) -> list[tuple[str, list[dict[str, Any]]]]:
    items = [bills] if isinstance(bills, HisBill) else bills
    return [(b.bill_type, [line.model_dump(exclude={"raw"}) for line in b.lines]) for b in items]


def _xlsx(rows: list[list[Any]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _csv(rows: list[list[str]], encoding: str = "utf-8") -> bytes:
    return "\n".join(",".join(r) for r in rows).encode(encoding)


@pytest.mark.parametrize("name", ["his-bill-sample.csv", "his-bill-sample.xlsx"])
def test_shipped_samples_parse_into_the_four_bill_types(name: str) -> None:
    bills = parse_bill_file(SAMPLES_DIR / name, day=DAY)
    assert _core(bills) == _core(sample_bills())
    assert isinstance(bills, list) and [b.bill_type for b in bills] == [
        "outpatient_registration", "outpatient_settlement", "inpatient_deposit", "inpatient_settlement"]
    mz = bills[1].lines
    assert [line.amount for line in mz] == [48431, 16144, 1, 6660]
    assert mz[1].kind == "refund" and mz[3].status == "cancelled" and mz[2].channel == "unionpay"
    assert mz[0].occurred_at == dt.datetime(2024, 5, 20, 1, 30, 5, tzinfo=dt.UTC)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_csv_encodings(encoding: str) -> None:
    data = write_bill_csv(sample_bills(), encoding=encoding)
    assert _core(parse_bill_file(data, filename="bill.csv", day=DAY)) == _core(sample_bills())


def test_english_headers_and_one_bill_type_with_summary() -> None:
    bill = sample_bills()[1]
    parsed = parse_bill_file(write_bill_csv(bill, english_headers=True), filename="mz.csv", day=DAY)
    assert isinstance(parsed, HisBill)
    assert _core(parsed) == _core(bill)
    assert (parsed.total_count, parsed.total_amount) == (4, 48431 - 16144 + 1)  # the cancelled line is not net


def test_default_bill_type_and_header_overrides() -> None:
    data = _csv([["流水号", "类型", "金额（元）", "交易时间"],
                 ["A1", "收费", "12.30", "2024/05/20 08:00:00"],
                 ["A2", "退费", "-2.30", "2024-05-20 09:00"]])
    bill = parse_bill_file(data, filename="x.csv", day=DAY, default_bill_type="exam",
                           mapping_overrides={"流水号": "his_serial", "类型": "kind"})
    assert isinstance(bill, HisBill) and bill.bill_type == "exam"
    assert [(line.kind, line.amount) for line in bill.lines] == [("payment", 1230), ("refund", 230)]


def test_summary_mismatch_names_the_row() -> None:
    rows = [HEADER, ["A1", "支付", "1.00", "2024-05-20 08:00:00", "微信", "正常"],
            ["A2", "支付", "2.00", "2024-05-20 08:00:01", "微信", "正常"], ["合计", "2", "3.01"]]
    with pytest.raises(BillFileError) as caught:
        parse_bill_file(_csv(rows), filename="x.csv", day=DAY, default_bill_type="exam")
    (error,) = caught.value.errors
    assert error.row == 4 and "2 / 300 fen" in error.message and "301 fen" in error.message


def _patched(data: bytes, old: str, new: str) -> bytes:
    """The workbook with one stored cell value replaced, as a spreadsheet program would write it."""
    src, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            body = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                body = body.replace(f"<v>{old}</v>".encode(), f"<v>{new}</v>".encode())
            dst.writestr(item, body)
    return out.getvalue()


def test_excel_float_cells_are_exact_or_refused() -> None:
    rows: list[list[Any]] = [HEADER,
                             ["A1", "支付", 12345678.9, dt.datetime(2024, 5, 20, 8), "微信", "正常"],
                             ["A2", "支付", 25, "2024-05-20 08:00:01", "支付宝", None],
                             ["A3", "支付", 1.25, "2024-05-20 08:00:02", "微信", "正常"],
                             ["A4", "支付", 12.345, "2024-05-20 08:00:03", "微信", "正常"],
                             [4.2e27, "支付", 1.5, "2024-05-20 08:00:04", "微信", "正常"],
                             [20240520001, "支付", 0.01, 45432.5, "银联", "正常"]]  # 45432.5 = 2024-05-20 12:00
    # A formula's cached result, written with 17 digits: the sheet shows 0.30.
    data = _patched(_xlsx(rows), "1.25", "0.30000000000000004")
    data = _patched(data, "12.345", "12.345000000000001")
    with pytest.raises(BillFileError) as caught:
        parse_bill_file(data, filename="x.xlsx", day=DAY, default_bill_type="exam")
    assert [(e.row, e.column) for e in caught.value.errors] == [(5, "金额(元)"), (6, "业务流水号")]
    assert "12.345" in caught.value.errors[0].message and "lost digits" in caught.value.errors[1].message
    good = [r for i, r in enumerate(rows) if i not in (4, 5)]
    bill = parse_bill_file(_patched(_xlsx(good), "1.25", "0.30000000000000004"), filename="x.xlsx", day=DAY,
                           default_bill_type="exam")
    assert isinstance(bill, HisBill)
    assert [(line.his_serial, line.amount) for line in bill.lines] == [
        ("A1", 1234567890), ("A2", 2500), ("A3", 30), ("20240520001", 1)]
    assert bill.lines[3].occurred_at == dt.datetime(2024, 5, 20, 4, tzinfo=dt.UTC)


def test_every_bad_row_is_reported_with_row_and_column() -> None:
    rows = [["医院HIS对账单"], HEADER + ["账单类型"],
            ["A1", "支付", "1.00", "2024-05-20 08:00:00", "微信", "正常", "门诊挂号"],
            ["", "支付", "1.00", "2024-05-20 08:00:00", "微信", "正常", "门诊挂号"],
            ["A3", "充值", "abc", "2024-05-20 25:00:00", "微信", "正常", "门诊挂号"],
            ["A4", "支付", "1.00", "2024-05-21 00:00:00", "微信", "正常", "门诊挂号"],
            ["A5", "支付", "1.00", "2024-05-20 08:00:00", "微信", "挂起", "化验"],
            ["A1", "支付", "2.00", "2024-05-20 09:00:00", "微信", "正常", "门诊挂号"],
            ["A7", "支付", "-1.00", "2024-05-20 09:00:00", "微信", "正常", "门诊挂号"]]
    with pytest.raises(BillFileError) as caught:
        parse_bill_file(_csv(rows, "gbk"), filename="x.csv", day=DAY)
    got = [(e.row, e.column) for e in caught.value.errors]
    assert got == [(4, "业务流水号"), (5, "交易类型"), (5, "金额(元)"), (5, "交易时间"), (6, "交易时间"),
                   (7, "状态"), (7, "账单类型"), (8, "业务流水号"), (9, "金额(元)")]
    assert "2024-05-21" in caught.value.errors[4].message and "repeats row 3" in caught.value.errors[7].message
    assert "row 4, 业务流水号: is empty" in str(caught.value)


def test_file_level_errors() -> None:
    with pytest.raises(BillFileError, match="required column missing"):
        parse_bill_file(_csv([["业务流水号", "交易类型", "交易时间"], ["A1", "支付", "2024-05-20 08:00:00"]]),
                        filename="x.csv", day=DAY, default_bill_type="exam")
    with pytest.raises(BillFileError, match="no 账单类型/bill_type column"):
        parse_bill_file(_csv([HEADER]), filename="x.csv", day=DAY)
    with pytest.raises(BillFileError, match="no header row"):
        parse_bill_file(_csv([["a", "b"]] * 12), filename="x.csv", day=DAY)
    with pytest.raises(BillFileError, match="unsupported file type"):
        parse_bill_file(b"x", filename="bill.xls", day=DAY)
    with pytest.raises(BillFileError, match="not a readable .xlsx"):
        parse_bill_file(b"not a zip", filename="bill.xlsx", day=DAY)
    with pytest.raises(BillFileError, match="rows after the summary"):
        parse_bill_file(_csv([HEADER, ["合计", "0", "0"], ["A1", "支付", "1", "2024-05-20 08:00:00", "", ""]]),
                        filename="x.csv", day=DAY, default_bill_type="exam")


def test_empty_bill_with_default_type() -> None:
    bill = parse_bill_file(_csv([HEADER, ["合计", "0", "0.00"]]), filename="x.csv", day=DAY,
                           default_bill_type="inpatient_deposit")
    assert isinstance(bill, HisBill) and (bill.lines, bill.total_count, bill.total_amount) == ([], 0, 0)


def test_xlsx_writer_output_round_trips_with_summary() -> None:
    data = write_bill_xlsx(sample_bills()[3], title="住院结算")
    bill = parse_bill_file(data, filename="zy.xlsx", day=DAY)
    assert isinstance(bill, HisBill) and _core(bill) == _core(sample_bills()[3])
    assert (bill.total_count, bill.total_amount) == (2, 123456 - 76544)
