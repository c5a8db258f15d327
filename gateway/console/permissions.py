"""Permission codes (menu and action level), the built-in roles, and which permission guards
each console route.

A role holds permission codes (``["*"]`` is every code) and the approval role names it
satisfies: the approval service decides by those (``finance``, ``finance_director`` by
amount tier, ``admin`` any tier).
"""
from __future__ import annotations

from dataclasses import dataclass

ALL = "*"


@dataclass(frozen=True)
class Permission:
    code: str
    group: str
    label_zh: str
    label_en: str


PERMISSIONS: tuple[Permission, ...] = (
    Permission("overview.view", "overview", "查看首页概览", "View the overview"),
    Permission("payments.view", "payments", "查询交易", "View payments"),
    Permission("payments.refund", "payments", "申请退款", "Apply for refunds"),
    Permission("cases.view", "cases", "查看单边账与回写异常", "View single-sided cases and write-back exceptions"),
    Permission("cases.handle", "cases", "处理单边账(申请退款、重试、人工处理)",
               "Handle single-sided cases (apply for refund, retry, resolve)"),
    Permission("approvals.view", "approvals", "查看审核", "View approvals"),
    Permission("approvals.decide", "approvals", "审核(通过/驳回)", "Decide approvals"),
    Permission("recon.view", "recon", "查看对账", "View reconciliation"),
    Permission("recon.run", "recon", "发起对账", "Run reconciliation"),
    Permission("recon.handle", "recon", "处理对账差异、导入账单", "Handle differences, import bills"),
    Permission("reports.view", "reports", "查看报表", "View reports"),
    Permission("reports.export", "reports", "导出报表", "Export reports"),
    Permission("config.view", "config", "查看配置", "View configuration"),
    Permission("config.edit", "config", "修改配置", "Change configuration"),
    Permission("system.users", "system", "用户管理", "Manage users"),
    Permission("system.roles", "system", "角色与权限管理", "Manage roles and permissions"),
    Permission("oplog.view", "system", "查看操作日志", "View the operation log"),
    Permission("pii.view", "system", "查看未脱敏个人信息", "View unmasked personal data"),
)
CODES = frozenset(p.code for p in PERMISSIONS)
GROUP_ZH = {"overview": "首页", "payments": "交易", "cases": "单边账", "approvals": "审核", "recon": "对账",
            "reports": "报表", "config": "配置", "system": "系统"}
GROUP_EN = {"overview": "Overview", "payments": "Payments", "cases": "Single-sided cases", "approvals": "Approvals",
            "recon": "Reconciliation", "reports": "Reports", "config": "Configuration", "system": "System"}
# Approval role names the approval service knows besides those in approval_tiers.
KNOWN_APPROVAL_ROLES = ("finance", "finance_director", "admin")

_READ = ("overview.view", "payments.view", "cases.view", "approvals.view", "recon.view", "reports.view",
         "config.view")


@dataclass(frozen=True)
class BuiltinRole:
    id: str
    name: str
    description: str
    permissions: tuple[str, ...]
    approval_roles: tuple[str, ...]


BUILTIN_ROLES: tuple[BuiltinRole, ...] = (
    BuiltinRole("admin", "管理员", "全部权限 / everything", (ALL,), ("admin",)),
    BuiltinRole("finance_director", "财务主管", "财务全部业务，审核任意金额，可查看个人信息 / all finance work, "
                "approves any tier, sees personal data",
                (*_READ, "payments.refund", "cases.handle", "approvals.decide", "recon.run", "recon.handle",
                 "reports.export", "pii.view"), ("finance_director", "finance")),
    BuiltinRole("finance", "财务", "对账、单边账处理、审核财务级申请 / reconciliation, cases, approves the finance tier",
                (*_READ, "payments.refund", "cases.handle", "approvals.decide", "recon.run", "recon.handle",
                 "reports.export"), ("finance",)),
    BuiltinRole("cashier", "收费员", "查询交易、申请退款 / looks up payments, applies for refunds",
                ("overview.view", "payments.view", "payments.refund", "cases.view", "cases.handle", "approvals.view"),
                ()),
    BuiltinRole("auditor", "审计", "只读，含操作日志 / read-only, including the operation log",
                (*_READ, "reports.export", "oplog.view"), ()),
)


def expand(permissions: list[str] | tuple[str, ...]) -> list[str]:
    """A role's stored codes as the full list (``*`` → every code)."""
    return sorted(CODES) if ALL in permissions else sorted(set(permissions) & CODES)


# --- which permission guards an alias of /v1/admin ---------------------------------------------------
# (method or "*", prefix of the route after /console/api/admin, permission). The longest prefix
# wins, an exact method before "*". A route no rule covers needs system.users (administrators only).
ADMIN_RULES: tuple[tuple[str, str, str], ...] = (
    ("GET", "/audit", "oplog.view"),
    ("GET", "/campuses", "config.view"), ("*", "/campuses", "config.edit"),
    ("GET", "/merchants", "config.view"), ("*", "/merchants", "config.edit"),
    ("GET", "/entries", "config.view"), ("*", "/entries", "config.edit"),
    ("GET", "/channels", "config.view"), ("*", "/channels", "config.edit"),
    # an admin-scoped caller app can do anything: only administrators manage apps
    ("GET", "/apps", "config.view"), ("*", "/apps", "system.users"),
    ("GET", "/callbacks", "payments.view"), ("*", "/callbacks", "config.edit"),
    ("GET", "/fixed-codes", "config.view"), ("*", "/fixed-codes", "config.edit"),
    ("GET", "/collections", "reports.view"),
    ("GET", "/interfaces", "config.view"),
    ("GET", "/interface-logs", "payments.view"),
    ("GET", "/reviews", "payments.view"), ("*", "/reviews", "cases.handle"),
    ("GET", "/plugins", "config.view"),
    ("GET", "/his/systems", "config.view"), ("*", "/his/systems", "config.edit"),
    ("GET", "/his/systems/{id}/bill", "recon.view"), ("*", "/his/systems/{id}/bill-import", "recon.handle"),
    ("GET", "/his/writebacks", "cases.view"), ("*", "/his/writebacks", "cases.handle"),
    ("GET", "/cases", "cases.view"), ("*", "/cases", "cases.handle"),
    ("GET", "/approvals", "approvals.view"), ("*", "/approvals", "approvals.decide"),
    ("*", "/approvals/{id}/withdraw", "approvals.view"),  # the service lets only the applicant withdraw
    ("GET", "/notifiers", "config.view"), ("*", "/notifiers", "config.edit"),
    ("GET", "/notices", "cases.view"), ("*", "/notices", "config.edit"),
    ("GET", "/recon", "recon.view"), ("*", "/recon", "recon.handle"),
    ("POST", "/recon/runs", "recon.run"), ("POST", "/recon/insurance/runs", "recon.run"),
    ("GET", "/reports", "reports.view"),
    ("GET", "/insurance/centres", "config.view"), ("*", "/insurance/centres", "config.edit"),
    ("GET", "/insurance/ledger", "recon.view"),
)
DEFAULT_PERMISSION = "system.users"
# GET routes whose answer is a file when ?format= is not json: an export (reports.export, logged).
EXPORT_ROUTES = ("/reports/{key}", "/collections")


def _covers(prefix: str, path: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


def admin_permission(method: str, rest: str) -> str:
    """The permission guarding ``method`` on ``/console/api/admin`` + ``rest`` (a route pattern)."""
    method = "GET" if method == "HEAD" else method
    best: tuple[int, int, str] | None = None
    for m, prefix, perm in ADMIN_RULES:
        if (m == method or m == "*") and _covers(prefix, rest):
            rank = (len(prefix), 1 if m == method else 0, perm)
            if best is None or rank[:2] > best[:2]:
                best = rank
    return best[2] if best else DEFAULT_PERMISSION
