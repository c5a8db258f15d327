"""The reference bank's e-CNY acquiring adapter (``bank: "refbank"``)."""
from __future__ import annotations

import datetime as dt
import gzip
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson
from pydantic import BaseModel, ValidationError

from gateway.bank import EcnyAcquirer
from gateway.channel import (
    Bill,
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
    NotSupported,
    UpstreamProtocolError,
    UpstreamUnavailable,
    ValidationFailed,
)

from . import crypto
from .client import ORIGIN, BankAnswer, RefBankClient, protocol_error
from .config import RefBankConfig
from .convert import refund_result, trade_result
from .recon import ReconFormatError, parse_recon, to_bill
from .wire import (
    CODEPAY_DECLINES,
    NOTIFY_ANSWER,
    PATH_BILL,
    PATH_CLOSE,
    PATH_CODEPAY,
    PATH_PRECREATE,
    PATH_QUERY,
    PATH_REFUND,
    PATH_REFUND_QUERY,
    PATH_REVOKE,
    REFUND_DECLINES,
    UNKNOWN_CODES,
    BillRequest,
    CodePayRequest,
    Notice,
    PrecreateRequest,
    RefundApply,
    RefundRef,
    TradeRef,
    dumps,
    format_date,
    format_time,
    yuan,
)

# a retry of an order the bank already finished: its query tells the truth
_ALREADY = frozenset({"ORDER_PAID", "ORDER_CLOSED", "ORDER_REVOKED"})
# revoke answers meaning "no money is kept"
_REVOKED_OR_NOTHING = frozenset({"ORDER_NOT_FOUND", "ORDER_REVOKED", "ORDER_CLOSED"})
# revoke answers meaning "refused for good"
_REVOKE_REFUSED = frozenset({"REVOKE_NOT_ALLOWED", "REVOKE_EXPIRED", "PARAM_ERROR", "SIGN_INVALID",
                             "REQUEST_EXPIRED", "KEY_NOT_FOUND", "MERCHANT_NOT_FOUND"})


class RefBankAcquirer(EcnyAcquirer):
    """参考运营银行 / Reference operating bank: payment code, dynamic QR, revoke, refunds, daily file."""

    id = "refbank"
    name_zh = "参考运营银行"
    name_en = "Reference operating bank"
    config_model = RefBankConfig
    supports_qr = True

    def __init__(self, config: BaseModel | Mapping[str, Any], session: aiohttp.ClientSession) -> None:
        super().__init__(config, session)
        self.config: RefBankConfig
        self.client = RefBankClient(self.config, session)

    @property
    def qr_available(self) -> bool:
        return self.config.qr_enabled

    @property
    def _mid(self) -> str:
        return self.config.merchant_id

    @staticmethod
    def _unknown(ans: BankAnswer, what: str) -> Exception:
        """An answer the adapter cannot take as an outcome."""
        if ans.code in UNKNOWN_CODES:
            return UpstreamUnavailable(f"{what}: {ans.code} {ans.message}", **ORIGIN, upstream_code=ans.code,
                                       request_id=ans.request_id)
        return UpstreamProtocolError(f"{what}: unexpected answer HTTP {ans.status} {ans.code} {ans.message}",
                                     **ORIGIN, upstream_code=ans.code, request_id=ans.request_id)

    # --- payment code ---------------------------------------------------------------------
    async def pay_code(self, req: PayRequest) -> PayResult:
        if not req.auth_code:
            raise ValidationFailed("auth_code is required for a payment-code payment", **ORIGIN)
        body = CodePayRequest(
            out_trade_no=req.out_trade_no, auth_code=req.auth_code, amount=yuan(req.amount),
            subject=req.subject[:128], attach=req.attach, notify_url=req.notify_url or self.config.notify_url,
            device_id=req.device_id, store_id=req.store_id, client_ip=req.client_ip,
        )
        ans = await self.client.call(PATH_CODEPAY, body)
        if ans.ok:
            return trade_result(ans.data, self._mid, req.out_trade_no)
        if ans.code in _ALREADY:
            return await self.query(req.out_trade_no)
        if ans.code in CODEPAY_DECLINES:
            return PayResult(status=TradeStatus.FAILED, error_code=ans.code, error_message=ans.message,
                             raw={"code": ans.code, "message": ans.message})
        raise self._unknown(ans, "codepay")

    # --- dynamic QR -------------------------------------------------------------------------
    async def precreate(self, req: PayRequest) -> PayResult:
        if not self.qr_available:
            raise NotSupported("pay:qr", "ecny")
        notify_url = req.notify_url or self.config.notify_url
        if not notify_url:
            raise ValidationFailed("notify_url is required for a QR order", **ORIGIN)
        body = PrecreateRequest(
            out_trade_no=req.out_trade_no, amount=yuan(req.amount), subject=req.subject[:128], attach=req.attach,
            notify_url=notify_url, expire_time=format_time(req.expire_at) if req.expire_at else None,
            device_id=req.device_id, store_id=req.store_id,
        )
        ans = await self.client.call(PATH_PRECREATE, body)
        if ans.ok:
            qr = ans.data.get("qr_code")
            if not isinstance(qr, str) or not qr:
                raise protocol_error("precreate answer lacks qr_code")
            result = trade_result(ans.data, self._mid, req.out_trade_no)
            return result.model_copy(update={"code_url": qr})
        if ans.code == "ORDER_PAID":
            return await self.query(req.out_trade_no)
        if ans.code in UNKNOWN_CODES:
            raise self._unknown(ans, "precreate")
        # the order was not created (or cannot be paid): nothing can be charged against it
        return PayResult(status=TradeStatus.FAILED, error_code=ans.code, error_message=ans.message,
                         raw={"code": ans.code, "message": ans.message})

    async def close(self, out_trade_no: str) -> None:
        if not self.qr_available:
            raise NotSupported("close", "ecny")
        ans = await self.client.call(PATH_CLOSE, TradeRef(out_trade_no=out_trade_no))
        if ans.ok or ans.code in ("ORDER_NOT_FOUND", "ORDER_CLOSED"):
            return
        if ans.code == "ORDER_PAID":
            raise InvalidState("the order is already paid at the bank; query it", **ORIGIN, upstream_code=ans.code)
        raise self._unknown(ans, "close")

    # --- query / revoke -----------------------------------------------------------------------
    async def query(self, out_trade_no: str) -> PayResult:
        ans = await self.client.call(PATH_QUERY, TradeRef(out_trade_no=out_trade_no), retry=True)
        if ans.ok:
            return trade_result(ans.data, self._mid, out_trade_no)
        if ans.code == "ORDER_NOT_FOUND":
            return PayResult(status=TradeStatus.NOT_FOUND, error_code=ans.code, error_message=ans.message)
        raise self._unknown(ans, "query")

    async def reverse(self, out_trade_no: str) -> ReverseResult:
        ans = await self.client.call(PATH_REVOKE, TradeRef(out_trade_no=out_trade_no))
        if ans.ok:
            result = trade_result(ans.data, self._mid, out_trade_no)
            if result.status is not TradeStatus.REVERSED:
                raise protocol_error(f"revoke answered SUCCESS but the trade is {result.status.value}")
            return ReverseResult(done=True)
        if ans.code in _REVOKED_OR_NOTHING:
            return ReverseResult(done=True, error_code=ans.code, error_message=ans.message)
        if ans.code == "TRADE_PROCESSING":
            return ReverseResult(done=False, retry=True, error_code=ans.code, error_message=ans.message)
        if ans.code in _REVOKE_REFUSED:
            return ReverseResult(done=False, retry=False, error_code=ans.code, error_message=ans.message)
        raise self._unknown(ans, "revoke")

    # --- refunds ------------------------------------------------------------------------------
    async def refund(self, req: RefundRequest) -> RefundResult:
        body = RefundApply(
            out_trade_no=req.out_trade_no, out_refund_no=req.out_refund_no, refund_amount=yuan(req.amount),
            total_amount=yuan(req.total), reason=req.reason[:80] if req.reason else None,
            notify_url=req.notify_url or self.config.notify_url,
        )
        ans = await self.client.call(PATH_REFUND, body)
        if ans.ok:
            return refund_result(ans.data, self._mid, req.out_refund_no, req.out_trade_no)
        if ans.code in REFUND_DECLINES:
            return RefundResult(status=RefundStatus.FAILED, error_code=ans.code, error_message=ans.message,
                                raw={"code": ans.code, "message": ans.message})
        raise self._unknown(ans, "refund")

    async def query_refund(self, out_refund_no: str, out_trade_no: str) -> RefundResult:
        ans = await self.client.call(PATH_REFUND_QUERY, RefundRef(out_refund_no=out_refund_no), retry=True)
        if ans.ok:
            return refund_result(ans.data, self._mid, out_refund_no, out_trade_no)
        if ans.code == "REFUND_NOT_FOUND":
            return RefundResult(status=RefundStatus.FAILED, error_code=ans.code, error_message=ans.message)
        raise self._unknown(ans, "refund query")

    # --- callbacks ------------------------------------------------------------------------------
    async def parse_notify(self, headers: Mapping[str, str], body: bytes) -> tuple[NotifyEvent, NotifyAnswer]:
        try:
            self.client.verify_notify(headers, body)
        except crypto.SignatureError as exc:
            raise NotifyRejected(f"notify signature: {exc}", **ORIGIN) from exc
        try:
            notice = Notice.model_validate(orjson.loads(body))
        except (orjson.JSONDecodeError, ValidationError) as exc:
            raise NotifyRejected("the body is not a bank notify", **ORIGIN) from exc
        if notice.merchant_id != self._mid:
            raise NotifyRejected(f"notify for merchant {notice.merchant_id}, not {self._mid}", **ORIGIN)
        try:
            if notice.notify_type.startswith("TRADE."):
                trade = trade_result(notice.data, self._mid)
                event = NotifyEvent(kind=NotifyKind.PAYMENT, out_trade_no=str(notice.data["out_trade_no"]),
                                    trade=trade, event_id=notice.notify_id)
            elif notice.notify_type.startswith("REFUND."):
                refund = refund_result(notice.data, self._mid)
                event = NotifyEvent(kind=NotifyKind.REFUND, out_trade_no=str(notice.data["out_trade_no"]),
                                    out_refund_no=str(notice.data["out_refund_no"]), refund=refund,
                                    event_id=notice.notify_id)
            else:
                raise NotifyRejected(f"unsupported notify type {notice.notify_type!r}", **ORIGIN)
        except (UpstreamProtocolError, KeyError) as exc:
            raise NotifyRejected(f"notify data unreadable: {exc}", **ORIGIN) from exc
        return event, NotifyAnswer(status=200, body=NOTIFY_ANSWER, content_type="application/json")

    def notify_failure_answer(self, message: str) -> NotifyAnswer:
        return NotifyAnswer(status=500, body=dumps({"code": "FAIL", "message": message}),
                            content_type="application/json")

    # --- reconciliation file ------------------------------------------------------------------
    async def download_bill(self, bill_date: dt.date) -> Bill:
        ans = await self.client.call(PATH_BILL, BillRequest(bill_date=format_date(bill_date), compress="GZIP"),
                                     retry=True, file_ok=True)
        if ans.content_type == "application/json":
            if ans.code == "BILL_NOT_READY":
                raise UpstreamUnavailable(f"the {bill_date} reconciliation file is not ready yet", **ORIGIN,
                                          upstream_code=ans.code)
            raise self._unknown(ans, "bill download")
        data = ans.body
        if data[:2] == b"\x1f\x8b":
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError) as exc:
                raise protocol_error("the reconciliation file archive is corrupt", exc) from exc
        try:
            recon = parse_recon(data, merchant_id=self._mid, bill_date=bill_date)
        except ReconFormatError as exc:
            raise protocol_error("the reconciliation file does not parse or add up", exc) from exc
        return to_bill(recon)
