"""The UnionPay simulator's driver for the channel conformance kit."""
from __future__ import annotations

import datetime as dt
import secrets

from gateway.channel import TradeStatus
from gateway.testing.conformance import SimulatorDriver

from .wire import settle_date_of

_CODES = {"success": "1234", "decline": "9011", "paying_then_success": "9001", "paying_forever": "9004"}
# Consume, undo and refund share one ACP endpoint; query has its own.
_PATHS = {"pay": "backTransReq", "refund": "backTransReq", "reverse": "backTransReq", "close": "backTransReq",
          "query": "queryTrans"}
_KINDS = {"timeout": {"kind": "timeout", "delay_seconds": 5}, "http_error": {"kind": "http_error"},
          "reset": {"kind": "reset"}, "bad_signature": {"kind": "bad_signature"}}


class UnionPayDriver(SimulatorDriver):
    def bill_date(self, moment: dt.datetime) -> dt.date:
        return settle_date_of(moment)  # after 23:00 a trade belongs to the next 清算日

    def auth_code(self, outcome: str) -> str:
        return "62" + "".join(secrets.choice("0123456789") for _ in range(13)) + _CODES[outcome]

    async def confirm(self, out_trade_no: str) -> None:
        async with self.session.post(f"{self.handle.control_url}/orders/{out_trade_no}/pay", json={}) as r:
            assert r.status == 200, await r.text()

    async def inject(self, kind: str, op: str, *, when: str = "before", count: int | None = 1,
                     rate: float = 1.0) -> None:
        spec = {**_KINDS[kind], "path": _PATHS[op], "when": when, "count": count, "rate": rate}
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
        if order.get("undo_order"):
            async with self.session.get(f"{self.handle.control_url}/refunds/{order['undo_order']}") as r:
                if r.status == 200 and (await r.json()).get("state") == "SUCCESS":
                    return TradeStatus.REVERSED
        state = order["state"]
        if state == "SUCCESS":
            return TradeStatus.REFUNDED if order.get("refunded") else TradeStatus.SUCCEEDED
        if state == "FAILED":
            return TradeStatus.FAILED
        return TradeStatus.PAYING
