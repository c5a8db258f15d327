"""Wire primitives of the NHSA platform: yuan amounts, China-local times, the envelope.

Amounts are ``decimal(16,2)`` yuan on the wire, sent as strings and accepted as
strings or JSON numbers (parsed as ``Decimal``, never float); inside they are
integer fen, converted only by :mod:`gateway.money`. Times are China local time
(+08:00) on the wire and UTC-aware inside. Every wire model accepts unknown extra
fields: regions add their own.
"""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer

from gateway.money import fen_to_yuan, yuan_to_fen

CST = dt.timezone(dt.timedelta(hours=8), "CST")
TIME_FMT = "%Y-%m-%d %H:%M:%S"
DATE_FMT = "%Y-%m-%d"
COMPACT_FMT = "%Y%m%d%H%M%S"


class WireFormatError(ValueError):
    """A value on the wire that is not what the spec allows."""


def _to_fen(value: Any) -> int:
    if isinstance(value, str) and not value.strip():
        return 0
    if isinstance(value, float):
        # only reachable when a caller parsed JSON without Decimal: refuse, loudly
        raise WireFormatError(f"refusing float amount {value!r}; parse JSON with Decimal")
    return yuan_to_fen(value)


def _opt_fen(value: Any) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return _to_fen(value)


def parse_time(value: Any) -> dt.datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise WireFormatError("naive datetime: give an aware one")
        return value.astimezone(dt.UTC)
    text = str(value).strip()
    for fmt in (TIME_FMT, COMPACT_FMT, DATE_FMT):
        try:
            return dt.datetime.strptime(text, fmt).replace(tzinfo=CST).astimezone(dt.UTC)
        except ValueError:
            continue
    raise WireFormatError(f"not a platform time: {text!r}")


def format_time(value: dt.datetime) -> str:
    return value.astimezone(CST).strftime(TIME_FMT)


def parse_date(value: Any) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(CST).date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()[:10]
    try:
        return dt.datetime.strptime(text, DATE_FMT).date()
    except ValueError:
        try:
            return dt.datetime.strptime(text[:8], "%Y%m%d").date()
        except ValueError:
            raise WireFormatError(f"not a platform date: {value!r}") from None


def _fen_out(value: int) -> str:
    return fen_to_yuan(value)


def _opt_fen_out(value: int | None) -> str | None:
    return None if value is None else fen_to_yuan(value)


def _time_out(value: dt.datetime | None) -> str | None:
    return None if value is None else format_time(value)


def _date_out(value: dt.date | None) -> str | None:
    return None if value is None else value.strftime(DATE_FMT)


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, float):
        raise WireFormatError(f"refusing float {value!r}; parse JSON with Decimal")
    return Decimal(str(value))


def _str(value: Any) -> Any:
    # codes arrive as numbers from some regions ("insutype": 310)
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return str(value)
    return value


Yuan = Annotated[int, BeforeValidator(_to_fen), PlainSerializer(_fen_out, return_type=str)]
OptYuan = Annotated[int | None, BeforeValidator(_opt_fen), PlainSerializer(_opt_fen_out, return_type=str | None)]
WireTime = Annotated[dt.datetime | None, BeforeValidator(parse_time), PlainSerializer(_time_out)]
WireDate = Annotated[dt.date | None, BeforeValidator(parse_date), PlainSerializer(_date_out)]
Dec = Annotated[Decimal | None, BeforeValidator(_decimal), PlainSerializer(lambda v: None if v is None else str(v))]
Code = Annotated[str, BeforeValidator(_str)]
OptCode = Annotated[str | None, BeforeValidator(_str)]


class WireModel(BaseModel):
    """Base of every wire message: unknown fields kept, aliases accepted."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def wire(self) -> dict[str, Any]:
        """The JSON-ready body: yuan strings, local times, no unset optionals."""
        return self.model_dump(mode="json", exclude_none=True, by_alias=False)


def loads(text: str | bytes) -> Any:
    """Parse platform JSON: decimals stay exact."""
    return json.loads(text, parse_float=Decimal)


def dumps(data: Any) -> str:
    """Compact JSON text, non-ASCII kept (the text that is signed is the text sent)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=_default)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


class RequestEnvelope(WireModel):
    """The common request wrapper (``input`` holds the message)."""

    infno: str
    msgid: str
    mdtrtarea_admvs: str
    insuplc_admdvs: str = ""
    recer_sys_code: str
    dev_no: str = ""
    dev_safe_info: str = ""
    cainfo: str = ""
    signtype: str = ""
    infver: str = "V1.0"
    opter_type: str
    opter: str
    opter_name: str
    inf_time: str
    fixmedins_code: str
    fixmedins_name: str
    sign_no: str = ""
    input: Any = None


class ResponseEnvelope(WireModel):
    infcode: Code
    inf_refmsgid: str | None = None
    refmsg_time: str | None = None
    respond_time: str | None = None
    err_msg: str | None = None
    warn_msg: str | None = None
    output: Any = None
    cainfo: str | None = None
    signtype: str | None = None
    enctype: str | None = None

    @property
    def ok(self) -> bool:
        return self.infcode == "0"
