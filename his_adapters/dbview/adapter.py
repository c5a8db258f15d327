"""The database-view HIS adapter (数据库视图对接): SQL in configuration, rows through a mapping.

Many hospitals give the payment platform a read account on views of the HIS
database (and sometimes an interface table to insert payments into) instead of an
API. This adapter runs the configured SQL through SQLAlchemy's async engine and
maps the rows with :class:`gateway.mapping.Mapping`; it knows no vendor's schema.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import aiohttp
from pydantic import BaseModel, ValidationError
from sqlalchemy import exc as sa_exc

from gateway.errors import HisNotSupported, HisProtocolError
from gateway.his import (
    ChargeItem,
    HisAdapter,
    HisBill,
    HisBillLine,
    HisCapability,
    PatientQuery,
    PendingCharge,
    RefundWriteBack,
    WriteBack,
    WriteBackResult,
    WriteBackStatus,
)
from gateway.mapping import FieldSpec, Mapping
from gateway.money import fen_to_yuan

from .config import DbViewConfig, WriteBackConfig
from .db import Database, Session, column, jsonable

# Insurance settlements are written back through an interface, never into a database view.
_ALL_CAPABILITIES = frozenset(HisCapability) - {HisCapability.INSURANCE_WRITE_BACK,
                                                HisCapability.INSURANCE_REVERSAL_WRITE_BACK}
_PENDING_FIELDS = frozenset(PendingCharge.model_fields) - {"items", "extra"}
# Fields whose type is known: a plain ``field = "column"`` mapping gets this type.
_CHARGE_TYPES = {"amount": "amount", "created_at": "datetime"}
_ITEM_TYPES = {"amount": "amount"}
_LINE_TYPES = {"amount": "amount", "occurred_at": "datetime"}
_SUMMARY_TYPES = {"count": "int", "total": "amount"}


class _ConfiguredCapabilities:
    """On the class: every capability the adapter may have. On an instance: what its
    configuration enables (a read-only configuration has no WRITE_BACK)."""

    def __get__(self, obj: Any, owner: type) -> frozenset[HisCapability]:
        return _ALL_CAPABILITIES if obj is None else obj._capabilities


class _Supports:
    """``supports(cap)`` that answers for the instance's configuration when called on one."""

    def __get__(self, obj: Any, owner: type) -> Callable[[HisCapability], bool]:
        caps = owner.capabilities if obj is None else obj.capabilities
        return lambda cap: cap in caps


def typed(mapping: Mapping, defaults: dict[str, str]) -> Mapping:
    """A copy of ``mapping`` where fields given as a bare column name get their known type."""
    fields: dict[str, FieldSpec | str] = dict(mapping.fields)
    for name, kind in defaults.items():
        raw = fields.get(name)
        if isinstance(raw, str):
            fields[name] = FieldSpec(src=raw, type=kind)  # type: ignore[arg-type]
    return mapping.model_copy(update={"fields": fields})


class DbViewHisAdapter(HisAdapter):
    id = "dbview"
    name_zh = "数据库视图"
    name_en = "Database views"
    capabilities = _ConfiguredCapabilities()  # type: ignore[assignment]
    supports = _Supports()  # type: ignore[assignment]
    config_model = DbViewConfig

    def __init__(self, config: BaseModel | dict[str, Any],
                 session: aiohttp.ClientSession | None = None, *, system: str = "dbview") -> None:
        cfg = config if isinstance(config, DbViewConfig) else DbViewConfig.model_validate(
            config if isinstance(config, dict) else config.model_dump())
        super().__init__(cfg, session)  # type: ignore[arg-type]
        self.cfg = cfg
        self.db = Database(cfg, system)
        caps: set[HisCapability] = set()
        if cfg.pending:
            caps.add(HisCapability.PENDING)
            self._charge_mapping = typed(cfg.pending.mapping, _CHARGE_TYPES)
            self._item_mapping = typed(cfg.pending.items_mapping, _ITEM_TYPES) if cfg.pending.items_mapping else None
        if cfg.bills:
            caps.add(HisCapability.BILLS)
            self._summary_mapping = (typed(cfg.bills.summary_mapping, _SUMMARY_TYPES)
                                     if cfg.bills.summary_mapping else None)
        if cfg.write_back:
            caps |= {HisCapability.WRITE_BACK, HisCapability.WRITE_BACK_QUERY}
        if cfg.refund_write_back:
            caps.add(HisCapability.REFUND_WRITE_BACK)
        self._capabilities = frozenset(caps)

    async def aclose(self) -> None:
        await self.db.aclose()

    # --- pending charges ------------------------------------------------------------
    async def pending_charges(self, query: PatientQuery) -> list[PendingCharge]:
        pending = self.cfg.pending
        if pending is None:
            raise HisNotSupported("pending", self.id)
        values = query.model_dump()
        ident = next((i for i in pending.identifier_order if values.get(i) and i in pending.sql), None)
        if ident is None:
            given = ", ".join(k for k, v in values.items() if v)
            raise HisNotSupported(f"pending charges by {given} (configured: {', '.join(pending.sql)})", self.id)
        async with self.db.transaction("pending", write=False) as s:
            rows = await s.execute(pending.sql[ident], values)
            if pending.items == "rows":
                return self._charges_from_item_rows(rows)
            charges = []
            for i, row in enumerate(rows, 1):
                fields = self._charge_mapping.read(row, column, context=f"pending row {i}")
                items: list[ChargeItem] = []
                if pending.items == "query":
                    assert pending.items_sql
                    item_rows = await s.execute(pending.items_sql, {**values, "charge_id": fields["charge_id"]})
                    items = [self._item(r, f"pending items of {fields['charge_id']} row {j}")
                             for j, r in enumerate(item_rows, 1)]
                charges.append(self._charge(fields, items, f"pending row {i}"))
            return charges

    def _charges_from_item_rows(self, rows: list[dict[str, Any]]) -> list[PendingCharge]:
        grouped: dict[str, tuple[dict[str, Any], list[ChargeItem]]] = {}
        for i, row in enumerate(rows, 1):
            fields = self._charge_mapping.read(row, column, context=f"pending row {i}")
            entry = grouped.setdefault(str(fields["charge_id"]), (fields, []))
            entry[1].append(self._item(row, f"pending row {i}"))
        return [self._charge(fields, items, f"pending charge {cid}") for cid, (fields, items) in grouped.items()]

    def _item(self, row: dict[str, Any], context: str) -> ChargeItem:
        assert self._item_mapping is not None
        fields = self._item_mapping.read(row, column, context=context)
        if fields.get("quantity") is not None:
            fields["quantity"] = _quantity(fields["quantity"])
        return _build(ChargeItem, fields, context)

    def _charge(self, fields: dict[str, Any], items: list[ChargeItem], context: str) -> PendingCharge:
        known = {k: v for k, v in fields.items() if k in _PENDING_FIELDS and v is not None}
        extra = {k: _plain(v) for k, v in fields.items() if k not in _PENDING_FIELDS}
        if "amount" not in known:
            known["amount"] = sum(item.amount for item in items)
        elif items and sum(item.amount for item in items) != known["amount"]:
            raise HisProtocolError(f"{context}: items sum to {sum(i.amount for i in items)} fen, "
                                   f"the charge says {known['amount']} fen", charge_id=known.get("charge_id"))
        known["charge_id"] = str(known["charge_id"])
        return _build(PendingCharge, {**known, "items": items, "extra": extra}, context)

    # --- daily bills ------------------------------------------------------------------
    async def daily_bill(self, day: dt.date, bill_type: str) -> HisBill:
        bills = self.cfg.bills
        if bills is None:
            raise HisNotSupported("bills", self.id)
        if bill_type not in bills.types:
            raise HisNotSupported(f"bills of type {bill_type} (configured: {', '.join(bills.types)})", self.id)
        code, sql, mapping, summary_sql = bills.resolved(bill_type)
        mapping = typed(mapping, _LINE_TYPES)
        day_start = dt.datetime.combine(day, dt.time())
        values = {"day_start": day_start, "day_end": day_start + dt.timedelta(days=1), "day": day,
                  "bill_type": code}
        function = f"bills.{bill_type}"
        async with self.db.transaction(function, write=False) as s:
            rows = await s.execute(sql, values)
            summary = await s.execute(summary_sql, values) if summary_sql else None
        lines = [self._line(bill_type, mapping, row, f"{function} row {i}") for i, row in enumerate(rows, 1)]
        bill = HisBill(day=day, bill_type=bill_type, lines=lines)
        if summary is None:
            return bill
        return self._checked(bill, summary, function)

    @staticmethod
    def _line(bill_type: str, mapping: Mapping, row: dict[str, Any], context: str) -> HisBillLine:
        fields = {k: v for k, v in mapping.read(row, column, context=context).items() if v is not None}
        for name in ("his_serial", "trade_no", "channel_trade_no", "refund_no", "patient_id", "visit_no"):
            if name in fields:
                fields[name] = _plain(fields[name])
        if fields["amount"] < 0:
            # A HIS that writes refunds as negative amounts needs no kind column.
            fields["amount"], fields["kind"] = -fields["amount"], "refund"
        return _build(HisBillLine, {**fields, "bill_type": bill_type, "raw": jsonable(row)}, context)

    def _checked(self, bill: HisBill, summary: list[dict[str, Any]], function: str) -> HisBill:
        assert self._summary_mapping is not None
        if len(summary) != 1:
            raise HisProtocolError(f"{function}: the summary SQL returned {len(summary)} rows, expected 1")
        got = self._summary_mapping.read(summary[0], column, context=f"{function} summary")
        count = len(bill.lines)
        total = sum((line.amount if line.kind == "payment" else -line.amount)
                    for line in bill.lines if line.status == "normal")
        if got["count"] != count or got["total"] != total:
            raise HisProtocolError(
                f"{function}: the HIS summary says {got['count']} lines / {got['total']} fen, "
                f"its lines give {count} / {total} fen", summary_count=got["count"], summary_total=got["total"],
                line_count=count, line_total=total)
        return bill.model_copy(update={"total_count": got["count"], "total_amount": got["total"]})

    # --- write-back -----------------------------------------------------------------
    async def write_back(self, wb: WriteBack) -> WriteBackResult:
        cfg = self.cfg.write_back
        if cfg is None:
            raise HisNotSupported("write_back", self.id)
        tz = cfg.mapping.tz
        values = wb.model_dump()
        values.update(self._money(cfg, wb.amount), channel_id=wb.channel,
                      channel=cfg.channel_codes.get(wb.channel, wb.channel),
                      paid_at=wb.paid_at.astimezone(tz).replace(tzinfo=None),
                      charge_ids=",".join(wb.charge_ids), charge_id=wb.charge_ids[0] if wb.charge_ids else None,
                      bill_type_code=cfg.bill_type_codes.get(wb.bill_type, wb.bill_type))
        return await self._record(cfg, "write_back", values)

    async def write_back_refund(self, rwb: RefundWriteBack) -> WriteBackResult:
        cfg = self.cfg.refund_write_back
        if cfg is None:
            raise HisNotSupported("refund_write_back", self.id)
        values = rwb.model_dump()
        total = self._money(cfg, rwb.total)
        values.update(self._money(cfg, rwb.amount), total=total["amount"], total_fen=rwb.total,
                      channel_id=rwb.channel, channel=cfg.channel_codes.get(rwb.channel, rwb.channel),
                      refunded_at=rwb.refunded_at.astimezone(cfg.mapping.tz).replace(tzinfo=None),
                      bill_type_code=cfg.bill_type_codes.get(rwb.bill_type, rwb.bill_type))
        return await self._record(cfg, "refund_write_back", values)

    async def query_write_back(self, payment_id: str) -> WriteBackResult | None:
        cfg = self.cfg.write_back
        if cfg is None:
            raise HisNotSupported("write_back_query", self.id)
        async with self.db.transaction("write_back_query", write=False) as s:
            rows = await s.execute(cfg.query_sql or cfg.exists_sql, {"payment_id": payment_id})
        return self._result(cfg, rows[0], "write_back_query") if rows else None

    @staticmethod
    def _money(cfg: WriteBackConfig, fen: int) -> dict[str, Any]:
        yuan = Decimal(fen_to_yuan(fen))
        return {"amount": yuan if cfg.mapping.amount_unit == "yuan" else fen, "amount_fen": fen, "amount_yuan": yuan}

    async def _record(self, cfg: WriteBackConfig, function: str, values: dict[str, Any]) -> WriteBackResult:
        try:
            async with self.db.transaction(function, write=True) as s:
                return await self._record_in(s, cfg, function, values)
        except sa_exc.IntegrityError as exc:
            # Most likely a concurrent write-back of the same id won the unique key: read it back.
            async with self.db.transaction(function, write=False) as s:
                rows = await s.execute(cfg.exists_sql, values)
            if rows:
                return self._result(cfg, rows[0], function)
            raise HisProtocolError(f"{self.db.system}: {function}: the HIS refused the insert: "
                                   f"{str(exc.orig).splitlines()[0][:300]}", function=function) from exc

    async def _record_in(self, s: Session, cfg: WriteBackConfig, function: str,
                         values: dict[str, Any]) -> WriteBackResult:
        rows = await s.execute(cfg.exists_sql, values)
        if rows:
            return self._result(cfg, rows[0], function)
        if cfg.check_sql:
            assert cfg.check_mapping is not None
            refusal = await s.execute(cfg.check_sql, values)
            if refusal:
                # A concurrent write-back of the same id may have committed in between (and made
                # the check fail, e.g. "charge not pending"): that is a success, not a refusal.
                rows = await s.execute(cfg.exists_sql, values)
                if rows:
                    return self._result(cfg, rows[0], function)
                got = cfg.check_mapping.read(refusal[0], column, context=f"{function} check")
                return WriteBackResult(status=WriteBackStatus.REJECTED, error_code=_plain(got["error_code"]),
                                       error_message=got.get("error_message"), raw=jsonable(refusal[0]))
        for sql in cfg.statements:
            rows = await s.execute(sql, values)
        if not rows:
            rows = await s.execute(cfg.exists_sql, values)
        if not rows:
            raise HisProtocolError(f"{self.db.system}: {function}: the statements ran but exists_sql "
                                   "finds no record", function=function)
        return self._result(cfg, rows[0], function)

    @staticmethod
    def _result(cfg: WriteBackConfig, row: dict[str, Any], function: str) -> WriteBackResult:
        got = cfg.mapping.read(row, column, context=f"{function} result")
        status = got.get("status") or WriteBackStatus.RECORDED.value
        if status not in {s.value for s in WriteBackStatus}:
            raise HisProtocolError(f"{function} result: status {status!r} must map to recorded or rejected")
        return WriteBackResult(status=WriteBackStatus(status),
                               his_serial=_plain(got["his_serial"]) if got.get("his_serial") is not None else None,
                               error_code=_plain(got["error_code"]) if got.get("error_code") is not None else None,
                               error_message=got.get("error_message"), raw=jsonable(row))


def _plain(value: Any) -> Any:
    """Identifiers and quantities as text ("12", not 12 or Decimal('12.00'))."""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral_value() else str(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _quantity(value: Any) -> str:
    """"1.00", 1.0 and Decimal("1.00") all read as "1"; other text is kept."""
    try:
        return str(_plain(Decimal(str(value))))
    except ArithmeticError:
        return str(value)


def _build(model: type[Any], fields: dict[str, Any], context: str) -> Any:
    try:
        return model(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(p) for p in first["loc"])
        raise HisProtocolError(f"{context}: {name}: {first['msg']}", field=name) from exc
