"""Per-merchant configuration of the UnionPay ACP channel."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from .crypto import load_private_key, load_public_key

DEFAULT_BASE_URL = "https://gateway.95516.com"
DEFAULT_FILE_TRANSFER_URL = "https://filedownload.95516.com/"


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must be an http(s) URL")
    return value


class UnionPayConfig(BaseModel):
    """One UnionPay ACP merchant (商户直连接入, ``accessType=0``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mer_id: str = Field(pattern=r"^[0-9A-Za-z]{15}$", description="商户代码 merId (15 characters)")
    cert_id: str = Field(pattern=r"^\d{1,40}$",
                         description="certId: serial number of the merchant signing certificate, in decimal")
    private_key: SecretStr = Field(description="merchant signing private key, PEM (exported from the .pfx)")
    unionpay_public_key: str = Field(
        description="UnionPay verification key: PEM public key or the verification certificate (acp_verify_sign)")
    base_url: str = Field(DEFAULT_BASE_URL, description="ACP gateway; backTransReq.do and queryTrans.do live under it")
    file_transfer_url: str = Field(DEFAULT_FILE_TRANSFER_URL, description="file transfer endpoint (settlement files)")
    back_url: str | None = Field(None, description="default backUrl (notify URL) when a request carries none")
    query_after_accept: bool = Field(True, description="query once right after a consume/refund is accepted")
    bill_summary_required: bool = Field(
        True, description="require the settlement summary entry (ZMT) in the settlement zip; see the docs")
    timeout_seconds: float = Field(10.0, gt=0, le=120)

    @field_validator("base_url")
    @classmethod
    def _base(cls, value: str) -> str:
        return _http_url(value).rstrip("/")

    @field_validator("file_transfer_url")
    @classmethod
    def _file(cls, value: str) -> str:
        return _http_url(value)

    @field_validator("back_url")
    @classmethod
    def _back(cls, value: str | None) -> str | None:
        return _http_url(value) if value is not None else None

    @field_validator("private_key")
    @classmethod
    def _private_key_loads(cls, value: SecretStr) -> SecretStr:
        try:
            load_private_key(value.get_secret_value())
        except Exception as exc:  # noqa: BLE001 - any parse failure is a configuration error
            raise ValueError(f"private_key is not an RSA private key PEM: {exc}") from None
        return value

    @field_validator("unionpay_public_key")
    @classmethod
    def _public_key_loads(cls, value: str) -> str:
        try:
            load_public_key(value)
        except Exception as exc:  # noqa: BLE001
            raise ValueError(f"unionpay_public_key is not an RSA public key or certificate PEM: {exc}") from None
        return value
