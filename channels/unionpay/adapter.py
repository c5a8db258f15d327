"""The UnionPay QuickPass (ACP 5.1.0) channel adapter: payment code, undo, refunds, bills."""
from __future__ import annotations

import datetime as dt
import re
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import aiohttp
from pydantic import BaseModel, ValidationError

from gateway.channel import (
    Bill,
    Capability,
    ChannelAdapter,
    Method,
    NotifyAnswer,
    NotifyEvent,
    PayRequest,
    PayResult,
    RefundRequest,
    RefundResult,
    RefundStatus,
    ReverseResult,
    TradeStatus,
)
from gateway.errors import (
    NotifyRejected,
    NotSupported,
    UpstreamError,
    UpstreamUnavailable,
    ValidationFailed,
)

from . import crypto
from .bill import BillFormatError, decode_file_content, parse_settlement
from .client import CHANNEL, Answer, UnionPayClient
from .config import UnionPayConfig
from .convert import notify_event, plain, protocol_error, query_status, refund_result, trade_result
from .wire import (
    BUSY,
    CHANNEL_MOBILE,
    CST,
    CURRENCY_CNY,
    DUPLICATE,
    FILE_MISSING,
    IN_DOUBT,
    OK,
    TXN_CONSUME,
    TXN_REFUND,
    TXN_UNDO,
    Txn,
    WireFormatError,
    amount_text,
    braced,
    embedded_txn_time,
    format_txn_time,
    last_date_with_mmdd,
    settle_date_of,
    resp_message,
    undo_order_id,
    valid_order_id,
)

_RESERVED_OK = re.compile(r"[^&={}]{1,1024}")


class OrderClock:
    """The txnTime of each order: ACP finds a transaction by orderId *and* txnTime.

    An order number that carries its creation time (the gateway's ids do) gets the
    txnTime derived from it, so any process can query it later. Other order numbers
    get the current time, remembered by this adapter instance (bounded).
    """

    def __init__(self, limit: int = 50_000) -> None:
        self._seen: OrderedDict[str, str] = OrderedDict()
        self._limit = limit

    def known(self, order_id: str) -> str | None:
        return embedded_txn_time(order_id) or self._seen.get(order_id)

    def new(self, order_id: str) -> str:
        known = self.known(order_id)
        if known is not None:
            return known
        value = format_txn_time(dt.datetime.now(CST))
        self._seen[order_id] = value
        while len(self._seen) > self._limit:
            self._seen.popitem(last=False)
        return value


class UnionPayChannel(ChannelAdapter):
    """银联云闪付 / UnionPay QuickPass: payment code (被扫), undo, refunds, settlement files."""

    id = "unionpay"
    name_zh = "银联云闪付"
    name_en = "UnionPay QuickPass"
    capabilities = frozenset({Capability.CODE, Capability.REFUND, Capability.PARTIAL_REFUND,
                              Capability.REVERSE, Capability.BILL})
    config_model = UnionPayConfig
    auth_code_pattern = re.compile(r"62\d{17}")
    auth_code_hint = "19位数字，以62开头 / 19 digits starting 62"
    # ACP consumes are asynchronous: ask early and often while the patient may still be
    # confirming (password over the no-password limit), then undo.
    code_poll_schedule = (3, 6, 10, 15, 25, 35, 50)
    reverse_retry_seconds = 10.0
    query_interval = 30.0

    def __init__(self, config: BaseModel | Mapping[str, Any], session: aiohttp.ClientSession) -> None:
        if not isinstance(config, UnionPayConfig):
            raw = config.model_dump() if isinstance(config, BaseModel) else dict(config)
            config = UnionPayConfig.model_validate(raw)
        super().__init__(config, session)
        self.config: UnionPayConfig = config
        self.client = UnionPayClient(config, session)
        self.clock = OrderClock()
        self._learned_back_url: str | None = None

    # --- helpers ----------------------------------------------------------------------
    @staticmethod
    def _order_id(value: str, what: str) -> str:
        if not valid_order_id(value):
            raise ValidationFailed(f"{what} {value!r} is not a UnionPay orderId (8-40 letters and digits)",
                                   channel=CHANNEL)
        return value

    def _known_time(self, order_id: str) -> str:
        txn_time = self.clock.known(order_id)
        if txn_time is None:
            # the order number carries no time and this process did not send it
            raise protocol_error(f"txnTime of order {order_id} is unknown to this process; "
                                 "UnionPay finds orders by orderId and txnTime")
        return txn_time

    def _back_url(self, explicit: str | None) -> str | None:
        if explicit:
            self._learned_back_url = explicit
            return explicit
        return self._learned_back_url or self.config.back_url or self.notify_url

    def _base(self, kind: tuple[str, str, str]) -> dict[str, str]:
        txn_type, sub, biz = kind
        return {"txnType": txn_type, "txnSubType": sub, "bizType": biz, "channelType": CHANNEL_MOBILE,
                "currencyCode": CURRENCY_CNY}

    # --- pay / query --------------------------------------------------------------------
    async def pay(self, req: PayRequest) -> PayResult:
        if req.method is not Method.CODE:
            raise NotSupported(f"pay:{req.method.value}", self.id)
        if not req.auth_code:
            raise ValidationFailed("auth_code is required for a payment-code payment", channel=CHANNEL)
        order_id = self._order_id(req.out_trade_no, "out_trade_no")
        back_url = self._back_url(req.notify_url)
        if not back_url:
            raise ValidationFailed("a consume needs a backUrl: pass notify_url or set back_url", channel=CHANNEL)
        if req.attach and not _RESERVED_OK.fullmatch(req.attach):
            raise ValidationFailed("attach may not contain & = { } (it travels in reqReserved)", channel=CHANNEL)
        txn_time = self.clock.new(order_id)
        term_id = re.sub(r"[^0-9A-Za-z]", "", req.device_id or "")[:8]
        params = {**self._base(Txn.CONSUME), "orderId": order_id, "txnTime": txn_time,
                  "txnAmt": amount_text(req.amount), "qrNo": req.auth_code, "backUrl": back_url,
                  "termId": term_id, "reqReserved": req.attach or "",
                  "riskRateInfo": braced({"commodityName": req.subject[:40]})}
        ans = await self.client.back_trans(params)
        code, message = ans["respCode"], ans.get("respMsg") or None
        if code == OK:
            # accepted (受理成功); the result comes by notify or query
            if self.config.query_after_accept:
                try:
                    res = await self._query_consume(order_id, txn_time, check_undo=False)
                except UpstreamError:
                    res = None
                if res is not None and res.status is not TradeStatus.NOT_FOUND:
                    return res
            return PayResult(status=TradeStatus.PAYING, channel_trade_no=ans.get("queryId") or None, raw=plain(ans))
        if code in IN_DOUBT:
            return PayResult(status=TradeStatus.PAYING, error_code=code,
                             error_message=message or resp_message(code), raw=plain(ans))
        if code == DUPLICATE:  # this order was sent before: its state is the answer
            res = await self._query_consume(order_id, txn_time, check_undo=True)
            if res.status is TradeStatus.NOT_FOUND:
                raise protocol_error(f"consume {order_id}: duplicate, yet the query finds nothing")
            return res
        if code in BUSY:
            raise UpstreamUnavailable(f"consume {order_id}: respCode {code} {message or ''}".strip(),
                                      channel=CHANNEL, upstream_code=code)
        return PayResult(status=TradeStatus.FAILED, error_code=code, error_message=message or resp_message(code),
                         raw=plain(ans))

    async def query(self, out_trade_no: str) -> PayResult:
        return await self._query_consume(out_trade_no, self._known_time(out_trade_no), check_undo=True)

    async def _query_consume(self, order_id: str, txn_time: str, *, check_undo: bool) -> PayResult:
        ans = await self.client.query(order_id, txn_time)
        code = query_status(ans, order_id, (TXN_CONSUME,))
        if code is None:
            return PayResult(status=TradeStatus.NOT_FOUND, error_code=ans["respCode"],
                             error_message=ans.get("respMsg") or None, raw=plain(ans))
        res = trade_result(code, ans.get("origRespMsg"), ans)
        if check_undo and res.status is TradeStatus.SUCCEEDED:
            # a query of the consume reports the consume; an undo is a transaction of its own
            undo_code, undo = await self._query_undo(order_id, txn_time)
            if undo_code == OK:
                raw = {**plain(ans), "undo": plain(undo)}
                return res.model_copy(update={"status": TradeStatus.REVERSED, "raw": raw})
        return res

    async def _query_undo(self, order_id: str, txn_time: str) -> tuple[str | None, Answer]:
        uid = undo_order_id(order_id)
        ans = await self.client.query(uid, txn_time)
        return query_status(ans, uid, (TXN_UNDO,)), ans

    # --- reverse (undo, 消费撤销) -----------------------------------------------------------
    @staticmethod
    def _undo_outcome(code: str, message: str | None) -> ReverseResult:
        if code == OK:
            return ReverseResult(done=True)
        if code in IN_DOUBT:
            return ReverseResult(done=False, retry=True, error_code=code, error_message=message or resp_message(code))
        return ReverseResult(done=False, retry=False, error_code=code, error_message=message or resp_message(code))

    async def reverse(self, out_trade_no: str) -> ReverseResult:
        """Undo a payment-code consume. Same settlement day only; later, refund instead."""
        txn_time = self._known_time(out_trade_no)
        res = await self._query_consume(out_trade_no, txn_time, check_undo=False)
        if res.status is TradeStatus.NOT_FOUND:  # nothing to revoke
            return ReverseResult(done=True, error_code=res.error_code, error_message=res.error_message)
        if res.status is TradeStatus.PAYING:  # the patient may still be confirming: not yet
            return ReverseResult(done=False, retry=True, error_code=res.error_code, error_message=res.error_message)
        if res.status is TradeStatus.FAILED:  # no money was taken
            return ReverseResult(done=True, error_code=res.error_code, error_message=res.error_message)
        undo_code, undo = await self._query_undo(out_trade_no, txn_time)
        if undo_code is not None:  # an undo was sent before
            return self._undo_outcome(undo_code, undo.get("origRespMsg"))
        back_url = self._back_url(None)
        if not back_url:
            return ReverseResult(done=False, retry=False, error_code="NO_BACK_URL",
                                 error_message="an undo needs a backUrl: set back_url in the merchant configuration")
        amount, orig_qry_id = res.raw.get("txnAmt", ""), res.channel_trade_no
        if not amount.isdigit() or not orig_qry_id:
            raise protocol_error(f"query of {out_trade_no} lacks txnAmt or queryId")
        uid = undo_order_id(out_trade_no)
        # the undo reuses the consume's txnTime (same day by rule) so that it can always be found again
        params = {**self._base(Txn.UNDO), "orderId": uid, "txnTime": txn_time, "txnAmt": amount,
                  "origQryId": orig_qry_id, "backUrl": back_url, "reqReserved": out_trade_no}
        ans = await self.client.back_trans(params)
        code, message = ans["respCode"], ans.get("respMsg") or None
        if code == OK:
            if self.config.query_after_accept:
                try:
                    undo_code, undo = await self._query_undo(out_trade_no, txn_time)
                except UpstreamError:
                    undo_code = None
                if undo_code is not None:
                    return self._undo_outcome(undo_code, undo.get("origRespMsg"))
            return ReverseResult(done=False, retry=True, error_code="05", error_message=resp_message("05"))
        if code in IN_DOUBT or code in BUSY or code == DUPLICATE:
            return ReverseResult(done=False, retry=True, error_code=code, error_message=message or resp_message(code))
        return ReverseResult(done=False, retry=False, error_code=code, error_message=message or resp_message(code))

    # --- refunds (退货) -------------------------------------------------------------------
    async def refund(self, req: RefundRequest) -> RefundResult:
        refund_id = self._order_id(req.out_refund_no, "out_refund_no")
        self._order_id(req.out_trade_no, "out_trade_no")
        back_url = self._back_url(req.notify_url)
        if not back_url:
            raise ValidationFailed("a refund needs a backUrl: pass notify_url or set back_url", channel=CHANNEL)
        orig_qry_id = req.channel_trade_no
        if not orig_qry_id:
            res = await self._query_consume(req.out_trade_no, self._known_time(req.out_trade_no), check_undo=False)
            if res.status is not TradeStatus.SUCCEEDED:
                return RefundResult(status=RefundStatus.FAILED, error_code=res.error_code or "ORIGINAL_NOT_PAID",
                                    error_message=res.error_message or f"the consume is {res.status.value}",
                                    raw=res.raw)
            orig_qry_id = res.channel_trade_no
        txn_time = self.clock.new(refund_id)
        params = {**self._base(Txn.REFUND), "orderId": refund_id, "txnTime": txn_time,
                  "txnAmt": amount_text(req.amount), "origQryId": orig_qry_id or "", "backUrl": back_url,
                  "reqReserved": req.out_trade_no}
        ans = await self.client.back_trans(params)
        code, message = ans["respCode"], ans.get("respMsg") or None
        if code == OK:
            if self.config.query_after_accept:
                try:
                    found = await self._query_refund(refund_id, txn_time, req.out_trade_no)
                except UpstreamError:
                    found = None
                if found is not None:
                    return found
            return RefundResult(status=RefundStatus.PROCESSING, channel_refund_no=ans.get("queryId") or None,
                                raw=plain(ans))
        if code in IN_DOUBT:
            return RefundResult(status=RefundStatus.PROCESSING, raw=plain(ans))
        if code == DUPLICATE:  # sent before: that refund is the answer, if it is the same refund
            found = await self._query_refund(refund_id, txn_time, req.out_trade_no)
            if found is None:
                raise protocol_error(f"refund {refund_id}: duplicate, yet the query finds nothing")
            if found.raw.get("txnAmt") != str(req.amount):
                return RefundResult(status=RefundStatus.FAILED, error_code=code,
                                    error_message=f"{message or resp_message(code)}: out_refund_no was used "
                                                  f"for {found.raw.get('txnAmt')} fen", raw=plain(ans))
            return found
        if code in BUSY:
            raise UpstreamUnavailable(f"refund {refund_id}: respCode {code} {message or ''}".strip(),
                                      channel=CHANNEL, upstream_code=code)
        return RefundResult(status=RefundStatus.FAILED, error_code=code, error_message=message or resp_message(code),
                            raw=plain(ans))

    async def _query_refund(self, refund_id: str, txn_time: str, out_trade_no: str | None) -> RefundResult | None:
        ans = await self.client.query(refund_id, txn_time)
        code = query_status(ans, refund_id, (TXN_REFUND,))
        if code is None:
            return None
        if out_trade_no and ans.get("reqReserved") not in (None, "", out_trade_no):
            raise protocol_error(f"refund {refund_id} belongs to order {ans.get('reqReserved')}")
        return refund_result(code, ans.get("origRespMsg"), ans)

    async def query_refund(self, out_refund_no: str, out_trade_no: str) -> RefundResult:
        found = await self._query_refund(out_refund_no, self._known_time(out_refund_no), out_trade_no)
        if found is None:
            return RefundResult(status=RefundStatus.FAILED, error_code="34", error_message=resp_message("34"))
        return found

    # --- notifies ---------------------------------------------------------------------
    async def parse_notify(self, headers: Mapping[str, str], body: bytes) -> tuple[NotifyEvent, NotifyAnswer]:
        try:
            ans = self.client.read_signed(body, form_first=True)
        except (WireFormatError, crypto.SignatureError) as exc:
            raise NotifyRejected(f"notify not signed by UnionPay: {exc}", channel=CHANNEL) from exc
        if ans.get("merId") != self.config.mer_id:
            raise NotifyRejected(f"notify is for merchant {ans.get('merId')}", channel=CHANNEL)
        try:
            event = notify_event(ans)
        except (ValueError, ValidationError) as exc:
            raise NotifyRejected(f"notify unreadable: {exc}", channel=CHANNEL) from exc
        return event, NotifyAnswer(status=200, body=b"ok", content_type="text/plain")

    def notify_failure_answer(self, message: str) -> NotifyAnswer:
        """Anything but HTTP 200 makes UnionPay send the notify again later."""
        return NotifyAnswer(status=500, body=message.encode(), content_type="text/plain; charset=utf-8")

    # --- settlement file ----------------------------------------------------------------
    async def download_bill(self, bill_date: dt.date) -> Bill:
        """The settlement file of one settlement day (清算日, 23:00 the day before to 23:00)."""
        now = dt.datetime.now(CST)
        mmdd = bill_date.strftime("%m%d")
        # The current 清算日 runs to 23:00, so after 23:00 it is already tomorrow's date.
        if last_date_with_mmdd(mmdd, settle_date_of(now)) != bill_date:
            raise ValidationFailed(f"settleDate is sent as MMDD: {bill_date} is in the future or a year or "
                                   "more ago", channel=CHANNEL)
        ans = await self.client.file_transfer(mmdd, format_txn_time(now))
        code, message = ans["respCode"], ans.get("respMsg", "")
        if code == OK:
            content = ans.get("fileContent")
            if not content:
                raise protocol_error("file transfer answer has no fileContent")
            try:
                return parse_settlement(decode_file_content(content), bill_date, self.config.mer_id,
                                        require_summary=self.config.bill_summary_required)
            except BillFormatError as exc:
                raise protocol_error("settlement file does not parse or add up", exc) from exc
        if code == FILE_MISSING or code in IN_DOUBT or code in BUSY:
            raise UpstreamUnavailable(f"settlement file for {bill_date} not available: {code} {message}",
                                      channel=CHANNEL, upstream_code=code)
        raise protocol_error(f"file transfer refused: respCode {code} {message}")


__all__ = ["OrderClock", "UnionPayChannel"]
