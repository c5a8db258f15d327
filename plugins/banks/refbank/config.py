"""Per-merchant settings of the reference bank (the ``bank_config`` of an e-CNY merchant)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from .crypto import load_private_key, load_public_key


class RefBankConfig(BaseModel):
    """One merchant's e-CNY acquiring contract with the reference bank.

    The bank issues ``merchant_id`` and registers the merchant's public key under
    ``key_id``; the merchant receives the bank's public key and its id.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    merchant_id: str = Field(pattern=r"^\d{15}$", description="数字人民币收单商户号 (15 digits)")
    key_id: str = Field(min_length=1, max_length=64,
                        description="商户密钥编号: id of the merchant's public key at the bank")
    private_key: SecretStr = Field(description="merchant RSA private key, PEM (at least 2048 bits)")
    bank_public_key: str = Field(description="the bank's RSA public key, PEM")
    bank_key_id: str = Field(min_length=1, max_length=64, description="the bank's key id, as on its answers")
    base_url: str = Field(description="API base URL given by the bank, e.g. https://ecny-api.example-bank.cn")
    qr_enabled: bool = Field(True, description="the contract includes dynamic QR codes (主扫)")
    notify_url: str | None = Field(None, description="callback URL when a request carries none")
    timeout_seconds: float = Field(10.0, gt=0, le=120)

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http(s) URL")
        return value.rstrip("/")

    @field_validator("private_key")
    @classmethod
    def _private_key_loads(cls, value: SecretStr) -> SecretStr:
        try:
            load_private_key(value.get_secret_value())
        except Exception as exc:  # noqa: BLE001 - any parse failure is a configuration error
            raise ValueError(f"private_key is not an RSA private key PEM: {exc}") from None
        return value

    @field_validator("bank_public_key")
    @classmethod
    def _public_key_loads(cls, value: str) -> str:
        try:
            load_public_key(value)
        except Exception as exc:  # noqa: BLE001
            raise ValueError(f"bank_public_key is not an RSA public key PEM: {exc}") from None
        return value
