"""Simulator: the bank's API under ``/ecny/v1/`` (signed requests in, signed answers out)."""
from __future__ import annotations

import gzip
import json
import uuid
from typing import Any

from aiohttp import web

from . import crypto
from .recon import write_recon
from .sim_core import RefBankSimulator
from .sim_model import SimError, SimMerchant
from .wire import (
    API_PREFIX,
    PATH_BILL,
    PATH_CLOSE,
    PATH_CODEPAY,
    PATH_PRECREATE,
    PATH_QUERY,
    PATH_REFUND,
    PATH_REFUND_QUERY,
    PATH_REVOKE,
    SUCCESS,
    dumps,
    message_of,
    parse_date,
)

SIM_KEY = web.AppKey("refbank_sim", RefBankSimulator)
_RequestKey = getattr(web, "RequestKey", None)
MERCHANT: Any = _RequestKey("refbank_merchant", SimMerchant) if _RequestKey else "refbank_merchant"
BODY: Any = _RequestKey("refbank_body", dict) if _RequestKey else "refbank_body"


def envelope(status: int, code: str, message: str | None = None, data: dict[str, Any] | None = None) -> web.Response:
    obj: dict[str, Any] = {"code": code, "message": message or message_of(code)}
    if data is not None:
        obj["data"] = data
    return web.Response(status=status, body=dumps(obj), content_type="application/json", charset="utf-8")


def ok(data: dict[str, Any]) -> web.Response:
    return envelope(200, SUCCESS, data=data)


def sign_response(sim: RefBankSimulator, resp: web.Response, merchant_id: str, request_nonce: str) -> None:
    body = resp.body if isinstance(resp.body, bytes) else b""
    resp.headers.update(crypto.sign_headers(sim.bank_key, sim.bank_key_id,
                                            crypto.response_scope(resp.status, request_nonce or "-"),
                                            merchant_id or "-", body))
    resp.headers[crypto.HEADER_REQUEST_ID] = uuid.uuid4().hex


def authenticate(sim: RefBankSimulator, request: web.Request, body: bytes) -> SimMerchant:
    get = crypto.header_getter(request.headers)
    m = sim.merchants.get(get(crypto.HEADER_MERCHANT))
    if m is None:
        raise SimError("MERCHANT_NOT_FOUND")
    try:
        signed = crypto.read_headers(request.headers)
    except crypto.SignatureError as exc:
        raise SimError("SIGN_INVALID", f"签名验证失败：{exc}") from None
    if signed.key_id != m.key_id:
        raise SimError("KEY_NOT_FOUND")
    if not crypto.timestamp_fresh(signed.timestamp):
        raise SimError("REQUEST_EXPIRED")
    message = crypto.string_to_sign(crypto.request_scope(request.method, request.raw_path), m.merchant_id,
                                    signed.timestamp, signed.nonce, body)
    if not crypto.rsa_verify(m.public_key, message, signed.signature):
        raise SimError("SIGN_INVALID")
    if not sim.use_nonce(m.merchant_id, signed.nonce):
        raise SimError("NONCE_REPLAYED")
    return m


@web.middleware
async def api_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    if not request.path.startswith(API_PREFIX):
        return await handler(request)
    sim = request.app[SIM_KEY]
    get = crypto.header_getter(request.headers)
    merchant_id, nonce = get(crypto.HEADER_MERCHANT), get(crypto.HEADER_NONCE)
    try:
        body = await request.read()
        if request.method != "POST":
            raise SimError("NOT_FOUND", "仅支持 POST")
        m = authenticate(sim, request, body)
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise SimError("PARAM_ERROR", "请求体不是有效的JSON") from None
        if not isinstance(data, dict):
            raise SimError("PARAM_ERROR", "请求体必须为JSON对象")
        request[MERCHANT], request[BODY] = m, data
        resp = await handler(request)
    except SimError as exc:
        resp = envelope(exc.status, exc.code, exc.message)
    except web.HTTPNotFound:
        resp = envelope(404, "NOT_FOUND")
    if not isinstance(resp, web.Response):  # pragma: no cover - every handler answers a Response
        return resp
    # every answer is signed, refusals of unknown merchants too: the bank vouches
    # for what it answered to the merchant id the request named
    sign_response(sim, resp, merchant_id, nonce)
    return resp


def _ctx(request: web.Request) -> tuple[RefBankSimulator, SimMerchant, dict[str, Any]]:
    return request.app[SIM_KEY], request[MERCHANT], request[BODY]


def _ref(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise SimError("PARAM_ERROR", f"缺少参数 {name}")
    return value


async def codepay(request: web.Request) -> web.Response:
    sim, m, data = _ctx(request)
    return ok(sim.codepay(m, data).as_trade())


async def precreate(request: web.Request) -> web.Response:
    sim, m, data = _ctx(request)
    return ok(sim.precreate(m, data).as_trade())


async def query(request: web.Request) -> web.Response:
    sim, m, data = _ctx(request)
    return ok(sim.find_order(m.merchant_id, _ref(data, "out_trade_no")).as_trade())


async def close(request: web.Request) -> web.Response:
    sim, m, data = _ctx(request)
    order = sim.find_order(m.merchant_id, _ref(data, "out_trade_no"))
    return ok(sim.close(order).as_trade())


async def revoke(request: web.Request) -> web.Response:
    sim, m, data = _ctx(request)
    order = sim.find_order(m.merchant_id, _ref(data, "out_trade_no"))
    return ok(sim.revoke(order).as_trade())


async def refund(request: web.Request) -> web.Response:
    sim, m, data = _ctx(request)
    return ok(sim.refund(m, data).as_refund())


async def refund_query(request: web.Request) -> web.Response:
    sim, m, data = _ctx(request)
    return ok(sim.find_refund(m.merchant_id, _ref(data, "out_refund_no")).as_refund())


async def bill(request: web.Request) -> web.Response:
    sim, m, data = _ctx(request)
    try:
        day = parse_date(_ref(data, "bill_date"))
    except ValueError:
        raise SimError("PARAM_ERROR", "bill_date 格式错误，应为 yyyyMMdd") from None
    compress = data.get("compress", "NONE")
    if compress not in ("NONE", "GZIP"):
        raise SimError("PARAM_ERROR", "compress 仅支持 NONE 或 GZIP")
    if not sim.bill_ready(day):
        raise SimError("BILL_NOT_READY")
    recon = sim.recon_file(m.merchant_id, day)
    text = write_recon(recon).encode()
    resp = web.Response(status=200, body=gzip.compress(text) if compress == "GZIP" else text,
                        content_type="application/gzip" if compress == "GZIP" else "text/plain",
                        charset=None if compress == "GZIP" else "utf-8")
    name = recon.file_name() + (".gz" if compress == "GZIP" else "")
    resp.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return resp


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post(PATH_CODEPAY, codepay)
    r.add_post(PATH_PRECREATE, precreate)
    r.add_post(PATH_QUERY, query)
    r.add_post(PATH_CLOSE, close)
    r.add_post(PATH_REVOKE, revoke)
    r.add_post(PATH_REFUND, refund)
    r.add_post(PATH_REFUND_QUERY, refund_query)
    r.add_post(PATH_BILL, bill)
