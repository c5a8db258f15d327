"""Parse a daily bill that finance staff export from a business system into CSV or .xlsx.

Every problem is collected with its row number (as the spreadsheet shows it) and
column, and raised together as :class:`BillFileError`, so one import attempt tells
the user everything to fix.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gateway.errors import HisProtocolError
from gateway.his import HIS_BILL_TYPES, HisBill, HisBillLine
from gateway.mapping import FieldSpec, Mapping

from .columns import (BILL_TYPES, BY_KEY, CHANNELS, KINDS, STATUSES, SUMMARY_MARKERS, TEXT_KEYS, header_aliases,
                      normalize_header)

DATETIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M",
                    "%Y%m%d%H%M%S", "%Y-%m-%dT%H:%M:%S")
_MAX_PREAMBLE_ROWS = 10
_MAX_EXACT_FLOAT = 2**53
_SPREADSHEET_DIGITS = 15


@dataclass(frozen=True)
class RowError:
    row: int  # as the spreadsheet numbers it (the header row counts); 0 = the whole file
    column: str | None  # the header as written in the file, or the column key
    message: str

    def __str__(self) -> str:
        where = f"row {self.row}" if self.row else "file"
        return f"{where}, {self.column}: {self.message}" if self.column else f"{where}: {self.message}"


class BillFileError(ValueError):
    """A bill file that cannot be imported; ``errors`` lists every problem found."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors
        shown = "; ".join(str(e) for e in errors[:10])
        more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
        super().__init__(f"{len(errors)} problem(s) in the bill file: {shown}{more}")


def parse_bill_file(source: str | Path | bytes, *, filename: str | None = None, day: dt.date,
                    default_bill_type: str | None = None, mapping_overrides: dict[str, str] | None = None,
                    utc_offset: str = "+08:00", encoding: str | None = None) -> HisBill | list[HisBill]:
    """Read a CSV (UTF-8 with or without BOM, GBK/GB18030) or .xlsx bill of ``day``.

    Returns one :class:`HisBill`, or one per bill type (in the usual order) when the
    file holds several. ``mapping_overrides`` adds header aliases (``{"流水号": "his_serial"}``).
    ``utc_offset`` is the wall clock of the times in the file.
    """
    if isinstance(source, str | Path):
        path = Path(source)
        filename = filename or path.name
        data = path.read_bytes()
    else:
        data = source
    if not filename:
        raise ValueError("give filename when passing bytes: its extension tells CSV from .xlsx")
    if default_bill_type is not None and default_bill_type not in BILL_TYPES.values():
        raise ValueError(f"unknown default_bill_type {default_bill_type!r}")
    suffix = Path(filename).suffix.lower()
    if suffix == ".xlsx":
        rows = _xlsx_rows(data)
    elif suffix in (".csv", ".txt"):
        rows = _csv_rows(data, encoding)
    else:
        raise BillFileError([RowError(0, None, f"unsupported file type {suffix or filename!r}; use .csv or .xlsx")])
    reader = _BillReader(day, default_bill_type, header_aliases(mapping_overrides), Mapping(utc_offset=utc_offset))
    return reader.read(rows)


def _csv_rows(data: bytes, encoding: str | None) -> Iterator[tuple[int, list[Any]]]:
    text = _decode(data, encoding)
    first = text.split("\n", 1)[0]
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    for number, row in enumerate(reader, 1):
        yield number, list(row)


def _decode(data: bytes, encoding: str | None) -> str:
    if encoding:
        return data.decode(encoding)
    try:
        return data.decode("utf-8-sig")  # strips a BOM when there is one
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")  # a superset of GBK and GB2312
    except UnicodeDecodeError as exc:
        raise BillFileError([RowError(0, None, f"the file is neither UTF-8 nor GBK/GB18030 text: {exc}")]) from None


def _xlsx_rows(data: bytes) -> Iterator[tuple[int, list[Any]]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure to open is "not an .xlsx"
        raise BillFileError([RowError(0, None, f"not a readable .xlsx workbook: {exc}")]) from None
    try:
        sheet = workbook.worksheets[0]
        for number, row in enumerate(sheet.iter_rows(min_row=1, values_only=True), 1):
            yield number, list(row)
    finally:
        workbook.close()


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


class _BillReader:
    def __init__(self, day: dt.date, default_bill_type: str | None, aliases: dict[str, str],
                 mapping: Mapping) -> None:
        self.day = day
        self.default_bill_type = default_bill_type
        self.aliases = aliases
        self.mapping = mapping
        self.errors: list[RowError] = []
        self.headers: dict[str, str] = {}  # key → header as written
        self.summary: tuple[int, int] | None = None  # (count, net fen) of a valid summary row

    def read(self, rows: Iterator[tuple[int, list[Any]]]) -> HisBill | list[HisBill]:
        columns = self._find_header(rows)
        lines: list[tuple[int, HisBillLine]] = []
        summary: tuple[int, list[Any]] | None = None
        seen: dict[tuple[str, str], int] = {}
        for number, cells in rows:
            if all(_blank(c) for c in cells):
                continue
            filled = [c for c in cells if not _blank(c)]
            # A summary row is 合计, count, total: too few cells to be a transaction.
            if len(filled) <= 3 and isinstance(filled[0], str) and normalize_header(filled[0]) in SUMMARY_MARKERS:
                summary = (number, cells)
                continue
            if summary is not None:
                self.errors.append(RowError(number, None, f"rows after the summary row {summary[0]}"))
                summary = None
            line = self._line(number, columns, cells)
            if line is None:
                continue
            key = (line.his_serial, line.kind)
            if key in seen:
                self.errors.append(RowError(number, self.headers["his_serial"],
                                            f"{line.kind} {line.his_serial} repeats row {seen[key]}"))
                continue
            seen[key] = number
            lines.append((number, line))
        if summary is not None:
            self._check_summary(summary, [line for _, line in lines])
        if self.errors:
            raise BillFileError(self.errors)
        return self._bills([line for _, line in lines])

    def _find_header(self, rows: Iterator[tuple[int, list[Any]]]) -> dict[int, str]:
        for number, cells in rows:
            columns = {i: self.aliases[normalize_header(str(c))] for i, c in enumerate(cells)
                       if not _blank(c) and normalize_header(str(c)) in self.aliases}
            if len(columns) >= 3:
                return self._check_header(number, cells, columns)
            if number >= _MAX_PREAMBLE_ROWS:
                break
        raise BillFileError([RowError(0, None, f"no header row in the first {_MAX_PREAMBLE_ROWS} rows; "
                                               f"expected headers such as 业务流水号, 金额(元), 交易时间")])

    def _check_header(self, number: int, cells: list[Any], columns: dict[int, str]) -> dict[int, str]:
        errors = []
        for i, key in columns.items():
            if key in self.headers:
                errors.append(RowError(number, str(cells[i]), f"column {key} appears twice"))
            self.headers[key] = str(cells[i]).strip()
        for key in ("his_serial", "kind", "amount", "occurred_at"):
            if key not in self.headers:
                errors.append(RowError(number, BY_KEY[key].zh, f"required column missing ({BY_KEY[key].zh} / {key})"))
        if "bill_type" not in self.headers and self.default_bill_type is None:
            errors.append(RowError(number, BY_KEY["bill_type"].zh,
                                   "no 账单类型/bill_type column and no default bill type given"))
        for key in BY_KEY:
            self.headers.setdefault(key, BY_KEY[key].zh)
        if errors:
            raise BillFileError(errors)
        return columns

    def _line(self, number: int, columns: dict[int, str], cells: list[Any]) -> HisBillLine | None:
        values: dict[str, Any] = {}
        raw: dict[str, Any] = {"row": number}
        before = len(self.errors)
        for i, key in columns.items():
            cell = cells[i] if i < len(cells) else None
            raw[self.headers[key]] = _jsonable(cell)
            if _blank(cell):
                if BY_KEY[key].required:
                    self._error(number, key, "is empty")
                continue
            try:
                values[key] = self._convert(key, cell)
            except ValueError as exc:
                self._error(number, key, str(exc))
        values.setdefault("bill_type", self.default_bill_type)
        if len(self.errors) > before:
            return None
        local = values["occurred_at"].astimezone(self.mapping.tz).date()
        if local != self.day:
            self._error(number, "occurred_at", f"is on {local}, not on the bill's day {self.day}")
            return None
        if values["amount"] < 0:
            if values["kind"] != "refund":
                self._error(number, "amount", "is negative on a payment (negative amounts are refunds)")
                return None
            values["amount"] = -values["amount"]
        if values["amount"] == 0:
            self._error(number, "amount", "is zero")
            return None
        try:
            return HisBillLine(**values, raw=raw)
        except ValidationError as exc:
            self._error(number, None, "; ".join(e["msg"] for e in exc.errors()))
            return None

    def _convert(self, key: str, cell: Any) -> Any:
        if key == "amount":
            return self._amount(cell)
        if key == "occurred_at":
            return self._datetime(cell)
        if key in TEXT_KEYS:
            return _text(cell)
        word = _text(cell)
        table = {"kind": KINDS, "status": STATUSES, "bill_type": BILL_TYPES, "channel": CHANNELS}[key]
        if key == "channel":
            return table.get(word.lower(), table.get(word, word))
        found = table.get(word.lower(), table.get(word))
        if found is None:
            raise ValueError(f"{word!r} is not one of {', '.join(sorted(k for k in table if not k.isascii()))}")
        return found

    def _amount(self, cell: Any) -> int:
        if isinstance(cell, str):
            cell = cell.strip().lstrip("¥￥").strip()
        elif isinstance(cell, float):
            # A spreadsheet keeps 15 significant digits: a sum it shows as 0.30 is stored as
            # 0.30000000000000004. Read the cell as the spreadsheet does, then demand 2 decimals.
            cell = Decimal(format(cell, f".{_SPREADSHEET_DIGITS}g"))
        try:
            return self.mapping.convert("amount", FieldSpec(src="amount", type="amount"), cell, "cell")
        except HisProtocolError as exc:
            raise ValueError(f"{cell!r} is not a yuan amount with at most 2 decimals") from exc

    def _datetime(self, cell: Any) -> dt.datetime:
        if isinstance(cell, dt.datetime):
            value = cell
        elif isinstance(cell, int | float) and not isinstance(cell, bool):
            from openpyxl.utils.datetime import from_excel

            value = from_excel(cell)  # a date cell without a date format: Excel's day number
            if not isinstance(value, dt.datetime):
                raise ValueError(f"{cell!r} is not a date and time")
        else:
            value = _strptime(str(cell).strip())
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.mapping.tz)
        return value.astimezone(dt.UTC)

    def _error(self, number: int, key: str | None, message: str) -> None:
        self.errors.append(RowError(number, self.headers.get(key, key) if key else None, message))

    def _check_summary(self, summary: tuple[int, list[Any]], lines: list[HisBillLine]) -> None:
        number, cells = summary
        values = [c for c in cells if not _blank(c)][1:]
        if len(values) < 2:
            self.errors.append(RowError(number, None, "the summary row needs 合计, the line count and the net total"))
            return
        try:
            count = int(_text(values[0]))
        except ValueError:
            self.errors.append(RowError(number, None, f"summary count {values[0]!r} is not a whole number"))
            return
        try:
            total = self._amount(values[1])
        except ValueError as exc:
            self.errors.append(RowError(number, None, f"summary total {exc}"))
            return
        if self.errors:
            return  # the lines are incomplete; comparing would only add noise
        actual = sum(line.amount if line.kind == "payment" else -line.amount
                     for line in lines if line.status == "normal")
        if (count, total) != (len(lines), actual):
            self.errors.append(RowError(number, None, f"the summary says {count} lines / {total} fen net, "
                                                      f"the rows give {len(lines)} / {actual} fen"))
        self.summary = (count, total)

    def _bills(self, lines: list[HisBillLine]) -> HisBill | list[HisBill]:
        groups: dict[str, list[HisBillLine]] = {}
        for line in lines:
            groups.setdefault(line.bill_type, []).append(line)
        if not groups:
            return HisBill(day=self.day, bill_type=str(self.default_bill_type), lines=[],
                           **self._totals(single=True))
        order = [b.value for b in HIS_BILL_TYPES]
        keys = sorted(groups, key=lambda b: (order.index(b) if b in order else len(order), b))
        bills = [HisBill(day=self.day, bill_type=k, lines=groups[k], **self._totals(single=len(keys) == 1))
                 for k in keys]
        return bills[0] if len(bills) == 1 else bills

    def _totals(self, single: bool) -> dict[str, Any]:
        if single and self.summary is not None:
            return {"total_count": self.summary[0], "total_amount": self.summary[1]}
        return {}


def _text(cell: Any) -> str:
    """A cell as text; numbers from Excel must still be the digits that were typed."""
    if isinstance(cell, bool):
        raise ValueError(f"{cell!r} is not text")
    if isinstance(cell, float):
        if not cell.is_integer() or abs(cell) >= _MAX_EXACT_FLOAT:
            raise ValueError(f"{cell!r} is a number that lost digits; format the column as text")
        return str(int(cell))
    if isinstance(cell, dt.datetime | dt.date):
        raise ValueError(f"{cell!r} is a date, not text")
    return str(cell).strip()


def _strptime(text: str) -> dt.datetime:
    for fmt in DATETIME_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date and time like 2024-05-20 08:30:00") from None


def _jsonable(cell: Any) -> Any:
    if isinstance(cell, dt.datetime | dt.date | dt.time):
        return cell.isoformat()
    if isinstance(cell, float):
        return repr(cell)
    return cell

