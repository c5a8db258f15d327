"""The Alipay simulator's driver for the channel conformance kit."""
from __future__ import annotations

import secrets

from gateway.channel import TradeStatus
from gateway.testing.conformance import SimulatorDriver

from .wire import trade_status

_CODES = {"success": "1234", "decline": "9011", "paying_then_success": "9001", "paying_forever": "9004"}
# Every call goes to /gateway.do: faults pick the Alipay method name.
_APIS = {"pay": "alipay.trade.pay", "query": "alipay.trade.query", "refund": "alipay.trade.refund",
         "reverse": "alipay.trade.cancel", "close": "alipay.trade.close"}
_KINDS = {"timeout": {"kind": "timeout", "delay_seconds": 5}, "http_error": {"kind": "http_error"},
          "reset": {"kind": "reset"}, "bad_signature": {"kind": "bad_signature"}}


class AlipayDriver(SimulatorDriver):
    def auth_code(self, outcome: str) -> str:
        return "28" + "".join(secrets.choice("0123456789") for _ in range(12)) + _CODES[outcome]

    async def open_page(self, url: str) -> None:
        """The patient's browser opens an H5 (``alipay.trade.wap.pay``) URL: the trade exists from now on."""
        async with self.session.get(url) as r:
            assert r.status == 200, await r.text()

    async def confirm(self, out_trade_no: str) -> None:
        # a precreated QR is scanned first; an H5 order must have been opened (``open_page``)
        async with self.session.post(f"{self.handle.control_url}/orders/{out_trade_no}/pay", json={}) as r:
            assert r.status == 200, await r.text()

    async def inject(self, kind: str, op: str, *, when: str = "before", count: int | None = 1,
                     rate: float = 1.0) -> None:
        spec = {**_KINDS[kind], "api": _APIS[op], "when": when, "count": count, "rate": rate}
        async with self.session.post(f"{self.handle.control_url}/faults", json=spec) as r:
            assert r.status == 201, await r.text()

    async def clear_faults(self) -> None:
        async with self.session.delete(f"{self.handle.control_url}/faults") as r:
            assert r.status == 200

    async def truth(self, out_trade_no: str) -> TradeStatus:
        """The order as the query sees it: a QR not scanned yet is not a trade (NOT_FOUND)."""
        async with self.session.get(f"{self.handle.control_url}/orders/{out_trade_no}") as r:
            if r.status == 404:
                return TradeStatus.NOT_FOUND
            order = await r.json()
        if order["state"] == "PRECREATED":
            return TradeStatus.NOT_FOUND
        return trade_status(order["trade_status"], paid=bool(order.get("send_pay_date")))
