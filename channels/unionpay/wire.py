"""The UnionPay ACP 5.1.0 wire format: fields, message encodings, times, response codes.

ACP messages are flat string maps. Requests travel as ``application/x-www-form-urlencoded``
(UTF-8, percent-encoded); the gateway's synchronous answers are ``k=v`` pairs joined by
``&`` with the values *not* percent-encoded (signatures keep their ``+``, ``/`` and
``=``; certificates keep their line breaks), and a value may hold ``&`` or ``=`` inside
braces (``riskRateInfo={commodityName=…}``). Back-end notifies are percent-encoded forms.
Everything here is pure: no I/O.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, urlencode

CST = dt.timezone(dt.timedelta(hours=8), "CST")

VERSION = "5.1.0"
ENCODING = "UTF-8"
SIGN_METHOD_RSA = "01"  # SHA-256 + RSA certificate
ACCESS_TYPE_MERCHANT = "0"  # 商户直连接入
CURRENCY_CNY = "156"
CHANNEL_MOBILE = "08"

BACK_TRANS_PATH = "/gateway/api/backTransReq.do"
QUERY_PATH = "/gateway/api/queryTrans.do"


class Txn:
    """(txnType, txnSubType, bizType) of each transaction this package speaks."""

    CONSUME = ("01", "06", "000000")  # 消费, payment code (被扫)
    UNDO = ("31", "00", "000000")  # 消费撤销
    REFUND = ("04", "00", "000000")  # 退货
    QUERY = ("00", "00", "000201")  # 交易状态查询
    FILE = ("76", "01", "000000")  # 文件传输 (settlement file download)


TXN_CONSUME, TXN_UNDO, TXN_REFUND, TXN_QUERY, TXN_FILE = "01", "31", "04", "00", "76"

# --- response codes ---------------------------------------------------------------------

RESP_MESSAGES: dict[str, str] = {
    "00": "成功",
    "01": "交易失败。详情请咨询95516",
    "02": "系统未开放或暂时关闭，请稍后再试",
    "03": "交易通讯超时，请发起查询交易",
    "04": "交易状态未明，请查询对账结果",
    "05": "交易已受理，请稍后查询交易结果",
    "06": "系统繁忙，请稍后再试",
    "10": "报文格式错误",
    "11": "验证签名失败",
    "12": "重复交易",
    "13": "报文交易要素缺失",
    "30": "交易未通过，请尝试使用其他银联卡支付或联系95516",
    "31": "商户状态不正确",
    "32": "无此交易权限",
    "33": "交易金额超限",
    "34": "查无此交易",
    "35": "原交易不存在或状态不正确",
    "36": "与原交易信息不符",
    "37": "已超过最大查询次数或操作过于频繁",
    "38": "银联风险受限",
    "39": "交易不在受理时间范围内",
    "45": "原交易已被成功退货或已被成功撤销",
    "60": "交易失败，详情请咨询您的发卡行",
    "61": "输入的卡号无效，请确认后输入",
    "63": "卡状态不正确",
    "64": "卡上的余额不足",
    "65": "输入的密码、有效期或CVN2有误，交易失败",
    "67": "密码输入次数超限",
    "69": "您的输入超时，交易失败",
    "98": "文件不存在",
    "99": "通用错误",
}
OK = "00"
IN_DOUBT = frozenset({"03", "04", "05"})  # processing or unknown: ask again later
BUSY = frozenset({"02", "06", "37"})  # not processed now; nothing to conclude
DUPLICATE = "12"
NOT_FOUND = "34"
FILE_MISSING = "98"


def resp_message(code: str) -> str:
    return RESP_MESSAGES.get(code, "交易失败")


# --- identifiers and times ----------------------------------------------------------------

ORDER_ID_RE = re.compile(r"[0-9A-Za-z]{8,40}")
QR_NO_RE = re.compile(r"62\d{17}")
# An order number that carries its own creation time, as the gateway's ledger ids do:
# a short letter prefix, yyyyMMddHHmmss in UTC, then any letters and digits.
_EMBEDDED_TIME = re.compile(r"[A-Za-z]{1,4}(\d{14})[0-9A-Za-z]*")
UNDO_SUFFIX = "UD"


def valid_order_id(order_id: str) -> bool:
    return bool(ORDER_ID_RE.fullmatch(order_id))


def format_txn_time(value: dt.datetime) -> str:
    """``yyyyMMddHHmmss`` in China time."""
    if value.tzinfo is None:
        raise ValueError("txnTime needs an aware datetime")
    return value.astimezone(CST).strftime("%Y%m%d%H%M%S")


def parse_txn_time(text: str) -> dt.datetime:
    if not re.fullmatch(r"\d{14}", text or ""):
        raise ValueError(f"not a yyyyMMddHHmmss time: {text!r}")
    return dt.datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=CST)


def embedded_txn_time(order_id: str) -> str | None:
    """The txnTime that belongs to an order number carrying its creation time (UTC), or None.

    The gateway's ids look like ``P20240501083015a1b2c3d4e5``; sending them with the
    txnTime derived here lets any process query them later without remembering anything.
    """
    m = _EMBEDDED_TIME.fullmatch(order_id)
    if not m:
        return None
    try:
        when = dt.datetime.strptime(m.group(1), "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    return format_txn_time(when)


def undo_order_id(order_id: str) -> str:
    """The order number of the undo (撤销) of ``order_id``: fixed, so a retry finds it again."""
    if len(order_id) + len(UNDO_SUFFIX) <= 40:
        return order_id + UNDO_SUFFIX
    return UNDO_SUFFIX + hashlib.sha256(order_id.encode()).hexdigest()[:38]


def infer_year(mmdd_time: str, near: dt.date) -> dt.datetime:
    """``MMDDhhmmss`` (no year, China time) → the datetime closest to ``near``."""
    if not re.fullmatch(r"\d{10}", mmdd_time or ""):
        raise ValueError(f"not an MMDDhhmmss time: {mmdd_time!r}")
    best: dt.datetime | None = None
    for year in (near.year - 1, near.year, near.year + 1):
        try:
            cand = dt.datetime.strptime(f"{year}{mmdd_time}", "%Y%m%d%H%M%S").replace(tzinfo=CST)
        except ValueError:  # 29 February in a common year
            continue
        if best is None or abs(cand.date() - near) < abs(best.date() - near):
            best = cand
    if best is None:
        raise ValueError(f"no year makes {mmdd_time!r} a date")
    return best


def settle_date_of(moment: dt.datetime, cutoff_hour: int = 23) -> dt.date:
    """The settlement day (清算日) of a moment: from the previous day's 23:00 to 23:00 (China time)."""
    local = moment.astimezone(CST)
    return (local + dt.timedelta(hours=24 - cutoff_hour)).date()


def last_date_with_mmdd(mmdd: str, today: dt.date) -> dt.date:
    """The most recent date on or before ``today`` whose month and day are ``MMDD``."""
    if not re.fullmatch(r"\d{4}", mmdd):
        raise ValueError(f"not an MMDD date: {mmdd!r}")
    month, day = int(mmdd[:2]), int(mmdd[2:])
    for year in range(today.year, today.year - 8, -1):
        try:
            cand = dt.date(year, month, day)
        except ValueError:
            continue
        if cand <= today:
            return cand
    raise ValueError(f"MMDD {mmdd!r} is not a date")


# --- encodings ----------------------------------------------------------------------------


class WireFormatError(ValueError):
    """A message that is not a well-formed ACP field map."""


def sign_string(params: Mapping[str, str]) -> str:
    """Every field except ``signature``, sorted by name, as ``k=v`` joined by ``&``."""
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "signature")


def encode_form(params: Mapping[str, str]) -> bytes:
    """A request or notify body: percent-encoded form, UTF-8."""
    return urlencode(list(params.items()), encoding="utf-8").encode("ascii")


def decode_form(body: bytes | str) -> dict[str, str]:
    """A percent-encoded form body; duplicate or nameless fields are refused."""
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), encoding="utf-8",
                          errors="strict")
    except (ValueError, UnicodeDecodeError) as exc:
        raise WireFormatError(f"not a form body: {exc}") from None
    return _unique(pairs)


def encode_answer(params: Mapping[str, str]) -> bytes:
    """A synchronous answer as the gateway writes it: sorted ``k=v&…``, values not encoded."""
    return "&".join(f"{k}={params[k]}" for k in sorted(params)).encode("utf-8")


def decode_answer(body: bytes | str) -> dict[str, str]:
    """Parse a synchronous answer: split at ``&`` outside braces, each pair at its first ``=``."""
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
    except UnicodeDecodeError as exc:
        raise WireFormatError(f"answer is not UTF-8: {exc}") from None
    text = text.strip()
    if not text:
        return {}
    pairs: list[tuple[str, str]] = []
    buf: list[str] = []
    key: str | None = None
    depth = 0
    for ch in text:
        if key is None:
            if ch == "=":
                key, buf = "".join(buf), []
            elif ch == "&":
                raise WireFormatError(f"field without a value: {''.join(buf)[:40]!r}")
            else:
                buf.append(ch)
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth = max(depth - 1, 0)
        elif ch == "&" and depth == 0:
            pairs.append((key, "".join(buf)))
            key, buf = None, []
            continue
        buf.append(ch)
    if key is None:
        raise WireFormatError(f"field without a value: {''.join(buf)[:40]!r}")
    pairs.append((key, "".join(buf)))
    return _unique(pairs)


def _unique(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in pairs:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", k):
            raise WireFormatError(f"bad field name {k[:40]!r}")
        if k in out:
            raise WireFormatError(f"field {k!r} appears twice")
        out[k] = v
    return out


def braced(fields: Mapping[str, str]) -> str:
    """A composite field value: ``{k1=v1&k2=v2}`` (braces, ``&`` and ``=`` in values removed)."""
    clean = {k: re.sub(r"[{}&=]", " ", v).strip() for k, v in fields.items()}
    return "{" + "&".join(f"{k}={v}" for k, v in clean.items()) + "}"


def amount_text(fen: int) -> str:
    if isinstance(fen, bool) or not isinstance(fen, int) or fen <= 0:
        raise ValueError(f"txnAmt must be a positive number of fen, got {fen!r}")
    return str(fen)


def parse_amount(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None
