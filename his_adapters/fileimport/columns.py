"""The bill-import file format: its columns, their headers and the words its cells use.

One row per transaction; a header row names the columns in Chinese (as finance staff
write them) or by their English alias; an optional trailing summary row starts with
合计 (or ``total``). See ``docs/his/bill-import.md``.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from gateway.his import BILL_TYPE_ZH, BillType


@dataclass(frozen=True)
class Column:
    key: str  # the HisBillLine field (or bill_type)
    zh: str
    required: bool = False


COLUMNS: tuple[Column, ...] = (
    Column("his_serial", "业务流水号", required=True),
    Column("trade_no", "交易流水号"),
    Column("channel_trade_no", "渠道交易号"),
    Column("refund_no", "退款单号"),
    Column("kind", "交易类型", required=True),
    Column("amount", "金额(元)", required=True),
    Column("patient_id", "患者ID"),
    Column("patient_name", "患者姓名"),
    Column("visit_no", "门诊住院号"),
    Column("department", "科室"),
    Column("operator", "操作员"),
    Column("channel", "支付渠道"),
    Column("status", "状态"),
    Column("occurred_at", "交易时间", required=True),
    Column("bill_type", "账单类型"),
)
BY_KEY = {c.key: c for c in COLUMNS}
TEXT_KEYS = ("his_serial", "trade_no", "channel_trade_no", "refund_no", "patient_id", "patient_name",
             "visit_no", "department", "operator")

SUMMARY_MARKERS = {"合计", "总计", "汇总", "total", "summary"}

KINDS = {"支付": "payment", "收费": "payment", "缴费": "payment", "payment": "payment", "pay": "payment",
         "退款": "refund", "退费": "refund", "refund": "refund"}
STATUSES = {"正常": "normal", "成功": "normal", "normal": "normal",
            "作废": "cancelled", "撤销": "cancelled", "冲正": "cancelled", "cancelled": "cancelled"}
# Channel names finance staff type, to gateway channel ids; anything else passes through.
CHANNELS = {"微信": "wechatpay", "微信支付": "wechatpay", "wx": "wechatpay", "wechatpay": "wechatpay",
            "支付宝": "alipay", "zfb": "alipay", "alipay": "alipay",
            "银联": "unionpay", "云闪付": "unionpay", "yl": "unionpay", "unionpay": "unionpay",
            "数字人民币": "ecny", "ecny": "ecny", "现金": "cash", "cash": "cash"}
BILL_TYPES: dict[str, str] = {b.value: b.value for b in BillType}
BILL_TYPES.update({zh: b.value for b, zh in BILL_TYPE_ZH.items()})
BILL_TYPES.update({"挂号": BillType.OUTPATIENT_REGISTRATION.value, "门诊结算": BillType.OUTPATIENT_SETTLEMENT.value,
                   "门诊收费": BillType.OUTPATIENT_SETTLEMENT.value, "预交金": BillType.INPATIENT_DEPOSIT.value,
                   "出院结算": BillType.INPATIENT_SETTLEMENT.value})


def normalize_header(text: str) -> str:
    """Headers compare without case, spaces, BOM, or full-width punctuation: 金额（元） = 金额(元)."""
    folded = unicodedata.normalize("NFKC", text).replace("\ufeff", "")
    return re.sub(r"\s+", "", folded).lower()


def header_aliases(overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Normalized header text → column key: Chinese headers, English aliases, then overrides."""
    aliases: dict[str, str] = {}
    for col in COLUMNS:
        aliases[normalize_header(col.zh)] = col.key
        aliases[normalize_header(col.key)] = col.key
    aliases[normalize_header("金额")] = "amount"
    for header, key in (overrides or {}).items():
        if key not in BY_KEY:
            raise ValueError(f"mapping_overrides: {header!r} names unknown column {key!r}; "
                             f"known: {', '.join(BY_KEY)}")
        aliases[normalize_header(header)] = key
    return aliases
