"""Configuration of one hospital at one insurance platform (validated at start-up)."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from .profiles import RegionProfile, resolve_profile


class NhsaConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: str  # scheme://host:port of the platform (paths come from the profile)
    fixmedins_code: str = Field(pattern=r"^[A-Za-z0-9]{12}$")  # 定点医药机构编号
    fixmedins_name: str
    mdtrtarea_admvs: str = Field(pattern=r"^\d{6}$")  # 就医地医保区划
    recer_sys_code: str = "YBXT"  # default receiving system; the profile maps by insutype
    opter: str  # operator id (a clerk, or the kiosk's own)
    opter_name: str
    opter_type: Literal["1", "2", "3"] = "2"  # 1 clerk, 2 self-service terminal, 3 mobile
    dev_no: str = ""
    dev_safe_info: str = ""
    mac: str = "00:00:00:00:00:00"
    ip: str = "127.0.0.1"
    infver: str = "V1.0"
    timeout_seconds: float = Field(30.0, gt=0)
    connect_timeout_seconds: float = Field(5.0, gt=0)
    sign_in_ttl_seconds: int = Field(12 * 3600, gt=0)  # re-sign after this even if not refused
    profile: RegionProfile = Field(default="national", validate_default=True)  # type: ignore[assignment]
    evoucher_url: str | None = None  # the e-voucher decode service; default base_url
    evoucher_org_id: str | None = None  # default fixmedins_code

    # channel-security credentials: only those the profile's style requires
    oauth_username: str | None = None
    oauth_password: SecretStr | None = None
    oauth_client_id: str | None = None
    oauth_client_secret: SecretStr | None = None
    sm2_private_key: SecretStr | None = None  # hex, the hospital's signing key
    centre_public_key: str | None = None  # hex x‖y, verifies the centre's answers
    sm4_key: SecretStr | None = None  # 32 hex digits
    tif_paasid: str | None = None
    tif_token: SecretStr | None = None

    @field_validator("profile", mode="before")
    @classmethod
    def _profile(cls, value: Any) -> RegionProfile:
        return resolve_profile(value)

    @field_validator("base_url", "evoucher_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _security_credentials(self) -> NhsaConfig:
        from .security import security_class

        cls = security_class(self.profile.security)
        missing = [name for name in cls.required_config if not getattr(self, name)]
        if missing:
            raise ValueError(f"profile {self.profile.name!r} (security {cls.style!r}) needs {', '.join(missing)}")
        return self
