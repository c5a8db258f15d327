"""The WeChat Pay channel adapter (API v3, optional v2 payment code)."""
from __future__ import annotations

import datetime as dt
import gzip
import re
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson
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

from . import crypto
from .bill import BillFormatError, empty_bill, parse_tradebill
from .client import CHANNEL, V3Response, WeChatPayClient, seg
from .config import WeChatPayConfig
from .convert import check_merchant, refund_result, refund_state_result, trade_result
from .convert import protocol_error as _protocol
from .wire import (
    CODEPAY_DECLINES,
    REFUND_DECLINES,
    RETRYABLE_CODES,
    Amount,
    H5Info,
    MerchantRef,
    NotifyEnvelope,
    OrderRequest,
    Payer,
    RefundAmount,
    RefundCreate,
    RefundNotice,
    SceneInfo,
    StoreInfo,
    TradeBillAnswer,
    V2Answer,
    format_time,
    parse_v2_time,
)


def _clip(text: str, limit: int) -> str:
    """Cut to the wire's field length, counted in UTF-8 bytes, on a character boundary."""
    return text.encode()[:limit].decode("utf-8", "ignore")


class WeChatPayChannel(ChannelAdapter):
    """微信支付 / WeChat Pay: payment code, Native QR, JSAPI, H5, refunds, bills."""

    id = "wechatpay"
    name_zh = "微信支付"
    name_en = "WeChat Pay"
    capabilities = frozenset({
        Capability.CODE, Capability.QR, Capability.JSAPI, Capability.H5, Capability.REFUND,
        Capability.PARTIAL_REFUND, Capability.REVERSE, Capability.CLOSE, Capability.BILL,
    })
    config_model = WeChatPayConfig
    auth_code_pattern = re.compile(r"1[0-5]\d{16}")
    auth_code_hint = "18位数字，以10-15开头 / 18 digits starting 10-15"
    # Documented payment-code flow: query after ~5 s, then about every 10 s while the
    # patient is still entering the password, up to ~45 s; then reverse.
    code_poll_schedule = (5, 10, 20, 30, 40, 45)
    query_interval = 30.0
    order_ttl = dt.timedelta(minutes=30)

    def __init__(self, config: BaseModel | Mapping[str, Any], session: aiohttp.ClientSession) -> None:
        if not isinstance(config, WeChatPayConfig):
            raw = config.model_dump() if isinstance(config, BaseModel) else dict(config)
            config = WeChatPayConfig.model_validate(raw)
        super().__init__(config, session)
        self.config: WeChatPayConfig = config
        self.client = WeChatPayClient(config, session)

    # --- request pieces ---------------------------------------------------------------
    @property
    def _tx(self) -> str:
        return "/v3/pay/partner/transactions" if self.config.partner else "/v3/pay/transactions"

    def _ids(self, *, app: bool = True) -> dict[str, str]:
        c = self.config
        if c.partner:
            ids = {"sp_mchid": c.mchid, "sub_mchid": c.sub_mchid or ""}
            if app:
                ids["sp_appid"] = c.appid
                if c.sub_appid:
                    ids["sub_appid"] = c.sub_appid
            return ids
        return {"mchid": c.mchid, "appid": c.appid} if app else {"mchid": c.mchid}

    def _order(self, req: PayRequest, *, notify: bool) -> OrderRequest:
        notify_url = req.notify_url or self.config.notify_url
        if notify and not notify_url:
            raise ValidationFailed("notify_url is required for QR/JSAPI/H5 orders", channel=CHANNEL)
        return OrderRequest(
            **self._ids(),
            description=_clip(req.subject, 127),
            out_trade_no=req.out_trade_no,
            time_expire=format_time(req.expire_at) if req.expire_at and notify else None,
            attach=req.attach,
            notify_url=notify_url if notify else None,
            amount=Amount(total=req.amount, currency="CNY"),
        )

    @staticmethod
    def _unknown(resp: V3Response, what: str) -> Exception:
        if resp.code in RETRYABLE_CODES:
            return UpstreamUnavailable(f"{what}: {resp.code} {resp.message}", channel=CHANNEL,
                                       upstream_code=resp.code, request_id=resp.request_id)
        return UpstreamProtocolError(f"{what}: unexpected HTTP {resp.status} {resp.code} {resp.message}",
                                     channel=CHANNEL, upstream_code=resp.code, request_id=resp.request_id)

    # --- pay --------------------------------------------------------------------------
    async def pay(self, req: PayRequest) -> PayResult:
        if req.method is Method.CODE:
            if not req.auth_code:
                raise ValidationFailed("auth_code is required for a payment-code payment", channel=CHANNEL)
            if self.config.use_v2_micropay:
                return await self._micropay_v2(req)
            return await self._codepay(req)
        body = self._order(req, notify=True)
        if req.method is Method.JSAPI:
            if not req.openid:
                raise ValidationFailed("openid is required for a JSAPI payment", channel=CHANNEL)
            body.payer = Payer(sp_openid=req.openid) if self.config.partner else Payer(openid=req.openid)
            kind = "jsapi"
        elif req.method is Method.H5:
            body.scene_info = SceneInfo(payer_client_ip=req.client_ip, h5_info=H5Info(type="Wap"))
            kind = "h5"
        else:
            kind = "native"
        resp = await self.client.call("POST", f"{self._tx}/{kind}", body)
        if not resp.ok:
            if resp.code in ("ORDERPAID", "ORDER_PAID"):
                return await self.query(req.out_trade_no)
            if resp.code in RETRYABLE_CODES:
                raise self._unknown(resp, f"{kind} order")
            # the order was not created: nothing can be paid against it
            return PayResult(status=TradeStatus.FAILED, error_code=resp.code or f"HTTP_{resp.status}",
                             error_message=resp.message, raw=resp.data)
        field = {"jsapi": "prepay_id", "h5": "h5_url", "native": "code_url"}[kind]
        value = resp.data.get(field)
        if not isinstance(value, str) or not value:
            raise _protocol(f"{kind} answer lacks {field}")
        if kind == "native":
            return PayResult(status=TradeStatus.PENDING, code_url=value, raw=resp.data)
        if kind == "h5":
            return PayResult(status=TradeStatus.PENDING, h5_url=value, raw=resp.data)
        return PayResult(status=TradeStatus.PENDING, jsapi_params=self.jsapi_params(value), raw=resp.data)

    def jsapi_params(self, prepay_id: str) -> dict[str, str]:
        """The signed parameters for ``wx.requestPayment`` / ``WeixinJSBridge``."""
        ts, nonce, package = str(int(time.time())), crypto.new_nonce(32), f"prepay_id={prepay_id}"
        app_id = self.config.appid
        return {
            "appId": app_id, "timeStamp": ts, "nonceStr": nonce, "package": package, "signType": "RSA",
            "paySign": crypto.jsapi_pay_sign(self.client.merchant_key, app_id, ts, nonce, package),
        }

    async def _codepay(self, req: PayRequest) -> PayResult:
        body = self._order(req, notify=False)
        body.payer = Payer(auth_code=req.auth_code)
        body.scene_info = SceneInfo(store_info=StoreInfo(id=req.store_id or "0"),
                                    device_id=req.device_id, device_ip=req.client_ip)
        resp = await self.client.call("POST", f"{self._tx}/codepay", body)
        if resp.status == 202 or resp.code == "USERPAYING":
            tx_id = resp.data.get("transaction_id") if resp.ok else None
            return PayResult(status=TradeStatus.PAYING, channel_trade_no=tx_id or None,
                             error_code="USERPAYING", error_message=resp.data.get("message")
                             or resp.data.get("trade_state_desc") or "需要用户输入支付密码", raw=resp.data)
        if resp.ok:
            return trade_result(resp.data, self.config.mchid, req.out_trade_no)
        if resp.code in ("ORDERPAID", "ORDER_PAID"):
            return await self.query(req.out_trade_no)
        if resp.code in CODEPAY_DECLINES:
            return PayResult(status=TradeStatus.FAILED, error_code=resp.code,
                             error_message=resp.message, raw=resp.data)
        raise self._unknown(resp, "codepay")

    async def _micropay_v2(self, req: PayRequest) -> PayResult:
        params = {"body": _clip(req.subject, 127), "out_trade_no": req.out_trade_no,
                  "total_fee": str(req.amount), "fee_type": "CNY", "spbill_create_ip": req.client_ip,
                  "auth_code": req.auth_code or "", "attach": req.attach or "",
                  "device_info": req.device_id or ""}
        ans: V2Answer = await self.client.v2_call("/pay/micropay", params)
        raw = ans.model_dump(exclude_none=True)
        if ans.result_code == "SUCCESS":
            if ans.out_trade_no not in (None, req.out_trade_no):
                raise _protocol(f"micropay answer is for order {ans.out_trade_no}")
            return PayResult(
                status=TradeStatus.SUCCEEDED, channel_trade_no=ans.transaction_id,
                paid_at=parse_v2_time(ans.time_end), payer_id=ans.openid,
                paid_amount=int(ans.total_fee) if ans.total_fee else req.amount, raw=raw,
            )
        code = ans.err_code or ""
        if code == "USERPAYING":
            return PayResult(status=TradeStatus.PAYING, error_code=code,
                             error_message=ans.err_code_des, raw=raw)
        if code == "ORDERPAID":
            return await self.query(req.out_trade_no)
        if code in CODEPAY_DECLINES:
            return PayResult(status=TradeStatus.FAILED, error_code=code, error_message=ans.err_code_des, raw=raw)
        if code in RETRYABLE_CODES:
            raise UpstreamUnavailable(f"micropay: {code} {ans.err_code_des or ''}", channel=CHANNEL,
                                      upstream_code=code)
        raise _protocol(f"micropay: unexpected err_code {code!r} {ans.err_code_des or ''}")

    # --- query / close / reverse ------------------------------------------------------
    def _mch_query(self) -> str:
        c = self.config
        return f"?sp_mchid={c.mchid}&sub_mchid={c.sub_mchid}" if c.partner else f"?mchid={c.mchid}"

    async def query(self, out_trade_no: str) -> PayResult:
        path = f"{self._tx}/out-trade-no/{seg(out_trade_no)}{self._mch_query()}"
        resp = await self.client.call("GET", path, retry=True)
        if resp.ok:
            return trade_result(resp.data, self.config.mchid, out_trade_no)
        if resp.code == "ORDER_NOT_EXIST" or resp.status == 404:
            return PayResult(status=TradeStatus.NOT_FOUND, error_code=resp.code or "ORDER_NOT_EXIST",
                             error_message=resp.message, raw=resp.data)
        raise self._unknown(resp, "query")

    async def close(self, out_trade_no: str) -> None:
        path = f"{self._tx}/out-trade-no/{seg(out_trade_no)}/close"
        resp = await self.client.call("POST", path, MerchantRef(**self._ids(app=False)))
        if resp.ok or resp.code in ("ORDER_NOT_EXIST", "ORDERCLOSED", "ORDER_CLOSED"):
            return
        if resp.code in ("ORDERPAID", "ORDER_PAID"):
            raise InvalidState("the order is already paid at WeChat Pay; query it",
                               channel=CHANNEL, upstream_code=resp.code)
        raise self._unknown(resp, "close")

    async def reverse(self, out_trade_no: str) -> ReverseResult:
        path = f"{self._tx}/out-trade-no/{seg(out_trade_no)}/reverse"
        resp = await self.client.call("POST", path, MerchantRef(**self._ids()))
        if resp.ok or resp.code in ("ORDER_NOT_EXIST", "ORDERREVERSED"):
            return ReverseResult(done=True, error_code=resp.code or None, error_message=resp.message or None)
        if resp.code == "USERPAYING":
            return ReverseResult(done=False, retry=True, error_code=resp.code, error_message=resp.message)
        if resp.code in RETRYABLE_CODES:
            return ReverseResult(done=False, retry=True, error_code=resp.code, error_message=resp.message)
        if resp.status in (400, 403):
            return ReverseResult(done=False, retry=False, error_code=resp.code, error_message=resp.message)
        raise self._unknown(resp, "reverse")

    # --- refunds ----------------------------------------------------------------------
    async def refund(self, req: RefundRequest) -> RefundResult:
        body = RefundCreate(
            sub_mchid=self.config.sub_mchid,
            out_trade_no=req.out_trade_no,
            out_refund_no=req.out_refund_no,
            reason=_clip(req.reason, 80) if req.reason else None,
            notify_url=req.notify_url or self.config.notify_url,
            amount=RefundAmount(refund=req.amount, total=req.total, currency="CNY"),
        )
        resp = await self.client.call("POST", "/v3/refund/domestic/refunds", body)
        if resp.ok:
            return refund_result(resp.data)
        if resp.code in REFUND_DECLINES:
            return RefundResult(status=RefundStatus.FAILED, error_code=resp.code,
                                error_message=resp.message, raw=resp.data)
        raise self._unknown(resp, "refund")

    async def query_refund(self, out_refund_no: str, out_trade_no: str) -> RefundResult:
        path = f"/v3/refund/domestic/refunds/{seg(out_refund_no)}"
        if self.config.partner:
            path += f"?sub_mchid={self.config.sub_mchid}"
        resp = await self.client.call("GET", path, retry=True)
        if resp.ok:
            if resp.data.get("out_trade_no") not in (None, out_trade_no):
                raise _protocol(f"refund {out_refund_no} belongs to order {resp.data.get('out_trade_no')}")
            return refund_result(resp.data)
        if resp.code in ("RESOURCE_NOT_EXISTS", "ORDER_NOT_EXIST") or resp.status == 404:
            return RefundResult(status=RefundStatus.FAILED, error_code=resp.code or "RESOURCE_NOT_EXISTS",
                                error_message=resp.message or "退款单不存在", raw=resp.data)
        raise self._unknown(resp, "refund query")

    # --- notifies ---------------------------------------------------------------------
    async def parse_notify(self, headers: Mapping[str, str], body: bytes) -> tuple[NotifyEvent, NotifyAnswer]:
        try:
            self.client.verify(headers, body)
        except crypto.SignatureError as exc:
            raise NotifyRejected(f"notify signature: {exc}", channel=CHANNEL) from exc
        try:
            env = NotifyEnvelope.model_validate(orjson.loads(body))
        except (orjson.JSONDecodeError, ValidationError) as exc:
            raise NotifyRejected("notify body is not a WeChat Pay notify", channel=CHANNEL) from exc
        res = env.resource
        if env.resource_type != "encrypt-resource" or res.algorithm != "AEAD_AES_256_GCM":
            raise NotifyRejected(f"unsupported notify resource {env.resource_type}/{res.algorithm}")
        try:
            plain = crypto.aes_gcm_decrypt(self.config.apiv3_key.get_secret_value(), res.nonce,
                                           res.ciphertext, res.associated_data or "")
            data = orjson.loads(plain)
        except (ValueError, orjson.JSONDecodeError) as exc:
            raise NotifyRejected(f"notify resource does not decrypt: {exc}", channel=CHANNEL) from exc
        if not isinstance(data, dict):
            raise NotifyRejected("notify resource is not an object", channel=CHANNEL)
        try:
            check_merchant(data, self.config.mchid)
            if env.event_type.startswith("TRANSACTION."):
                trade = trade_result(data, self.config.mchid)
                event = NotifyEvent(kind=NotifyKind.PAYMENT, out_trade_no=str(data["out_trade_no"]),
                                    trade=trade, event_id=env.id)
            elif env.event_type.startswith("REFUND."):
                n = RefundNotice.model_validate(data)
                event = NotifyEvent(
                    kind=NotifyKind.REFUND, out_trade_no=n.out_trade_no, out_refund_no=n.out_refund_no,
                    refund=refund_state_result(n.refund_status, n.refund_id, n.success_time, data),
                    event_id=env.id,
                )
            else:
                raise NotifyRejected(f"unsupported notify event {env.event_type}", channel=CHANNEL)
        except (UpstreamProtocolError, ValidationError, KeyError) as exc:
            raise NotifyRejected(f"notify resource unreadable: {exc}", channel=CHANNEL) from exc
        return event, NotifyAnswer(status=204, body=b"")

    # --- bill -------------------------------------------------------------------------
    async def download_bill(self, bill_date: dt.date) -> Bill:
        path = f"/v3/bill/tradebill?bill_date={bill_date.isoformat()}&bill_type=ALL&tar_type=GZIP"
        if self.config.partner:
            path += f"&sub_mchid={self.config.sub_mchid}"
        resp = await self.client.call("GET", path, retry=True)
        if not resp.ok:
            if resp.code == "NO_STATEMENT_EXIST":
                return empty_bill(bill_date)
            if resp.code == "STATEMENT_CREATING":
                raise UpstreamUnavailable("the bill is not ready yet", channel=CHANNEL, upstream_code=resp.code)
            raise self._unknown(resp, "tradebill")
        try:
            answer = TradeBillAnswer.model_validate(resp.data)
        except ValidationError as exc:
            raise _protocol("unreadable tradebill answer", exc) from exc
        data = await self.client.download(answer.download_url)
        if data[:2] == b"\x1f\x8b":
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError) as exc:
                raise _protocol("bill archive is corrupt", exc) from exc
        if answer.hash_type.upper() != "SHA1" or crypto.sha1_hex(data) != answer.hash_value.lower():
            raise _protocol(f"bill {answer.hash_type} hash mismatch")
        try:
            return parse_tradebill(data, bill_date)
        except BillFormatError as exc:
            raise _protocol("bill does not parse or add up", exc) from exc
