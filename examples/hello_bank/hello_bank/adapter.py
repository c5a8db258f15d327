"""The Hello Bank Pay channel adapter: payment code and QR, refunds, reverse, close, bills."""
from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from gateway.channel import (Bill, Capability, ChannelAdapter, Method, NotifyAnswer, NotifyEvent,
                             NotifyKind, PayRequest, PayResult, RefundRequest, RefundResult, RefundStatus,
                             ReverseResult, TradeStatus)
from gateway.errors import (InvalidState, NotifyRejected, NotSupported, UpstreamError, UpstreamProtocolError,
                            UpstreamTimeout, UpstreamUnavailable, ValidationFailed)
from gateway.money import fen_to_yuan

from .wire import (CHANNEL, CLOCK_SKEW_SECONDS, MERCHANT, NONCE, SIGNATURE, TIMESTAMP, dumps, format_time, json_answer,
                   parse_bill, refund_result, sign, trade_result, verify)

# Answer codes that are a clear "no": the bank did nothing, so the result is FAILED.
PAY_DECLINES = frozenset({"INVALID_REQUEST"})
REFUND_DECLINES = frozenset({"INVALID_REQUEST", "ORDER_NOT_FOUND", "ORDER_NOT_PAID", "REFUND_EXCEEDS_PAID"})


class HelloBankConfig(BaseModel):
    """One Hello Bank merchant (商户)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    merchant_no: str = Field(min_length=1, description="商户号 / merchant number")
    api_key: SecretStr = Field(min_length=16, description="HMAC key; read with api_key.get_secret_value()")
    base_url: str = Field("https://api.hellobank.example", pattern=r"^https?://[^/]+(/.*[^/])?$",
                          description="the bank's API root, without a trailing slash")


class HelloBankChannel(ChannelAdapter):
    """示例银行扫码付 / Hello Bank Pay."""

    id = "hello_bank"
    name_zh = "示例银行扫码付"
    name_en = "Hello Bank Pay"
    capabilities = frozenset({Capability.CODE, Capability.QR, Capability.REFUND, Capability.PARTIAL_REFUND,
                              Capability.REVERSE, Capability.CLOSE, Capability.BILL})
    config_model = HelloBankConfig
    auth_code_pattern = re.compile(r"^88\d{16}$")
    auth_code_hint = "18位数字，以88开头 / 18 digits starting with 88"
    # The bank's confirmation prompt lasts 30 s: query a few times, then reverse.
    code_poll_schedule = (3, 6, 10, 15, 20, 30)
    query_interval = 20.0
    order_ttl = dt.timedelta(minutes=30)

    config: HelloBankConfig

    # --- transport ----------------------------------------------------------------------
    async def _call(self, op: str, payload: dict[str, Any]) -> bytes:
        """POST a signed request to ``/api/{op}``; return the verified answer body.

        Timeouts raise ``UpstreamTimeout``; connection failures and 5xx raise
        ``UpstreamUnavailable``; an answer without a valid signature (or any status
        but 200) raises ``UpstreamProtocolError``. In all three the outcome is unknown.
        """
        path = urlsplit(self.config.base_url).path + f"/api/{op}"  # the signed path is the URL's whole path
        key = self.config.api_key.get_secret_value()
        body = dumps({"merchant_no": self.config.merchant_no, **payload})
        ts, nonce = str(int(time.time())), secrets.token_hex(12)
        headers = {"Content-Type": "application/json", MERCHANT: self.config.merchant_no, TIMESTAMP: ts, NONCE: nonce,
                   SIGNATURE: sign(key, "request", path, ts, nonce, body)}
        try:
            async with self.session.post(f"{self.config.base_url}/api/{op}", data=body, headers=headers,
                                         allow_redirects=False) as resp:
                status, answer = resp.status, await resp.read()
                their_ts, their_sig = resp.headers.get(TIMESTAMP, ""), resp.headers.get(SIGNATURE)
        except TimeoutError as exc:  # before OSError: TimeoutError is one
            raise UpstreamTimeout(f"{op}: no answer in time", channel=CHANNEL) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise UpstreamUnavailable(f"{op}: connection failed: {exc!r}", channel=CHANNEL) from exc
        if status >= 500:
            raise UpstreamUnavailable(f"{op}: HTTP {status}", channel=CHANNEL, http_status=status)
        # The answer's signature covers our own nonce: an old answer cannot be replayed.
        if not verify(key, their_sig, "response", their_ts, nonce, answer):
            raise UpstreamProtocolError(f"{op}: HTTP {status} answer is not signed by the bank",
                                        channel=CHANNEL, http_status=status)
        if status != 200:
            raise UpstreamProtocolError(f"{op}: unexpected HTTP {status}", channel=CHANNEL, http_status=status)
        return answer

    async def _call_json(self, op: str, payload: dict[str, Any]) -> dict[str, Any]:
        return json_answer(op, await self._call(op, payload))

    @staticmethod
    def _unexpected(op: str, data: dict[str, Any]) -> UpstreamError:
        code = data.get("code")
        if code == "SYSTEM_BUSY":
            return UpstreamUnavailable(f"{op}: the bank is busy", channel=CHANNEL, upstream_code=code)
        return UpstreamProtocolError(f"{op}: unexpected answer {code!r} {data.get('message', '')}".strip(),
                                     channel=CHANNEL, upstream_code=code)

    @staticmethod
    def _trade(op: str, data: dict[str, Any], out_trade_no: str) -> PayResult:
        trade = data.get("trade")
        if not isinstance(trade, dict) or trade.get("out_trade_no") != out_trade_no:
            raise UpstreamProtocolError(f"{op}: the answer is not about order {out_trade_no}", channel=CHANNEL)
        return trade_result(trade, raw=data)

    # --- payments -----------------------------------------------------------------------
    async def pay(self, req: PayRequest) -> PayResult:
        if req.method not in (Method.CODE, Method.QR):
            raise NotSupported(f"pay:{req.method}", self.id)
        if req.method is Method.CODE and not req.auth_code:
            raise ValidationFailed("auth_code is required for a payment-code payment", channel=CHANNEL)
        data = await self._call_json("pay", {
            "out_trade_no": req.out_trade_no, "amount": fen_to_yuan(req.amount), "subject": req.subject[:64],
            "method": req.method.value, "auth_code": req.auth_code, "notify_url": req.notify_url,
            "expire_at": format_time(req.expire_at) if req.expire_at else None,
        })
        code = data.get("code")
        if code == "OK":  # the order exists; a decline is an order in state FAILED
            return self._trade("pay", data, req.out_trade_no)
        if code in PAY_DECLINES:
            return PayResult(status=TradeStatus.FAILED, error_code=code, error_message=data.get("message"), raw=data)
        raise self._unexpected("pay", data)  # e.g. DUPLICATE_ORDER: the number is taken; query to learn more

    async def query(self, out_trade_no: str) -> PayResult:
        data = await self._call_json("query", {"out_trade_no": out_trade_no})
        if data.get("code") == "OK":
            return self._trade("query", data, out_trade_no)
        if data.get("code") == "ORDER_NOT_FOUND":
            return PayResult(status=TradeStatus.NOT_FOUND, error_code="ORDER_NOT_FOUND", raw=data)
        raise self._unexpected("query", data)

    async def close(self, out_trade_no: str) -> None:
        data = await self._call_json("close", {"out_trade_no": out_trade_no})
        if data.get("code") in ("OK", "ORDER_NOT_FOUND"):
            return
        if data.get("code") == "ORDER_PAID":
            raise InvalidState("the order is already paid at Hello Bank; query it", channel=CHANNEL)
        raise self._unexpected("close", data)

    async def reverse(self, out_trade_no: str) -> ReverseResult:
        data = await self._call_json("reverse", {"out_trade_no": out_trade_no})
        if data.get("code") == "OK":
            return ReverseResult(done=True)
        if data.get("code") == "ORDER_REFUNDED":  # refunds exist: it cannot be reversed any more
            return ReverseResult(done=False, retry=False, error_code="ORDER_REFUNDED",
                                 error_message=data.get("message"))
        raise self._unexpected("reverse", data)

    # --- refunds ------------------------------------------------------------------------
    async def refund(self, req: RefundRequest) -> RefundResult:
        data = await self._call_json("refund", {
            "out_trade_no": req.out_trade_no, "out_refund_no": req.out_refund_no,
            "amount": fen_to_yuan(req.amount), "reason": req.reason, "notify_url": req.notify_url,
        })
        if data.get("code") == "OK":
            return self._refund("refund", data, req.out_refund_no)
        if data.get("code") in REFUND_DECLINES:
            return RefundResult(status=RefundStatus.FAILED, error_code=data["code"],
                                error_message=data.get("message"), raw=data)
        raise self._unexpected("refund", data)

    async def query_refund(self, out_refund_no: str, out_trade_no: str) -> RefundResult:
        data = await self._call_json("refund/query", {"out_trade_no": out_trade_no,
                                                      "out_refund_no": out_refund_no})
        if data.get("code") == "OK":
            return self._refund("refund/query", data, out_refund_no)
        if data.get("code") == "REFUND_NOT_FOUND":  # the bank never took this refund
            return RefundResult(status=RefundStatus.FAILED, error_code="REFUND_NOT_FOUND", raw=data)
        raise self._unexpected("refund/query", data)

    @staticmethod
    def _refund(op: str, data: dict[str, Any], out_refund_no: str) -> RefundResult:
        refund = data.get("refund")
        if not isinstance(refund, dict) or refund.get("out_refund_no") != out_refund_no:
            raise UpstreamProtocolError(f"{op}: the answer is not about refund {out_refund_no}", channel=CHANNEL)
        return refund_result(refund, raw=data)

    # --- notifies -----------------------------------------------------------------------
    async def parse_notify(self, headers: Mapping[str, str], body: bytes) -> tuple[NotifyEvent, NotifyAnswer]:
        h = {k.lower(): v for k, v in headers.items()}
        ts = h.get(TIMESTAMP.lower(), "")
        if h.get(MERCHANT.lower()) != self.config.merchant_no or not verify(
                self.config.api_key.get_secret_value(), h.get(SIGNATURE.lower()), "notify", ts,
                h.get(NONCE.lower(), ""), body):
            raise NotifyRejected("notify signature does not verify", channel=CHANNEL)
        if not ts.isdigit() or abs(time.time() - int(ts)) > CLOCK_SKEW_SECONDS:
            raise NotifyRejected("notify timestamp outside the allowed window", channel=CHANNEL)
        try:
            data = json.loads(body)
            if data["merchant_no"] != self.config.merchant_no:
                raise NotifyRejected("notify for another merchant", channel=CHANNEL)
            if data["event"] == "TRADE_SUCCESS":
                trade = trade_result(data["trade"])
                event = NotifyEvent(kind=NotifyKind.PAYMENT, out_trade_no=data["trade"]["out_trade_no"],
                                    trade=trade, event_id=data.get("notify_id"))
            elif data["event"] in ("REFUND_SUCCESS", "REFUND_FAILED"):
                refund = data["refund"]
                event = NotifyEvent(kind=NotifyKind.REFUND, out_trade_no=refund["out_trade_no"],
                                    out_refund_no=refund["out_refund_no"], refund=refund_result(refund),
                                    event_id=data.get("notify_id"))
            else:
                raise NotifyRejected(f"unknown notify event {data['event']!r}", channel=CHANNEL)
        except (ValueError, KeyError, TypeError, UpstreamProtocolError) as exc:
            raise NotifyRejected(f"unreadable notify: {exc}", channel=CHANNEL) from exc
        return event, NotifyAnswer(status=200, body=b'{"code":"OK"}')

    def notify_failure_answer(self, message: str) -> NotifyAnswer:
        return NotifyAnswer(status=500, body=dumps({"code": "RETRY", "message": message}))

    # --- bill ---------------------------------------------------------------------------
    async def download_bill(self, bill_date: dt.date) -> Bill:
        raw = await self._call("bill", {"bill_date": bill_date.isoformat()})
        if raw[:1] == b"{":  # an error answer is JSON; a bill is CSV
            data = json_answer("bill", raw)
            if data.get("code") == "BILL_NOT_READY":
                raise UpstreamUnavailable(f"the bill of {bill_date} is not ready yet", channel=CHANNEL)
            raise self._unexpected("bill", data)
        try:
            return parse_bill(raw, bill_date, self.config.merchant_no)
        except (ValueError, KeyError, IndexError) as exc:
            raise UpstreamProtocolError(f"the bill of {bill_date} does not parse or add up: {exc}",
                                        channel=CHANNEL) from exc

