"""Report exports: CSV (UTF-8 with BOM, opens in Excel), Excel (.xlsx) and printable HTML.

Money columns are written in yuan from integer fen: exact decimal text in CSV and
HTML, and in Excel a number with two decimals built from ``Decimal`` (cells hold
what finance staff type themselves)."""
from __future__ import annotations

import csv
import html
import io
from decimal import Decimal
from typing import Any

from ..money import fen_to_yuan
from .reports import Report


def _cell(value: Any, kind: str) -> Any:
    if kind == "fen":
        return fen_to_yuan(int(value or 0))
    return "" if value is None else value


def _header(report: Report, lang: str) -> list[str]:
    return [c.zh if lang == "zh" else c.en for c in report.columns]


def to_csv(report: Report, lang: str = "zh") -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([report.title_zh if lang == "zh" else report.title_en,
                f"{report.begin.isoformat()} ~ {report.end.isoformat()}"])
    w.writerow(_header(report, lang))
    for row in [*report.rows, report.totals]:
        w.writerow([_cell(row.get(c.key), c.kind) if (c.key in row or c.kind == "fen") else ""
                    for c in report.columns])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def to_xlsx(report: Report, lang: str = "zh") -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = (report.title_zh if lang == "zh" else report.title_en)[:31]
    ws.append([report.title_zh if lang == "zh" else report.title_en,
               f"{report.begin.isoformat()} ~ {report.end.isoformat()}"])
    ws["A1"].font = Font(bold=True, size=13)
    ws.append(_header(report, lang))
    for cell in ws[2]:
        cell.font = Font(bold=True)
    for row in [*report.rows, report.totals]:
        out = []
        for c in report.columns:
            v = row.get(c.key)
            if c.kind == "fen":
                out.append(Decimal(int(v or 0)) / 100 if (c.key in row) else None)
            else:
                out.append("" if v is None else v)
        ws.append(out)
    for i, c in enumerate(report.columns, start=1):
        if c.kind == "fen":
            for (cell,) in ws.iter_rows(min_row=3, min_col=i, max_col=i):
                cell.number_format = "#,##0.00"
        ws.column_dimensions[ws.cell(row=2, column=i).column_letter].width = max(10, len(_header(report, lang)[i - 1]) * 2 + 2)
    for cell in ws[ws.max_row]:
        cell.font = Font(bold=True)
    ws.freeze_panes = "A3"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def to_html(report: Report, lang: str = "zh") -> bytes:
    title = report.title_zh if lang == "zh" else report.title_en
    head = "".join(f"<th>{html.escape(h)}</th>" for h in _header(report, lang))
    body = []
    for row in [*report.rows, report.totals]:
        tds = []
        for c in report.columns:
            v = row.get(c.key)
            text = fen_to_yuan(int(v or 0)) if c.kind == "fen" and c.key in row else ("" if v is None else str(v))
            cls = ' class="n"' if c.kind in ("fen", "int") else ""
            tds.append(f"<td{cls}>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    style = ("body{font-family:sans-serif;margin:16px}table{border-collapse:collapse;width:100%}"
             "th,td{border:1px solid #999;padding:3px 6px;font-size:12px}th{background:#eee}td.n{text-align:right}"
             "tr:last-child td{font-weight:bold}@page{size:landscape}")
    doc = (f'<!doctype html><html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">'
           f"<title>{html.escape(title)}</title><style>{style}</style></head><body>"
           f"<h2>{html.escape(title)}</h2><p>{report.begin.isoformat()} ~ {report.end.isoformat()}</p>"
           f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></body></html>")
    return doc.encode("utf-8")


FORMATS = {"csv": ("text/csv; charset=utf-8", to_csv), "xlsx": (
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", to_xlsx),
    "html": ("text/html; charset=utf-8", to_html)}
