"""数据字典: the code tables the gateway uses, with their Chinese and English labels.

Read-only and assembled from the code itself: the channels registered (plugins' included),
the enums of payment methods, statuses and HIS bill types, and the label tables of the
services (cases, approvals, write-backs, reconciliation). Business types are open-ended:
the known ones, plus any a business system, entry, merchant or caller app names.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..channel import Method
from ..his import BILL_TYPE_ZH, BillType
from ..statemachine import PaymentStatus, RefundStatus

if TYPE_CHECKING:
    from ..core import Core

METHOD = {Method.CODE: ("付款码（被扫）", "Payment code (scanned by the cashier)"),
          Method.QR: ("扫码（主扫）", "QR code (scanned by the patient)"),
          Method.JSAPI: ("公众号/小程序", "In-app (official account, mini-program)"),
          Method.H5: ("H5 网页", "H5 mobile web")}
BILL_TYPE_EN = {BillType.OUTPATIENT_REGISTRATION: "Outpatient registration",
                BillType.OUTPATIENT_SETTLEMENT: "Outpatient settlement",
                BillType.INPATIENT_DEPOSIT: "Inpatient deposit", BillType.INPATIENT_SETTLEMENT: "Inpatient settlement",
                BillType.EXAM: "Physical exam", BillType.OTHER: "Other"}
BUSINESS_TYPES = {
    "registration": ("挂号", "Registration"), "outpatient": ("门诊缴费", "Outpatient fees"),
    "inpatient_deposit": ("住院预交金", "Inpatient deposit"), "inpatient": ("住院结算", "Inpatient settlement"),
    "inpatient_settlement": ("住院结算", "Inpatient settlement"), "exam": ("体检", "Physical exam"),
    "nutrition": ("营养餐", "Nutrition meals"), "reproductive": ("生殖中心", "Reproductive centre"),
    "parking": ("停车", "Parking"), "canteen": ("食堂", "Canteen"),
}
PAYMENT_STATUS = {
    PaymentStatus.CREATED: ("已创建", "Created"), PaymentStatus.PAYING: ("支付中", "Paying"),
    PaymentStatus.SUCCEEDED: ("支付成功", "Succeeded"), PaymentStatus.FAILED: ("支付失败", "Failed"),
    PaymentStatus.CLOSED: ("已关闭", "Closed"), PaymentStatus.REVERSED: ("已撤销", "Reversed"),
    PaymentStatus.UNKNOWN: ("结果未知", "Unknown"), PaymentStatus.PARTIALLY_REFUNDED: ("部分退款", "Partly refunded"),
    PaymentStatus.REFUNDED: ("已退款", "Refunded"),
}
REFUND_STATUS = {RefundStatus.PROCESSING: ("退款中", "Processing"), RefundStatus.SUCCEEDED: ("退款成功", "Succeeded"),
                 RefundStatus.FAILED: ("退款失败", "Failed"), RefundStatus.UNKNOWN: ("结果未知", "Unknown")}
WRITEBACK_EN = {"WAITING": "Waiting for the payment", "PENDING": "Pending", "RECORDED": "Recorded",
                "FAILED": "Failed", "REJECTED": "Rejected by the system", "CANCELLED": "Cancelled"}
CASE_STATUS_EN = {"OPEN": "Open", "APPROVING": "Refund awaiting approval", "REFUNDING": "Refunding",
                  "RESOLVED": "Resolved"}
CASE_REASON_EN = {"writeback_failed": "Write-back failed", "writeback_rejected": "Rejected by the business system",
                  "late_success": "Paid after the caller gave up", "recon_long": "Reconciliation: long entry",
                  "recon_duplicate": "Reconciliation: duplicate payment"}
CASE_RESOLUTION_EN = {"written_back": "Written back", "refunded": "Refunded along the original route",
                      "manual": "Handled by hand"}
APPROVAL_STATUS_EN = {"PENDING": "Pending", "APPROVED": "Approved", "REJECTED": "Rejected", "WITHDRAWN": "Withdrawn"}
APPROVAL_KIND_EN = {"case_refund": "Single-sided case refund", "ins_centre_reversal": "Insurance centre-only reversal",
                    "payment_refund": "Refund application (original route)"}
DIFF_STATUS_EN = {"OPEN": "Open", "RESOLVED": "Resolved", "CLEARED": "Cleared (the sources now agree)"}
DAY_STATE_EN = {"not_run": "Not reconciled", "running": "Running", "failed": "Failed", "incomplete": "Incomplete",
                "differences": "Differences", "balanced": "Balanced"}


def _entries(pairs: Any) -> list[dict[str, Any]]:
    return [{"code": str(code), "label_zh": zh, "label_en": en} for code, (zh, en) in pairs]


def _table(key: str, zh: str, en: str, source: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {"key": key, "name_zh": zh, "name_en": en, "source": source, "entries": entries}


def _both(codes: Any, zh: dict[str, str], en: dict[str, str]) -> list[tuple[str, tuple[str, str]]]:
    return [(c, (zh.get(c, c), en.get(c, c))) for c in codes]


async def dictionaries(core: Core) -> dict[str, Any]:
    from ..recon.diffs import CLASSES, DIFF_STATUS_ZH, MARKS
    from ..recon.service import DAY_STATE_ZH
    from ..services.approvals import KIND_ZH as APPROVAL_KIND_ZH
    from ..services.approvals import STATUS_ZH as APPROVAL_STATUS_ZH
    from ..services.cases import REASON_ZH, RESOLUTION_ZH
    from ..services.cases import STATUS_ZH as CASE_STATUS_ZH
    from ..services.writeback import STATUS_ZH as WRITEBACK_ZH

    channels = [(cid, (cls.name_zh, cls.name_en)) for cid, cls in sorted(core.registry.channels.items())]
    business = dict(BUSINESS_TYPES)
    for code in sorted(await _business_types_in_use(core)):
        bill = BillType(code) if code in BillType.__members__.values() else None
        business.setdefault(code, (BILL_TYPE_ZH[bill], BILL_TYPE_EN[bill]) if bill else (code, code))
    tables = [
        _table("channels", "支付渠道", "Payment channels", "channel adapters (plugins included)", _entries(channels)),
        _table("payment_methods", "支付方式", "Payment methods", "Method", _entries(METHOD.items())),
        _table("business_types", "业务类型", "Business types", "known types and those configured",
               _entries(business.items())),
        _table("his_bill_types", "HIS账单类型", "HIS bill types", "BillType",
               _entries((b, (BILL_TYPE_ZH[b], BILL_TYPE_EN[b])) for b in BillType)),
        _table("payment_statuses", "支付状态", "Payment statuses", "PaymentStatus", _entries(PAYMENT_STATUS.items())),
        _table("refund_statuses", "退款状态", "Refund statuses", "RefundStatus", _entries(REFUND_STATUS.items())),
        _table("writeback_statuses", "回写状态", "Write-back statuses", "his_writebacks.status",
               _entries(_both(WRITEBACK_ZH, WRITEBACK_ZH, WRITEBACK_EN))),
        _table("case_statuses", "单边账状态", "Single-sided case statuses", "single_sided_cases.status",
               _entries(_both(CASE_STATUS_ZH, CASE_STATUS_ZH, CASE_STATUS_EN))),
        _table("case_reasons", "单边账原因", "Single-sided case reasons", "single_sided_cases.reason",
               _entries(_both(REASON_ZH, REASON_ZH, CASE_REASON_EN))),
        _table("case_resolutions", "单边账处理结果", "Single-sided case resolutions", "single_sided_cases.resolution",
               _entries(_both(RESOLUTION_ZH, RESOLUTION_ZH, CASE_RESOLUTION_EN))),
        _table("approval_statuses", "审核状态", "Approval statuses", "approvals.status",
               _entries(_both(APPROVAL_STATUS_ZH, APPROVAL_STATUS_ZH, APPROVAL_STATUS_EN))),
        _table("approval_kinds", "审核类型", "Approval kinds", "approvals.kind",
               _entries(_both(APPROVAL_KIND_ZH, APPROVAL_KIND_ZH, APPROVAL_KIND_EN))),
        _table("difference_classes", "差异分类", "Difference classes", "reconciliation matching",
               _entries(CLASSES.items())),
        _table("difference_statuses", "差异状态", "Difference statuses", "recon_diffs.status",
               _entries(_both(DIFF_STATUS_ZH, DIFF_STATUS_ZH, DIFF_STATUS_EN))),
        _table("difference_marks", "差异处理方式", "Difference marks", "recon_diffs marks", _entries(MARKS.items())),
        _table("recon_day_states", "对账日状态", "Reconciliation day states", "reconciliation calendar",
               _entries(_both(DAY_STATE_ZH, DAY_STATE_ZH, DAY_STATE_EN))),
    ]
    return {"items": tables}


async def _business_types_in_use(core: Core) -> set[str]:
    from sqlalchemy import select

    from ..db.models import App, Entry, HisSystem, Merchant

    found: set[str] = set()
    async with core.rsm() as s:
        for (types,) in (await s.execute(select(HisSystem.business_types))).all():
            found.update(types or [])
        for (types,) in (await s.execute(select(Merchant.business_types))).all():
            found.update(types or [])
        for (types,) in (await s.execute(select(App.business_types))).all():
            found.update(types or [])
        found.update(t for (t,) in (await s.execute(select(Entry.business_type))).all() if t)
    return {t for t in found if t and t != "*"}
