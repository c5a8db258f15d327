"""The reference bank's daily e-CNY reconciliation file (对账文件): writer and parser.

UTF-8 text, one record a line (``\\n``; ``\\r\\n`` is read too), fields separated by
``|``. The first field is the record type::

    H|REFBANK-ECNY-RECON|1.0|<merchant id>|<bill date yyyyMMdd>|<created yyyyMMddHHmmss>
    D|<seq>|<trade time>|<record type>|<bank trade no>|<out trade no>|<bank refund no>|<out refund no>|
      <amount>|<fee>|<settle amount>|<trade type>|<wallet id>|<wallet operator>|<device id>|<subject>
    …
    T|<record count>|<pay count>|<pay amount>|<refund count>|<refund amount>|<fee amount>|<settle amount>

(a ``D`` record is one line; it is wrapped here only for reading)

- one header ``H`` first, one trailer ``T`` last, any number of details ``D`` between;
- ``seq`` counts the details from 1; ``trade time`` is ``yyyyMMddHHmmss`` (China
  time) and falls on the bill date;
- ``record type`` is ``PAY`` (a payment succeeded), ``REFUND`` (a refund succeeded)
  or ``REVOKE`` (a paid payment-code order was revoked: all of it went back);
  ``bank refund no`` is the refund's or the revocation's serial, ``out refund no``
  the merchant's refund number (empty for PAY and REVOKE);
- amounts are yuan with two decimals. ``amount`` is positive. ``fee`` is signed:
  charged on PAY (≥ 0), given back on REFUND/REVOKE (≤ 0). ``settle amount`` is
  what the line adds to the merchant's settlement: ``amount − fee`` for PAY,
  ``−amount − fee`` for REFUND/REVOKE;
- the trailer's totals must equal the details: counts, ``pay amount`` (sum of PAY
  amounts), ``refund amount`` (sum of REFUND and REVOKE amounts), ``fee amount``
  (sum of fees, signed) and ``settle amount`` (= pay − refund − fee = sum of
  settle amounts);
- text fields never contain ``|`` or line breaks (the bank writes ``/`` and spaces).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from gateway.channel import Bill, BillLine
from gateway.money import MoneyFormatError, fen_to_yuan

from .wire import CST, fen, format_date, format_time, parse_date, parse_time

MARKER = "REFBANK-ECNY-RECON"
VERSION = "1.0"
RECORD_TYPES = ("PAY", "REFUND", "REVOKE")
DETAIL_FIELDS = (
    "seq", "trade_time", "record_type", "bank_trade_no", "out_trade_no", "bank_refund_no", "out_refund_no",
    "amount", "fee", "settle_amount", "trade_type", "wallet_id", "wallet_operator", "device_id", "subject",
)
TRAILER_FIELDS = ("record_count", "pay_count", "pay_amount", "refund_count", "refund_amount", "fee_amount",
                  "settle_amount")


class ReconFormatError(ValueError):
    """The text is not a reconciliation file (layout, field count, amount, time)."""


class ReconMismatchError(ReconFormatError):
    """The details do not add up to the trailer, or a line contradicts itself."""


@dataclass(frozen=True)
class ReconRecord:
    """One detail line; amounts in fen (``amount`` positive, ``fee`` signed)."""

    trade_time: dt.datetime
    record_type: str
    bank_trade_no: str
    out_trade_no: str
    amount: int
    fee: int = 0
    bank_refund_no: str = ""
    out_refund_no: str = ""
    trade_type: str = ""
    wallet_id: str = ""
    wallet_operator: str = ""
    device_id: str = ""
    subject: str = ""

    @property
    def is_refund(self) -> bool:
        return self.record_type != "PAY"

    @property
    def settle_amount(self) -> int:
        return -self.amount - self.fee if self.is_refund else self.amount - self.fee


@dataclass(frozen=True)
class ReconFile:
    merchant_id: str
    bill_date: dt.date
    created_at: dt.datetime
    records: list[ReconRecord] = field(default_factory=list)

    @property
    def pay_count(self) -> int:
        return sum(1 for r in self.records if not r.is_refund)

    @property
    def pay_amount(self) -> int:
        return sum(r.amount for r in self.records if not r.is_refund)

    @property
    def refund_count(self) -> int:
        return sum(1 for r in self.records if r.is_refund)

    @property
    def refund_amount(self) -> int:
        return sum(r.amount for r in self.records if r.is_refund)

    @property
    def fee_amount(self) -> int:
        return sum(r.fee for r in self.records)

    @property
    def settle_amount(self) -> int:
        return sum(r.settle_amount for r in self.records)

    def file_name(self) -> str:
        return f"ECNY_{self.merchant_id}_{format_date(self.bill_date)}.txt"


# --- writer ---------------------------------------------------------------------------------


def clean(text: str) -> str:
    """A text field as the bank writes it: no separator, no line break, no control character."""
    return "".join("/" if c == "|" else " " if ord(c) < 32 or c in "\x7f\x85\u2028\u2029" else c for c in text)


def write_recon(recon: ReconFile) -> str:
    for r in recon.records:
        if r.record_type not in RECORD_TYPES:
            raise ValueError(f"unknown record type {r.record_type!r}")
        if r.amount <= 0:
            raise ValueError("a record amount must be positive")
    out = ["|".join(("H", MARKER, VERSION, clean(recon.merchant_id), format_date(recon.bill_date),
                     format_time(recon.created_at)))]
    for seq, r in enumerate(recon.records, 1):
        out.append("|".join((
            "D", str(seq), format_time(r.trade_time), r.record_type, clean(r.bank_trade_no), clean(r.out_trade_no),
            clean(r.bank_refund_no), clean(r.out_refund_no), fen_to_yuan(r.amount), fen_to_yuan(r.fee),
            fen_to_yuan(r.settle_amount), clean(r.trade_type), clean(r.wallet_id), clean(r.wallet_operator),
            clean(r.device_id), clean(r.subject),
        )))
    out.append("|".join(("T", str(len(recon.records)), str(recon.pay_count), fen_to_yuan(recon.pay_amount),
                         str(recon.refund_count), fen_to_yuan(recon.refund_amount), fen_to_yuan(recon.fee_amount),
                         fen_to_yuan(recon.settle_amount))))
    return "\n".join(out) + "\n"


# --- parser ---------------------------------------------------------------------------------


def _fen(text: str, name: str, lineno: int) -> int:
    try:
        return fen(text)
    except MoneyFormatError as exc:
        raise ReconFormatError(f"line {lineno}: {name} is not a yuan amount: {text!r}") from exc


def _count(text: str, name: str, lineno: int) -> int:
    if not text.isdigit():
        raise ReconFormatError(f"line {lineno}: {name} is not a count: {text!r}")
    return int(text)


def _time(text: str, name: str, lineno: int) -> dt.datetime:
    try:
        value = parse_time(text)
    except ValueError:
        value = None
    if value is None:
        raise ReconFormatError(f"line {lineno}: {name} is not a yyyyMMddHHmmss time: {text!r}")
    return value


def _lines(data: bytes | str) -> list[tuple[int, str]]:
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ReconFormatError(f"the file is not UTF-8: {exc}") from exc
    else:
        text = data.lstrip("\ufeff")
    return [(n, ln.removesuffix("\r")) for n, ln in enumerate(text.split("\n"), 1) if ln.removesuffix("\r")]


def parse_recon(data: bytes | str, *, merchant_id: str | None = None,
                bill_date: dt.date | None = None) -> ReconFile:
    """Parse a reconciliation file and check it: layout, every line, and the trailer totals.

    With ``merchant_id``/``bill_date`` the header must name them. Raises
    ``ReconFormatError`` for a malformed file and ``ReconMismatchError`` when
    the figures do not agree.
    """
    lines = _lines(data)
    if len(lines) < 2:
        raise ReconFormatError("a reconciliation file has at least a header and a trailer")
    head_no, head = lines[0]
    h = head.split("|")
    if len(h) != 6 or h[0] != "H" or h[1] != MARKER:
        raise ReconFormatError(f"line {head_no}: not a {MARKER} header: {head[:60]!r}")
    if h[2] != VERSION:
        raise ReconFormatError(f"line {head_no}: unsupported version {h[2]!r}")
    try:
        day = parse_date(h[4])
    except ValueError as exc:
        raise ReconFormatError(f"line {head_no}: bad bill date {h[4]!r}") from exc
    created = _time(h[5], "created time", head_no)
    if merchant_id is not None and h[3] != merchant_id:
        raise ReconMismatchError(f"the file is for merchant {h[3]!r}, not {merchant_id!r}")
    if bill_date is not None and day != bill_date:
        raise ReconMismatchError(f"the file is for {day.isoformat()}, not {bill_date.isoformat()}")

    records: list[ReconRecord] = []
    tail_no, tail = lines[-1]
    for lineno, line in lines[1:-1]:
        f = line.split("|")
        if f[0] != "D":
            raise ReconFormatError(f"line {lineno}: expected a detail record, got {f[0]!r}")
        if len(f) != len(DETAIL_FIELDS) + 1:
            raise ReconFormatError(f"line {lineno}: {len(f) - 1} fields for {len(DETAIL_FIELDS)}")
        row = dict(zip(DETAIL_FIELDS, f[1:], strict=True))
        if _count(row["seq"], "seq", lineno) != len(records) + 1:
            raise ReconFormatError(f"line {lineno}: seq {row['seq']} out of order")
        kind = row["record_type"]
        if kind not in RECORD_TYPES:
            raise ReconFormatError(f"line {lineno}: unknown record type {kind!r}")
        when = _time(row["trade_time"], "trade time", lineno)
        if when.astimezone(CST).date() != day:
            raise ReconMismatchError(f"line {lineno}: trade time {row['trade_time']} is not on {h[4]}")
        amount, fee = _fen(row["amount"], "amount", lineno), _fen(row["fee"], "fee", lineno)
        if amount <= 0:
            raise ReconMismatchError(f"line {lineno}: amount must be positive")
        if (kind == "PAY" and fee < 0) or (kind != "PAY" and fee > 0):
            raise ReconMismatchError(f"line {lineno}: fee {row['fee']} has the wrong sign for {kind}")
        if not row["bank_trade_no"] or not row["out_trade_no"]:
            raise ReconFormatError(f"line {lineno}: trade numbers are required")
        if kind == "PAY" and (row["bank_refund_no"] or row["out_refund_no"]):
            raise ReconFormatError(f"line {lineno}: a PAY record has no refund numbers")
        if kind == "REFUND" and not (row["bank_refund_no"] and row["out_refund_no"]):
            raise ReconFormatError(f"line {lineno}: a REFUND record needs both refund numbers")
        if kind == "REVOKE" and not row["bank_refund_no"]:
            raise ReconFormatError(f"line {lineno}: a REVOKE record needs the revocation serial")
        rec = ReconRecord(
            trade_time=when, record_type=kind, bank_trade_no=row["bank_trade_no"],
            out_trade_no=row["out_trade_no"], amount=amount, fee=fee, bank_refund_no=row["bank_refund_no"],
            out_refund_no=row["out_refund_no"], trade_type=row["trade_type"], wallet_id=row["wallet_id"],
            wallet_operator=row["wallet_operator"], device_id=row["device_id"], subject=row["subject"],
        )
        if _fen(row["settle_amount"], "settle amount", lineno) != rec.settle_amount:
            raise ReconMismatchError(f"line {lineno}: settle amount {row['settle_amount']} does not equal "
                                     f"{'-' if rec.is_refund else ''}amount - fee = {fen_to_yuan(rec.settle_amount)}")
        records.append(rec)

    t = tail.split("|")
    if t[0] != "T":
        raise ReconFormatError(f"line {tail_no}: the file must end with a trailer record")
    if len(t) != len(TRAILER_FIELDS) + 1:
        raise ReconFormatError(f"line {tail_no}: {len(t) - 1} trailer fields for {len(TRAILER_FIELDS)}")
    totals = dict(zip(TRAILER_FIELDS, t[1:], strict=True))
    recon = ReconFile(merchant_id=h[3], bill_date=day, created_at=created, records=records)
    checks = (
        ("record count", _count(totals["record_count"], "record count", tail_no), len(records), str),
        ("pay count", _count(totals["pay_count"], "pay count", tail_no), recon.pay_count, str),
        ("pay amount", _fen(totals["pay_amount"], "pay amount", tail_no), recon.pay_amount, fen_to_yuan),
        ("refund count", _count(totals["refund_count"], "refund count", tail_no), recon.refund_count, str),
        ("refund amount", _fen(totals["refund_amount"], "refund amount", tail_no), recon.refund_amount,
         fen_to_yuan),
        ("fee amount", _fen(totals["fee_amount"], "fee amount", tail_no), recon.fee_amount, fen_to_yuan),
        ("settle amount", _fen(totals["settle_amount"], "settle amount", tail_no), recon.settle_amount,
         fen_to_yuan),
    )
    for name, stated, actual, show in checks:
        if stated != actual:
            raise ReconMismatchError(f"the trailer's {name} is {show(stated)} but the details give {show(actual)}")
    return recon


# --- core view --------------------------------------------------------------------------------


def to_bill(recon: ReconFile) -> Bill:
    """The file in core terms: payments positive, refunds and revocations negative (fen)."""
    lines = [
        BillLine(
            trade_time=r.trade_time,
            channel_trade_no=r.bank_trade_no,
            out_trade_no=r.out_trade_no,
            kind="refund" if r.is_refund else "payment",
            amount=-r.amount if r.is_refund else r.amount,
            fee=r.fee,
            channel_refund_no=(r.bank_refund_no or None) if r.is_refund else None,
            out_refund_no=(r.out_refund_no or None) if r.is_refund else None,
            status=r.record_type,
            trade_type=r.trade_type,
            merchant_id=recon.merchant_id,
            raw={"record_type": r.record_type, "wallet_id": r.wallet_id, "wallet_operator": r.wallet_operator,
                 "device_id": r.device_id, "subject": r.subject, "settle_amount": fen_to_yuan(r.settle_amount)},
        )
        for r in recon.records
    ]
    return Bill(bill_date=recon.bill_date, lines=lines, total_count=len(lines), total_paid=recon.pay_amount,
                total_refunded=recon.refund_amount, total_fee=recon.fee_amount)
