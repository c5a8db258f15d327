"""Configuration of the REST/JSON business-system adapter: one HIS, declared not coded.

A hospital's integrator describes the system's interface here (paths, request
templates, where the result code is, which codes mean what, and the
:class:`gateway.mapping.Mapping` of every answer into core fields). The model is
strict: an unknown key, a placeholder the operation cannot fill, or a mapping to a
core field that does not exist fails at start-up with the field named.
"""
from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from gateway.mapping import Mapping

_PLACEHOLDER_NAME = re.compile(r"\$\{([A-Za-z_]\w*)")
_WRITE_BACK_VALUES = {"payment_id", "out_trade_no", "app_id", "amount", "channel", "method", "channel_trade_no",
                      "paid_at", "patient_id", "visit_no", "charge_ids", "bill_type", "business_type", "campus_id",
                      "operator", "entry", "channel_code", "bill_type_code", "now"}
_REFUND_VALUES = {"refund_id", "payment_id", "amount", "total", "refunded_at", "patient_id", "visit_no", "his_serial",
                  "channel", "channel_refund_no", "reason", "bill_type", "channel_code", "bill_type_code", "operator",
                  "now"}

# 医保结算回写: the settlement with every bucket apart (fen; format with |amount or |yuan),
# ``funds.<sub-fund>`` for each sub-fund (hifp_pay, cvlserv_pay, hifmi_pay, maf_pay …).
_INSURANCE_BUCKETS = {"total", "fund_total", "funds", "acct_pay", "acct_mulaid_pay", "wallet_pay", "cash_pay",
                      "hosp_part", "psn_part"}
_INSURANCE_VALUES = _INSURANCE_BUCKETS | {
    "settlement_id", "out_settle_no", "app_id", "kind", "centre", "setl_id", "mdtrt_id", "psn_no", "insutype",
    "med_type", "clr_type", "setl_time", "balance_after", "topup_payment_id", "topup_channel", "topup_channel_code",
    "topup_method", "topup_channel_trade_no", "topup_paid_at", "patient_id", "visit_no", "charge_ids", "bill_type",
    "bill_type_code", "business_type", "operator", "now"}
_INSURANCE_REVERSAL_VALUES = _INSURANCE_BUCKETS | {
    "settlement_id", "setl_id", "rev_setl_id", "mdtrt_id", "psn_no", "insutype", "reversed_at", "refund_id",
    "refund_channel", "refund_channel_code", "topup_payment_id", "his_serial", "patient_id", "visit_no",
    "charge_ids", "bill_type", "bill_type_code", "reason", "operator", "now"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AuthConfig(_Strict):
    """How requests are signed: app id + timestamp + nonce + a digest of the sorted parameters."""

    scheme: Literal["none", "md5", "hmac-sha256"] = "none"
    app_id: str = ""
    secret: SecretStr | None = None
    secret_env: str | None = Field(None, description="read the secret from this environment variable instead")
    placement: Literal["body", "headers"] = "body"  # where the auth fields travel (GET: body = query string)
    app_id_field: str = "appId"
    timestamp_field: str = "timestamp"
    nonce_field: str = "nonceStr"
    sign_type_field: str | None = "signType"  # "" or None: the signature type is not sent
    sign_field: str = "sign"
    timestamp_format: str = Field("%Y%m%d%H%M%S", description="strftime on the system's clock, or unix / unix_ms")
    utc_offset: str = "+08:00"
    md5_key_param: str = "key"  # md5: digest of "<sorted params>&key=<secret>"
    uppercase: bool = True

    @field_validator("utc_offset")
    @classmethod
    def _offset(cls, value: str) -> str:
        Mapping(utc_offset=value)  # the mapping owns the offset syntax
        return value

    @model_validator(mode="after")
    def _complete(self) -> AuthConfig:
        if self.scheme != "none":
            if not self.app_id:
                raise ValueError(f"auth.scheme {self.scheme} needs app_id")
            if self.secret is None and not self.secret_env:
                raise ValueError(f"auth.scheme {self.scheme} needs secret or secret_env")
        return self


class ResultRule(_Strict):
    """How the result envelope is read, and what each code of the system means."""

    code_path: str = "resultCode"
    message_path: str | None = "resultMsg"
    ok_codes: list[str] = Field(default_factory=lambda: ["0"])
    refuse_codes: list[str] = Field(default_factory=list)  # the system answered "no"
    recorded_codes: list[str] = Field(default_factory=list)  # write-backs: "already recorded" (idempotent repeat)
    not_found_codes: list[str] = Field(default_factory=list)  # queries: "no such record" / "nothing due"

    @model_validator(mode="after")
    def _disjoint(self) -> ResultRule:
        seen: dict[str, str] = {}
        for group in ("ok_codes", "refuse_codes", "recorded_codes", "not_found_codes"):
            for code in getattr(self, group):
                if code in seen:
                    raise ValueError(f"result code {code!r} is in both {seen[code]} and {group}")
                seen[code] = group
        if not self.ok_codes:
            raise ValueError("ok_codes must name at least one code")
        return self

    def merged(self, override: ResultOverride | None) -> ResultRule:
        if override is None:
            return self
        return ResultRule.model_validate({**self.model_dump(), **override.model_dump(exclude_none=True)})


class ResultOverride(_Strict):
    """Per-operation changes to the shared :class:`ResultRule` (unset keys inherit)."""

    code_path: str | None = None
    message_path: str | None = None
    ok_codes: list[str] | None = None
    refuse_codes: list[str] | None = None
    recorded_codes: list[str] | None = None
    not_found_codes: list[str] | None = None


class Operation(_Strict):
    """One HTTP call of the system: where it is, what to send, how to read the answer."""

    # Names a request template may use, and the core fields a mapping may fill (name → required).
    template_values: ClassVar[frozenset[str]] = frozenset()
    core_fields: ClassVar[dict[str, bool]] = {}

    method: Literal["GET", "POST"] = "POST"
    path: str
    request: dict[str, Any] = Field(default_factory=dict)
    drop_empty: bool = True  # leave out parameters whose value is null or ""
    timeout_seconds: float | None = Field(None, gt=0, le=300)
    result: ResultOverride | None = None
    mapping: Mapping = Field(default_factory=Mapping)

    @field_validator("path")
    @classmethod
    def _slash(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("path must start with /")
        return value

    @model_validator(mode="after")
    def _names(self) -> Operation:
        for name in sorted(set(_PLACEHOLDER_NAME.findall(repr(self.request)))):
            if name not in self.template_values:
                raise ValueError(f"request template uses ${{{name}}}; this operation offers "
                                 f"{', '.join(sorted(self.template_values))}")
        _check_fields(self.mapping, self.core_fields, "mapping")
        if self.method == "GET" and any(isinstance(v, dict | list) for v in self.request.values()):
            raise ValueError("a GET request template must be flat (its values become query parameters)")
        return self


def _check_fields(mapping: Mapping, allowed: dict[str, bool], where: str) -> None:
    for name in mapping.fields:
        base = "extra" if name.startswith("extra.") else name
        if base not in allowed or name == "extra":
            raise ValueError(f"{where}: {name!r} is not a core field; use one of {', '.join(sorted(allowed))}"
                             + (" (extra.<name> for extras)" if "extra" in allowed else ""))
    missing = [n for n, required in allowed.items() if required and n not in mapping.fields]
    if missing:
        raise ValueError(f"{where} must map {', '.join(missing)}")


class ListOperation(Operation):
    list_path: str  # where the records are in the answer; mapping paths are relative to one record
    list_optional: bool = False  # a missing or null list means "none" instead of a protocol error


class PendingOperation(ListOperation):
    template_values = frozenset({"card_no", "id_no", "visit_no", "patient_id", "query_type", "query_value", "now"})
    core_fields = {"charge_id": True, "bill_type": False, "patient_id": True, "patient_name": False,
                   "visit_no": False, "department": False, "doctor": False, "amount": True, "created_at": False,
                   "extra": False}
    query_types: dict[str, str] = Field(default_factory=dict)  # card_no|id_no|visit_no|patient_id → system code
    items_path: str | None = None  # relative to one charge
    item_mapping: Mapping | None = None

    @model_validator(mode="after")
    def _items(self) -> PendingOperation:
        if (self.items_path is None) != (self.item_mapping is None):
            raise ValueError("items_path and item_mapping go together")
        if self.item_mapping is not None:
            _check_fields(self.item_mapping, {"name": True, "amount": True, "quantity": False, "code": False},
                          "item_mapping")
        unknown = set(self.query_types) - {"card_no", "id_no", "visit_no", "patient_id"}
        if unknown:
            raise ValueError(f"query_types keys are card_no, id_no, visit_no, patient_id; not {sorted(unknown)}")
        return self


class WriteBackOperation(Operation):
    template_values = frozenset(_WRITE_BACK_VALUES)
    core_fields = {"his_serial": False}


class RefundOperation(Operation):
    template_values = frozenset(_REFUND_VALUES)
    core_fields = {"his_serial": False}


class InsuranceWriteBackOperation(Operation):
    template_values = frozenset(_INSURANCE_VALUES)
    core_fields = {"his_serial": False}


class InsuranceReversalOperation(Operation):
    template_values = frozenset(_INSURANCE_REVERSAL_VALUES)
    core_fields = {"his_serial": False}


class QueryOperation(Operation):
    template_values = frozenset({"payment_id", "now"})
    # ``status`` maps the system's state to "recorded" or "absent" (absent: treated as no record)
    core_fields = {"his_serial": False, "status": False}


class BillOperation(ListOperation):
    template_values = frozenset({"day", "bill_type", "bill_type_code", "now"})
    core_fields = {"bill_type": False, "his_serial": True, "trade_no": False, "channel_trade_no": False,
                   "refund_no": False, "kind": False, "amount": True, "patient_id": False, "patient_name": False,
                   "visit_no": False, "department": False, "operator": False, "channel": False, "status": False,
                   "occurred_at": True}
    count_path: str | None = None  # the system's own line count
    total_path: str | None = None  # the system's own total (payments minus refunds), in the mapping's unit
    signed_amounts: bool = False  # refunds are written negative; the sign gives the kind when none is mapped
    total_excludes_cancelled: bool = True  # cancelled lines count in count_path but not in total_path


class RestHisConfig(_Strict):
    """One business system reached over REST/JSON."""

    base_url: str
    timeout_seconds: float = Field(10.0, gt=0, le=300)
    headers: dict[str, str] = Field(default_factory=dict)  # sent with every request
    response_encoding: str | None = None  # default: the Content-Type charset, else UTF-8
    auth: AuthConfig = Field(default_factory=AuthConfig)
    result: ResultRule = Field(default_factory=ResultRule)
    channel_codes: dict[str, str] = Field(default_factory=dict)  # gateway channel id → the system's code
    bill_type_codes: dict[str, str] = Field(default_factory=dict)  # core bill type → the system's code
    default_operator: str = "YINYI"  # 操作员 sent when a write-back names none
    pending: PendingOperation | None = None
    write_back: WriteBackOperation | None = None
    write_back_query: QueryOperation | None = None
    refund_write_back: RefundOperation | None = None
    bill: BillOperation | None = None
    insurance_write_back: InsuranceWriteBackOperation | None = None  # 医保结算回写
    insurance_reversal_write_back: InsuranceReversalOperation | None = None  # 医保结算撤销回写

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http(s) URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _something(self) -> RestHisConfig:
        ops = ("pending", "write_back", "write_back_query", "refund_write_back", "bill", "insurance_write_back",
               "insurance_reversal_write_back")
        if not any(getattr(self, name) for name in ops):
            raise ValueError("configure at least one operation")
        for op_name in ops:
            op = getattr(self, op_name)
            if op is not None:
                self.result.merged(op.result)  # the merged rule must be consistent too
        return self
