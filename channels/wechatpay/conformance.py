"""The WeChat Pay simulator's driver for the channel conformance kit."""
from __future__ import annotations

import secrets

from gateway.channel import TradeStatus
from gateway.testing.conformance import SimulatorDriver

from .wire import trade_status

_CODES = {"success": "1234", "decline": "9011", "paying_then_success": "9001", "paying_forever": "9004"}
_PATHS = {"pay": "/v3/pay/transactions/", "query": "/out-trade-no/", "refund": "/v3/refund/domestic/refunds",
          "reverse": "/reverse", "close": "/close"}
_KINDS = {"timeout": {"kind": "timeout", "delay_seconds": 5}, "http_error": {"kind": "http_error"},
          "reset": {"kind": "reset"}, "bad_signature": {"kind": "bad_signature"}}


class WeChatPayDriver(SimulatorDriver):
    def auth_code(self, outcome: str) -> str:
        return "13" + "".join(secrets.choice("0123456789") for _ in range(12)) + _CODES[outcome]

    async def confirm(self, out_trade_no: str) -> None:
        async with self.session.post(f"{self.handle.control_url}/orders/{out_trade_no}/pay", json={}) as r:
            assert r.status == 200, await r.text()

    async def inject(self, kind: str, op: str, *, when: str = "before", count: int | None = 1,
                     rate: float = 1.0) -> None:
        spec = {**_KINDS[kind], "path": _PATHS[op], "when": when, "count": count, "rate": rate}
        if op == "query":
            spec["method"] = "GET"
        elif op == "pay":
            spec["method"] = "POST"
        async with self.session.post(f"{self.handle.control_url}/faults", json=spec) as r:
            assert r.status == 201, await r.text()

    async def clear_faults(self) -> None:
        async with self.session.delete(f"{self.handle.control_url}/faults") as r:
            assert r.status == 200

    async def truth(self, out_trade_no: str) -> TradeStatus:
        async with self.session.get(f"{self.handle.control_url}/orders/{out_trade_no}") as r:
            if r.status == 404:
                return TradeStatus.NOT_FOUND
            return trade_status((await r.json())["trade_state"])
