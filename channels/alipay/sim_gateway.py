"""Simulator: the open platform gateway ``/gateway.do`` (signed calls in, signed answers out).

Parameters are read from the query string, the urlencoded POST form, or both. The
application's RSA2 (or RSA) signature is checked over all of them; every answer
about a known application is signed with its Alipay key over the raw JSON text of
the ``…_response`` value, errors included.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import secrets
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode

from aiohttp import web

from . import crypto
from .sim_control import error_page, open_wap_pay
from .sim_core import SIM_KEY, AlipaySimulator, Ctx
from .sim_faults import API_KEY
from .sim_model import ZERO_AMOUNTS, SimError, SimMerchant
from .wire import CODE_MESSAGES, TIME_FORMAT, format_time, response_key

_DOWNLOADS: web.AppKey[dict[str, tuple[str, str, bytes, float]]] = web.AppKey("alipay_downloads", dict)
CHARSETS = {"utf-8": "utf-8", "utf8": "utf-8", "gbk": "gbk", "gb2312": "gbk"}
PAGE_METHODS = ("alipay.trade.wap.pay",)


def answer(text: str, status: int = 200) -> web.Response:
    # the gateway labels its JSON answers text/html, as the real one does
    return web.Response(status=status, body=text.encode(), content_type="text/html", charset="utf-8")


def _pairs(raw: str | bytes, encoding: str) -> list[tuple[str, str]]:
    text = raw.decode(encoding, errors="replace") if isinstance(raw, bytes) else raw
    return parse_qsl(text, keep_blank_values=True, encoding=encoding, errors="replace")


async def read_params(request: web.Request) -> dict[str, str]:
    """Query-string and form parameters together (the form wins on a clash)."""
    raw_query = request.rel_url.raw_query_string
    body = b""
    if request.method == "POST" and request.content_type in ("application/x-www-form-urlencoded", ""):
        body = await request.read()
    first = dict(_pairs(raw_query, "utf-8")) | dict(_pairs(body, "utf-8"))
    charset = CHARSETS.get((first.get("charset") or "utf-8").lower())
    if charset in (None, "utf-8"):  # an unknown charset is refused by ``authenticate``
        return first
    return dict(_pairs(raw_query, charset)) | dict(_pairs(body, charset))


def authenticate(sim: AlipaySimulator, params: dict[str, str]) -> tuple[Ctx, str]:
    """Check the common parameters and the signature; return the caller and its sign_type."""
    def gateway_error(sub_code: str, code: str = "40001", msg: str | None = None) -> SimError:
        return SimError(sub_code, msg, code=code, gateway=True)

    if not params.get("app_id"):
        raise gateway_error("isv.missing-app-id")
    if params["app_id"] not in sim.merchants:
        raise gateway_error("isv.invalid-app-id", "40002")
    m = sim.merchants[params["app_id"]]
    if not params.get("method"):
        raise gateway_error("isv.missing-method")
    if not params.get("sign"):
        raise gateway_error("isv.missing-signature")
    sign_type = params.get("sign_type", "")
    if not sign_type:
        raise gateway_error("isv.missing-signature-type")
    if sign_type not in crypto.SIGN_TYPES:
        raise gateway_error("isv.invalid-signature-type", "40002")
    if not params.get("timestamp"):
        raise gateway_error("isv.missing-timestamp")
    try:
        dt.datetime.strptime(params["timestamp"], TIME_FORMAT)
    except ValueError:
        raise gateway_error("isv.invalid-timestamp", "40002") from None
    if not params.get("version"):
        raise gateway_error("isv.missing-version")
    if params["version"] != "1.0":
        raise gateway_error("isv.invalid-version", "40002")
    if params.get("charset") and params["charset"].lower() not in CHARSETS:
        raise gateway_error("isv.invalid-charset", "40002")
    if params.get("format") and params["format"].upper() != "JSON":
        raise gateway_error("isv.invalid-format", "40002")
    content = crypto.sign_content(params)
    if not crypto.rsa_verify(m.app_public, content, params["sign"], sign_type):
        raise gateway_error("isv.invalid-signature", "40002",
                            f"验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为：{content}")
    ctx = sim.resolve(m.app_id, params.get("app_auth_token"))
    return dataclasses.replace(ctx, notify_url=params.get("notify_url", "")), sign_type


def biz_of(params: dict[str, str]) -> dict[str, Any]:
    try:
        biz = json.loads(params.get("biz_content") or "{}", parse_float=Decimal)
    except ValueError:
        raise SimError("ACQ.INVALID_PARAMETER", "参数无效：biz_content 不是合法的JSON") from None
    if not isinstance(biz, dict):
        raise SimError("ACQ.INVALID_PARAMETER", "参数无效：biz_content 必须为JSON对象")
    return biz


# --- methods ----------------------------------------------------------------------------
Handler = Callable[[web.Request, AlipaySimulator, Ctx, dict[str, Any]], dict[str, Any]]


def _trade_pay(request: web.Request, sim: AlipaySimulator, ctx: Ctx, biz: dict[str, Any]) -> dict[str, Any]:
    try:
        code, o = sim.pay(ctx, biz)
    except SimError as exc:
        exc.extra = {**ZERO_AMOUNTS, **exc.extra}
        raise
    out: dict[str, Any] = {"code": code, "msg": CODE_MESSAGES[code], "trade_no": o.trade_no,
                           "out_trade_no": o.out_trade_no, **o.buyer(), "total_amount": o.as_query()["total_amount"],
                           **o.amounts()}
    if code == "10000":
        out |= {"gmt_payment": format_time(o.paid_at), "fund_bill_list": o.fund_bill_list()}  # type: ignore[arg-type]
    return out


def _precreate(request: web.Request, sim: AlipaySimulator, ctx: Ctx, biz: dict[str, Any]) -> dict[str, Any]:
    o = sim.precreate(ctx, biz)
    return {"out_trade_no": o.out_trade_no, "qr_code": o.qr_code}


def _create(request: web.Request, sim: AlipaySimulator, ctx: Ctx, biz: dict[str, Any]) -> dict[str, Any]:
    o = sim.create(ctx, biz, str(biz.get("product_code") or "JSAPI_PAY"))
    return {"out_trade_no": o.out_trade_no, "trade_no": o.trade_no}


def _query(request: web.Request, sim: AlipaySimulator, ctx: Ctx, biz: dict[str, Any]) -> dict[str, Any]:
    try:
        return sim.find(ctx, biz).as_query()
    except SimError as exc:
        if biz.get("out_trade_no"):
            exc.extra = {**ZERO_AMOUNTS, "out_trade_no": biz["out_trade_no"], **exc.extra}
        raise


def _close(request: web.Request, sim: AlipaySimulator, ctx: Ctx, biz: dict[str, Any]) -> dict[str, Any]:
    o = sim.close(ctx, biz)
    return {"trade_no": o.trade_no, "out_trade_no": o.out_trade_no}


def _refund(request: web.Request, sim: AlipaySimulator, ctx: Ctx, biz: dict[str, Any]) -> dict[str, Any]:
    r, fund_change, order = sim.refund(ctx, biz)
    return sim.refund_answer(r, fund_change, order)


def _bill_url(request: web.Request, sim: AlipaySimulator, ctx: Ctx, biz: dict[str, Any]) -> dict[str, Any]:
    name, data = sim.bill_zip(ctx, biz)
    token = secrets.token_hex(16)
    downloads = request.app[_DOWNLOADS]
    now = time.monotonic()
    for t in [t for t, v in downloads.items() if v[3] < now]:
        del downloads[t]
    downloads[token] = (ctx.seller_id, name, data, now + sim.bill_url_ttl_seconds)
    day = name.split("_")[1].split(".")[0]
    query = urlencode({"bizType": biz.get("bill_type", "trade"), "userId": ctx.seller_id, "fileType": "csv.zip",
                       "bizDates": day, "downloadFileName": name, "fileId": token})
    return {"bill_download_url": f"{sim.base_url}/downloadBillFile.resource?{query}"}


METHODS: dict[str, Handler] = {
    "alipay.trade.pay": _trade_pay,
    "alipay.trade.precreate": _precreate,
    "alipay.trade.create": _create,
    "alipay.trade.query": _query,
    "alipay.trade.cancel": lambda rq, sim, ctx, biz: sim.cancel(ctx, biz),
    "alipay.trade.close": _close,
    "alipay.trade.refund": _refund,
    "alipay.trade.fastpay.refund.query": lambda rq, sim, ctx, biz: sim.refund_query(ctx, biz),
    "alipay.data.dataservice.bill.downloadurl.query": _bill_url,
}


# --- HTTP -------------------------------------------------------------------------------
def signed(key: str, payload: dict[str, Any], m: SimMerchant | None, sign_type: str = "RSA2") -> web.Response:
    return answer(crypto.signed_answer(key, payload, m.alipay_key if m else None, sign_type))


async def gateway(request: web.Request) -> web.StreamResponse:
    sim = request.app[SIM_KEY]
    merchant: SimMerchant | None = None
    sign_type, method = "RSA2", request.query.get("method", "")
    try:
        params = await read_params(request)
        request[API_KEY] = method = params.get("method", "")
        merchant = sim.merchants.get(params.get("app_id", ""))
        if params.get("sign_type") in crypto.SIGN_TYPES:
            sign_type = params["sign_type"]
        ctx, sign_type = authenticate(sim, params)
        if method in PAGE_METHODS:
            return open_wap_pay(sim, ctx, biz_of(params))
        handler = METHODS.get(method)
        if handler is None:
            raise SimError("isv.invalid-method", code="40002", gateway=True)
    except SimError as exc:
        if method in PAGE_METHODS:
            return error_page(exc)
        return signed("error_response", exc.body(), merchant, sign_type)
    try:
        result = handler(request, sim, ctx, biz_of(params))
        payload = {"code": "10000", "msg": "Success"} | result
    except SimError as exc:
        payload = exc.body()
    return signed(response_key(method), payload, merchant, sign_type)


async def download_bill(request: web.Request) -> web.Response:
    entry = request.app[_DOWNLOADS].get(request.query.get("fileId", ""))
    if entry is None or entry[3] < time.monotonic():
        return web.Response(status=404, text="文件不存在或下载链接已过期，请重新获取", content_type="text/plain")
    _, name, data, _ = entry
    return web.Response(body=data, content_type="application/octet-stream",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})


def add_routes(app: web.Application) -> None:
    app[_DOWNLOADS] = {}
    for method in ("GET", "POST"):
        app.router.add_route(method, "/gateway.do", gateway)
    app.router.add_get("/downloadBillFile.resource", download_bill)
