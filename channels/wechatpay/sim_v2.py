"""Simulator: the v2 XML payment-code family (micropay, orderquery, reverse)."""
from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

from . import crypto
from .sim_core import WeChatPaySimulator
from .sim_model import SimError, SimMerchant, SimOrder
from .sim_v3 import SIM_KEY
from .wire import format_v2_time, from_xml, to_xml

V2_ERR_DES = {"ORDER_NOT_EXIST": ("ORDERNOTEXIST", "此交易订单号不存在")}


def _xml(params: dict[str, Any]) -> web.Response:
    return web.Response(body=to_xml(params), content_type="text/xml", charset="utf-8")


def _fail(message: str) -> web.Response:
    return _xml({"return_code": "FAIL", "return_msg": message})


class _Call:
    """A verified v2 request and the means to answer it, signed the same way."""

    def __init__(self, m: SimMerchant, params: dict[str, str], sign_type: str) -> None:
        self.m, self.params, self.sign_type = m, params, sign_type

    def answer(self, fields: dict[str, Any]) -> web.Response:
        out: dict[str, Any] = {"return_code": "SUCCESS", "return_msg": "OK", "appid": self.m.appid,
                               "mch_id": self.m.mchid, "nonce_str": secrets.token_hex(16)}
        if self.params.get("sub_mch_id"):
            out["sub_mch_id"] = self.params["sub_mch_id"]
        out |= {k: str(v) for k, v in fields.items() if v not in (None, "")}
        out["sign"] = crypto.v2_sign(out, self.m.api_v2_key, self.sign_type)
        return _xml(out)

    def error(self, exc: SimError, **extra: Any) -> web.Response:
        code, des = V2_ERR_DES.get(exc.code, (exc.code, exc.message))
        return self.answer({"result_code": "FAIL", "err_code": code, "err_code_des": des, **extra})


async def _verified(request: web.Request) -> _Call | web.Response:
    sim = request.app[SIM_KEY]
    try:
        params = from_xml(await request.read())
    except ValueError:
        return _fail("XML格式错误")
    m = sim.merchants.get(params.get("mch_id", ""))
    if m is None:
        return _fail("mch_id参数格式错误或商户号不存在")
    if params.get("appid") != m.appid:
        return _fail("appid和mch_id不匹配")
    sign_type = params.get("sign_type") or "MD5"
    if sign_type not in ("MD5", "HMAC-SHA256"):
        return _fail("sign_type参数格式错误")
    if not crypto.v2_verify(params, m.api_v2_key, sign_type):
        return _fail("签名错误")
    return _Call(m, params, sign_type)


def _paid_fields(order: SimOrder) -> dict[str, Any]:
    if not order.was_paid:
        return {}
    return {"openid": order.openid, "is_subscribe": "N", "bank_type": order.bank_type or "OTHERS",
            "fee_type": "CNY", "total_fee": order.total, "cash_fee": order.total, "cash_fee_type": "CNY",
            "transaction_id": order.transaction_id,
            "time_end": format_v2_time(order.success_time),  # type: ignore[arg-type]
            "attach": order.attach}


async def micropay(request: web.Request) -> web.Response:
    call = await _verified(request)
    if isinstance(call, web.Response):
        return call
    sim, p = request.app[SIM_KEY], call.params
    total = p.get("total_fee", "")
    req = {"description": p.get("body"), "out_trade_no": p.get("out_trade_no"),
           "amount": {"total": int(total) if total.isdigit() else None, "currency": p.get("fee_type") or "CNY"},
           "payer": {"auth_code": p.get("auth_code")}, "attach": p.get("attach"),
           "scene_info": {"device_id": p.get("device_info")}, "sub_mchid": p.get("sub_mch_id")}
    try:
        order = sim.codepay(call.m, req, api="v2")
    except SimError as exc:
        return call.error(exc)
    if order.state == "USERPAYING":
        return call.error(SimError("USERPAYING"))
    return call.answer({"result_code": "SUCCESS", "device_info": p.get("device_info"),
                        "trade_type": "MICROPAY", "out_trade_no": order.out_trade_no, **_paid_fields(order)})


def _order_of(sim: WeChatPaySimulator, call: _Call) -> SimOrder:
    p, sub = call.params, call.params.get("sub_mch_id", "")
    if p.get("transaction_id"):
        return sim.find_by_transaction(call.m.mchid, sub, p["transaction_id"])
    return sim.find_order(call.m.mchid, sub, p.get("out_trade_no", ""))


async def orderquery(request: web.Request) -> web.Response:
    call = await _verified(request)
    if isinstance(call, web.Response):
        return call
    sim = request.app[SIM_KEY]
    try:
        order = _order_of(sim, call)
    except SimError as exc:
        return call.error(exc)
    return call.answer({"result_code": "SUCCESS", "out_trade_no": order.out_trade_no,
                        "trade_type": order.trade_type, "trade_state": order.state,
                        "trade_state_desc": order.state_desc or order.as_transaction()["trade_state_desc"],
                        **_paid_fields(order)})


async def reverse(request: web.Request) -> web.Response:
    call = await _verified(request)
    if isinstance(call, web.Response):
        return call
    sim = request.app[SIM_KEY]
    try:
        sim.reverse(_order_of(sim, call))
    except SimError as exc:
        recall = "Y" if exc.code in ("USERPAYING", "SYSTEMERROR") else "N"
        return call.error(exc, recall=recall)
    return call.answer({"result_code": "SUCCESS", "recall": "N"})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/pay/micropay", micropay)
    app.router.add_post("/pay/orderquery", orderquery)
    app.router.add_post("/secapi/pay/reverse", reverse)
