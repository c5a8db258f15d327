"""Regional profiles: how one region's deployment differs from the national spec.

A profile is configuration: the endpoint path (one national endpoint, or one path
per transaction code with ``{infno}``), the channel-security style (a name in
:data:`insurance.nhsa.security.SECURITY_STYLES`), the receiving-system codes by
insurance type, the names of extra settlement fields (the insurance wallet), and
the patterns that recognise the centre's error messages. Regions register theirs
with :func:`register_profile`, or give one inline in the adapter configuration.
"""
from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

NATIONAL_PATH = "/fsi/api/rsfComIfsService/callService"
EVOUCHER_PATH = "/localcfc/api/hsecfc/localQrCodeQuery"


class ErrorPatterns(BaseModel):
    """Regular expressions over ``err_msg`` (searched, not anchored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    password: str = r"密码(校验|验证)?(失败|错误|不正确)"
    balance: str = r"余额不足"
    already_reversed: str = r"已(经)?(撤销|冲正|退费|回退)|重复撤销|不能重复"
    # the sign-in number expired or is unknown: sign in again once and resend
    sign_no: str = r"签到(编号|流水号)?(无效|已失效|过期|不存在)|未签到"
    # the centre failed inside; the outcome is unknown (reverse with 2601)
    system: str = r"系统(异常|繁忙|错误)|数据库|服务超时|网络异常"

    def matches(self, kind: str, err_msg: str | None) -> bool:
        pattern = getattr(self, kind)
        return bool(pattern) and bool(err_msg) and re.search(pattern, err_msg) is not None


class RegionProfile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    path: str = NATIONAL_PATH  # contains "{infno}" for per-code paths
    evoucher_path: str = EVOUCHER_PATH
    security: str = "plain"  # a key of SECURITY_STYLES
    token_path: str = "/oauth/token"  # OAuth styles
    recer_sys_codes: dict[str, str] = Field(default_factory=lambda: {"340": "LXXT"})  # insutype → code
    wallet_field: str | None = None  # setlinfo field of the insurance wallet, e.g. wltpay_amt
    wallet_balance_field: str | None = None  # insuinfo field of the wallet balance
    extra_fund_fields: tuple[str, ...] = ("hifdm_pay",)  # sub-funds beyond the national list
    password_field: str | None = "psn_pwd"  # settlement input field carrying a card password
    errors: ErrorPatterns = Field(default_factory=ErrorPatterns)
    # 3201/3202 extras some regions want in the input
    detail_recon_sends_clr_type: bool = False

    @property
    def per_code_paths(self) -> bool:
        return "{infno}" in self.path

    def call_path(self, infno: str) -> str:
        return self.path.replace("{infno}", infno)

    def recer_sys_code(self, insutype: str | None, default: str) -> str:
        return self.recer_sys_codes.get(insutype or "", default)


NATIONAL = RegionProfile(
    name="national",
    description="The national spec as published: one endpoint, no channel security, cainfo empty.",
)

SM_OAUTH = RegionProfile(
    name="sm_oauth",
    description=("OAuth2 password grant then Bearer; cainfo = Base64(SM3withSM2 over the input JSON); "
                 "input and output SM4-ECB encrypted; per-code paths; insurance wallet wltpay_amt."),
    path="/hsa-fsi/api/rsfComIfsService/{infno}",
    security="sm_oauth",
    wallet_field="wltpay_amt",
    wallet_balance_field="wlt_balc",
    detail_recon_sends_clr_type=True,
)

TIF_GATEWAY = RegionProfile(
    name="tif_gateway",
    description=("Gateway headers x-tif-paasid/-timestamp/-nonce/-signature over a plain national "
                 "body; insurance wallet wltpay_amt."),
    security="tif",
    wallet_field="wltpay_amt",
    wallet_balance_field="wlt_balc",
)

PROFILES: dict[str, RegionProfile] = {p.name: p for p in (NATIONAL, SM_OAUTH, TIF_GATEWAY)}


def register_profile(profile: RegionProfile) -> None:
    """Make ``profile`` available by name; a second profile of the same name is refused."""
    if profile.name in PROFILES and PROFILES[profile.name] != profile:
        raise ValueError(f"a different profile named {profile.name!r} is already registered")
    PROFILES[profile.name] = profile


def resolve_profile(value: str | RegionProfile | dict[str, Any]) -> RegionProfile:
    if isinstance(value, RegionProfile):
        return value
    if isinstance(value, dict):
        return RegionProfile.model_validate(value)
    try:
        return PROFILES[value]
    except KeyError:
        raise ValueError(f"unknown region profile {value!r}; known: {', '.join(sorted(PROFILES))}") from None
