"""Per-merchant configuration of the WeChat Pay channel."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from .crypto import load_private_key, load_public_key

DEFAULT_BASE_URL = "https://api.mch.weixin.qq.com"


class WeChatPayConfig(BaseModel):
    """One WeChat Pay merchant (直连商户, or a sub-merchant when ``sub_mchid`` is set).

    The platform key is the *WeChat Pay public key* (微信支付公钥) and its id
    ``PUB_KEY_ID_…``; platform certificates are not used.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    mchid: str = Field(min_length=1, description="商户号 (the service provider's when sub_mchid is set)")
    appid: str = Field(min_length=1, description="公众号/小程序/应用 AppID bound to mchid")
    serial_no: str = Field(min_length=1, description="商户API证书序列号")
    private_key: SecretStr = Field(description="商户API私钥 PEM (apiclient_key.pem)")
    apiv3_key: SecretStr = Field(description="APIv3密钥, 32 characters")
    platform_public_key: str = Field(description="微信支付公钥 PEM")
    platform_public_key_id: str = Field(pattern=r"^PUB_KEY_ID_\w+$", description="微信支付公钥ID")
    base_url: str = DEFAULT_BASE_URL
    use_v2_micropay: bool = Field(False, description="payment-code payments through v2 /pay/micropay")
    api_v2_key: SecretStr | None = Field(None, description="APIv2密钥, for use_v2_micropay")
    v2_sign_type: Literal["MD5", "HMAC-SHA256"] = "HMAC-SHA256"
    sub_mchid: str | None = Field(None, description="特约商户号: partner (service-provider) mode")
    sub_appid: str | None = None
    notify_url: str | None = Field(None, description="default notify_url when a request has none")
    timeout_seconds: float = Field(10.0, gt=0, le=120)

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http(s) URL")
        return value.rstrip("/")

    @field_validator("apiv3_key")
    @classmethod
    def _key_length(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value().encode()) != 32:
            raise ValueError("the APIv3 key must be exactly 32 bytes")
        return value

    @field_validator("private_key")
    @classmethod
    def _private_key_loads(cls, value: SecretStr) -> SecretStr:
        try:
            load_private_key(value.get_secret_value())
        except Exception as exc:  # noqa: BLE001 - any parse failure is a config error
            raise ValueError(f"private_key is not an RSA private key PEM: {exc}") from None
        return value

    @field_validator("platform_public_key")
    @classmethod
    def _public_key_loads(cls, value: str) -> str:
        try:
            load_public_key(value)
        except Exception as exc:  # noqa: BLE001
            raise ValueError(f"platform_public_key is not an RSA public key PEM: {exc}") from None
        return value

    @model_validator(mode="after")
    def _v2_needs_key(self) -> WeChatPayConfig:
        if self.use_v2_micropay and self.api_v2_key is None:
            raise ValueError("use_v2_micropay needs api_v2_key")
        return self

    @property
    def partner(self) -> bool:
        return self.sub_mchid is not None
