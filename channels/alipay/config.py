"""Per-merchant configuration of the Alipay channel."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from .crypto import load_private_key, load_public_key

DEFAULT_GATEWAY_URL = "https://openapi.alipay.com/gateway.do"


class AlipayConfig(BaseModel):
    """One Alipay application (开放平台应用) in public-key mode.

    With ``app_auth_token`` the application is a service provider's (服务商) acting
    for the merchant that granted the token (第三方应用授权); ``seller_id`` is then
    that merchant's PID.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    app_id: str = Field(pattern=r"^\d{16}$", description="应用APPID")
    app_private_key: SecretStr = Field(description="应用私钥: PEM, or the bare base64 (PKCS#8 or PKCS#1)")
    alipay_public_key: str = Field(description="支付宝公钥: PEM, or the bare base64")
    gateway_url: str = DEFAULT_GATEWAY_URL
    seller_id: str | None = Field(None, pattern=r"^2088\d{12}$", description="收款商户PID (卖家支付宝用户号)")
    sign_type: Literal["RSA2"] = "RSA2"
    app_auth_token: SecretStr | None = Field(None, description="应用授权令牌: service-provider mode")
    notify_url: str | None = Field(None, description="default notify_url when a request has none")
    timeout_seconds: float = Field(10.0, gt=0, le=120)

    @field_validator("gateway_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("gateway_url must be an http(s) URL")
        return value

    @field_validator("app_private_key")
    @classmethod
    def _private_key_loads(cls, value: SecretStr) -> SecretStr:
        try:
            load_private_key(value.get_secret_value())
        except Exception as exc:  # noqa: BLE001 - any parse failure is a config error
            raise ValueError(f"app_private_key is not an RSA private key: {exc}") from None
        return value

    @field_validator("alipay_public_key")
    @classmethod
    def _public_key_loads(cls, value: str) -> str:
        try:
            load_public_key(value)
        except Exception as exc:  # noqa: BLE001
            raise ValueError(f"alipay_public_key is not an RSA public key: {exc}") from None
        return value

    @property
    def partner(self) -> bool:
        return self.app_auth_token is not None
