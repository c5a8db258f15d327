"""The Alipay channel adapter (open platform gateway, public-key mode)."""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
from pydantic import BaseModel, ValidationError

from gateway.channel import (
    Bill,
    Capability,
    ChannelAdapter,
    Method,
    NotifyAnswer,
    NotifyEvent,
    NotifyKind,
    PayRequest,
    PayResult,
    RefundRequest,
    RefundResult,
    RefundStatus,
    ReverseResult,
    TradeStatus,
)
from gateway.errors import (
    InvalidState,
    NotifyRejected,
    UpstreamProtocolError,
    UpstreamUnavailable,
    ValidationFailed,
)
from gateway.money import fen_to_yuan

from . import crypto
from .bill import BillFormatError, empty_bill, parse_bill
from .client import CHANNEL, AlipayClient
from .config import AlipayConfig
from .convert import fen, protocol_error, refund_query_result, time_of, trade_answer, trade_result
from .wire import CST, Answer, BillUrlAnswer, CancelAnswer, RefundAnswer, format_time

BUYER_ID_RE = re.compile(r"2088\d{12}")


class AlipayChannel(ChannelAdapter):
    """支付宝 / Alipay: payment code, precreate QR, mini-program (JSAPI), H5, refunds, bills."""

    id = "alipay"
    name_zh = "支付宝"
    name_en = "Alipay"
    capabilities = frozenset({
        Capability.CODE, Capability.QR, Capability.JSAPI, Capability.H5, Capability.REFUND,
        Capability.PARTIAL_REFUND, Capability.REVERSE, Capability.CLOSE, Capability.BILL,
    })
    config_model = AlipayConfig
    auth_code_pattern = re.compile(r"(?:2[5-9]|30)\d{14,22}")
    auth_code_hint = "16-24位数字，以25-30开头 / 16-24 digits starting 25-30"
    # Face-to-face payment guidance: after 10003 query about every 5 s for 30 s,
    # then cancel (撤销) the trade.
    code_poll_schedule = (5, 10, 15, 20, 25, 30)
    # A cancel answered retry_flag=Y is tried again after about 10 s.
    reverse_retry_seconds = 10.0
    query_interval = 30.0
    order_ttl = dt.timedelta(minutes=30)
    # Precreate (QR) and wap.pay (H5) orders become trades only when the patient
    # scans or opens them: until then the query answers ACQ.TRADE_NOT_EXIST, so
    # NOT_FOUND for such an order before it expires means "not scanned yet".
    unseen_until_opened = frozenset({Method.QR, Method.H5})

    def __init__(self, config: BaseModel | Mapping[str, Any], session: aiohttp.ClientSession) -> None:
        if not isinstance(config, AlipayConfig):
            raw = config.model_dump() if isinstance(config, BaseModel) else dict(config)
            config = AlipayConfig.model_validate(raw)
        super().__init__(config, session)
        self.config: AlipayConfig = config
        self.client = AlipayClient(config, session)

    # --- helpers ----------------------------------------------------------------------
    @staticmethod
    def _unknown(ans: Answer) -> Exception:
        """An answer that settles nothing: unknown outcome."""
        if ans.unknown:
            return UpstreamUnavailable(ans.describe(), channel=CHANNEL, upstream_code=ans.error_code)
        return UpstreamProtocolError(f"unexpected answer {ans.describe()}", channel=CHANNEL,
                                     upstream_code=ans.error_code)

    @staticmethod
    def _declined(ans: Answer) -> PayResult:
        return PayResult(status=TradeStatus.FAILED, error_code=ans.error_code,
                         error_message=ans.error_message, raw=ans.data)

    def _order_biz(self, req: PayRequest) -> dict[str, Any]:
        biz: dict[str, Any] = {
            "out_trade_no": req.out_trade_no,
            "total_amount": fen_to_yuan(req.amount),
            "subject": req.subject[:256],
            "body": req.attach,
            "store_id": req.store_id,
            "terminal_id": req.device_id,
        }
        if req.expire_at is not None:
            biz["time_expire"] = format_time(req.expire_at)
        if self.config.seller_id:
            biz["seller_id"] = self.config.seller_id
        return biz

    def _notify_url(self, req: PayRequest) -> str:
        url = req.notify_url or self.config.notify_url
        if not url:
            raise ValidationFailed("notify_url is required for QR/JSAPI/H5 orders", channel=CHANNEL)
        return url

    # --- pay --------------------------------------------------------------------------
    async def pay(self, req: PayRequest) -> PayResult:
        if req.method is Method.CODE:
            return await self._code_pay(req)
        if req.method is Method.H5:
            return self._wap_pay(req)
        biz = self._order_biz(req)
        if req.method is Method.JSAPI:
            if not req.openid:
                raise ValidationFailed("openid (buyer_id or buyer_open_id) is required for JSAPI", channel=CHANNEL)
            biz["product_code"] = "JSAPI_PAY"
            biz["buyer_id" if BUYER_ID_RE.fullmatch(req.openid) else "buyer_open_id"] = req.openid
            method = "alipay.trade.create"
        else:
            method = "alipay.trade.precreate"
        ans = await self.client.call(method, biz, notify_url=self._notify_url(req))
        if not ans.ok:
            if ans.sub_code == "ACQ.TRADE_HAS_SUCCESS":
                return await self.query(req.out_trade_no)
            if ans.refusal:
                return self._declined(ans)  # the order was not created: nothing can be paid against it
            raise self._unknown(ans)
        tx = trade_answer(ans.data, req.out_trade_no)
        if method == "alipay.trade.create":
            if not tx.trade_no:
                raise protocol_error("alipay.trade.create answer lacks trade_no")
            return PayResult(status=TradeStatus.PENDING, channel_trade_no=tx.trade_no,
                             jsapi_params={"tradeNO": tx.trade_no, "trade_no": tx.trade_no}, raw=ans.data)
        qr = ans.data.get("qr_code")
        if not isinstance(qr, str) or not qr:
            raise protocol_error("alipay.trade.precreate answer lacks qr_code")
        return PayResult(status=TradeStatus.PENDING, code_url=qr, raw=ans.data)

    def _wap_pay(self, req: PayRequest) -> PayResult:
        """H5: a signed ``alipay.trade.wap.pay`` URL; the trade is created when the browser opens it."""
        biz = self._order_biz(req)
        biz["product_code"] = "QUICK_WAP_WAY"
        url = self.client.page_url("alipay.trade.wap.pay", biz, notify_url=self._notify_url(req))
        return PayResult(status=TradeStatus.PENDING, h5_url=url, raw={"method": "alipay.trade.wap.pay"})

    async def _code_pay(self, req: PayRequest) -> PayResult:
        if not req.auth_code:
            raise ValidationFailed("auth_code is required for a payment-code payment", channel=CHANNEL)
        biz = self._order_biz(req)
        biz |= {"scene": "bar_code", "auth_code": req.auth_code}
        # No notify_url: a code payment is settled by its answer and by queries.
        ans = await self.client.call("alipay.trade.pay", biz)
        if ans.ok:
            return trade_result(ans.data, req.out_trade_no, status=TradeStatus.SUCCEEDED)
        if ans.in_process:
            tx = trade_answer(ans.data, req.out_trade_no)
            return PayResult(status=TradeStatus.PAYING, channel_trade_no=tx.trade_no or None,
                             error_code=ans.code, error_message=ans.msg.strip() or "order success pay inprocess",
                             raw=ans.data)
        if ans.sub_code == "ACQ.TRADE_HAS_SUCCESS":  # a retry of a paid order
            return await self.query(req.out_trade_no)
        if ans.refusal:
            return self._declined(ans)
        raise self._unknown(ans)

    # --- query / close / reverse ------------------------------------------------------
    async def query(self, out_trade_no: str) -> PayResult:
        ans = await self.client.call("alipay.trade.query", {"out_trade_no": out_trade_no}, retry=True)
        if ans.ok:
            return trade_result(ans.data, out_trade_no)
        if ans.sub_code == "ACQ.TRADE_NOT_EXIST":
            return PayResult(status=TradeStatus.NOT_FOUND, error_code=ans.sub_code,
                             error_message=ans.sub_msg, raw=ans.data)
        raise self._unknown(ans)

    async def close(self, out_trade_no: str) -> None:
        ans = await self.client.call("alipay.trade.close", {"out_trade_no": out_trade_no})
        if ans.ok:
            return
        if ans.sub_code == "ACQ.TRADE_NOT_EXIST":
            # Not a trade yet (a QR not scanned, an H5 page not opened): cancel the
            # number so that the order can no longer be paid.
            await self._cancel_unopened(out_trade_no)
            return
        if ans.sub_code == "ACQ.TRADE_STATUS_ERROR":
            now = await self.query(out_trade_no)
            if now.status in (TradeStatus.CLOSED, TradeStatus.REVERSED, TradeStatus.NOT_FOUND):
                return
            if now.status is TradeStatus.SUCCEEDED:
                raise InvalidState("the order is already paid at Alipay; query it", channel=CHANNEL,
                                   upstream_code=ans.sub_code)
        raise self._unknown(ans)

    async def _cancel_unopened(self, out_trade_no: str) -> None:
        ans = await self.client.call("alipay.trade.cancel", {"out_trade_no": out_trade_no})
        data = CancelAnswer.model_validate(ans.data)
        if (data.retry_flag or "").upper() == "Y":
            raise UpstreamUnavailable("cancel of an unopened order asks to retry", channel=CHANNEL,
                                      upstream_code=ans.error_code)
        if not ans.ok and not ans.refusal:
            raise self._unknown(ans)
        # ok: closed, or paid in the meantime and refunded (the query shows which)

    async def reverse(self, out_trade_no: str) -> ReverseResult:
        ans = await self.client.call("alipay.trade.cancel", {"out_trade_no": out_trade_no})
        try:
            data = CancelAnswer.model_validate(ans.data)
        except ValidationError as exc:
            raise protocol_error("unreadable cancel answer", exc) from exc
        if (data.retry_flag or "").upper() == "Y":
            return ReverseResult(done=False, retry=True, error_code=ans.error_code if not ans.ok else "RETRY",
                                 error_message=ans.error_message or "retry_flag=Y")
        if ans.ok:
            return ReverseResult(done=True, error_code=None, error_message=data.action or None)
        if ans.sub_code == "ACQ.TRADE_NOT_EXIST":
            return ReverseResult(done=True, error_code=ans.sub_code, error_message=ans.sub_msg)
        if ans.unknown:
            raise self._unknown(ans)
        if ans.refusal:
            return ReverseResult(done=False, retry=False, error_code=ans.error_code, error_message=ans.error_message)
        raise self._unknown(ans)

    # --- refunds ----------------------------------------------------------------------
    async def refund(self, req: RefundRequest) -> RefundResult:
        biz = {"out_trade_no": req.out_trade_no, "refund_amount": fen_to_yuan(req.amount),
               "out_request_no": req.out_refund_no, "refund_reason": req.reason[:256] if req.reason else None}
        ans = await self.client.call("alipay.trade.refund", biz)
        if not ans.ok:
            if ans.refusal:
                return RefundResult(status=RefundStatus.FAILED, error_code=ans.error_code,
                                    error_message=ans.error_message, raw=ans.data)
            raise self._unknown(ans)
        try:
            data = RefundAnswer.model_validate(ans.data)
        except ValidationError as exc:
            raise protocol_error("unreadable refund answer", exc) from exc
        if data.out_trade_no not in (None, req.out_trade_no):
            raise protocol_error(f"refund answer is for order {data.out_trade_no}")
        fen(data.refund_fee, "refund_fee")
        if (data.fund_change or "").upper() == "Y":
            return RefundResult(status=RefundStatus.SUCCEEDED,
                                refunded_at=time_of(data.gmt_refund_pay, "gmt_refund_pay"), raw=ans.data)
        # fund_change N: a retry of a refund already made, or one still being processed
        found = await self.query_refund(req.out_refund_no, req.out_trade_no)
        if found.status is RefundStatus.FAILED:
            return RefundResult(status=RefundStatus.PROCESSING, raw=ans.data)  # accepted, not yet visible
        return found

    async def query_refund(self, out_refund_no: str, out_trade_no: str) -> RefundResult:
        biz = {"out_trade_no": out_trade_no, "out_request_no": out_refund_no, "query_options": ["gmt_refund_pay"]}
        ans = await self.client.call("alipay.trade.fastpay.refund.query", biz, retry=True)
        if ans.ok:
            return refund_query_result(ans.data, out_refund_no, out_trade_no)
        if ans.sub_code == "ACQ.TRADE_NOT_EXIST":
            return RefundResult(status=RefundStatus.FAILED, error_code=ans.sub_code,
                                error_message=ans.sub_msg, raw=ans.data)
        raise self._unknown(ans)

    # --- notifies ---------------------------------------------------------------------
    async def parse_notify(self, headers: Mapping[str, str], body: bytes) -> tuple[NotifyEvent, NotifyAnswer]:
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
        except (UnicodeDecodeError, ValueError) as exc:
            raise NotifyRejected("the notify is not a UTF-8 form", channel=CHANNEL) from exc
        params = dict(pairs)
        if len(params) != len(pairs):
            raise NotifyRejected("the notify repeats a parameter", channel=CHANNEL)
        try:
            self.client.verify_notify(params)
        except crypto.SignatureError as exc:
            raise NotifyRejected(f"notify signature: {exc}", channel=CHANNEL) from exc
        if params.get("app_id") != self.config.app_id:
            raise NotifyRejected(f"notify for application {params.get('app_id')!r}", channel=CHANNEL)
        if self.config.seller_id and params.get("seller_id") not in (None, self.config.seller_id):
            raise NotifyRejected(f"notify for seller {params.get('seller_id')!r}", channel=CHANNEL)
        if params.get("notify_type", "trade_status_sync") != "trade_status_sync":
            raise NotifyRejected(f"unsupported notify_type {params.get('notify_type')!r}", channel=CHANNEL)
        try:
            event = self._notify_event(params)
        except (UpstreamProtocolError, ValidationError, KeyError) as exc:
            raise NotifyRejected(f"notify unreadable: {exc}", channel=CHANNEL) from exc
        return event, NotifyAnswer(status=200, body=b"success", content_type="text/plain")

    def _notify_event(self, params: dict[str, str]) -> NotifyEvent:
        tx = trade_answer(params)
        event_id = params.get("notify_id") or None
        if tx.out_biz_no and (tx.refund_fee or tx.gmt_refund):
            # a refund made with out_request_no = out_biz_no (partial: TRADE_SUCCESS, full: TRADE_CLOSED)
            refund = RefundResult(status=RefundStatus.SUCCEEDED, refunded_at=time_of(tx.gmt_refund, "gmt_refund"),
                                  raw=params)
            return NotifyEvent(kind=NotifyKind.REFUND, out_trade_no=tx.out_trade_no, out_refund_no=tx.out_biz_no,
                               refund=refund, event_id=event_id)
        return NotifyEvent(kind=NotifyKind.PAYMENT, out_trade_no=tx.out_trade_no, trade=trade_result(params),
                           event_id=event_id)

    def notify_failure_answer(self, message: str) -> NotifyAnswer:
        """Anything but ``success`` makes Alipay send the notify again later."""
        return NotifyAnswer(status=500, body=b"fail", content_type="text/plain")

    # --- bill -------------------------------------------------------------------------
    async def download_bill(self, bill_date: dt.date) -> Bill:
        biz = {"bill_type": "trade", "bill_date": bill_date.isoformat()}
        ans = await self.client.call("alipay.data.dataservice.bill.downloadurl.query", biz, retry=True)
        if not ans.ok:
            if ans.sub_code == "isp.bill_not_exist":
                if bill_date >= dt.datetime.now(CST).date():
                    # a day not over yet has no bill: "not ready", never "no trades"
                    raise UpstreamUnavailable(f"no bill yet for {bill_date}", channel=CHANNEL,
                                              upstream_code=ans.sub_code)
                return empty_bill(bill_date)
            raise UpstreamUnavailable(ans.describe(), channel=CHANNEL) if ans.unknown else \
                protocol_error(f"bill url refused: {ans.describe()}")
        try:
            url = BillUrlAnswer.model_validate(ans.data).bill_download_url
        except ValidationError as exc:
            raise protocol_error("unreadable bill url answer", exc) from exc
        data = await self.client.download(url)
        try:
            return parse_bill(data, bill_date)
        except BillFormatError as exc:
            raise protocol_error("the bill does not parse or add up", exc) from exc

