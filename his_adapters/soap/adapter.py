"""The SOAP/XML web-service business-system adapter (SOAP 接口 HIS 适配器).

Generic: every element name, trade code and result code of a hospital's service is
in its :class:`~his_adapters.soap.config.SoapHisConfig`. The flows here only render
templates, post envelopes, classify result codes and map records with the shared
:class:`gateway.mapping.Mapping` vocabulary (XPaths as ``src``).
"""
from __future__ import annotations

import datetime as dt
import types
from collections.abc import Callable
from typing import Any, ClassVar

import aiohttp
from lxml import etree
from pydantic import BaseModel, ValidationError

from gateway.errors import HisNotSupported, HisProtocolError, HisRejected, HisTimeout, HisUnavailable
from gateway.his import (ChargeItem, HisAdapter, HisBill, HisBillLine, HisCapability, InsuranceReversalWriteBack,
                         InsuranceWriteBack, PatientQuery, PendingCharge, RefundWriteBack, WriteBack, WriteBackResult,
                         WriteBackStatus)
from gateway.mapping import MISSING

from .config import SoapFunction, SoapHisConfig
from .wire import Answer, build_request, raw_fields, read_answer, xpath_elements, xpath_value


class _ClassOrInstance:
    """``supports`` asked of the class: what the adapter can do; of an instance: what
    that system's configuration provides (a function left out is not supported)."""

    def __init__(self, on_class: Callable[..., bool], on_instance: Callable[..., bool]) -> None:
        self.on_class, self.on_instance = on_class, on_instance

    def __get__(self, obj: Any, cls: type) -> Callable[[HisCapability], bool]:
        if obj is None:
            return types.MethodType(self.on_class, cls)
        return types.MethodType(self.on_instance, obj)


class SoapHisAdapter(HisAdapter):
    id: ClassVar[str] = "soap"
    name_zh: ClassVar[str] = "SOAP/XML Web Service 业务系统"
    name_en: ClassVar[str] = "SOAP/XML web-service business system"
    capabilities: ClassVar[frozenset[HisCapability]] = frozenset(HisCapability)
    config_model: ClassVar[type[BaseModel]] = SoapHisConfig
    config: SoapHisConfig

    def __init__(self, config: BaseModel | dict[str, Any], session: aiohttp.ClientSession) -> None:
        if not isinstance(config, SoapHisConfig):
            config = SoapHisConfig.model_validate(config if isinstance(config, dict) else config.model_dump())
        super().__init__(config, session)

    def configured(self, cap: HisCapability) -> bool:
        """Whether this system's configuration provides ``cap`` (the class offers all)."""
        name = "bill" if cap is HisCapability.BILLS else cap.value
        return getattr(self.config.functions, name) is not None

    supports = _ClassOrInstance(HisAdapter.supports.__func__, configured)  # type: ignore[assignment]

    # --- flows -------------------------------------------------------------------
    async def pending_charges(self, query: PatientQuery) -> list[PendingCharge]:
        name, fn = self._fn("pending", "pending")
        values = {k: getattr(query, k) or "" for k in ("card_no", "id_no", "visit_no", "patient_id")}
        ans = await self._call(name, fn, values)
        if ans.code in fn.refusal_codes:
            raise self._rejected(name, ans)
        if ans.code in fn.not_found_codes:
            return []
        self._expect_ok(name, fn, ans)
        return [self._charge(fn, rec) for rec in self._records(fn, ans)]

    async def write_back(self, wb: WriteBack) -> WriteBackResult:
        name, fn = self._fn("write_back", "write_back")
        values = {**wb.model_dump(), "channel_code": self.config.channel_code(wb.channel)}
        return self._write_result(name, fn, await self._call(name, fn, values))

    async def query_write_back(self, payment_id: str) -> WriteBackResult | None:
        name, fn = self._fn("write_back_query", "write_back_query")
        ans = await self._call(name, fn, {"payment_id": payment_id})
        if ans.code in fn.not_found_codes:
            return None
        if ans.code in fn.refusal_codes:
            raise self._rejected(name, ans)
        return self._write_result(name, fn, ans)

    async def write_back_refund(self, rwb: RefundWriteBack) -> WriteBackResult:
        name, fn = self._fn("refund_write_back", "refund_write_back")
        values = {**rwb.model_dump(), "channel_code": self.config.channel_code(rwb.channel)}
        return self._write_result(name, fn, await self._call(name, fn, values))

    async def write_back_insurance(self, iwb: InsuranceWriteBack) -> WriteBackResult:
        name, fn = self._fn("insurance_write_back", "insurance_write_back")
        values = {**iwb.model_dump(), "operator": iwb.operator or "",
                  "topup_channel_code": self.config.channel_code(iwb.topup_channel) if iwb.topup_channel else None,
                  "bill_type_code": self.config.bill_type_codes.get(iwb.bill_type, iwb.bill_type)}
        return self._write_result(name, fn, await self._call(name, fn, values))

    async def write_back_insurance_reversal(self, irwb: InsuranceReversalWriteBack) -> WriteBackResult:
        name, fn = self._fn("insurance_reversal_write_back", "insurance_reversal_write_back")
        values = {**irwb.model_dump(), "operator": "",
                  "refund_channel_code": self.config.channel_code(irwb.refund_channel) if irwb.refund_channel
                  else None,
                  "bill_type_code": self.config.bill_type_codes.get(irwb.bill_type, irwb.bill_type)}
        return self._write_result(name, fn, await self._call(name, fn, values))

    async def daily_bill(self, day: dt.date, bill_type: str) -> HisBill:
        name, fn = self._fn("bill", "bills")
        code = self.config.bill_type_codes.get(bill_type, bill_type)
        ans = await self._call(name, fn, {"day": day, "bill_type": bill_type, "bill_type_code": code})
        if ans.code in fn.refusal_codes:
            raise self._rejected(name, ans)
        if ans.code not in fn.not_found_codes:
            self._expect_ok(name, fn, ans)
        records = [] if ans.code in fn.not_found_codes else self._records(fn, ans)
        lines = [self._bill_line(fn, rec, bill_type) for rec in records]
        summary = {} if ans.code in fn.not_found_codes else self._summary(fn, ans)
        bill = HisBill(day=day, bill_type=bill_type, lines=lines, **summary)
        _check_summary(bill)
        return bill

    # --- the call ----------------------------------------------------------------
    def _fn(self, name: str, cap: str) -> tuple[str, SoapFunction]:
        fn = getattr(self.config.functions, name)
        if fn is None:
            raise HisNotSupported(cap, self.id)
        return name, fn

    async def _call(self, name: str, fn: SoapFunction, values: dict[str, Any]) -> Answer:
        now = dt.datetime.now(dt.UTC)
        body, headers = build_request(self.config, name, fn, {"trade_code": fn.trade_code or "",
                                                              "now": now, **values})
        timeout = aiohttp.ClientTimeout(total=self.config.timeout_seconds)
        try:
            async with self.session.post(self.config.endpoint, data=body, headers=headers,
                                         timeout=timeout) as resp:
                status, data = resp.status, await resp.read()
        except TimeoutError as exc:  # asyncio's and aiohttp's timeouts both derive from it
            raise HisTimeout(f"{name}: no answer within {self.config.timeout_seconds}s") from exc
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise HisUnavailable(f"{name}: {type(exc).__name__}: {exc}") from exc
        except aiohttp.ClientError as exc:
            raise HisUnavailable(f"{name}: {type(exc).__name__}: {exc}") from exc
        ans = read_answer(self.config, name, fn, status, data)
        if ans.code not in fn.known_codes:
            raise HisProtocolError(f"{name}: result code {ans.code!r} is not configured "
                                   f"({', '.join(sorted(fn.known_codes))})", result_code=ans.code,
                                   result_message=ans.message)
        return ans

    def _rejected(self, name: str, ans: Answer) -> HisRejected:
        return HisRejected(f"{name}: {ans.code} {ans.message or ''}".strip(),
                           his_code=ans.code, his_message=ans.message)

    @staticmethod
    def _expect_ok(name: str, fn: SoapFunction, ans: Answer) -> None:
        if ans.code not in fn.ok_codes:
            raise HisProtocolError(f"{name}: result code {ans.code!r} has no meaning for this function",
                                   result_code=ans.code)

    def _records(self, fn: SoapFunction, ans: Answer) -> list[etree._Element]:
        if fn.records is None:
            return [ans.root]
        return xpath_elements(ans.root, fn.records, self.config.xpath_namespaces())

    def _read(self, fn: SoapFunction, rec: etree._Element, context: str) -> dict[str, Any]:
        ns = self.config.xpath_namespaces()
        return fn.mapping.read(rec, lambda r, src: xpath_value(r, src, ns), context=context)

    # --- mapping into core types -------------------------------------------------
    def _write_result(self, name: str, fn: SoapFunction, ans: Answer) -> WriteBackResult:
        raw = raw_fields(ans.root)
        if ans.code in fn.refusal_codes:
            return WriteBackResult(status=WriteBackStatus.REJECTED, error_code=ans.code,
                                   error_message=ans.message, raw=raw)
        if ans.code in fn.recorded_codes:
            # recorded before: the serial is welcome but its absence does not undo the success
            try:
                serial = self._read(fn, ans.root, name).get("his_serial")
            except HisProtocolError:
                serial = None
            return WriteBackResult(status=WriteBackStatus.RECORDED, his_serial=serial, raw=raw)
        self._expect_ok(name, fn, ans)
        fields = self._read(fn, ans.root, name)
        return WriteBackResult(status=WriteBackStatus.RECORDED, his_serial=fields.get("his_serial"), raw=raw)

    def _bill_type(self, code: Any, default: str) -> str:
        if code in (None, ""):
            return default
        reverse = {v: k for k, v in self.config.bill_type_codes.items()}
        return reverse.get(str(code), str(code))

    def _charge(self, fn: SoapFunction, rec: etree._Element) -> PendingCharge:
        fields = self._read(fn, rec, "pending charge")
        items: list[ChargeItem] = []
        if fn.items and fn.item_mapping:
            ns = self.config.xpath_namespaces()
            for it in xpath_elements(rec, fn.items, ns):
                got = fn.item_mapping.read(it, lambda r, src: xpath_value(r, src, ns), context="charge item")
                items.append(_model(ChargeItem, got, "charge item"))
        known = set(PendingCharge.model_fields) - {"items", "extra"}
        core = {k: v for k, v in fields.items() if k in known and v is not None}
        core["bill_type"] = self._bill_type(fields.get("bill_type"), PendingCharge.model_fields["bill_type"].default)
        extra = {k: v for k, v in fields.items() if k not in known}
        return _model(PendingCharge, {**core, "items": items, "extra": extra}, "pending charge")

    def _bill_line(self, fn: SoapFunction, rec: etree._Element, bill_type: str) -> HisBillLine:
        fields = self._read(fn, rec, "bill line")
        known = set(HisBillLine.model_fields) - {"raw"}
        line = {k: v for k, v in fields.items() if k in known and v is not None}
        line["bill_type"] = self._bill_type(fields.get("bill_type"), bill_type)
        amount = line.get("amount")
        if isinstance(amount, int) and amount < 0:  # systems that write refunds negative
            line["amount"] = -amount
            line.setdefault("kind", "refund")
        if line.get("channel") is not None:
            line["channel"] = self.config.channel_codes.get(line["channel"], line["channel"])
        return _model(HisBillLine, {**line, "raw": raw_fields(rec)}, "bill line")

    def _summary(self, fn: SoapFunction, ans: Answer) -> dict[str, int | None]:
        ns = self.config.xpath_namespaces()
        out: dict[str, int | None] = {"total_count": None, "total_amount": None}
        if fn.summary_count:
            raw = xpath_value(ans.root, fn.summary_count, ns)
            if raw is MISSING or raw == "":
                raise HisProtocolError(f"bill: summary count missing ({fn.summary_count})")
            try:
                out["total_count"] = int(str(raw))
            except ValueError as exc:
                raise HisProtocolError(f"bill: summary count {raw!r} is not an integer") from exc
        if fn.summary_amount:
            raw = xpath_value(ans.root, fn.summary_amount, ns)
            if raw is MISSING or raw == "":
                raise HisProtocolError(f"bill: summary amount missing ({fn.summary_amount})")
            try:
                out["total_amount"] = fn.mapping.to_fen(raw)
            except ValueError as exc:
                raise HisProtocolError(f"bill: summary amount {raw!r}: {exc}") from exc
        return out


def _model(cls: type[BaseModel], data: dict[str, Any], context: str) -> Any:
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise HisProtocolError(f"{context}: {exc.errors()[0].get('loc')}: {exc.errors()[0].get('msg')}") from exc


def _check_summary(bill: HisBill) -> None:
    """The system's own summary must agree with its lines (count; payments minus refunds)."""
    if bill.total_count is not None and bill.total_count != len(bill.lines):
        raise HisProtocolError(f"bill {bill.day} {bill.bill_type}: summary says {bill.total_count} "
                               f"lines, the bill has {len(bill.lines)}")
    if bill.total_amount is not None:
        net = sum(ln.amount if ln.kind == "payment" else -ln.amount
                  for ln in bill.lines if ln.status == "normal")
        if net != bill.total_amount:
            raise HisProtocolError(f"bill {bill.day} {bill.bill_type}: summary total {bill.total_amount} fen, "
                                   f"the lines add up to {net} fen")
