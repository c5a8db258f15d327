"""Finance reports (报表): computed from the ledger, the stored bills and the differences.

Every report is recomputed from records that are never edited (the ledger's payments
and refunds, the bill lines as fetched, the differences and their marks), so any past
period gives the same figures. A report is data (columns with Chinese and English
headers, rows, totals) and is exported as JSON, CSV, Excel or printable HTML by
``export.py``.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, select

from ..db.models import InsuranceSettlement, Payment, ReconDiff, ReconLine, Refund
from ..errors import NotFound, ValidationFailed
from ..his import BILL_TYPE_ZH
from ..statemachine import PAYMENT_PAID
from ..timeutil import CHINA, local_day_bounds
from .diffs import CLASSES

if TYPE_CHECKING:
    from ..core import Core

GROUPS = ("day", "month", "quarter", "year")
PAID = tuple(s.value for s in PAYMENT_PAID) + ("REFUNDED",)
CHANNEL_ZH = {"wechatpay": "微信支付", "alipay": "支付宝", "unionpay": "银联", "ecny": "数字人民币", "cash": "现金"}
METHOD_ZH = {"code": "付款码", "qr": "扫码", "jsapi": "公众号/小程序", "h5": "H5"}


@dataclass
class Column:
    key: str
    zh: str
    en: str
    kind: str = "text"  # text | int | fen

    def as_dict(self) -> dict[str, str]:
        return {"key": self.key, "zh": self.zh, "en": self.en, "kind": self.kind}


@dataclass
class Report:
    key: str
    title_zh: str
    title_en: str
    begin: dt.date
    end: dt.date
    group: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    totals: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"report": self.key, "title_zh": self.title_zh, "title_en": self.title_en,
                "begin": self.begin.isoformat(), "end": self.end.isoformat(), "group": self.group,
                "columns": [c.as_dict() for c in self.columns], "rows": self.rows, "totals": self.totals}


def period_of(day: dt.date, group: str) -> str:
    if group == "day":
        return day.isoformat()
    if group == "month":
        return f"{day:%Y-%m}"
    if group == "quarter":
        return f"{day.year}-Q{(day.month - 1) // 3 + 1}"
    return str(day.year)


def _local(ts: dt.datetime) -> dt.date:
    return ts.astimezone(CHINA).date()


def _totals(rows: list[dict[str, Any]], columns: list[Column], label_key: str) -> dict[str, Any]:
    out: dict[str, Any] = {label_key: "合计 Total"}
    for c in columns:
        if c.kind in ("int", "fen"):
            out[c.key] = sum(int(r.get(c.key) or 0) for r in rows)
    return out


class Reports:
    def __init__(self, core: Core) -> None:
        self.core = core
        self.catalogue: dict[str, tuple[str, str, Callable[[dt.date, dt.date, str], Awaitable[Report]]]] = {
            "long_short": ("长短款审计报表", "Long/short audit", self.long_short),
            "refunds": ("退款汇总", "Refund summary", self.refunds),
            "cashier_income": ("收费员收入汇总", "Cashier and entry income", self.cashier_income),
            "cashier_detail": ("收费员收入明细", "Cashier income detail", self.cashier_detail),
            "channel_income": ("渠道商户收入汇总", "Channel and merchant income", self.channel_income),
            "platform_vs_his": ("平台与HIS差异表", "Platform vs HIS by payment method", self.platform_vs_his),
            "platform": ("平台报表", "Platform report", self.platform),
            "his": ("HIS报表", "HIS report", self.his),
            "insurance": ("医保对账差异报表", "Insurance reconciliation", self.insurance),
        }

    def list(self) -> list[dict[str, str]]:
        return [{"key": k, "title_zh": v[0], "title_en": v[1]} for k, v in self.catalogue.items()]

    async def build(self, key: str, begin: dt.date, end: dt.date, group: str = "day") -> Report:
        if key not in self.catalogue:
            raise NotFound(f"no report {key!r}", available=list(self.catalogue))
        if group not in GROUPS:
            raise ValidationFailed(f"group must be one of {', '.join(GROUPS)}")
        if end < begin or (end - begin).days > 366 * 3:
            raise ValidationFailed("the period runs from begin to end, at most three years")
        return await self.catalogue[key][2](begin, end, group)

    def _report(self, key: str, begin: dt.date, end: dt.date, group: str, columns: list[Column],
                rows: list[dict[str, Any]]) -> Report:
        zh, en, _ = self.catalogue[key]
        return Report(key, zh, en, begin, end, group, columns, rows, _totals(rows, columns, columns[0].key))

    # --- ledger --------------------------------------------------------------------------------------
    async def _payments(self, begin: dt.date, end: dt.date) -> list[Any]:
        lo, _ = local_day_bounds(begin)
        _, hi = local_day_bounds(end)
        async with self.core.rsm() as s:
            return list((await s.execute(select(
                Payment.id, Payment.amount, Payment.channel, Payment.merchant_id, Payment.method, Payment.operator,
                Payment.entry, Payment.business_type, Payment.paid_at, Payment.out_trade_no, Payment.subject)
                .where(Payment.paid_at >= lo, Payment.paid_at < hi, Payment.status.in_(PAID))
                .order_by(Payment.paid_at))).all())

    async def _refunds(self, begin: dt.date, end: dt.date) -> list[Any]:
        lo, _ = local_day_bounds(begin)
        _, hi = local_day_bounds(end)
        async with self.core.rsm() as s:
            return list((await s.execute(select(
                Refund.id, Refund.payment_id, Refund.amount, Refund.reason, Refund.operator, Refund.refunded_at,
                Payment.channel, Payment.merchant_id, Payment.method, Payment.entry, Payment.business_type,
                Payment.operator.label("pay_operator"))
                .join(Payment, Payment.id == Refund.payment_id)
                .where(Refund.refunded_at >= lo, Refund.refunded_at < hi, Refund.status == "SUCCEEDED")
                .order_by(Refund.refunded_at))).all())

    async def _income(self, begin: dt.date, end: dt.date, group: str,
                      key_of: Callable[[Any, bool], tuple[str, ...]]) -> dict[tuple[str, ...], dict[str, int]]:
        acc: dict[tuple[str, ...], dict[str, int]] = defaultdict(lambda: {"count": 0, "paid": 0, "refund_count": 0,
                                                                          "refunded": 0})
        for p in await self._payments(begin, end):
            a = acc[(period_of(_local(p.paid_at), group), *key_of(p, False))]
            a["count"] += 1
            a["paid"] += p.amount
        for r in await self._refunds(begin, end):
            a = acc[(period_of(_local(r.refunded_at), group), *key_of(r, True))]
            a["refund_count"] += 1
            a["refunded"] += r.amount
        return acc

    _MONEY = [Column("count", "收款笔数", "Payments", "int"), Column("paid", "收款金额", "Paid", "fen"),
              Column("refund_count", "退款笔数", "Refunds", "int"), Column("refunded", "退款金额", "Refunded", "fen"),
              Column("net", "净收入", "Net", "fen")]

    async def cashier_income(self, begin: dt.date, end: dt.date, group: str) -> Report:
        def key(x: Any, refund: bool) -> tuple[str, ...]:
            operator = (x.pay_operator if refund else x.operator) or "-"
            return operator, x.entry or "-", x.method, x.channel

        acc = await self._income(begin, end, group, key)
        rows = [{"period": k[0], "operator": k[1], "entry": k[2], "method": METHOD_ZH.get(k[3], k[3]),
                 "channel": CHANNEL_ZH.get(k[4], k[4]), **v, "net": v["paid"] - v["refunded"]}
                for k, v in sorted(acc.items())]
        cols = [Column("period", "期间", "Period"), Column("operator", "收费员", "Cashier"),
                Column("entry", "收费入口", "Entry"), Column("method", "支付方式", "Method"),
                Column("channel", "渠道", "Channel"), *self._MONEY]
        return self._report("cashier_income", begin, end, group, cols, rows)

    async def cashier_detail(self, begin: dt.date, end: dt.date, group: str) -> Report:
        rows = [{"time": p.paid_at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S"), "operator": p.operator or "-",
                 "entry": p.entry or "-", "kind": "收款", "payment_id": p.id, "out_trade_no": p.out_trade_no,
                 "subject": p.subject, "method": METHOD_ZH.get(p.method, p.method),
                 "channel": CHANNEL_ZH.get(p.channel, p.channel), "amount": p.amount}
                for p in await self._payments(begin, end)]
        rows += [{"time": r.refunded_at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S"),
                  "operator": r.pay_operator or "-", "entry": r.entry or "-", "kind": "退款", "payment_id": r.payment_id,
                  "out_trade_no": r.id, "subject": r.reason or "", "method": METHOD_ZH.get(r.method, r.method),
                  "channel": CHANNEL_ZH.get(r.channel, r.channel), "amount": -r.amount}
                 for r in await self._refunds(begin, end)]
        rows.sort(key=lambda r: (r["operator"], r["time"]))
        cols = [Column("time", "时间", "Time"), Column("operator", "收费员", "Cashier"), Column("entry", "入口", "Entry"),
                Column("kind", "类型", "Kind"), Column("payment_id", "平台流水号", "Payment id"),
                Column("out_trade_no", "业务单号", "Business number"), Column("subject", "摘要", "Subject"),
                Column("method", "支付方式", "Method"), Column("channel", "渠道", "Channel"),
                Column("amount", "金额", "Amount", "fen")]
        return self._report("cashier_detail", begin, end, group, cols, rows)

    async def channel_income(self, begin: dt.date, end: dt.date, group: str) -> Report:
        acc = await self._income(begin, end, group, lambda x, _r: (x.channel, x.merchant_id))
        rows = [{"period": k[0], "channel": CHANNEL_ZH.get(k[1], k[1]), "merchant": k[2], **v,
                 "net": v["paid"] - v["refunded"]} for k, v in sorted(acc.items())]
        cols = [Column("period", "期间", "Period"), Column("channel", "渠道", "Channel"),
                Column("merchant", "商户", "Merchant"), *self._MONEY]
        return self._report("channel_income", begin, end, group, cols, rows)

    async def refunds(self, begin: dt.date, end: dt.date, group: str) -> Report:
        acc: dict[tuple[str, ...], dict[str, int]] = defaultdict(lambda: {"refund_count": 0, "refunded": 0})
        for r in await self._refunds(begin, end):
            source = "单边账退款" if (r.operator or "").startswith("system:") else "业务退款"
            a = acc[(period_of(_local(r.refunded_at), group), r.channel, r.business_type, source)]
            a["refund_count"] += 1
            a["refunded"] += r.amount
        rows = [{"period": k[0], "channel": CHANNEL_ZH.get(k[1], k[1]), "business_type": k[2], "source": k[3], **v}
                for k, v in sorted(acc.items())]
        cols = [Column("period", "期间", "Period"), Column("channel", "渠道", "Channel"),
                Column("business_type", "业务类型", "Business type"), Column("source", "退款来源", "Source"),
                Column("refund_count", "退款笔数", "Refunds", "int"), Column("refunded", "退款金额", "Refunded", "fen")]
        return self._report("refunds", begin, end, group, cols, rows)

    async def platform(self, begin: dt.date, end: dt.date, group: str) -> Report:
        acc = await self._income(begin, end, group, lambda x, _r: (x.business_type,))
        rows = [{"period": k[0], "business_type": k[1], **v, "net": v["paid"] - v["refunded"]}
                for k, v in sorted(acc.items())]
        cols = [Column("period", "期间", "Period"), Column("business_type", "业务类型", "Business type"), *self._MONEY]
        return self._report("platform", begin, end, group, cols, rows)

    # --- stored bills and differences ----------------------------------------------------------------
    async def _lines(self, source: str, begin: dt.date, end: dt.date) -> list[Any]:
        async with self.core.rsm() as s:
            return list((await s.execute(select(ReconLine.day, ReconLine.kind, ReconLine.amount, ReconLine.status,
                                                ReconLine.channel, ReconLine.bill_type, ReconLine.source_id)
                                         .where(ReconLine.source == source, ReconLine.day >= begin,
                                                ReconLine.day <= end))).all())

    async def his(self, begin: dt.date, end: dt.date, group: str) -> Report:
        acc: dict[tuple[str, ...], dict[str, int]] = defaultdict(lambda: {"count": 0, "paid": 0, "refund_count": 0,
                                                                          "refunded": 0})
        for x in await self._lines("his", begin, end):
            if x.status != "normal":
                continue
            a = acc[(period_of(x.day, group), x.source_id, x.bill_type)]
            if x.kind == "refund":
                a["refund_count"] += 1
                a["refunded"] += x.amount
            else:
                a["count"] += 1
                a["paid"] += x.amount
        rows = [{"period": k[0], "system": k[1], "bill_type": BILL_TYPE_ZH.get(k[2], k[2]), **v,
                 "net": v["paid"] - v["refunded"]} for k, v in sorted(acc.items())]
        cols = [Column("period", "期间", "Period"), Column("system", "业务系统", "System"),
                Column("bill_type", "账单类型", "Bill type"), *self._MONEY]
        return self._report("his", begin, end, group, cols, rows)

    async def platform_vs_his(self, begin: dt.date, end: dt.date, group: str) -> Report:
        acc: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: {"platform": 0, "his": 0})
        for source, ok in (("platform", "SUCCEEDED"), ("his", "normal")):
            for x in await self._lines(source, begin, end):
                if x.status != ok:
                    continue
                sign = -1 if x.kind == "refund" else 1
                acc[(period_of(x.day, group), x.channel or "-")][source] += sign * x.amount
        rows = [{"period": k[0], "channel": CHANNEL_ZH.get(k[1], k[1]), **v, "difference": v["platform"] - v["his"]}
                for k, v in sorted(acc.items())]
        cols = [Column("period", "期间", "Period"), Column("channel", "支付方式", "Payment method"),
                Column("platform", "平台净额", "Platform net", "fen"), Column("his", "HIS净额", "HIS net", "fen"),
                Column("difference", "差额", "Difference", "fen")]
        return self._report("platform_vs_his", begin, end, group, cols, rows)

    async def long_short(self, begin: dt.date, end: dt.date, group: str) -> Report:
        async with self.core.rsm() as s:
            diffs = list((await s.execute(select(ReconDiff).where(
                ReconDiff.day >= begin, ReconDiff.day <= end, ReconDiff.kind != "ins"))).scalars())
        acc: dict[tuple[str, str, str], dict[str, int]] = defaultdict(
            lambda: {"count": 0, "amount": 0, "open": 0, "resolved": 0, "cleared": 0})
        for d in diffs:
            a = acc[(period_of(d.day, group), d.cls, d.channel or "-")]
            a["count"] += 1
            a["amount"] += next((v for v in (d.channel_amount, d.platform_amount, d.his_amount) if v is not None), 0)
            a[d.status.lower()] += 1
        rows = [{"period": k[0], "class": CLASSES.get(k[1], (k[1],))[0], "channel": CHANNEL_ZH.get(k[2], k[2]), **v}
                for k, v in sorted(acc.items())]
        cols = [Column("period", "期间", "Period"), Column("class", "差异类型", "Class"),
                Column("channel", "渠道", "Channel"), Column("count", "笔数", "Count", "int"),
                Column("amount", "金额", "Amount", "fen"), Column("open", "待处理", "Open", "int"),
                Column("resolved", "已处理", "Resolved", "int"), Column("cleared", "已自动消除", "Cleared", "int")]
        return self._report("long_short", begin, end, group, cols, rows)

    async def insurance(self, begin: dt.date, end: dt.date, group: str) -> Report:
        lo, _ = local_day_bounds(begin)
        _, hi = local_day_bounds(end)
        S = InsuranceSettlement
        async with self.core.rsm() as s:
            rows_db = list((await s.execute(select(S).where(and_(S.setl_time >= lo, S.setl_time < hi),
                                                            S.setl_id.is_not(None)))).scalars())
            diffs = list((await s.execute(select(ReconDiff).where(
                ReconDiff.day >= begin, ReconDiff.day <= end, ReconDiff.kind == "ins"))).scalars())
        acc: dict[tuple[str, str, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(
            ("count", "total", "fund", "personal_account", "mutual_aid", "wallet", "cash", "reversed", "differences"), 0))
        for r in rows_db:
            a = acc[(period_of(_local(r.setl_time), group), r.clr_type or "-", r.insutype)]
            sign = 0 if r.rev_setl_id else 1  # a reversed settlement nets to nothing
            a["count"] += 1
            a["reversed"] += 1 - sign
            a["total"] += sign * (r.total or 0)
            a["fund"] += sign * (r.fund_total or 0)
            a["personal_account"] += sign * (r.acct_pay or 0)
            a["mutual_aid"] += sign * (r.acct_mulaid_pay or 0)
            a["wallet"] += sign * (r.wallet_pay or 0)
            a["cash"] += sign * (r.cash_pay or 0)
        for d in diffs:
            parts = (d.order_ref or "|||").split("|")
            acc[(period_of(d.day, group), parts[2] or "-", parts[1])]["differences"] += 1
        rows = [{"period": k[0], "clr_type": k[1], "insutype": k[2], **v} for k, v in sorted(acc.items())]
        cols = [Column("period", "期间", "Period"), Column("clr_type", "清算类别", "Clearing type"),
                Column("insutype", "险种", "Insurance type"), Column("count", "结算笔数", "Settlements", "int"),
                Column("reversed", "已冲正", "Reversed", "int"), Column("total", "医疗费总额", "Total", "fen"),
                Column("fund", "基金支付", "Fund", "fen"), Column("personal_account", "个人账户", "Personal account", "fen"),
                Column("mutual_aid", "共济账户", "Mutual-aid account", "fen"),
                Column("wallet", "医保钱包", "Wallet", "fen"), Column("cash", "现金支付", "Cash", "fen"),
                Column("differences", "对账差异", "Differences", "int")]
        return self._report("insurance", begin, end, group, cols, rows)
