"""The REST/JSON business-system adapter: the contract of ``gateway.his``, driven by configuration.

Nothing here knows a field name of any HIS: requests come from the configured
templates, answers are read through the configured mappings (``convert.py``), and
the meaning of each result code comes from the configured code lists.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, ClassVar

import aiohttp
from pydantic import BaseModel

from gateway.errors import HisNotSupported, HisProtocolError, HisRejected
from gateway.his import (
    HisAdapter, HisBill, HisCapability, InsuranceReversalWriteBack, InsuranceWriteBack, PatientQuery, PendingCharge,
    RefundWriteBack, WriteBack, WriteBackResult, WriteBackStatus,
)

from . import convert
from .client import Answer, Outcome, RestClient, plain
from .config import Operation, RestHisConfig

IDENTIFIERS = ("card_no", "id_no", "visit_no", "patient_id")


class _Supports:
    """``supports(cap)``: on the class, what the adapter can do; on an instance, what this system has.

    The core asks an adapter *instance* (e.g. before checking an amount against the
    pending charges), and a configured system may lack an operation the class offers.
    """

    def __get__(self, obj: RestHisAdapter | None, owner: type[RestHisAdapter]) -> Callable[[HisCapability], bool]:
        if obj is None:
            return lambda cap: cap in owner.capabilities
        return lambda cap: cap in owner.capabilities and obj.configured(cap)


class RestHisAdapter(HisAdapter):
    id: ClassVar[str] = "rest"
    name_zh: ClassVar[str] = "REST/JSON 接口"
    name_en: ClassVar[str] = "REST/JSON interface"
    capabilities: ClassVar[frozenset[HisCapability]] = frozenset(HisCapability)
    config_model: ClassVar[type[BaseModel]] = RestHisConfig
    supports = _Supports()  # type: ignore[assignment]

    def __init__(self, config: BaseModel, session: aiohttp.ClientSession) -> None:
        if not isinstance(config, RestHisConfig):
            config = RestHisConfig.model_validate(config.model_dump() if isinstance(config, BaseModel) else config)
        super().__init__(config, session)
        self.cfg: RestHisConfig = config
        self.client = RestClient(config, session)

    def configured(self, cap: HisCapability) -> bool:
        """Whether this system's configuration has the operation (the class supports them all)."""
        return self._op_or_none(cap) is not None

    def _op_or_none(self, cap: HisCapability) -> Operation | None:
        return {HisCapability.PENDING: self.cfg.pending, HisCapability.WRITE_BACK: self.cfg.write_back,
                HisCapability.WRITE_BACK_QUERY: self.cfg.write_back_query,
                HisCapability.REFUND_WRITE_BACK: self.cfg.refund_write_back,
                HisCapability.BILLS: self.cfg.bill,
                HisCapability.INSURANCE_WRITE_BACK: self.cfg.insurance_write_back,
                HisCapability.INSURANCE_REVERSAL_WRITE_BACK: self.cfg.insurance_reversal_write_back}[cap]

    def _op(self, cap: HisCapability) -> Any:
        op = self._op_or_none(cap)
        if op is None:
            raise HisNotSupported(cap.value, self.id)
        return op

    @staticmethod
    def _refusal(name: str, answer: Answer) -> HisRejected:
        return HisRejected(f"{name}: {answer.code} {answer.message}".strip(), operation=name,
                           his_code=answer.code, his_message=answer.message)

    # --- 待缴费 -------------------------------------------------------------------------
    async def pending_charges(self, query: PatientQuery) -> list[PendingCharge]:
        op = self._op(HisCapability.PENDING)
        values: dict[str, Any] = query.model_dump()
        first = next(name for name in IDENTIFIERS if values[name])
        values.update(query_type=op.query_types.get(first, first), query_value=values[first])
        answer = await self.client.call("pending", op, values)
        if answer.outcome is Outcome.REFUSED:
            raise self._refusal("pending", answer)
        if answer.outcome is Outcome.NOT_FOUND:
            return []
        return convert.pending_charges(op, self.cfg, answer.root)

    # --- 确认收费 -------------------------------------------------------------------------
    async def write_back(self, wb: WriteBack) -> WriteBackResult:
        op = self._op(HisCapability.WRITE_BACK)
        values = {**wb.model_dump(), "operator": wb.operator or self.cfg.default_operator,
                  "channel_code": self.cfg.channel_codes.get(wb.channel, wb.channel),
                  "bill_type_code": self.cfg.bill_type_codes.get(wb.bill_type, wb.bill_type)}
        return self._write_result("write_back", op, await self.client.call("write_back", op, values))

    async def write_back_refund(self, rwb: RefundWriteBack) -> WriteBackResult:
        op = self._op(HisCapability.REFUND_WRITE_BACK)
        values = {**rwb.model_dump(), "operator": self.cfg.default_operator,
                  "channel_code": self.cfg.channel_codes.get(rwb.channel, rwb.channel),
                  "bill_type_code": self.cfg.bill_type_codes.get(rwb.bill_type, rwb.bill_type)}
        answer = await self.client.call("refund_write_back", op, values)
        return self._write_result("refund_write_back", op, answer)

    # --- 医保结算回写 ---------------------------------------------------------------------
    def _code(self, channel: str | None) -> str | None:
        return self.cfg.channel_codes.get(channel, channel) if channel else None

    async def write_back_insurance(self, iwb: InsuranceWriteBack) -> WriteBackResult:
        op = self._op(HisCapability.INSURANCE_WRITE_BACK)
        values = {**iwb.model_dump(), "operator": iwb.operator or self.cfg.default_operator,
                  "topup_channel_code": self._code(iwb.topup_channel),
                  "bill_type_code": self.cfg.bill_type_codes.get(iwb.bill_type, iwb.bill_type)}
        answer = await self.client.call("insurance_write_back", op, values)
        return self._write_result("insurance_write_back", op, answer)

    async def write_back_insurance_reversal(self, irwb: InsuranceReversalWriteBack) -> WriteBackResult:
        op = self._op(HisCapability.INSURANCE_REVERSAL_WRITE_BACK)
        values = {**irwb.model_dump(), "operator": self.cfg.default_operator,
                  "refund_channel_code": self._code(irwb.refund_channel),
                  "bill_type_code": self.cfg.bill_type_codes.get(irwb.bill_type, irwb.bill_type)}
        answer = await self.client.call("insurance_reversal_write_back", op, values)
        return self._write_result("insurance_reversal_write_back", op, answer)

    @staticmethod
    def _write_result(name: str, op: Operation, answer: Answer) -> WriteBackResult:
        # Only an ok or "already recorded" code is RECORDED; everything else the
        # system answered is its refusal (unknown codes raised in the client).
        if answer.outcome in (Outcome.REFUSED, Outcome.NOT_FOUND):
            return WriteBackResult(status=WriteBackStatus.REJECTED, error_code=answer.code,
                                   error_message=answer.message, raw=plain(answer.root))
        fields = op.mapping.read(answer.root, context=f"{name} answer")
        return WriteBackResult(status=WriteBackStatus.RECORDED, his_serial=fields.get("his_serial"),
                               raw=plain(answer.root))

    async def query_write_back(self, payment_id: str) -> WriteBackResult | None:
        op = self._op(HisCapability.WRITE_BACK_QUERY)
        answer = await self.client.call("write_back_query", op, {"payment_id": payment_id})
        if answer.outcome is Outcome.REFUSED:
            raise self._refusal("write_back_query", answer)
        if answer.outcome is Outcome.NOT_FOUND:
            return None
        fields = op.mapping.read(answer.root, context="write_back_query answer")
        state = fields.get("status")
        if state == "absent":
            return None
        if state not in (None, "recorded"):
            raise HisProtocolError(f"write_back_query: status maps to {state!r}; map it to recorded or absent",
                                   operation="write_back_query")
        return WriteBackResult(status=WriteBackStatus.RECORDED, his_serial=fields.get("his_serial"),
                               raw=plain(answer.root))

    # --- 对账单 ---------------------------------------------------------------------------
    async def daily_bill(self, day: dt.date, bill_type: str) -> HisBill:
        op = self._op(HisCapability.BILLS)
        values = {"day": day, "bill_type": bill_type,
                  "bill_type_code": self.cfg.bill_type_codes.get(bill_type, bill_type)}
        answer = await self.client.call("bill", op, values)
        if answer.outcome is Outcome.REFUSED:
            raise self._refusal("bill", answer)
        if answer.outcome is Outcome.NOT_FOUND:
            return HisBill(day=day, bill_type=bill_type, lines=[])
        return convert.bill(op, self.cfg, answer.root, day, bill_type)
