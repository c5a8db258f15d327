"""Money: integer fen inside, yuan strings only at wires that use them.

Every conversion between fen and yuan in the project goes through this module.
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_YUAN_RE = re.compile(r"^(-)?(\d+)(?:\.(\d{1,2}))?$")


class MoneyFormatError(ValueError):
    """A yuan string that is not a plain decimal with at most two places."""


def yuan_to_fen(text: str | int | Decimal) -> int:
    """Parse a yuan amount ("12.30", "-0.01", "5") into integer fen, exactly.

    Floats are refused: their binary value is not the decimal the sender meant.
    """
    if isinstance(text, bool) or isinstance(text, float):
        raise MoneyFormatError(f"refusing non-decimal yuan value {text!r}")
    if isinstance(text, int):
        return text * 100
    if isinstance(text, Decimal):
        try:
            q = text.quantize(Decimal("0.01"))
        except InvalidOperation as exc:
            raise MoneyFormatError(str(text)) from exc
        if q != text:
            raise MoneyFormatError(f"more than two decimal places: {text}")
        return int(q * 100)
    s = text.strip().replace(",", "")
    m = _YUAN_RE.match(s)
    if not m:
        raise MoneyFormatError(f"not a yuan amount: {text!r}")
    sign, whole, frac = m.groups()
    fen = int(whole) * 100 + int((frac or "0").ljust(2, "0"))
    return -fen if sign else fen


def fen_to_yuan(fen: int) -> str:
    """Format integer fen as a yuan string with two decimals ("0.01", "-12.30")."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError(f"fen must be int, got {type(fen).__name__}")
    sign = "-" if fen < 0 else ""
    q, r = divmod(abs(fen), 100)
    return f"{sign}{q}.{r:02d}"
