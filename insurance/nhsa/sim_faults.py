"""Fault injection for the simulated centre, per transaction code.

Kinds: ``timeout`` (hold the answer, then drop the connection), ``http_500``,
``drop`` (reset the connection at once), ``error`` (``infcode = -1`` with the given
``err_msg``), ``bad_signature`` (a signed answer whose signature is spoiled). With
``when = "before"`` the centre does nothing; with ``"after"`` it performs the call
and then fails the answer, so the caller sees an unknown outcome for a done deed.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any


KINDS = ("timeout", "http_500", "drop", "error", "bad_signature")


@dataclass
class Fault:
    kind: str
    infno: str | None = None  # None: every transaction
    when: str = "before"
    count: int | None = 1  # None: until removed
    err_msg: str = "系统异常"
    delay_seconds: float = 30.0
    id: str = field(default_factory=lambda: secrets.token_hex(4))
    fired: int = 0

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Fault:
        kind = str(spec.get("kind", ""))
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        when = str(spec.get("when", "before"))
        if when not in ("before", "after"):
            raise ValueError("when must be before or after")
        count = spec.get("count", 1)
        return cls(kind=kind, infno=str(spec["infno"]) if spec.get("infno") else None, when=when,
                   count=None if count is None else int(count), err_msg=str(spec.get("err_msg", "系统异常")),
                   delay_seconds=float(spec.get("delay_seconds", 30.0)))

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "infno": self.infno, "when": self.when, "count": self.count,
                "err_msg": self.err_msg, "delay_seconds": self.delay_seconds, "fired": self.fired}


class FaultSet:
    def __init__(self) -> None:
        self.faults: list[Fault] = []

    def add(self, spec: dict[str, Any]) -> Fault:
        fault = Fault.from_spec(spec)
        self.faults.append(fault)
        return fault

    def clear(self) -> None:
        self.faults.clear()

    def pick(self, infno: str) -> Fault | None:
        for fault in self.faults:
            if fault.infno not in (None, infno) or (fault.count is not None and fault.count <= 0):
                continue
            fault.fired += 1
            if fault.count is not None:
                fault.count -= 1
            return fault
        return None
