"""The Alipay trade bill (业务明细): zip of GBK CSV files, parser and writer.

``alipay.data.dataservice.bill.downloadurl.query`` gives a URL to a zip named
``<pid>_<yyyymmdd>.csv.zip`` holding ``<pid>0156_<yyyymmdd>_业务明细.csv`` and
``<pid>0156_<yyyymmdd>_业务明细(汇总).csv``, GBK-encoded (member names too,
without the zip UTF-8 flag). The detail file is:

    #支付宝业务明细查询
    #账号：[20881234567890120156]
    #起始日期：[2024年05月01日 00:00:00]   终止日期：[2024年05月02日 00:00:00]
    #-----------------------------------------业务明细列表----------------------------------------
    支付宝交易号,商户订单号,业务类型,…,备注
    2024050122001412345678901234\t,T1\t,交易,…            (ID fields carry a trailing tab)
    #-----------------------------------------业务明细列表结束------------------------------------
    #交易合计：6笔，商家实收共0.06元，…，服务费共0.00元，…
    #退款合计：1笔，商家实收共-0.01元，…
    #导出时间：[2024年05月02日 09:10:21]

业务类型 is 交易 (payment) or 退款 (refund, amounts negative). Amounts are yuan;
they go through ``gateway.money`` and come out as integer fen. 服务费 is written as
the merchant sees it (negative on payments, positive when a refund gives it back);
``BillLine.fee`` is the fee *charged*, so it is the opposite.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from dataclasses import astuple, dataclass

from gateway.channel import Bill, BillLine
from gateway.money import MoneyFormatError, fen_to_yuan, yuan_to_fen

from .wire import CST, TIME_FORMAT

HEADER = (
    "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,"
    "订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,"
    "券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注"
).split(",")
ID_COLUMNS = frozenset({"支付宝交易号", "商户订单号", "退款批次号/请求号"})
TITLE = "#支付宝业务明细查询"
RULE_START = "#" + "-" * 41 + "业务明细列表" + "-" * 40
RULE_END = "#" + "-" * 41 + "业务明细列表结束" + "-" * 36
SUMMARY_HEADER = ("门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）,支付宝优惠（元）,"
                  "商家优惠（元）,卡消费金额（元）,服务费（元）,分润（元）,实收净额（元）")
KINDS = {"交易": "payment", "退款": "refund"}
# footer label -> detail column it totals
_FOOTER_SUMS = {"商家实收": "商家实收（元）", "商家优惠": "商家优惠（元）", "支付宝红包": "支付宝红包（元）",
                "集分宝": "集分宝（元）", "支付宝优惠": "支付宝优惠（元）", "商家红包": "商家红包消费金额（元）",
                "卡消费": "卡消费金额（元）", "服务费": "服务费（元）", "分润": "分润（元）"}
_CN_TIME = "%Y年%m月%d日 %H:%M:%S"


class BillFormatError(ValueError):
    """The file is not an Alipay detail bill (layout, field count, amount, date)."""


class BillMismatchError(BillFormatError):
    """The detail lines do not add up to the bill's own footer."""


# --- writer ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AlipayBillRow:
    """One detail line, amounts in fen with the bill's own signs (field order = column order)."""

    trade_no: str
    out_trade_no: str
    kind: str  # 交易 | 退款
    subject: str
    created_at: dt.datetime
    finished_at: dt.datetime
    store_id: str
    store_name: str
    operator: str
    terminal_id: str
    buyer_account: str
    order_amount: int
    receipt_amount: int  # 商家实收: negative on 退款 lines
    red_packet: int
    jifenbao: int
    alipay_discount: int
    merchant_discount: int
    voucher_amount: int
    voucher_name: str
    merchant_red_packet: int
    card_amount: int
    refund_request_no: str
    service_fee: int  # 服务费 as written: negative on 交易 lines
    share: int
    memo: str


def clean_text(text: str) -> str:
    """What a free-text field becomes in the file: no separators, line breaks or non-GBK characters."""
    text = text.replace(",", "，").replace("\r", " ").replace("\n", " ").replace("\t", " ").replace('"', "'")
    return text.encode("gbk", errors="replace").decode("gbk")


def _cell(column: str, value: object) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(CST).strftime(TIME_FORMAT)
    if isinstance(value, int):
        return fen_to_yuan(value)
    text = clean_text(str(value))
    return text + "\t" if column in ID_COLUMNS else text


def _cn_time(value: dt.datetime) -> str:
    return value.astimezone(CST).strftime(_CN_TIME)


def _footer(label: str, rows: list[AlipayBillRow]) -> str:
    def total(attr: str) -> str:
        return fen_to_yuan(sum(getattr(r, attr) for r in rows))

    return (f"#{label}合计：{len(rows)}笔，商家实收共{total('receipt_amount')}元，"
            f"商家优惠共{total('merchant_discount')}元，支付宝红包共{total('red_packet')}元，"
            f"集分宝共{total('jifenbao')}元，支付宝优惠共{total('alipay_discount')}元，"
            f"商家红包共{total('merchant_red_packet')}元，卡消费共{total('card_amount')}元，"
            f"服务费共{total('service_fee')}元，分润共{total('share')}元")


def _preamble(title: str, account: str, day: dt.date) -> list[str]:
    start = dt.datetime.combine(day, dt.time(), CST)
    return [title, f"#账号：[{account}]",
            f"#起始日期：[{_cn_time(start)}]   终止日期：[{_cn_time(start + dt.timedelta(days=1))}]"]


def write_detail(rows: list[AlipayBillRow], account: str, day: dt.date, exported_at: dt.datetime) -> str:
    """The 业务明细 CSV text (CRLF lines); encode it with ``gbk``."""
    out = _preamble(TITLE, account, day)
    out += [RULE_START, ",".join(HEADER)]
    out += [",".join(_cell(col, v) for col, v in zip(HEADER, astuple(r), strict=True)) for r in rows]
    out.append(RULE_END)
    out.append(_footer("交易", [r for r in rows if r.kind == "交易"]))
    out.append(_footer("退款", [r for r in rows if r.kind == "退款"]))
    out.append(f"#导出时间：[{_cn_time(exported_at)}]")
    return "\r\n".join(out) + "\r\n"


def write_summary(rows: list[AlipayBillRow], account: str, day: dt.date, exported_at: dt.datetime) -> str:
    """The 业务明细(汇总) CSV text: one line per store and a total."""
    out = _preamble("#支付宝业务汇总查询", account, day)
    out += ["#" + "-" * 41 + "业务汇总列表" + "-" * 40, SUMMARY_HEADER]
    stores = sorted({(r.store_id, r.store_name) for r in rows})

    def line(name: tuple[str, str], group: list[AlipayBillRow]) -> str:
        pays = sum(1 for r in group if r.kind == "交易")
        money = [sum(r.order_amount for r in group if r.kind == "交易"), sum(r.receipt_amount for r in group),
                 sum(r.alipay_discount for r in group), sum(r.merchant_discount for r in group),
                 sum(r.card_amount for r in group), sum(r.service_fee for r in group), sum(r.share for r in group)]
        net = money[1] + money[5] + money[6]
        return ",".join([clean_text(name[0]), clean_text(name[1]), str(pays), str(len(group) - pays),
                         *map(fen_to_yuan, money), fen_to_yuan(net)])

    out += [line(s, [r for r in rows if (r.store_id, r.store_name) == s]) for s in stores]
    out.append(line(("合计", ""), rows))
    out += ["#" + "-" * 41 + "业务汇总列表结束" + "-" * 36, f"#导出时间：[{_cn_time(exported_at)}]"]
    return "\r\n".join(out) + "\r\n"


def zip_name(pid: str, day: dt.date) -> str:
    return f"{pid}_{day:%Y%m%d}.csv.zip"


def write_bill_zip(rows: list[AlipayBillRow], pid: str, day: dt.date, exported_at: dt.datetime) -> bytes:
    """The downloadable zip: both files, GBK content and GBK member names (no UTF-8 flag)."""
    account = f"{pid}0156"
    files = [(f"{account}_{day:%Y%m%d}_业务明细.csv", write_detail(rows, account, day, exported_at)),
             (f"{account}_{day:%Y%m%d}_业务明细(汇总).csv", write_summary(rows, account, day, exported_at))]
    buf = io.BytesIO()
    placeholders: list[tuple[bytes, bytes]] = []
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, (name, text) in enumerate(files):
            gbk_name = name.encode("gbk")
            # an ASCII stand-in of the same byte length, swapped for the GBK bytes below
            stand_in = f"~{n}~".encode().ljust(len(gbk_name), b"_")
            placeholders.append((stand_in, gbk_name))
            info = zipfile.ZipInfo(stand_in.decode(), date_time=exported_at.astimezone(CST).timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, text.encode("gbk", errors="replace"))
    data = buf.getvalue()
    for stand_in, gbk_name in placeholders:
        data = data.replace(stand_in, gbk_name)
    return data


# --- parser ---------------------------------------------------------------------------


def _member_name(info: zipfile.ZipInfo) -> str:
    """Member names without the UTF-8 flag are GBK bytes that zipfile decoded as cp437."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("gb18030")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


def detail_text(data: bytes) -> str:
    """The 业务明细 text from the downloaded zip (or from the bare CSV bytes)."""
    if data[:2] == b"PK":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                members = [(i, _member_name(i)) for i in zf.infolist() if not i.is_dir()]
                details = [i for i, name in members if name.endswith(".csv") and "汇总" not in name]
                if len(details) != 1:
                    raise BillFormatError(f"expected one 业务明细 file in the zip, found {[n for _, n in members]}")
                data = zf.read(details[0])
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise BillFormatError(f"the bill archive is corrupt: {exc}") from exc
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise BillFormatError(f"the bill is not GBK text: {exc}") from exc


def _fen(text: str, column: str, lineno: int) -> int:
    try:
        return yuan_to_fen(text or "0")
    except MoneyFormatError as exc:
        raise BillFormatError(f"line {lineno}: {column} is not a yuan amount: {text!r}") from exc


def _bill_time(text: str, column: str, lineno: int) -> dt.datetime:
    try:
        return dt.datetime.strptime(text, TIME_FORMAT).replace(tzinfo=CST)
    except ValueError as exc:
        raise BillFormatError(f"line {lineno}: bad {column} {text!r}") from exc


_START_RE = re.compile(r"^#起始日期：\[(\d{4})年(\d{2})月(\d{2})日")
_ACCOUNT_RE = re.compile(r"^#账号：\[(\d*)\]")
_FOOTER_RE = re.compile(r"^#(交易|退款)合计：(\d+)笔(.*)$")
_FOOTER_SUM_RE = re.compile(r"([^，,：]+?)共(-?\d+(?:\.\d{1,2})?)元")


def _footer_totals(rest: str, lineno: int) -> dict[str, int]:
    totals: dict[str, int] = {}
    for label, value in _FOOTER_SUM_RE.findall(rest):
        totals[label.strip()] = _fen(value, label, lineno)
    return totals


def parse_bill(data: bytes | str, bill_date: dt.date) -> Bill:
    """Parse a detail bill (zip, GBK bytes or text) and check it against its footer.

    Raises ``BillFormatError`` on a malformed bill (or one for another date) and
    ``BillMismatchError`` when the lines do not add up to the footer's counts and
    totals.
    """
    text = detail_text(data) if isinstance(data, bytes) else data
    lines = [(n, ln.rstrip("\r\n")) for n, ln in enumerate(text.lstrip("\ufeff").splitlines(), 1)]
    lines = [(n, ln) for n, ln in lines if ln.strip()]
    if not lines or not lines[0][1].startswith(TITLE):
        raise BillFormatError("the bill does not start with #支付宝业务明细查询")
    try:
        header_at = next(i for i, (_, ln) in enumerate(lines) if not ln.startswith("#"))
    except StopIteration:
        raise BillFormatError("the bill has no column header") from None
    account, start = "", None
    for _, ln in lines[:header_at]:
        if m := _ACCOUNT_RE.match(ln):
            account = m.group(1)
        elif m := _START_RE.match(ln):
            start = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    if start is not None and start != bill_date:
        raise BillFormatError(f"the bill is for {start}, not {bill_date}")
    header_no, header_line = lines[header_at]
    header = [h.strip() for h in next(csv.reader([header_line]))]
    missing = [c for c in ("支付宝交易号", "商户订单号", "业务类型", "完成时间", "商家实收（元）") if c not in header]
    if missing:
        raise BillFormatError(f"line {header_no}: the header lacks {', '.join(missing)}")
    try:
        end_at = next(i for i in range(header_at + 1, len(lines)) if lines[i][1].startswith("#"))
    except StopIteration:
        raise BillFormatError("the bill has no 业务明细列表结束 line") from None
    if "业务明细列表结束" not in lines[end_at][1]:
        raise BillFormatError(f"line {lines[end_at][0]}: expected the 业务明细列表结束 line")
    footers: dict[str, tuple[int, dict[str, int], int]] = {}
    for lineno, ln in lines[end_at + 1:]:
        if not ln.startswith("#"):
            raise BillFormatError(f"line {lineno}: data after the end of the detail list")
        if m := _FOOTER_RE.match(ln):
            footers[m.group(1)] = (int(m.group(2)), _footer_totals(m.group(3), lineno), lineno)
    if set(footers) != {"交易", "退款"}:
        raise BillFormatError("the bill lacks its #交易合计 / #退款合计 footer")

    out: list[BillLine] = []
    counts = {"交易": 0, "退款": 0}
    sums = {kind: {label: 0 for label in _FOOTER_SUMS} for kind in counts}
    for lineno, line in lines[header_at + 1 : end_at]:
        vals = [v.strip() for v in next(csv.reader([line]))]
        if len(vals) != len(header):
            raise BillFormatError(f"line {lineno}: {len(vals)} fields for {len(header)} columns")
        row = dict(zip(header, vals, strict=True))
        kind = row["业务类型"]
        if kind not in KINDS:
            raise BillFormatError(f"line {lineno}: unknown 业务类型 {kind!r}")
        counts[kind] += 1
        for label, col in _FOOTER_SUMS.items():
            if col in row:
                sums[kind][label] += _fen(row[col], col, lineno)
        amount = _fen(row["商家实收（元）"], "商家实收（元）", lineno)
        if (kind == "退款" and amount > 0) or (kind == "交易" and amount < 0):
            raise BillFormatError(f"line {lineno}: a {kind} line with 商家实收 {row['商家实收（元）']}")
        when = row.get("完成时间") or row.get("创建时间") or ""
        refund = kind == "退款"
        out.append(BillLine(
            trade_time=_bill_time(when, "完成时间", lineno),
            channel_trade_no=row["支付宝交易号"],
            out_trade_no=row["商户订单号"],
            kind=KINDS[kind],
            amount=amount,
            fee=-_fen(row.get("服务费（元）", ""), "服务费（元）", lineno),
            out_refund_no=(row.get("退款批次号/请求号") or None) if refund else None,
            status="SUCCESS",
            merchant_id=account[:-4] if account.endswith("0156") and len(account) == 20 else account,
            raw=row,
        ))

    for kind, (count, totals, lineno) in footers.items():
        if count != counts[kind]:
            raise BillMismatchError(f"line {lineno}: the footer counts {count} {kind} lines, the bill has "
                                    f"{counts[kind]}")
        if "商家实收" not in totals:
            raise BillFormatError(f"line {lineno}: the {kind} footer has no 商家实收 total")
        for label, value in totals.items():
            if label in sums[kind] and _FOOTER_SUMS[label] in header and sums[kind][label] != value:
                raise BillMismatchError(f"line {lineno}: {kind} {label} adds up to "
                                        f"{fen_to_yuan(sums[kind][label])}, the footer says {fen_to_yuan(value)}")
    pay_totals, refund_totals = footers["交易"][1], footers["退款"][1]
    return Bill(
        bill_date=bill_date,
        lines=out,
        total_count=len(out),
        total_paid=pay_totals["商家实收"],
        total_refunded=-refund_totals["商家实收"],
        total_fee=-(pay_totals.get("服务费", 0) + refund_totals.get("服务费", 0)),
    )


def empty_bill(bill_date: dt.date) -> Bill:
    return Bill(bill_date=bill_date, lines=[], total_count=0, total_paid=0, total_refunded=0, total_fee=0)
