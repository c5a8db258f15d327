"""The e-CNY (数字人民币) channel adapter: every flow goes to the merchant's operating bank."""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any, TypeVar

import aiohttp
from pydantic import BaseModel, ValidationError

from gateway.bank import ECNY_CHANNEL, EcnyAcquirer
from gateway.channel import (
    Bill,
    Capability,
    ChannelAdapter,
    Method,
    NotifyAnswer,
    NotifyEvent,
    PayRequest,
    PayResult,
    RefundRequest,
    RefundResult,
    ReverseResult,
)
from gateway.errors import ConfigError, NotSupported, ValidationFailed

from .banks import DIRECTORY, AcquirerDirectory
from .config import EcnyConfig, describe_errors

_R = TypeVar("_R", PayRequest, RefundRequest)


class EcnyChannel(ChannelAdapter):
    """数字人民币 / e-CNY: payment code, dynamic QR (if the bank has it), revoke, refunds, daily file.

    There is no single public e-CNY merchant API: a hospital acquires e-CNY through
    an operating bank. This adapter holds one bank adapter (``gateway.bank.EcnyAcquirer``),
    chosen by ``EcnyConfig.bank``, and hands it every flow. Class-level capabilities
    list everything e-CNY can do; QR and CLOSE need a bank (and a contract) with
    dynamic QR codes, otherwise those calls raise ``NotSupported``.
    """

    id = ECNY_CHANNEL
    name_zh = "数字人民币"
    name_en = "e-CNY"
    capabilities = frozenset({
        Capability.CODE, Capability.QR, Capability.REFUND, Capability.PARTIAL_REFUND, Capability.REVERSE,
        Capability.CLOSE, Capability.BILL,
    })
    config_model = EcnyConfig
    auth_code_pattern = re.compile(r"01\d{17}")
    auth_code_hint = "19位数字，以01开头 / 19 digits starting 01"
    # The wallet asks for confirmation above the password-free limit: query after
    # ~5 s, then about every 10 s, and revoke at ~45 s.
    code_poll_schedule = (5, 10, 15, 25, 35, 45)
    reverse_retry_seconds = 5.0
    query_interval = 30.0
    order_ttl = dt.timedelta(minutes=30)

    def __init__(self, config: BaseModel | Mapping[str, Any], session: aiohttp.ClientSession, *,
                 acquirers: AcquirerDirectory | None = None) -> None:
        directory = acquirers or DIRECTORY
        if not isinstance(config, EcnyConfig):
            raw = config.model_dump() if isinstance(config, BaseModel) else dict(config)
            config = EcnyConfig.model_validate(raw, context={"acquirers": directory})
        super().__init__(config, session)
        self.config: EcnyConfig = config
        bank_cls = directory.resolve(config.bank)
        try:
            bank_config = bank_cls.config_model.model_validate(config.bank_config)
        except ValidationError as exc:
            raise ConfigError(f"bank_config does not fit bank adapter {config.bank!r}: {describe_errors(exc)}",
                              channel=self.id, bank=config.bank) from None
        self.bank: EcnyAcquirer = bank_cls(bank_config, session)

    @property
    def bank_id(self) -> str:
        return self.bank.id

    @property
    def available_capabilities(self) -> frozenset[Capability]:
        """What this merchant can do: without dynamic QR at its bank, no QR and no CLOSE."""
        if self.bank.qr_available:
            return self.capabilities
        return self.capabilities - {Capability.QR, Capability.CLOSE}

    def _with_notify_url(self, req: _R) -> _R:
        """Fill a missing notify URL with the gateway's callback URL for this merchant, if the core set one."""
        url = getattr(self, "notify_url", None)
        if req.notify_url is None and url:
            return req.model_copy(update={"notify_url": url})
        return req

    # --- pay ------------------------------------------------------------------------------
    async def pay(self, req: PayRequest) -> PayResult:
        req = self._with_notify_url(req)
        if req.method is Method.CODE:
            if not req.auth_code:
                raise ValidationFailed("auth_code is required for a payment-code payment", channel=self.id)
            return await self.bank.pay_code(req)
        if req.method is Method.QR:
            if not self.bank.qr_available:
                raise NotSupported("pay:qr", self.id)
            return await self.bank.precreate(req)
        raise NotSupported(f"pay:{req.method.value}", self.id)

    async def query(self, out_trade_no: str) -> PayResult:
        return await self.bank.query(out_trade_no)

    async def close(self, out_trade_no: str) -> None:
        if not self.bank.qr_available:
            raise NotSupported("close", self.id)
        await self.bank.close(out_trade_no)

    async def reverse(self, out_trade_no: str) -> ReverseResult:
        return await self.bank.reverse(out_trade_no)

    # --- refunds ----------------------------------------------------------------------------
    async def refund(self, req: RefundRequest) -> RefundResult:
        return await self.bank.refund(self._with_notify_url(req))

    async def query_refund(self, out_refund_no: str, out_trade_no: str) -> RefundResult:
        return await self.bank.query_refund(out_refund_no, out_trade_no)

    # --- callbacks and reconciliation ---------------------------------------------------------
    async def parse_notify(self, headers: Mapping[str, str], body: bytes) -> tuple[NotifyEvent, NotifyAnswer]:
        return await self.bank.parse_notify(headers, body)

    def notify_failure_answer(self, message: str) -> NotifyAnswer:
        return self.bank.notify_failure_answer(message)

    async def download_bill(self, bill_date: dt.date) -> Bill:
        return await self.bank.download_bill(bill_date)
