"""Per-merchant configuration of the e-CNY channel: which bank, and that bank's settings."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from gateway.errors import ConfigError

from .banks import DIRECTORY, AcquirerDirectory


def describe_errors(exc: ValidationError) -> str:
    """A validation error without the input values (they may hold secrets)."""
    parts = [f"{'.'.join(str(x) for x in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors(include_input=False)]
    return "; ".join(parts)


def directory_from(info: ValidationInfo | None) -> AcquirerDirectory:
    ctx = info.context if info is not None and isinstance(info.context, dict) else {}
    directory = ctx.get("acquirers")
    return directory if isinstance(directory, AcquirerDirectory) else DIRECTORY


class EcnyConfig(BaseModel):
    """One e-CNY merchant: the operating bank's adapter id and that bank's own settings.

    ``bank_config`` is validated against the bank adapter's ``config_model`` here (so
    a merchant cannot be saved with settings its bank would refuse, nor name a bank
    that is not installed) and kept in the bank model's normalised form, secrets as
    ``SecretStr``: neither ``repr`` nor ``model_dump()`` shows them (``model_dump(mode=
    "json")`` masks them). Validation errors never echo the input.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    bank: str = Field(pattern=r"^[a-z][a-z0-9_\-]{0,31}$",
                      description="bank adapter id (e.g. refbank), as registered through yinyi_register_bank_adapters")
    bank_config: dict[str, Any] = Field(default_factory=dict, repr=False,
                                        description="the bank adapter's own settings (its config_model)")

    @field_validator("bank_config")
    @classmethod
    def _fits_the_bank(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        bank = info.data.get("bank")
        if bank is None:  # the bank id itself is invalid; that error is reported
            return value
        try:
            acquirer = directory_from(info).resolve(bank)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        try:
            model = acquirer.config_model.model_validate(value)
        except ValidationError as exc:
            raise ValueError(f"bank_config does not fit bank adapter {bank!r}: {describe_errors(exc)}") from None
        return model.model_dump()  # python mode: SecretStr values stay SecretStr
