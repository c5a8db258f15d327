"""The WeChat Pay trade bill (交易账单): CSV parser and writer.

Layout: a header line, detail lines whose every field starts with a backtick, a
summary header (``总交易单数,…``) and a backticked totals line. Amounts are yuan
strings; they go through ``gateway.money`` and come out as integer fen. Columns
are read by name, so the narrower SUCCESS/REFUND bill types parse too.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import astuple, dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from gateway.channel import Bill, BillLine
from gateway.money import MoneyFormatError, fen_to_yuan, yuan_to_fen

from .wire import CST

HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,"
    "付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,"
    "退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注"
).split(",")
SUMMARY_HEADER = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额".split(",")
REFUND_STATES = frozenset({"REFUND", "REVOKED"})  # lines that give money back
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# detail column -> summary column that must equal its sum
_SUMS = {
    "应结订单金额": "应结订单总金额",
    "退款金额": "退款总金额",
    "充值券退款金额": "充值券退款总金额",
    "订单金额": "订单总金额",
    "申请退款金额": "申请退款总金额",
}


class BillFormatError(ValueError):
    """The bill text is not a trade bill (bad layout, field count, amount)."""


class BillMismatchError(BillFormatError):
    """The detail lines do not add up to the bill's own summary."""


# --- writer ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TradeBillRow:
    """One detail line, amounts in fen (field order = column order)."""

    trade_time: dt.datetime
    appid: str
    mchid: str
    sub_mchid: str
    device_id: str
    transaction_id: str
    out_trade_no: str
    openid: str
    trade_type: str
    trade_state: str
    bank_type: str
    currency: str
    settle_amount: int
    coupon_amount: int
    refund_id: str
    out_refund_no: str
    refund_amount: int
    recharge_coupon_refund: int
    refund_type: str
    refund_status: str
    subject: str
    attach: str
    fee: int
    rate: str
    order_amount: int
    apply_refund_amount: int
    rate_note: str


def _clean(text: str) -> str:
    # a backtick would start a new field; line breaks would start a new line
    return text.replace("`", "'").replace("\r", " ").replace("\n", " ")


def _cell(value: object) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(CST).strftime(TIME_FORMAT)
    if isinstance(value, int):
        return fen_to_yuan(value)
    return _clean(str(value))


def _line(values: list[str]) -> str:
    return "`" + ",`".join(values)


def write_tradebill(rows: list[TradeBillRow]) -> str:
    """Render rows as the service's ALL-type trade bill (UTF-8 text, CRLF lines)."""
    out = [",".join(HEADER)]
    out += [_line([_cell(v) for v in astuple(r)]) for r in rows]
    out.append(",".join(SUMMARY_HEADER))
    totals = [
        str(len(rows)),
        fen_to_yuan(sum(r.settle_amount for r in rows)),
        fen_to_yuan(sum(r.refund_amount for r in rows)),
        fen_to_yuan(sum(r.recharge_coupon_refund for r in rows)),
        fen_to_yuan(sum(r.fee for r in rows)),
        fen_to_yuan(sum(r.order_amount for r in rows)),
        fen_to_yuan(sum(r.apply_refund_amount for r in rows)),
    ]
    out.append(_line(totals))
    return "\r\n".join(out) + "\r\n"


# --- parser ---------------------------------------------------------------------------


def _split(line: str, lineno: int) -> list[str]:
    if not line.startswith("`"):
        raise BillFormatError(f"line {lineno}: a bill field must start with a backtick: {line[:40]!r}")
    return line[1:].split(",`")


def _fen(text: str, column: str, lineno: int) -> int:
    try:
        return yuan_to_fen(text or "0")
    except MoneyFormatError as exc:
        raise BillFormatError(f"line {lineno}: {column} is not a yuan amount: {text!r}") from exc


def _dec(text: str, column: str, lineno: int) -> Decimal:
    """Fees may carry sub-fen digits (``0.00600``); keep them exact for the sums."""
    try:
        return Decimal((text or "0").strip())
    except InvalidOperation as exc:
        raise BillFormatError(f"line {lineno}: {column} is not a number: {text!r}") from exc


def _round_fen(value: Decimal) -> int:
    return yuan_to_fen(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _ref(text: str) -> str | None:
    return None if text in ("", "0") else text


def parse_tradebill(data: bytes | str, bill_date: dt.date) -> Bill:
    """Parse a trade bill and check it against its own summary line.

    Payment lines carry the settled amount (应结订单金额); refund lines carry the
    refund amount as a negative number and kind ``"refund"``. Raises
    ``BillFormatError`` on a malformed bill and ``BillMismatchError`` when the
    lines do not add up to the summary.
    """
    text = data.decode("utf-8-sig") if isinstance(data, bytes) else data.lstrip("\ufeff")
    lines = [(n, ln.strip()) for n, ln in enumerate(text.splitlines(), 1) if ln.strip()]
    if not lines or not lines[0][1].startswith("交易时间"):
        raise BillFormatError("the bill does not start with the 交易时间 header")
    header = lines[0][1].split(",")
    try:
        split_at = next(i for i, (_, ln) in enumerate(lines) if ln.startswith("总交易单数"))
    except StopIteration:
        raise BillFormatError("the bill has no 总交易单数 summary") from None
    if split_at + 2 != len(lines):
        raise BillFormatError("the summary header must be followed by exactly one totals line")
    summary_names = lines[split_at][1].split(",")
    summary_no, summary_line = lines[split_at + 1]
    summary_vals = _split(summary_line, summary_no)
    if len(summary_vals) != len(summary_names):
        raise BillFormatError(f"line {summary_no}: {len(summary_vals)} totals for {len(summary_names)} columns")
    summary = dict(zip(summary_names, summary_vals, strict=True))

    out: list[BillLine] = []
    sums: dict[str, int] = {col: 0 for col in _SUMS}
    fee_sum = Decimal(0)
    paid = refunded = 0
    for lineno, line in lines[1:split_at]:
        vals = _split(line, lineno)
        if len(vals) != len(header):
            raise BillFormatError(f"line {lineno}: {len(vals)} fields for {len(header)} columns")
        row = dict(zip(header, vals, strict=True))
        for col in sums:
            if col in row:
                sums[col] += _fen(row[col], col, lineno)
        fee = _dec(row.get("手续费", "0"), "手续费", lineno)
        fee_sum += fee
        try:
            when = dt.datetime.strptime(row["交易时间"], TIME_FORMAT).replace(tzinfo=CST)
        except (KeyError, ValueError) as exc:
            raise BillFormatError(f"line {lineno}: bad 交易时间 {row.get('交易时间')!r}") from exc
        state = row.get("交易状态", "")
        is_refund = state in REFUND_STATES
        if is_refund:
            amount = -_fen(row.get("退款金额", "0"), "退款金额", lineno)
            refunded -= amount
        else:
            amount = _fen(row.get("应结订单金额", "0"), "应结订单金额", lineno)
            paid += amount
        sub = row.get("特约商户号", "")
        out.append(BillLine(
            trade_time=when,
            channel_trade_no=row.get("微信订单号", ""),
            out_trade_no=row.get("商户订单号", ""),
            kind="refund" if is_refund else "payment",
            amount=amount,
            fee=_round_fen(fee),
            channel_refund_no=_ref(row.get("微信退款单号", "")) if is_refund else None,
            out_refund_no=_ref(row.get("商户退款单号", "")) if is_refund else None,
            status=(row.get("退款状态") or state) if is_refund else state,
            trade_type=row.get("交易类型", ""),
            merchant_id=sub if _ref(sub) else row.get("商户号", ""),
            raw=row,
        ))

    def total(col: str) -> int:
        return _fen(summary.get(col, "0"), col, summary_no)

    count_text = summary.get("总交易单数", "")
    if not count_text.isdigit():
        raise BillFormatError(f"line {summary_no}: 总交易单数 is not a count: {count_text!r}")
    if int(count_text) != len(out):
        raise BillMismatchError(f"the summary counts {count_text} trades but the bill lists {len(out)}")
    for col, total_col in _SUMS.items():
        if col in header and total_col in summary and sums[col] != total(total_col):
            raise BillMismatchError(
                f"{col} adds up to {fen_to_yuan(sums[col])} but {total_col} says {summary[total_col]}"
            )
    fee_total = _round_fen(_dec(summary.get("手续费总金额", "0"), "手续费总金额", summary_no))
    if "手续费总金额" in summary and _round_fen(fee_sum) != fee_total:
        raise BillMismatchError(f"手续费 adds up to {fee_sum} but 手续费总金额 says {summary['手续费总金额']}")
    return Bill(
        bill_date=bill_date,
        lines=out,
        total_count=len(out),
        total_paid=total("应结订单总金额") if "应结订单总金额" in summary else paid,
        total_refunded=total("退款总金额") if "退款总金额" in summary else refunded,
        total_fee=fee_total,
    )


def empty_bill(bill_date: dt.date) -> Bill:
    return Bill(bill_date=bill_date, lines=[], total_count=0, total_paid=0, total_refunded=0, total_fee=0)
