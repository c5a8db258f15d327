"""Declarative field mapping between a business system's wire and the core's types.

Every configurable business-system adapter (REST, SOAP, database view) describes
the foreign side with the same vocabulary, so a hospital integrator learns it once:

- a :class:`Mapping` says how to read one foreign record into core fields: where
  each field is (``src``: a dot path into JSON, an XPath into XML, a column name),
  its type, a value map for codes (status, channel), and the record-wide units and
  formats (``amount_unit``, ``datetime_format``, ``utc_offset``);
- a *template* says how to write a request: any JSON-like structure (or text, for
  XML) in which ``${name}`` and ``${name|filter}`` are replaced by values. Filters:
  ``amount`` (fen → the mapping's unit), ``yuan``, ``fen``, ``datetime``, ``date``
  (UTC → the system's wall clock, in the mapping's formats), ``join`` (a list,
  comma-separated), ``str``, ``int``. A string that is exactly one placeholder is
  replaced by the typed value (an int stays an int); placeholders inside longer
  strings are substituted as text.

Reading is strict: a missing required field, an amount that is not exact, a date
that does not parse or a code absent from a strict value map raises
``HisProtocolError`` naming the field, so a malformed answer is an error, never a
silently wrong payment.
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping as AbcMapping
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .errors import HisProtocolError
from .money import MoneyFormatError, fen_to_yuan, yuan_to_fen

MISSING: Any = object()
FieldType = Literal["str", "int", "amount", "datetime", "date", "bool", "list"]
_OFFSET_RE = re.compile(r"^([+-])(\d{2}):(\d{2})$")
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][\w.]*)(?:\|(\w+))?\}")


class FieldSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    src: str  # where the value is in the foreign record
    type: FieldType = "str"
    required: bool = True
    default: Any = None
    values: dict[str, str] | None = None  # code map, e.g. {"1": "normal", "2": "cancelled"}
    strict: bool = True  # a code absent from ``values`` is an error (else passed through)
    format: str | None = None  # datetime/date format overriding the mapping's
    negate: bool = False  # amounts the system writes negative (refunds) are turned positive


class Mapping(BaseModel):
    """How to read one foreign record into core fields."""

    model_config = ConfigDict(extra="forbid")

    fields: dict[str, FieldSpec | str] = Field(default_factory=dict)
    amount_unit: Literal["fen", "yuan"] = "yuan"
    datetime_format: str = "%Y-%m-%d %H:%M:%S"
    date_format: str = "%Y-%m-%d"
    utc_offset: str = "+08:00"  # the system's wall clock; China has no daylight saving

    @field_validator("utc_offset")
    @classmethod
    def _offset(cls, v: str) -> str:
        if not _OFFSET_RE.match(v):
            raise ValueError("utc_offset must look like +08:00")
        return v

    @property
    def tz(self) -> dt.timezone:
        m = _OFFSET_RE.match(self.utc_offset)
        assert m
        sign, hh, mm = m.groups()
        delta = dt.timedelta(hours=int(hh), minutes=int(mm))
        return dt.timezone(-delta if sign == "-" else delta)

    def spec(self, name: str) -> FieldSpec | None:
        raw = self.fields.get(name)
        if raw is None:
            return None
        return FieldSpec(src=raw) if isinstance(raw, str) else raw

    # --- reading ----------------------------------------------------------------
    def read(self, record: Any, getter: Callable[[Any, str], Any] | None = None,
             *, context: str = "record") -> dict[str, Any]:
        """Map ``record`` into ``{core_field: value}`` using ``getter(record, src)``.

        ``getter`` returns ``MISSING`` when the path is absent; the default reads
        dot paths from nested dicts and lists.
        """
        get = getter or dig
        out: dict[str, Any] = {}
        for name in self.fields:
            spec = self.spec(name)
            assert spec is not None
            raw = get(record, spec.src)
            if raw is MISSING or raw is None or raw == "":
                if spec.default is not None:
                    out[name] = spec.default
                elif spec.required:
                    raise HisProtocolError(f"{context}: field {name!r} ({spec.src}) is missing",
                                           field=name, src=spec.src)
                else:
                    out[name] = None
                continue
            out[name] = self.convert(name, spec, raw, context)
        return out

    def convert(self, name: str, spec: FieldSpec, raw: Any, context: str = "record") -> Any:
        try:
            if spec.values is not None and spec.type in ("str", "int"):
                key = str(raw).strip()
                if key in spec.values:
                    return spec.values[key]
                if spec.strict:
                    raise HisProtocolError(
                        f"{context}: {name!r} has code {key!r}, absent from the configured map "
                        f"({', '.join(sorted(spec.values)) or 'empty'})", field=name, value=key)
                return key
            if spec.type == "str":
                return str(raw).strip() if not isinstance(raw, str) else raw.strip()
            if spec.type == "int":
                if isinstance(raw, bool) or isinstance(raw, float):
                    raise ValueError(f"not an integer: {raw!r}")
                return int(str(raw).strip())
            if spec.type == "bool":
                return str(raw).strip().lower() in ("1", "true", "y", "yes", "t")
            if spec.type == "amount":
                fen = self.to_fen(raw)
                return -fen if spec.negate else fen
            if spec.type == "datetime":
                return self.to_utc(raw, spec.format or self.datetime_format)
            if spec.type == "date":
                if isinstance(raw, dt.datetime):
                    return raw.date()
                if isinstance(raw, dt.date):
                    return raw
                return dt.datetime.strptime(str(raw).strip(), spec.format or self.date_format).date()
            if spec.type == "list":
                if isinstance(raw, list):
                    return [str(x) for x in raw]
                return [p for p in str(raw).split(",") if p]
        except HisProtocolError:
            raise
        except (ValueError, TypeError, MoneyFormatError, InvalidOperation) as exc:
            raise HisProtocolError(f"{context}: field {name!r} ({spec.src}) = {raw!r}: {exc}",
                                   field=name, value=str(raw)[:64]) from exc
        raise HisProtocolError(f"unknown field type {spec.type}")  # pragma: no cover - Literal

    def to_fen(self, raw: Any) -> int:
        if isinstance(raw, bool):
            raise ValueError("boolean is not an amount")
        if self.amount_unit == "fen":
            if isinstance(raw, float):
                if not raw.is_integer():
                    raise ValueError(f"fen amount with a fraction: {raw!r}")
                return int(raw)
            if isinstance(raw, Decimal):
                if raw != raw.to_integral_value():
                    raise ValueError(f"fen amount with a fraction: {raw}")
                return int(raw)
            return int(str(raw).strip())
        if isinstance(raw, float):
            # JSON numbers parsed as float: their shortest repr is the decimal written.
            raw = Decimal(repr(raw))
        if isinstance(raw, Decimal):
            return yuan_to_fen(raw.normalize() if raw == raw.to_integral_value() else raw)
        return yuan_to_fen(raw if isinstance(raw, int) else str(raw))

    def to_utc(self, raw: Any, fmt: str) -> dt.datetime:
        if isinstance(raw, dt.datetime):
            value = raw
        else:
            text = str(raw).strip()
            try:
                value = dt.datetime.strptime(text, fmt)
            except ValueError:
                value = dt.datetime.fromisoformat(text)  # a second chance for ISO 8601
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.tz)
        return value.astimezone(dt.UTC)

    # --- writing ----------------------------------------------------------------
    def format_value(self, value: Any, flt: str | None) -> Any:
        if flt is None:
            if isinstance(value, dt.datetime):
                return self.format_value(value, "datetime")
            if isinstance(value, dt.date):
                return self.format_value(value, "date")
            return value
        if flt == "amount":
            return fen_to_yuan(value) if self.amount_unit == "yuan" else int(value)
        if flt == "yuan":
            return fen_to_yuan(value)
        if flt == "fen":
            return int(value)
        if flt == "datetime":
            return value.astimezone(self.tz).strftime(self.datetime_format)
        if flt == "date":
            if isinstance(value, dt.datetime):
                value = value.astimezone(self.tz).date()
            return value.strftime(self.date_format)
        if flt == "join":
            return ",".join(str(v) for v in value)
        if flt == "str":
            return "" if value is None else str(value)
        if flt == "int":
            return int(value)
        raise ValueError(f"unknown template filter {flt!r}")

    def render(self, template: Any, values: AbcMapping[str, Any],
               escape: Callable[[str], str] | None = None) -> Any:
        """Fill a template (dict/list/str, nested) with ``values`` (dot paths allowed)."""
        if isinstance(template, dict):
            return {k: self.render(v, values, escape) for k, v in template.items()}
        if isinstance(template, list):
            return [self.render(v, values, escape) for v in template]
        if not isinstance(template, str):
            return template
        whole = _PLACEHOLDER.fullmatch(template)
        if whole and escape is None:
            return self.format_value(_lookup(values, whole.group(1)), whole.group(2))

        def sub(m: re.Match[str]) -> str:
            v = self.format_value(_lookup(values, m.group(1)), m.group(2))
            text = "" if v is None else str(v)
            return escape(text) if escape else text

        return _PLACEHOLDER.sub(sub, template)


def _lookup(values: AbcMapping[str, Any], path: str) -> Any:
    v = dig(values, path)
    if v is MISSING:
        raise ValueError(f"template names an unknown value ${{{path}}}")
    return v


def dig(obj: Any, path: str) -> Any:
    """Follow a dot path (``data.items.0.amt``) through dicts, lists and attributes."""
    cur = obj
    for part in path.split(".") if path else []:
        if isinstance(cur, AbcMapping):
            if part not in cur:
                return MISSING
            cur = cur[part]
        elif isinstance(cur, list | tuple):
            try:
                cur = cur[int(part)]
            except (ValueError, IndexError):
                return MISSING
        elif hasattr(cur, part):
            cur = getattr(cur, part)
        else:
            return MISSING
    return cur
