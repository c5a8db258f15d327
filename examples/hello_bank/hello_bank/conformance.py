"""The Hello Bank simulator's driver for yinyi's channel conformance kit."""
from __future__ import annotations

import secrets

from gateway.channel import TradeStatus
from gateway.testing.conformance import SimulatorDriver

from .wire import TRADE_STATES

# The last four digits of a payment code script the simulated patient (see sim_bank.py).
_SUFFIX = {"success": "0000", "decline": "1001", "paying_then_success": "2001", "paying_forever": "2002"}
_PATHS = {"pay": "/api/pay", "query": "/api/query", "refund": "/api/refund", "reverse": "/api/reverse",
          "close": "/api/close"}


class HelloBankDriver(SimulatorDriver):
    def auth_code(self, outcome: str) -> str:
        return "88" + "".join(secrets.choice("0123456789") for _ in range(12)) + _SUFFIX[outcome]

    async def confirm(self, out_trade_no: str) -> None:
        async with self.session.post(f"{self.handle.control_url}/orders/{out_trade_no}/confirm") as r:
            assert r.status == 200, await r.text()

    async def inject(self, kind: str, op: str, *, when: str = "before", count: int | None = 1,
                     rate: float = 1.0) -> None:
        spec = {"kind": kind, "path": _PATHS[op], "when": when, "count": count, "rate": rate}
        async with self.session.post(f"{self.handle.control_url}/faults", json=spec) as r:
            assert r.status == 201, await r.text()

    async def clear_faults(self) -> None:
        async with self.session.delete(f"{self.handle.control_url}/faults") as r:
            assert r.status == 200, await r.text()

    async def truth(self, out_trade_no: str) -> TradeStatus:
        async with self.session.get(f"{self.handle.control_url}/orders/{out_trade_no}") as r:
            if r.status == 404:
                return TradeStatus.NOT_FOUND
            assert r.status == 200, await r.text()
            return TRADE_STATES.get((await r.json())["state"], TradeStatus.PENDING)
