"""UnionPay ACP settlement files (对账文件): the layout read and written here.

A file-transfer answer carries ``fileContent`` = base64(zlib-deflate(zip)). The zip
holds, for merchant ``M`` and settlement day ``yyMMdd``:

- ``INN{yyMMdd}88ZM_{M}``: the ACP "ZM" detail file. GBK, one record per line (CRLF),
  42 fixed-width fields separated by one space, widths in *bytes* (``ZM_FIELDS``).
  Amounts: 交易金额 is 12 digits of fen; 商户手续费, 结算金额, 清算净额 and the other
  13-wide amounts are ``C``/``D`` (credit/debit to the merchant) + 12 digits of fen.
- ``INN{yyMMdd}88ZMT_{M}``: one summary record (``ZMT_FIELDS``): the settlement date in
  full, the record count, the credit and debit totals of 结算金额, the fee total and the
  net total. This summary entry is a convention of this package and its simulator (the
  ACP file interface itself defines the detail file); ``parse_settlement`` can do without
  it (``require_summary=False``), computing the totals from the records.

Every record is checked on its own (widths, separators, digits, 清算净额 = 结算金额 −
商户手续费, direction consistent with 交易类型) and the records against the summary.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import io
import re
import zipfile
import zlib
from dataclasses import dataclass, field

from gateway.channel import Bill, BillLine
from gateway.money import fen_to_yuan

from .wire import TXN_CONSUME, TXN_REFUND, TXN_UNDO, infer_year

GBK = "gbk"

# (key, 中文名, width in bytes, kind): kind "t" text, "n" digits, "a12" unsigned fen,
# "s13" C/D + 12 digits of fen.
ZM_FIELDS: tuple[tuple[str, str, int, str], ...] = (
    ("txnCode", "交易代码", 3, "t"),
    ("acqInsCode", "代理机构标识码", 11, "t"),
    ("sendInsCode", "发送机构标识码", 11, "t"),
    ("traceNo", "系统跟踪号", 6, "n"),
    ("traceTime", "交易传输时间", 10, "n"),
    ("accNo", "帐号", 19, "t"),
    ("txnAmt", "交易金额", 12, "a12"),
    ("merCatCode", "商户类别", 4, "t"),
    ("termType", "终端类型", 2, "t"),
    ("queryId", "查询流水号", 21, "t"),
    ("oldPayType", "支付方式（旧）", 2, "t"),
    ("orderId", "商户订单号", 32, "t"),
    ("payCardType", "支付卡类型", 2, "t"),
    ("origTraceNo", "原始交易的系统跟踪号", 6, "t"),
    ("origTraceTime", "原交易传输时间", 10, "t"),
    ("merFee", "商户手续费", 13, "s13"),
    ("settleAmt", "结算金额", 13, "s13"),
    ("payType", "支付方式", 4, "t"),
    ("groupMerId", "集团商户代码", 15, "t"),
    ("txnType", "交易类型", 2, "n"),
    ("txnSubType", "交易子类", 2, "n"),
    ("bizType", "业务类型", 6, "n"),
    ("accType", "帐号类型", 2, "t"),
    ("billType", "账单类型", 4, "t"),
    ("billNo", "账单号码", 32, "t"),
    ("interactMode", "交互方式", 1, "t"),
    ("origQryId", "原交易查询流水号", 21, "t"),
    ("merId", "商户代码", 15, "t"),
    ("divideType", "分账入账方式", 1, "t"),
    ("subMerId", "二级商户代码", 15, "t"),
    ("subMerAbbr", "二级商户简称", 32, "t"),
    ("subMerAmt", "二级商户分账入账金额", 13, "s13"),
    ("settleNetAmt", "清算净额", 13, "s13"),
    ("termId", "终端号", 8, "t"),
    ("merReserved", "商户自定义域", 32, "t"),
    ("discountAmt", "优惠金额", 13, "s13"),
    ("invoiceAmt", "发票金额", 13, "s13"),
    ("installmentFee", "分期付款附加手续费", 12, "a12"),
    ("installmentNum", "分期付款期数", 2, "t"),
    ("txnMedium", "交易介质", 1, "t"),
    ("origOrderId", "原始交易订单号", 32, "t"),
    ("reserved", "保留使用", 98, "t"),
)
ZMT_FIELDS: tuple[tuple[str, str, int, str], ...] = (
    ("recordType", "记录类型", 3, "t"),  # "TOT"
    ("merId", "商户代码", 15, "t"),
    ("settleDate", "清算日期", 8, "n"),  # yyyyMMdd
    ("count", "总笔数", 10, "n"),
    ("creditAmt", "贷记结算金额合计", 13, "s13"),
    ("debitAmt", "借记结算金额合计", 13, "s13"),
    ("feeAmt", "商户手续费合计", 13, "s13"),
    ("netAmt", "清算净额合计", 13, "s13"),
)
ZM_RECORD_BYTES = sum(f[2] for f in ZM_FIELDS) + len(ZM_FIELDS) - 1
KIND_BY_TYPE = {TXN_CONSUME: "payment", TXN_REFUND: "refund", TXN_UNDO: "refund"}
STATUS_BY_TYPE = {TXN_CONSUME: "SUCCESS", TXN_REFUND: "REFUND", TXN_UNDO: "REVOKED"}


class BillFormatError(ValueError):
    """The settlement file is not in the layout (bad zip, width, digits, field)."""


class BillMismatchError(BillFormatError):
    """The records do not add up to the summary, or a record contradicts itself."""


# --- fixed-width records ------------------------------------------------------------------


def _fit(text: str, width: int) -> bytes:
    """GBK bytes of ``text`` cut to ``width`` on a character boundary, padded with spaces."""
    text = re.sub(r"[\r\n]", " ", text)
    out = b""
    for ch in text:
        b = ch.encode(GBK, errors="replace")
        if len(out) + len(b) > width:
            break
        out += b
    return out.ljust(width, b" ")


def _signed13(value: int, *, debit_when_positive: bool = False) -> str:
    """C/D + 12 digits: C adds to the merchant, D takes from it."""
    credit = (value < 0) if debit_when_positive else (value >= 0)
    if abs(value) >= 10**12:
        raise ValueError(f"amount {value} does not fit 12 digits")
    return f"{'C' if credit else 'D'}{abs(value):012d}"


def write_record(values: dict[str, str], fields: tuple[tuple[str, str, int, str], ...] = ZM_FIELDS) -> bytes:
    parts = []
    for key, _, width, kind in fields:
        text = values.get(key, "")
        if kind != "t" and len(text) > width:
            raise ValueError(f"{key}={text!r} is wider than {width}")
        parts.append(_fit(text, width))
    return b" ".join(parts)


def read_record(line: bytes, lineno: int,
                fields: tuple[tuple[str, str, int, str], ...] = ZM_FIELDS) -> dict[str, str]:
    """Slice one record by byte widths; the last field may be cut short (trailing spaces)."""
    out: dict[str, str] = {}
    pos = 0
    for i, (key, name, width, kind) in enumerate(fields):
        if i:
            if pos < len(line) and line[pos:pos + 1] != b" ":
                raise BillFormatError(f"line {lineno}: no separator before {name} at byte {pos}")
            pos += 1
        chunk = line[pos:pos + width]
        if len(chunk) < width and i < len(fields) - 1:
            raise BillFormatError(f"line {lineno}: record ends inside {name} ({len(line)} bytes)")
        pos += width
        try:
            text = chunk.decode(GBK).rstrip(" ")
        except UnicodeDecodeError:
            raise BillFormatError(f"line {lineno}: {name} is not GBK text") from None
        if kind == "n" and not re.fullmatch(r"\d*", text):
            raise BillFormatError(f"line {lineno}: {name} is not digits: {text!r}")
        if kind == "a12" and not re.fullmatch(r"\d{12}|", text):
            raise BillFormatError(f"line {lineno}: {name} is not 12 digits: {text!r}")
        if kind == "s13" and not re.fullmatch(r"[CD]\d{12}|", text):
            raise BillFormatError(f"line {lineno}: {name} is not C/D + 12 digits: {text!r}")
        out[key] = text
    if len(line) > pos and line[pos:].strip(b" "):
        raise BillFormatError(f"line {lineno}: {len(line) - pos} extra bytes after the last field")
    return out


def signed_value(text: str) -> int:
    """C/D amount → signed fen (C positive); blank → 0."""
    if not text:
        return 0
    return int(text[1:]) * (1 if text[0] == "C" else -1)


# --- rows (what the simulator writes) ------------------------------------------------------


@dataclass(frozen=True)
class SettlementRow:
    """One ZM record in typed form. ``settle`` is signed (credit +); ``fee`` is what the
    merchant pays (+) or gets back (−)."""

    txn_type: str
    txn_sub_type: str
    biz_type: str
    trace_no: str
    trace_time: dt.datetime
    query_id: str
    order_id: str
    amount: int
    settle: int
    fee: int
    mer_id: str
    acc_no: str = ""
    orig_qry_id: str = ""
    orig_order_id: str = ""
    orig_trace_no: str = ""
    orig_trace_time: str = ""
    term_id: str = ""
    mer_reserved: str = ""
    pay_card_type: str = "01"
    txn_code: str = field(default="")

    def values(self) -> dict[str, str]:
        code = self.txn_code or {TXN_CONSUME: "S22", TXN_REFUND: "S30", TXN_UNDO: "S31"}.get(self.txn_type, "S00")
        return {
            "txnCode": code, "acqInsCode": "00010000", "sendInsCode": "00010000", "traceNo": self.trace_no,
            "traceTime": self.trace_time.strftime("%m%d%H%M%S"), "accNo": self.acc_no,
            "txnAmt": f"{self.amount:012d}", "merCatCode": "8062", "termType": "08", "queryId": self.query_id,
            "oldPayType": "", "orderId": self.order_id, "payCardType": self.pay_card_type,
            "origTraceNo": self.orig_trace_no, "origTraceTime": self.orig_trace_time,
            "merFee": _signed13(self.fee, debit_when_positive=True), "settleAmt": _signed13(self.settle),
            "payType": "0002", "groupMerId": "", "txnType": self.txn_type, "txnSubType": self.txn_sub_type,
            "bizType": self.biz_type, "accType": "01", "billType": "", "billNo": "", "interactMode": "",
            "origQryId": self.orig_qry_id, "merId": self.mer_id, "divideType": "", "subMerId": "",
            "subMerAbbr": "", "subMerAmt": "", "settleNetAmt": _signed13(self.settle - self.fee),
            "termId": self.term_id, "merReserved": self.mer_reserved, "discountAmt": "", "invoiceAmt": "",
            "installmentFee": "", "installmentNum": "", "txnMedium": "", "origOrderId": self.orig_order_id,
            "reserved": "",
        }


def write_zm(rows: list[SettlementRow]) -> bytes:
    return b"".join(write_record(r.values()) + b"\r\n" for r in rows)


def write_summary(mer_id: str, settle_date: dt.date, rows: list[SettlementRow]) -> bytes:
    credit = sum(r.settle for r in rows if r.settle > 0)
    debit = -sum(r.settle for r in rows if r.settle < 0)
    fee = sum(r.fee for r in rows)
    values = {"recordType": "TOT", "merId": mer_id, "settleDate": settle_date.strftime("%Y%m%d"),
              "count": f"{len(rows):010d}", "creditAmt": _signed13(credit), "debitAmt": _signed13(-debit),
              "feeAmt": _signed13(fee, debit_when_positive=True), "netAmt": _signed13(credit - debit - fee)}
    return write_record(values, ZMT_FIELDS) + b"\r\n"


def entry_names(mer_id: str, settle_date: dt.date) -> tuple[str, str]:
    day = settle_date.strftime("%y%m%d")
    return f"INN{day}88ZM_{mer_id}", f"INN{day}88ZMT_{mer_id}"


def file_name(mer_id: str, settle_date: dt.date) -> str:
    return f"{mer_id}_{settle_date.strftime('%Y%m%d')}.zip"


def build_zip(mer_id: str, settle_date: dt.date, rows: list[SettlementRow], *, summary: bool = True) -> bytes:
    zm, zmt = entry_names(mer_id, settle_date)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zm, write_zm(rows))
        if summary:
            zf.writestr(zmt, write_summary(mer_id, settle_date, rows))
    return buf.getvalue()


def encode_file_content(data: bytes) -> str:
    """``fileContent``: base64 of the zlib-deflated bytes."""
    return base64.b64encode(zlib.compress(data)).decode("ascii")


def decode_file_content(text: str) -> bytes:
    try:
        return zlib.decompress(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError, zlib.error) as exc:
        raise BillFormatError(f"fileContent is not base64 of deflated data: {exc}") from None


# --- parser ---------------------------------------------------------------------------------


def _lines(data: bytes) -> list[tuple[int, bytes]]:
    return [(n, ln.rstrip(b"\r")) for n, ln in enumerate(data.split(b"\n"), 1) if ln.strip(b"\r ")]


def _line_of(rec: dict[str, str], lineno: int, bill_date: dt.date) -> BillLine:
    txn_type = rec["txnType"]
    settle, fee, net = (signed_value(rec["settleAmt"]), -signed_value(rec["merFee"]),
                        signed_value(rec["settleNetAmt"]))
    if not rec["settleAmt"] or not rec["txnAmt"]:
        raise BillFormatError(f"line {lineno}: 交易金额 and 结算金额 are required")
    if net != settle - fee:
        raise BillMismatchError(f"line {lineno}: 清算净额 {net} is not 结算金额 {settle} − 商户手续费 {fee}")
    kind = "payment" if settle > 0 else "refund"
    expected = KIND_BY_TYPE.get(txn_type)
    if settle == 0 or (expected is not None and expected != kind):
        raise BillMismatchError(f"line {lineno}: 结算金额 {rec['settleAmt']} does not fit 交易类型 {txn_type}")
    try:
        when = infer_year(rec["traceTime"], bill_date)
    except ValueError as exc:
        raise BillFormatError(f"line {lineno}: bad 交易传输时间 {rec['traceTime']!r}") from exc
    refund = kind == "refund"
    return BillLine(
        trade_time=when,
        channel_trade_no=rec["origQryId"] if refund and rec["origQryId"] else rec["queryId"],
        out_trade_no=rec["origOrderId"] if refund else rec["orderId"],
        kind=kind,
        amount=settle,
        fee=fee,
        channel_refund_no=rec["queryId"] if refund else None,
        out_refund_no=rec["orderId"] if refund and txn_type != TXN_UNDO else None,
        status=STATUS_BY_TYPE.get(txn_type, "SUCCESS" if not refund else "REFUND"),
        trade_type=f"{txn_type}/{rec['txnSubType']}",
        merchant_id=rec["subMerId"] or rec["merId"],
        raw=rec,
    )


def parse_zm(data: bytes, bill_date: dt.date) -> list[BillLine]:
    return [_line_of(read_record(line, n), n, bill_date) for n, line in _lines(data)]


@dataclass(frozen=True)
class Summary:
    mer_id: str
    settle_date: dt.date
    count: int
    credit: int
    debit: int
    fee: int
    net: int


def parse_summary(data: bytes) -> Summary:
    lines = _lines(data)
    if len(lines) != 1:
        raise BillFormatError(f"the summary must hold exactly one record, not {len(lines)}")
    n, line = lines[0]
    rec = read_record(line, n, ZMT_FIELDS)
    if rec["recordType"] != "TOT":
        raise BillFormatError(f"summary record type is {rec['recordType']!r}, not TOT")
    try:
        day = dt.datetime.strptime(rec["settleDate"], "%Y%m%d").date()
    except ValueError:
        raise BillFormatError(f"summary 清算日期 {rec['settleDate']!r} is not a date") from None
    if not rec["count"] or not all(rec[k] for k in ("creditAmt", "debitAmt", "feeAmt", "netAmt")):
        raise BillFormatError("summary fields are missing")
    return Summary(rec["merId"], day, int(rec["count"]), signed_value(rec["creditAmt"]),
                   -signed_value(rec["debitAmt"]), -signed_value(rec["feeAmt"]), signed_value(rec["netAmt"]))


def parse_settlement(zip_bytes: bytes, bill_date: dt.date, mer_id: str, *, require_summary: bool = True) -> Bill:
    """Read a settlement zip into a ``Bill`` (refund and undo lines negative), totals checked."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(zip_bytes))
        names = zf.namelist()
        zm = [n for n in names if re.search(r"ZM_", n)]
        zmt = [n for n in names if re.search(r"ZMT_", n)]
        if len(zm) != 1:
            raise BillFormatError(f"the zip holds {len(zm)} ZM detail files: {names}")
        lines = parse_zm(zf.read(zm[0]), bill_date)
        summary = parse_summary(zf.read(zmt[0])) if zmt else None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, KeyError, EOFError) as exc:
        raise BillFormatError(f"not a readable settlement zip: {exc}") from None
    if summary is None and require_summary:
        raise BillFormatError(f"the zip holds no ZMT summary: {names}")
    foreign = {ln.raw["merId"] for ln in lines} - {mer_id}
    if foreign:
        raise BillMismatchError(f"records of other merchants: {sorted(foreign)}")
    paid = sum(ln.amount for ln in lines if ln.kind == "payment")
    refunded = -sum(ln.amount for ln in lines if ln.kind == "refund")
    fee = sum(ln.fee for ln in lines)
    if summary is not None:
        if summary.mer_id != mer_id or summary.settle_date != bill_date:
            raise BillMismatchError(f"summary is for {summary.mer_id} on {summary.settle_date}, "
                                    f"not {mer_id} on {bill_date}")
        checks = (("count", summary.count, len(lines)), ("credit", summary.credit, paid),
                  ("debit", summary.debit, refunded), ("fee", summary.fee, fee),
                  ("net", summary.net, paid - refunded - fee))
        for name, said, counted in checks:
            if said != counted:
                shown = (str(said), str(counted)) if name == "count" else (fen_to_yuan(said), fen_to_yuan(counted))
                raise BillMismatchError(f"summary {name} is {shown[0]} but the records add up to {shown[1]}")
    return Bill(bill_date=bill_date, lines=lines, total_count=len(lines), total_paid=paid,
                total_refunded=refunded, total_fee=fee)
