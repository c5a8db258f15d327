"""Simulator: the v3 REST surface (signed requests in, signed answers out)."""
from __future__ import annotations

import datetime as dt
import gzip
import json
import secrets
import time
import uuid
from typing import Any

from aiohttp import web

from . import crypto
from .sim_core import WeChatPaySimulator
from .sim_model import SimError, SimMerchant
from .sim_notify import dumps

SIM_KEY = web.AppKey("wechatpay_sim", WeChatPaySimulator)
# request storage keys (typed keys where this aiohttp has them)
_RequestKey = getattr(web, "RequestKey", None)
MERCHANT: Any = _RequestKey("wechatpay_merchant", SimMerchant) if _RequestKey else "wechatpay_merchant"
BODY: Any = _RequestKey("wechatpay_body", bytes) if _RequestKey else "wechatpay_body"
_DOWNLOADS: web.AppKey[dict[str, tuple[str, bytes, bool, float]]] = web.AppKey("wechatpay_downloads", dict)


def json_response(status: int, obj: Any | None = None) -> web.Response:
    if obj is None:
        return web.Response(status=status)
    return web.Response(status=status, body=dumps(obj), content_type="application/json", charset="utf-8")


def sign_response(resp: web.StreamResponse, m: SimMerchant) -> None:
    body = resp.body if isinstance(resp, web.Response) and isinstance(resp.body, bytes) else b""
    resp.headers.update(crypto.signed_headers(m.platform_key, m.pub_key_id, body))
    resp.headers["Request-ID"] = uuid.uuid4().hex.upper()


def authenticate(sim: WeChatPaySimulator, request: web.Request, body: bytes) -> SimMerchant:
    header = request.headers.get("Authorization", "")
    if not header:
        raise SimError("SIGN_ERROR", "Http头缺少Authorization")
    try:
        auth = crypto.parse_authorization(header)
    except ValueError:
        raise SimError("SIGN_ERROR", "Http头Authorization值格式错误，请参考《微信支付商户REST API签名规则》") from None
    m = sim.merchants.get(auth.mchid)
    if m is None:
        raise SimError("SIGN_ERROR", "商户号不存在或未开通APIv3")
    if auth.serial_no.upper() != m.merchant_serial.upper():
        raise SimError("SIGN_ERROR", "商户证书序列号有误。请使用签名私钥匹配的证书序列号")
    if not crypto.timestamp_fresh(auth.timestamp):
        raise SimError("SIGN_ERROR", "请求的时间戳已过期，请检查系统时间")
    msg = crypto.request_message(request.method, request.raw_path, auth.timestamp, auth.nonce_str, body)
    if not crypto.rsa_verify(m.merchant_public, msg, auth.signature):
        raise SimError("SIGN_ERROR", "签名错误，请检查后再试")
    return m


@web.middleware
async def v3_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    if not request.path.startswith("/v3/"):
        return await handler(request)
    sim = request.app[SIM_KEY]
    merchant = sim.default_merchant
    try:
        body = await request.read()
        merchant = authenticate(sim, request, body)
        request[MERCHANT], request[BODY] = merchant, body
        resp = await handler(request)
    except SimError as exc:
        resp = json_response(exc.status, exc.body())
    except web.HTTPNotFound:
        resp = json_response(404, {"code": "NOT_FOUND", "message": "无此接口"})
    if request.path.startswith("/v3/billdownload/") and resp.status == 200:
        return resp  # the bill file itself is not signed
    sign_response(resp, merchant)
    return resp


def _json(request: web.Request) -> dict[str, Any]:
    try:
        data = json.loads(request[BODY] or b"{}")
    except ValueError:
        raise SimError("PARAM_ERROR", "请求体不是有效的JSON") from None
    if not isinstance(data, dict):
        raise SimError("PARAM_ERROR", "请求体必须为JSON对象")
    return data


def _partner(request: web.Request) -> bool:
    return request.path.startswith("/v3/pay/partner/")


def _check_body_ids(request: web.Request, data: dict[str, Any], *, app: bool = True) -> str:
    """Check mchid/appid of the body against the signer; return the sub_mchid ("" if direct)."""
    m: SimMerchant = request[MERCHANT]
    if _partner(request):
        if data.get("sp_mchid") != m.mchid:
            raise SimError("PARAM_ERROR", "请求头中的商户号与 sp_mchid 不一致")
        if app and data.get("sp_appid") != m.appid:
            raise SimError("APPID_MCHID_NOT_MATCH")
        sub = str(data.get("sub_mchid") or "")
        if not sub.isdigit():
            raise SimError("PARAM_ERROR", "缺少参数 sub_mchid")
        return sub
    if data.get("mchid") != m.mchid:
        raise SimError("PARAM_ERROR", "请求头中的商户号与请求体中的 mchid 不一致")
    if app and data.get("appid") != m.appid:
        raise SimError("APPID_MCHID_NOT_MATCH")
    return ""


def _query_ids(request: web.Request) -> str:
    m: SimMerchant = request[MERCHANT]
    q = request.query
    if _partner(request):
        if q.get("sp_mchid") != m.mchid or not q.get("sub_mchid", "").isdigit():
            raise SimError("PARAM_ERROR", "sp_mchid 或 sub_mchid 参数错误")
        return q["sub_mchid"]
    if q.get("mchid") != m.mchid:
        raise SimError("PARAM_ERROR", "mchid 参数错误")
    return ""


async def create_order(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    kind = request.match_info["kind"]
    data = _json(request)
    data["sub_mchid"] = _check_body_ids(request, data)
    m: SimMerchant = request[MERCHANT]
    if kind == "codepay":
        order = sim.codepay(m, data)
        if order.state == "USERPAYING":
            return json_response(202, order.as_transaction())
        return json_response(200, order.as_transaction())
    trade_type = {"jsapi": "JSAPI", "native": "NATIVE", "h5": "MWEB"}[kind]
    order = sim.create_prepay(m, data, trade_type)
    field = {"JSAPI": "prepay_id", "NATIVE": "code_url", "MWEB": "h5_url"}[trade_type]
    return json_response(200, {field: getattr(order, field)})


async def query_order(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    sub = _query_ids(request)
    m: SimMerchant = request[MERCHANT]
    if "transaction_id" in request.match_info:
        order = sim.find_by_transaction(m.mchid, sub, request.match_info["transaction_id"])
    else:
        order = sim.find_order(m.mchid, sub, request.match_info["out_trade_no"])
    return json_response(200, order.as_transaction())


async def close_order(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    data = _json(request)
    sub = _check_body_ids(request, data, app=False)
    order = sim.find_order(request[MERCHANT].mchid, sub, request.match_info["out_trade_no"])
    sim.close(order)
    return json_response(204)


async def reverse_order(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    data = _json(request)
    sub = _check_body_ids(request, data)
    order = sim.find_order(request[MERCHANT].mchid, sub, request.match_info["out_trade_no"])
    sim.reverse(order)
    ids = {k: v for k, v in order.as_transaction().items() if k in ("appid", "mchid", "sp_appid", "sp_mchid",
                                                                     "sub_mchid")}
    return json_response(200, {**ids, "out_trade_no": order.out_trade_no,
                               "transaction_id": order.transaction_id})


async def create_refund(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    refund = sim.refund(request[MERCHANT], _json(request))
    return json_response(200, refund.as_refund())


async def query_refund(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    sub = request.query.get("sub_mchid", "")
    refund = sim.find_refund(request[MERCHANT].mchid, sub, request.match_info["out_refund_no"])
    return json_response(200, refund.as_refund())


async def trade_bill(request: web.Request) -> web.Response:
    sim = request.app[SIM_KEY]
    q = request.query
    try:
        day = dt.date.fromisoformat(q.get("bill_date", ""))
    except ValueError:
        raise SimError("PARAM_ERROR", "bill_date 格式错误，应为 yyyy-MM-DD") from None
    bill_type = q.get("bill_type", "ALL")
    tar_type = q.get("tar_type", "")
    if bill_type not in ("ALL", "SUCCESS", "REFUND") or tar_type not in ("", "GZIP"):
        raise SimError("PARAM_ERROR", "bill_type 或 tar_type 参数错误")
    m: SimMerchant = request[MERCHANT]
    text = sim.trade_bill(m.mchid, q.get("sub_mchid", ""), day, bill_type).encode()
    token = secrets.token_urlsafe(24)
    downloads = request.app[_DOWNLOADS]
    now = time.monotonic()
    for t in [t for t, v in downloads.items() if v[3] < now]:
        del downloads[t]
    downloads[token] = (m.mchid, text, tar_type == "GZIP", now + sim.bill_url_ttl_seconds)
    return json_response(200, {"hash_type": "SHA1", "hash_value": crypto.sha1_hex(text),
                               "download_url": f"{sim.base_url}/v3/billdownload/file?token={token}"})


async def download_file(request: web.Request) -> web.Response:
    entry = request.app[_DOWNLOADS].get(request.query.get("token", ""))
    if entry is None or entry[3] < time.monotonic():
        raise SimError("INVALID_REQUEST", "下载链接已失效，请重新申请账单")
    mchid, text, gz, _ = entry
    if mchid != request[MERCHANT].mchid:
        raise SimError("NO_AUTH", "无权下载该账单", status=403)
    data = gzip.compress(text) if gz else text
    return web.Response(status=200, body=data, content_type="application/octet-stream")


def add_routes(app: web.Application) -> None:
    app[_DOWNLOADS] = {}
    r = app.router
    for base in ("/v3/pay/transactions", "/v3/pay/partner/transactions"):
        r.add_post(base + "/{kind:jsapi|native|h5|codepay}", create_order)
        r.add_get(base + "/out-trade-no/{out_trade_no}", query_order)
        r.add_get(base + "/id/{transaction_id}", query_order)
        r.add_post(base + "/out-trade-no/{out_trade_no}/close", close_order)
        r.add_post(base + "/out-trade-no/{out_trade_no}/reverse", reverse_order)
    r.add_post("/v3/refund/domestic/refunds", create_refund)
    r.add_get("/v3/refund/domestic/refunds/{out_refund_no}", query_refund)
    r.add_get("/v3/bill/tradebill", trade_bill)
    r.add_get("/v3/billdownload/file", download_file)
