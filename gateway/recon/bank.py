"""Bank statements (银行流水) and fund arrival (资金到账): the fourth side of reconciliation.

A channel pays a day's takings into the hospital's account a day or more later, as one
credit per merchant: the day's payments, less its refunds, less the fee the channel
charged. The statement is imported from the CSV or Excel file the bank's online
banking exports (columns below), stored per account and day like any other source
(re-importing a day replaces it), and each channel day's expected settlement is looked
for among the credits of the following ``recon_arrival_days`` days.

Statement columns (the header row may use any of the names; extra columns are ignored):

=============  =====================================================================
column         names accepted
=============  =====================================================================
date           交易日期, 记账日期, 入账日期, date (``YYYY-MM-DD``, ``YYYY/MM/DD``, ``YYYYMMDD``;
               a time after it is ignored)
credit         贷方金额, 收入金额, 入账金额, 贷方发生额, credit (yuan)
debit          借方金额, 支出金额, 借方发生额, debit (yuan; debits are not arrivals)
counterparty   对方户名, 对方账户名称, 付款人名称, counterparty
memo           摘要, 用途, 附言, memo
serial         流水号, 交易流水号, 银行流水号, serial
channel        渠道, channel (optional: wechatpay, alipay, unionpay, ecny or their Chinese names)
=============  =====================================================================

Without a channel column the channel is told by the counterparty (财付通 → WeChat Pay,
支付宝 → Alipay, 银联 → UnionPay, 数字人民币 → e-CNY).
"""
from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import polars as pl

from ..errors import ValidationFailed
from ..money import yuan_to_fen
from ..timeutil import CHINA
from .sources import FetchOutcome, store_batch

if TYPE_CHECKING:
    from ..core import Core

HEADERS = {
    "date": ("交易日期", "记账日期", "入账日期", "date"),
    "credit": ("贷方金额", "收入金额", "入账金额", "贷方发生额", "credit"),
    "debit": ("借方金额", "支出金额", "借方发生额", "debit"),
    "counterparty": ("对方户名", "对方账户名称", "付款人名称", "counterparty"),
    "memo": ("摘要", "用途", "附言", "memo"),
    "serial": ("流水号", "交易流水号", "银行流水号", "serial"),
    "channel": ("渠道", "channel"),
}
CHANNEL_WORDS = {"财付通": "wechatpay", "微信": "wechatpay", "wechatpay": "wechatpay", "支付宝": "alipay",
                 "alipay": "alipay", "银联": "unionpay", "unionpay": "unionpay", "数字人民币": "ecny", "ecny": "ecny"}
ARRIVAL_CLASSES: dict[str, tuple[str, str]] = {
    "arrival_missing": ("未到账", "Settlement not arrived"),
    "arrival_mismatch": ("到账金额不符", "Arrived amount differs"),
}
BANK_KIND = "bank"


def _channel_of(text: str) -> str | None:
    for word, channel in CHANNEL_WORDS.items():
        if word in text:
            return channel
    return None


def _rows(data: bytes, filename: str) -> list[list[str]]:
    if filename.lower().endswith(".xlsx"):
        from openpyxl import load_workbook

        ws = load_workbook(io.BytesIO(data), read_only=True, data_only=True).active
        return [["" if v is None else (v.isoformat() if isinstance(v, dt.date | dt.datetime) else str(v))
                 for v in row] for row in ws.iter_rows(values_only=True)]
    for enc in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(enc)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ValidationFailed("the statement is neither UTF-8 nor GBK text")
    return list(csv.reader(io.StringIO(text)))


def _date(text: str) -> dt.date:
    raw = text.strip().split(" ")[0].split("T")[0].replace("/", "-")
    if len(raw) == 8 and raw.isdigit():
        raw = f"{raw[:4]}-{raw[4:6]}-{raw[6:]}"
    return dt.date.fromisoformat(raw)


def parse_statement(data: bytes, filename: str = "statement.csv") -> list[dict[str, Any]]:
    """The credits of a statement as lines (day, amount in fen, channel, serial …); every problem
    is reported with its row number at once."""
    rows = _rows(data, filename)
    header_at = next((i for i, r in enumerate(rows[:10])
                      if any(c.strip() in HEADERS["date"] for c in r) and any(c.strip() in HEADERS["credit"] for c in r)),
                     None)
    if header_at is None:
        raise ValidationFailed("no header row with a date and a credit column in the first ten rows")
    header = [c.strip() for c in rows[header_at]]
    col = {key: next((header.index(n) for n in names if n in header), None) for key, names in HEADERS.items()}
    lines, errors = [], []
    for n, r in enumerate(rows[header_at + 1:], start=header_at + 2):
        if not any(c.strip() for c in r) or r[0].strip() in ("合计", "总计", "total"):
            continue

        def cell(key: str, r: list[str] = r) -> str:
            i = col[key]
            return r[i].strip() if i is not None and i < len(r) else ""

        credit = cell("credit").replace(",", "")
        if not credit or credit in ("0", "0.00", "-"):
            continue  # a debit or an empty credit: not an arrival
        try:
            day = _date(cell("date"))
            amount = yuan_to_fen(credit)
        except (ValueError, TypeError) as exc:
            errors.append(f"row {n}: {exc}")
            continue
        channel = _channel_of(cell("channel").lower() or cell("channel")) or _channel_of(cell("counterparty")) \
            or _channel_of(cell("memo"))
        lines.append({"day": day, "txn_id": cell("serial") or None, "kind": "payment", "amount": amount,
                      "status": "SUCCEEDED", "his_serial": None, "channel_trade_no": None, "channel": channel,
                      "order_ref": cell("counterparty")[:256] or None, "method": None, "operator": None,
                      "entry": (cell("memo") or None) and cell("memo")[:64],
                      "occurred_at": dt.datetime.combine(day, dt.time(9), CHINA).astimezone(dt.UTC)})
    if errors:
        raise ValidationFailed(f"{len(errors)} problem(s) in the statement", errors=errors[:50])
    return lines


async def import_statement(core: Core, account: str, data: bytes, filename: str, actor: str) -> list[FetchOutcome]:
    """Store a statement's credits per day of account ``account`` (each day replaced)."""
    by_day: dict[dt.date, list[dict[str, Any]]] = defaultdict(list)
    for line in parse_statement(data, filename):
        by_day[line.pop("day")].append(line)
    out = []
    for day, lines in sorted(by_day.items()):
        out.append(await store_batch(core, day=day, source="bank", source_id=account, bill_type="",
                                     origin="import", lines=lines, actor=actor))
    return out


def match_arrivals(channel_lines: list[dict[str, Any]], bank_lines: list[dict[str, Any]], day: dt.date,
                   arrival_days: int) -> list[dict[str, Any]]:
    """Each channel's expected settlement of ``day`` against the credits of day+1 … day+arrival_days.

    Vectorised over the (small) per-channel aggregates: an exact amount within the window
    is arrived; otherwise the first credit of that channel in the window differs; with no
    credit and a statement that covers the whole window it is missing; else pending."""
    sched = pl.DataFrame({"channel": [x["channel"] for x in channel_lines if x["day"] == day],
                          "signed": [(x["amount"] if x["kind"] == "payment" else -x["amount"]) - int(x.get("fee") or 0)
                                     for x in channel_lines if x["day"] == day]},
                         schema={"channel": pl.String, "signed": pl.Int64})
    if sched.is_empty():
        return []
    expected = sched.group_by("channel").agg(expected=pl.col("signed").sum())
    bank = pl.DataFrame({"channel": [x["channel"] for x in bank_lines],
                         "bank_day": [x["day"] for x in bank_lines], "arrived": [x["amount"] for x in bank_lines],
                         "serial": [x["txn_id"] for x in bank_lines]},
                        schema={"channel": pl.String, "bank_day": pl.Date, "arrived": pl.Int64, "serial": pl.String})
    last = day + dt.timedelta(days=arrival_days)
    window = bank.filter((pl.col("bank_day") > day) & (pl.col("bank_day") <= last))
    covered = bool(bank.height) and max(bank["bank_day"].to_list()) >= last
    joined = expected.join(window, on="channel", how="left")
    exact = (joined.filter(pl.col("arrived") == pl.col("expected")).sort("bank_day")
             .group_by("channel").first().with_columns(status=pl.lit("arrived")))
    first = (joined.filter(pl.col("arrived").is_not_null()).sort("bank_day").group_by("channel").first()
             .join(exact.select("channel"), on="channel", how="anti").with_columns(status=pl.lit("arrival_mismatch")))
    none = (expected.join(window.select("channel").unique(), on="channel", how="anti")
            .with_columns(bank_day=pl.lit(None, pl.Date), arrived=pl.lit(None, pl.Int64),
                          serial=pl.lit(None, pl.String),
                          status=pl.lit("arrival_missing" if covered else "pending")))
    out = pl.concat([exact, first, none.select(exact.columns)], how="vertical_relaxed").sort("channel")
    return out.to_dicts()
