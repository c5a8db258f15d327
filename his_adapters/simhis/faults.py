"""Fault plan of the simulated HIS: what the next calls of an operation should suffer.

The plan is shared by every simulator of the hospital; each simulator turns a fault
kind into its own wire (a REST simulator answers HTTP 500 for ``error``, a SOAP one
may answer a SOAP fault with status 500). ``after`` faults let the hospital act
first and then spoil the answer: the HIS recorded the payment but the gateway never
learns, the case its idempotent retry exists for.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from gateway.testing import simkit

OPS = ("pending", "write_back", "write_back_query", "refund_write_back", "bill", "insurance_write_back",
       "insurance_reversal_write_back", "*")
KINDS = ("refuse", "timeout", "error", "malformed", "unknown_status", "down")
REFUSAL_CODE = "SYSTEM_REFUSED"  # the business code a ``refuse`` fault answers with
HOLD_SECONDS = 30.0  # longer than any sane client timeout


@dataclass
class Fault:
    kind: str
    after: bool = False
    count: int | None = None  # how many more calls it hits; None = until cleared

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "after": self.after, "count": self.count}


class FaultPlan:
    """At most one fault per operation (``*`` = any operation without its own)."""

    def __init__(self) -> None:
        self._faults: dict[str, Fault] = {}

    def set(self, op: str, kind: str, *, count: int | None = None, after: bool = False) -> None:
        if op not in OPS:
            raise ValueError(f"op must be one of {', '.join(OPS)}")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
            raise ValueError("count must be a positive integer or null")
        self._faults[op] = Fault(kind, bool(after), count)

    def take(self, op: str) -> Fault | None:
        key = op if op in self._faults else "*" if "*" in self._faults else None
        if key is None:
            return None
        fault = self._faults[key]
        if fault.count is not None:
            fault.count -= 1
            if fault.count <= 0:
                del self._faults[key]
        return Fault(fault.kind, fault.after, fault.count)

    def clear(self) -> None:
        self._faults.clear()

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return {op: f.as_dict() for op, f in self._faults.items()}


async def hold() -> None:
    """What a ``timeout`` fault does: keep the caller waiting (cancelled when the server stops)."""
    await simkit.hold(HOLD_SECONDS)


def drop_connection(transport: asyncio.BaseTransport | None) -> None:
    """What a ``down`` fault does: close the connection with a reset, answering nothing."""
    simkit.reset_connection(transport)
