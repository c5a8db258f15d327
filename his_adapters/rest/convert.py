"""Answers of the system → core types, through the configured mappings.

List records are read relative to one record; a source path starting with ``$.``
is read from the whole answer instead (a HIS often puts the patient once beside
the list of charges). The ``channel`` and ``bill_type`` fields, when their mapping
has no value map of its own, are translated back through the inverse of
``channel_codes`` / ``bill_type_codes``, passing unknown codes through.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import ValidationError

from gateway.errors import HisProtocolError
from gateway.his import ChargeItem, HisBill, HisBillLine, PendingCharge
from gateway.mapping import MISSING, Mapping, dig

from .client import plain
from .config import BillOperation, ListOperation, PendingOperation, RestHisConfig

ROOT = "$."


def _getter(root: dict[str, Any]) -> Any:
    def get(record: Any, src: str) -> Any:
        return dig(root, src[len(ROOT):]) if src.startswith(ROOT) else dig(record, src)

    return get


def records(op: ListOperation, root: dict[str, Any], name: str) -> list[Any]:
    found = dig(root, op.list_path)
    if found is MISSING or found is None:
        if op.list_optional:
            return []
        raise HisProtocolError(f"{name}: no list at {op.list_path}", operation=name)
    if not isinstance(found, list):
        raise HisProtocolError(f"{name}: {op.list_path} is not a list", operation=name)
    return found


def _read(mapping: Mapping, record: Any, root: dict[str, Any], context: str) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise HisProtocolError(f"{context} is not an object")
    return mapping.read(record, _getter(root), context=context)


def _back(mapping: Mapping, fields: dict[str, Any], name: str, codes: dict[str, str]) -> None:
    spec = mapping.spec(name)
    if spec is not None and spec.values is None and fields.get(name) is not None:
        inverse = {v: k for k, v in codes.items()}
        fields[name] = inverse.get(fields[name], fields[name])


def _build(model: type[Any], fields: dict[str, Any], context: str) -> Any:
    try:
        return model(**fields)
    except ValidationError as exc:
        raise HisProtocolError(f"{context}: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from exc


def pending_charges(op: PendingOperation, cfg: RestHisConfig, root: dict[str, Any]) -> list[PendingCharge]:
    charges = []
    for index, record in enumerate(records(op, root, "pending")):
        context = f"pending charge {index}"
        fields = _read(op.mapping, record, root, context)
        _back(op.mapping, fields, "bill_type", cfg.bill_type_codes)
        extra = {k.removeprefix("extra."): fields.pop(k) for k in list(fields) if k.startswith("extra.")}
        items = []
        if op.items_path is not None and op.item_mapping is not None:
            raw_items = dig(record, op.items_path)
            if raw_items is MISSING or raw_items is None:
                raw_items = []
            if not isinstance(raw_items, list):
                raise HisProtocolError(f"{context}: {op.items_path} is not a list")
            for i, raw in enumerate(raw_items):
                item_fields = _read(op.item_mapping, raw, root, f"{context} item {i}")
                items.append(_build(ChargeItem, item_fields, f"{context} item {i}"))
        if fields.get("bill_type") is None:
            fields.pop("bill_type", None)
        charges.append(_build(PendingCharge, {**fields, "items": items, "extra": plain(extra)}, context))
    return charges


def _summary_int(root: dict[str, Any], path: str | None) -> int | None:
    if path is None:
        return None
    raw = dig(root, path)
    if raw is MISSING or raw is None or isinstance(raw, bool):
        raise HisProtocolError(f"bill: no summary count at {path}")
    try:
        return int(str(raw).strip())
    except ValueError as exc:
        raise HisProtocolError(f"bill: summary count {raw!r} is not an integer") from exc


def _summary_amount(op: BillOperation, root: dict[str, Any]) -> int | None:
    if op.total_path is None:
        return None
    raw = dig(root, op.total_path)
    if raw is MISSING or raw is None:
        raise HisProtocolError(f"bill: no summary total at {op.total_path}")
    try:
        return op.mapping.to_fen(raw)
    except ValueError as exc:
        raise HisProtocolError(f"bill: summary total {raw!r}: {exc}") from exc


def _line(op: BillOperation, cfg: RestHisConfig, record: Any, root: dict[str, Any], index: int,
          bill_type: str) -> HisBillLine:
    context = f"bill line {index}"
    fields = _read(op.mapping, record, root, context)
    _back(op.mapping, fields, "channel", cfg.channel_codes)
    _back(op.mapping, fields, "bill_type", cfg.bill_type_codes)
    amount = fields["amount"]
    kind = fields.get("kind")
    if op.signed_amounts:
        sign_kind = "refund" if amount < 0 else "payment"
        if kind is None:
            kind = sign_kind
        elif amount != 0 and kind != sign_kind:
            raise HisProtocolError(f"{context}: a {kind} line with amount {amount} fen")
        amount = abs(amount)
    elif amount < 0:
        raise HisProtocolError(f"{context}: negative amount {amount} fen (set signed_amounts if the system "
                               "writes refunds negative)")
    if kind not in (None, "payment", "refund"):
        raise HisProtocolError(f"{context}: kind maps to {kind!r}; map it to payment or refund")
    status = fields.get("status") or "normal"
    if status not in ("normal", "cancelled"):
        raise HisProtocolError(f"{context}: status maps to {status!r}; map it to normal or cancelled")
    fields.update(amount=amount, kind=kind or "payment", status=status,
                  bill_type=fields.get("bill_type") or bill_type, raw=plain(record))
    return _build(HisBillLine, fields, context)


def bill(op: BillOperation, cfg: RestHisConfig, root: dict[str, Any], day: dt.date, bill_type: str) -> HisBill:
    lines = [_line(op, cfg, record, root, i, bill_type) for i, record in enumerate(records(op, root, "bill"))]
    count, total = _summary_int(root, op.count_path), _summary_amount(op, root)
    if count is not None and count != len(lines):
        raise HisProtocolError(f"bill {day} {bill_type}: the summary says {count} lines, the answer has {len(lines)}")
    if total is not None:
        counted = [ln for ln in lines if not (op.total_excludes_cancelled and ln.status == "cancelled")]
        net = sum(ln.amount if ln.kind == "payment" else -ln.amount for ln in counted)
        if net != total:
            raise HisProtocolError(f"bill {day} {bill_type}: the summary total is {total} fen, the lines add up "
                                   f"to {net} fen")
    return HisBill(day=day, bill_type=bill_type, lines=lines, total_count=count, total_amount=total)
