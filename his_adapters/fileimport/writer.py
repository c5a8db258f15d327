"""Write bills in the import format: the sample files, templates for finance staff, tests.

CSV amounts are yuan text with two decimals; .xlsx amounts are numeric cells (as a
spreadsheet holds them) and times are date-time cells on the hospital's wall clock.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from gateway.his import BILL_TYPE_ZH, BillType, HisBill, HisBillLine
from gateway.money import fen_to_yuan

from .columns import COLUMNS

_KIND_ZH = {"payment": "支付", "refund": "退款"}
_STATUS_ZH = {"normal": "正常", "cancelled": "作废"}
_CHANNEL_ZH = {"wechatpay": "微信", "alipay": "支付宝", "unionpay": "银联", "ecny": "数字人民币", "cash": "现金"}
_CORE_TYPES = {b.value for b in BillType}
CHINA = dt.timezone(dt.timedelta(hours=8))


def _row(line: HisBillLine, tz: dt.tzinfo, *, xlsx: bool) -> list[Any]:
    local = line.occurred_at.astimezone(tz).replace(tzinfo=None)
    values: dict[str, Any] = line.model_dump()
    values.update(
        kind=_KIND_ZH[line.kind], status=_STATUS_ZH.get(line.status, line.status),
        channel=_CHANNEL_ZH.get(line.channel or "", line.channel),
        amount=float(Decimal(fen_to_yuan(line.amount))) if xlsx else fen_to_yuan(line.amount),
        occurred_at=local if xlsx else local.strftime("%Y-%m-%d %H:%M:%S"),
        bill_type=BILL_TYPE_ZH[BillType(line.bill_type)] if line.bill_type in _CORE_TYPES else line.bill_type)
    return [values[c.key] for c in COLUMNS]


def _summary(lines: list[HisBillLine], *, xlsx: bool) -> list[Any]:
    net = sum(line.amount if line.kind == "payment" else -line.amount for line in lines if line.status == "normal")
    return ["合计", len(lines), float(Decimal(fen_to_yuan(net))) if xlsx else fen_to_yuan(net)]


def _lines(bills: HisBill | Iterable[HisBill]) -> list[HisBillLine]:
    items = [bills] if isinstance(bills, HisBill) else list(bills)
    return [line for bill in items for line in bill.lines]


def _header(english: bool) -> list[str]:
    return [c.key if english else c.zh for c in COLUMNS]


def write_bill_csv(bills: HisBill | Iterable[HisBill], *, encoding: str = "utf-8-sig", english_headers: bool = False,
                   summary: bool = True, tz: dt.tzinfo = CHINA) -> bytes:
    """The bills as CSV bytes (UTF-8 with BOM by default, so spreadsheets read Chinese)."""
    lines = _lines(bills)
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(_header(english_headers))
    writer.writerows(["" if v is None else v for v in _row(line, tz, xlsx=False)] for line in lines)
    if summary:
        writer.writerow(_summary(lines, xlsx=False))
    return out.getvalue().encode(encoding)


def write_bill_xlsx(bills: HisBill | Iterable[HisBill], *, english_headers: bool = False, summary: bool = True,
                    tz: dt.tzinfo = CHINA, title: str | None = None) -> bytes:
    """The bills as an .xlsx workbook; ``title`` adds a first row above the header, as exports often have."""
    from openpyxl import Workbook

    lines = _lines(bills)
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("对账单")
    if title:
        sheet.append([title])
    sheet.append(_header(english_headers))
    for line in lines:
        sheet.append(_row(line, tz, xlsx=True))
    if summary:
        sheet.append(_summary(lines, xlsx=True))
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
