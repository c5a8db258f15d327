"""Error hierarchy with stable codes.

Two families:
- ``YinyiError``: a request the gateway refuses or cannot serve. Each subclass has a
  stable ``code``, an HTTP status, and messages in Chinese and English. The API
  middleware maps them to problem+json in one place.
- ``UpstreamError``: a broken call to an upstream (timeout, reset, 5xx, bad
  signature, unparseable answer). The outcome of the operation is *unknown*; the
  ledger records UNKNOWN and the resolver settles it later. A channel's "no"
  (insufficient balance, invalid code) is not an exception but a result.
"""
from __future__ import annotations

from typing import Any, ClassVar


class YinyiError(Exception):
    code: ClassVar[str] = "INTERNAL_ERROR"
    status: ClassVar[int] = 500
    message_zh: ClassVar[str] = "系统内部错误"
    message_en: ClassVar[str] = "Internal error"

    def __init__(self, detail: str | None = None, /, **extra: Any) -> None:
        self.detail = detail
        self.extra = extra
        super().__init__(detail or self.message_en)

    def to_problem(self, lang: str = "zh") -> dict[str, Any]:
        title = self.message_zh if lang.startswith("zh") else self.message_en
        body: dict[str, Any] = {
            "type": f"https://yinyi.dev/errors/{self.code.lower().replace('_', '-')}",
            "title": title,
            "status": self.status,
            "code": self.code,
            "message_zh": self.message_zh,
            "message_en": self.message_en,
        }
        if self.detail:
            body["detail"] = self.detail
        for key, value in self.extra.items():
            # Extension members never replace the standard ones (RFC 9457).
            body.setdefault(key, value)
        return body



class BadRequest(YinyiError):
    code = "BAD_REQUEST"
    status = 400
    message_zh = "请求格式错误"
    message_en = "Malformed request"


class ValidationFailed(BadRequest):
    code = "VALIDATION_FAILED"
    message_zh = "请求参数校验失败"
    message_en = "Request validation failed"


class InvalidAmount(BadRequest):
    code = "INVALID_AMOUNT"
    message_zh = "金额必须是以分为单位的正整数"
    message_en = "Amount must be a positive integer number of fen"


class UnknownChannel(BadRequest):
    code = "UNKNOWN_CHANNEL"
    message_zh = "未知或未启用的支付渠道"
    message_en = "Unknown or disabled payment channel"


class UnrecognisedAuthCode(BadRequest):
    code = "AUTH_CODE_UNRECOGNISED"
    message_zh = "无法识别的付款码"
    message_en = "Payment code not recognised"


class CapabilityNotSupported(BadRequest):
    code = "CAPABILITY_NOT_SUPPORTED"
    status = 422
    message_zh = "该支付渠道不支持此操作"
    message_en = "The channel does not support this operation"


class AuthFailed(YinyiError):
    code = "AUTH_FAILED"
    status = 401
    message_zh = "身份认证失败"
    message_en = "Authentication failed"


class MissingAuthHeaders(AuthFailed):
    code = "AUTH_HEADERS_MISSING"
    message_zh = "缺少签名认证请求头"
    message_en = "Missing authentication headers"


class UnknownApp(AuthFailed):
    code = "APP_UNKNOWN"
    message_zh = "接入应用不存在或已停用"
    message_en = "Unknown or disabled caller app"


class BadSignature(AuthFailed):
    code = "SIGNATURE_INVALID"
    message_zh = "签名校验失败"
    message_en = "Signature verification failed"


class TimestampExpired(AuthFailed):
    code = "TIMESTAMP_EXPIRED"
    message_zh = "请求时间戳超出允许范围"
    message_en = "Request timestamp outside the allowed window"


class NonceReplayed(AuthFailed):
    code = "NONCE_REPLAYED"
    message_zh = "请求随机串重复使用（疑似重放）"
    message_en = "Nonce already used (replay)"


class Forbidden(YinyiError):
    code = "FORBIDDEN"
    status = 403
    message_zh = "无权执行此操作"
    message_en = "Not permitted"


class BusinessTypeForbidden(Forbidden):
    code = "BUSINESS_TYPE_FORBIDDEN"
    message_zh = "该接入应用无权使用此业务类型"
    message_en = "The app may not use this business type"


class MerchantForbidden(Forbidden):
    code = "MERCHANT_FORBIDDEN"
    message_zh = "该接入应用无权使用此商户"
    message_en = "The app may not use this merchant"


class NotFound(YinyiError):
    code = "NOT_FOUND"
    status = 404
    message_zh = "记录不存在"
    message_en = "Not found"


class PaymentNotFound(NotFound):
    code = "PAYMENT_NOT_FOUND"
    message_zh = "支付订单不存在"
    message_en = "Payment not found"


class RefundNotFound(NotFound):
    code = "REFUND_NOT_FOUND"
    message_zh = "退款单不存在"
    message_en = "Refund not found"


class NoMerchant(YinyiError):
    code = "NO_MERCHANT"
    status = 422
    message_zh = "未找到可用的收款商户"
    message_en = "No merchant configured for this channel, campus and business type"


class Conflict(YinyiError):
    code = "CONFLICT"
    status = 409
    message_zh = "请求与已有记录冲突"
    message_en = "Conflicts with an existing record"


class IdempotencyConflict(Conflict):
    code = "IDEMPOTENCY_CONFLICT"
    message_zh = "相同业务单号的请求内容不一致"
    message_en = "Same business key sent with a different body"


class InvalidState(Conflict):
    code = "INVALID_STATE"
    message_zh = "订单当前状态不允许此操作"
    message_en = "Operation not allowed in the current state"


class RefundExceedsPaid(Conflict):
    code = "REFUND_EXCEEDS_PAID"
    message_zh = "退款金额超过可退金额"
    message_en = "Refund amount exceeds the refundable amount"


class ConfigError(YinyiError):
    code = "CONFIG_ERROR"
    status = 500
    message_zh = "配置错误"
    message_en = "Configuration error"


class PluginError(ConfigError):
    code = "PLUGIN_ERROR"
    message_zh = "插件加载失败"
    message_en = "Plugin failed to load"


class NotifyRejected(YinyiError):
    code = "NOTIFY_REJECTED"
    status = 400
    message_zh = "渠道通知校验失败"
    message_en = "Channel notification rejected"


# --- upstream: outcome unknown -------------------------------------------------


class UpstreamError(YinyiError):
    """A call to an upstream broke; whether it took effect is unknown."""

    code = "UPSTREAM_ERROR"
    status = 502
    message_zh = "上游系统调用异常，结果未知"
    message_en = "Upstream call failed; outcome unknown"


class UpstreamTimeout(UpstreamError):
    code = "UPSTREAM_TIMEOUT"
    status = 504
    message_zh = "上游系统响应超时"
    message_en = "Upstream timed out"


class UpstreamUnavailable(UpstreamError):
    code = "UPSTREAM_UNAVAILABLE"
    message_zh = "上游系统不可用"
    message_en = "Upstream unavailable (5xx or connection reset)"


class UpstreamProtocolError(UpstreamError):
    code = "UPSTREAM_PROTOCOL_ERROR"
    message_zh = "上游应答无法解析或签名无效"
    message_en = "Upstream answer unparseable or its signature invalid"


class NotSupported(CapabilityNotSupported):
    """Raised by an adapter asked for a flow it does not implement."""

    code = "FLOW_NOT_SUPPORTED"
    message_zh = "该支付渠道未实现此流程"
    message_en = "The channel adapter does not implement this flow"

    def __init__(self, flow: str, channel: str) -> None:
        super().__init__(f"{channel} does not support {flow}", flow=flow, channel=channel)




class EntryUnknown(BadRequest):
    code = "ENTRY_UNKNOWN"
    status = 422
    message_zh = "收费入口不存在或已停用"
    message_en = "Unknown or disabled entry"


class EntryMismatch(BadRequest):
    code = "ENTRY_MISMATCH"
    status = 422
    message_zh = "请求与收费入口的配置不一致"
    message_en = "The request does not match its entry's configuration"


class ChannelNotAllowed(Forbidden):
    code = "CHANNEL_NOT_ALLOWED"
    message_zh = "该收费入口不允许使用此支付渠道或支付方式"
    message_en = "The entry does not allow this channel or method"


class ChannelDisabled(BadRequest):
    code = "CHANNEL_DISABLED"
    status = 422
    message_zh = "支付渠道或支付方式已停用"
    message_en = "The channel or method is disabled"


# --- hospital information systems (HIS) -------------------------------------------


class HisError(UpstreamError):
    """A call to a business system (HIS, exam, nutrition …) broke; outcome unknown."""

    code = "HIS_ERROR"
    status = 502
    message_zh = "业务系统(HIS)调用异常，结果未知"
    message_en = "Business system (HIS) call failed; outcome unknown"


class HisTimeout(HisError):
    code = "HIS_TIMEOUT"
    status = 504
    message_zh = "业务系统(HIS)响应超时"
    message_en = "Business system (HIS) timed out"


class HisUnavailable(HisError):
    code = "HIS_UNAVAILABLE"
    message_zh = "业务系统(HIS)不可用"
    message_en = "Business system (HIS) unavailable (5xx, connection refused or reset)"


class HisProtocolError(HisError):
    code = "HIS_PROTOCOL_ERROR"
    message_zh = "业务系统(HIS)应答格式错误或含未知状态码"
    message_en = "Business system (HIS) answer malformed or with an unknown status code"


class HisRejected(YinyiError):
    """The business system answered and refused (patient unknown, bill already paid …)."""

    code = "HIS_REJECTED"
    status = 422
    message_zh = "业务系统(HIS)拒绝了请求"
    message_en = "The business system (HIS) refused the request"


class HisAmountMismatch(BadRequest):
    code = "HIS_AMOUNT_MISMATCH"
    status = 422
    message_zh = "支付金额与业务系统待缴金额不一致"
    message_en = "The amount differs from what the business system says is due"


class HisSystemUnknown(BadRequest):
    code = "HIS_SYSTEM_UNKNOWN"
    status = 422
    message_zh = "业务系统不存在或已停用"
    message_en = "Unknown or disabled business system"


class HisNotSupported(CapabilityNotSupported):
    code = "HIS_FLOW_NOT_SUPPORTED"
    message_zh = "该业务系统适配器未实现此功能"
    message_en = "The business-system adapter does not implement this function"

    def __init__(self, flow: str, adapter: str) -> None:
        super().__init__(f"{adapter} does not support {flow}", flow=flow, adapter=adapter)


# --- approvals and cases -------------------------------------------------------------


class ApprovalNotFound(NotFound):
    code = "APPROVAL_NOT_FOUND"
    message_zh = "审核申请不存在"
    message_en = "Approval not found"


class CaseNotFound(NotFound):
    code = "CASE_NOT_FOUND"
    message_zh = "单边账不存在"
    message_en = "Single-sided case not found"


class ApprovalForbidden(Forbidden):
    code = "APPROVAL_FORBIDDEN"
    message_zh = "无权审核该申请(角色不符或不能审核本人的申请)"
    message_en = "Not allowed to decide this approval (role missing, or one's own application)"


# --- medical insurance (NHSA platform) ----------------------------------------------


class InsuranceRejected(YinyiError):
    """The insurance centre answered ``infcode=-1``: it refused and did nothing.

    ``detail`` is the centre's ``err_msg``, unchanged; ``extra`` carries ``infno``
    and ``msgid`` of the refused call.
    """

    code = "INSURANCE_REJECTED"
    status = 422
    message_zh = "医保中心拒绝了交易"
    message_en = "The medical-insurance centre refused the transaction"


class InsurancePasswordFailed(InsuranceRejected):
    code = "INSURANCE_PASSWORD_FAILED"
    message_zh = "医保密码校验失败"
    message_en = "Insurance password verification failed"


class InsuranceBalanceInsufficient(InsuranceRejected):
    code = "INSURANCE_BALANCE_INSUFFICIENT"
    message_zh = "医保账户余额不足"
    message_en = "Insufficient insurance account balance"


class InsuranceAlreadyReversed(InsuranceRejected):
    code = "INSURANCE_ALREADY_REVERSED"
    status = 409
    message_zh = "该医保结算已撤销"
    message_en = "The insurance settlement is already reversed"


class InsuranceUnknown(UpstreamError):
    """A call to the insurance centre broke; whether it took effect is unknown.

    ``extra`` carries ``infno`` and ``msgid``: undo a money call with 2601
    (``reverse_call``) or look the visit up before trying again.
    """

    code = "INSURANCE_UNKNOWN"
    message_zh = "医保中心调用异常，结果未知（需冲正或查询）"
    message_en = "Insurance centre call failed; outcome unknown (reverse with 2601 or query)"


class InsuranceTimeout(InsuranceUnknown):
    code = "INSURANCE_TIMEOUT"
    status = 504
    message_zh = "医保中心响应超时"
    message_en = "Insurance centre timed out"


class InsuranceUnavailable(InsuranceUnknown):
    code = "INSURANCE_UNAVAILABLE"
    message_zh = "医保中心不可用"
    message_en = "Insurance centre unavailable (5xx, connection refused or reset, system error)"


class InsuranceProtocolError(InsuranceUnknown):
    code = "INSURANCE_PROTOCOL_ERROR"
    message_zh = "医保中心应答无法解析、签名无效或金额不平"
    message_en = "Insurance centre answer unparseable, badly signed or not adding up"


# --- medical insurance through the gateway ---------------------------------------------


class InsuranceCentreUnknown(BadRequest):
    code = "INSURANCE_CENTRE_UNKNOWN"
    status = 422
    message_zh = "医保中心不存在或已停用"
    message_en = "Unknown or disabled insurance centre"


class InsuranceSettlementNotFound(NotFound):
    code = "INSURANCE_SETTLEMENT_NOT_FOUND"
    message_zh = "医保结算单不存在"
    message_en = "Insurance settlement not found"


class InsuranceSettlementFailed(YinyiError):
    """A settlement whose settle call failed (refused, or unknown and cancelled with 2601)."""

    code = "INSURANCE_SETTLEMENT_FAILED"
    status = 422
    message_zh = "医保结算失败，请使用新的结算单号重新结算"
    message_en = "The insurance settlement failed; start again with a new out_settle_no"


# --- finance console ---------------------------------------------------------------------


class ConsoleLoginFailed(AuthFailed):
    """Wrong username or password: the same answer for both, so names cannot be probed."""

    code = "CONSOLE_LOGIN_FAILED"
    message_zh = "用户名或密码错误"
    message_en = "Wrong username or password"


class ConsoleTotpInvalid(AuthFailed):
    code = "CONSOLE_TOTP_INVALID"
    message_zh = "动态验证码错误或已使用"
    message_en = "Wrong or already used verification code"


class ConsoleLoginExpired(AuthFailed):
    code = "CONSOLE_LOGIN_EXPIRED"
    message_zh = "登录已超时，请重新输入用户名和密码"
    message_en = "The login timed out; enter the username and password again"


class ConsoleSessionExpired(AuthFailed):
    code = "CONSOLE_SESSION_EXPIRED"
    message_zh = "未登录或会话已过期，请重新登录"
    message_en = "Not logged in, or the session expired; log in again"


class ConsoleAccountLocked(YinyiError):
    code = "CONSOLE_ACCOUNT_LOCKED"
    status = 423
    message_zh = "账户已锁定，请稍后再试或联系管理员解锁"
    message_en = "The account is locked; try again later or ask an administrator to unlock it"


class ConsoleCsrfFailed(Forbidden):
    code = "CONSOLE_CSRF_FAILED"
    message_zh = "安全校验失败，请刷新页面后重试"
    message_en = "Security check failed (X-CSRF-Token); reload the page and try again"


class ConsolePermissionDenied(Forbidden):
    code = "CONSOLE_PERMISSION_DENIED"
    message_zh = "您没有执行此操作的权限"
    message_en = "You do not have the permission for this"


class ConsolePasswordChangeRequired(Forbidden):
    code = "CONSOLE_PASSWORD_CHANGE_REQUIRED"
    message_zh = "请先修改初始密码"
    message_en = "Change your initial password first"


class ConsolePasswordPolicy(BadRequest):
    code = "CONSOLE_PASSWORD_POLICY"
    message_zh = "密码不符合安全策略"
    message_en = "The password does not meet the password policy"


class ConsolePasswordWrong(BadRequest):
    code = "CONSOLE_PASSWORD_WRONG"
    message_zh = "当前密码错误"
    message_en = "The current password is wrong"


class ConsoleUserNotFound(NotFound):
    code = "CONSOLE_USER_NOT_FOUND"
    message_zh = "用户不存在"
    message_en = "No such console user"


class ConsoleRoleNotFound(NotFound):
    code = "CONSOLE_ROLE_NOT_FOUND"
    message_zh = "角色不存在"
    message_en = "No such console role"


ALL_ERRORS: list[type[YinyiError]] = []


def _collect(cls: type[YinyiError]) -> None:
    ALL_ERRORS.append(cls)
    for sub in cls.__subclasses__():
        _collect(sub)


_collect(YinyiError)


class BillSummaryMismatch(YinyiError):
    code = "RECON_BILL_SUMMARY_MISMATCH"
    status = 502
    message_zh = "账单明细与其汇总行不符"
    message_en = "The bill's lines disagree with its own summary"


class ReconDiffNotFound(NotFound):
    code = "RECON_DIFF_NOT_FOUND"
    message_zh = "对账差异不存在"
    message_en = "No such reconciliation difference"
