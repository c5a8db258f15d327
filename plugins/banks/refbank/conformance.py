"""The reference bank simulator's driver for the channel conformance kit (``gateway.testing.conformance``).

Used by ``tests/channels/ecny/test_conformance.py`` to run ``EcnyChannel`` (with the
reference bank behind it) through the whole channel contract.
"""
from __future__ import annotations

import secrets

from gateway.channel import TradeStatus
from gateway.testing.conformance import SimulatorDriver

from .wire import trade_status

# magic last four digits (see docs/channels/ecny.md)
_CODES = {"success": "1234", "decline": "9011", "paying_then_success": "9001", "paying_forever": "9004"}
_PATHS = {"pay": ("/ecny/v1/trade/codepay", "/ecny/v1/trade/precreate"), "query": ("/ecny/v1/trade/query",),
          "refund": ("/ecny/v1/refund/apply",), "reverse": ("/ecny/v1/trade/revoke",),
          "close": ("/ecny/v1/trade/close",)}
# "timeout" holds the answer, then drops the connection: longer than the kit's client timeout
_KINDS = {"timeout": {"kind": "timeout", "delay_seconds": 3}, "http_error": {"kind": "http_error"},
          "reset": {"kind": "reset"}, "bad_signature": {"kind": "bad_signature"}}


class RefBankDriver(SimulatorDriver):
    def auth_code(self, outcome: str) -> str:
        return "01" + "".join(secrets.choice("0123456789") for _ in range(13)) + _CODES[outcome]

    async def confirm(self, out_trade_no: str) -> None:
        async with self.session.post(f"{self.handle.control_url}/orders/{out_trade_no}/pay", json={}) as r:
            assert r.status == 200, await r.text()

    async def inject(self, kind: str, op: str, *, when: str = "before", count: int | None = 1,
                     rate: float = 1.0) -> None:
        for path in _PATHS[op]:
            spec = {**_KINDS[kind], "path": path, "when": when, "count": count, "rate": rate}
            async with self.session.post(f"{self.handle.control_url}/faults", json=spec) as r:
                assert r.status == 201, await r.text()

    async def clear_faults(self) -> None:
        async with self.session.delete(f"{self.handle.control_url}/faults") as r:
            assert r.status == 200

    async def truth(self, out_trade_no: str) -> TradeStatus:
        async with self.session.get(f"{self.handle.control_url}/orders/{out_trade_no}") as r:
            if r.status == 404:
                return TradeStatus.NOT_FOUND
            order = await r.json()
        return trade_status(order["trade_status"])
