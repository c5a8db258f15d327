"""Simulator control surface under ``/_sim/`` (no signatures; loopback sandbox only)."""
from __future__ import annotations

import datetime as dt
import html
from typing import Any

from aiohttp import web

from gateway.money import fen_to_yuan
from gateway.testing.simkit import add_fault_routes, add_script_routes
from gateway.testing.simkit import json_error as _err
from gateway.testing.simkit import read_json_object as _body

from .sim_core import WeChatPaySimulator
from .sim_faults import FAULTS_KEY, KINDS
from .sim_model import MAGIC_DOC, OUTCOMES, SimError
from .sim_v3 import SIM_KEY
from .wire import CST, format_time

SETTINGS = ("refund_settle_seconds", "userpaying_timeout_seconds", "fee_rate_bp", "bill_url_ttl_seconds")


def _sim(request: web.Request) -> WeChatPaySimulator:
    return request.app[SIM_KEY]


@web.middleware
async def control_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    if not request.path.startswith("/_sim"):
        return await handler(request)
    try:
        return await handler(request)
    except SimError as exc:
        return _err(404 if exc.code in ("ORDER_NOT_EXIST", "RESOURCE_NOT_EXISTS") else exc.status,
                    exc.message, exc.code)
    except (ValueError, TypeError) as exc:
        return _err(400, str(exc))


async def index(request: web.Request) -> web.Response:
    sim = _sim(request)
    return web.json_response({
        "channel": "wechatpay",
        "base_url": sim.base_url,
        "merchants": [m.info(sim.base_url) for m in sim.merchants.values()],
        "magic_auth_codes": {f"…{k}": v for k, v in MAGIC_DOC.items()},
        "script_outcomes": list(OUTCOMES),
        "fault_kinds": list(KINDS),
        "now": format_time(sim.now()),
    })


async def list_orders(request: web.Request) -> web.Response:
    return web.json_response([o.as_sim() for o in map(_sim(request).settle, _sim(request).orders.values())])


async def get_order(request: web.Request) -> web.Response:
    order = _sim(request).lookup(request.match_info["no"], request.query.get("mchid"))
    return web.json_response(order.as_sim())


async def pay_order(request: web.Request) -> web.Response:
    sim, data = _sim(request), await _body(request)
    order = sim.lookup(request.match_info["no"], request.query.get("mchid"))
    sim.confirm(order, data.get("openid"))
    return web.json_response(order.as_sim())


async def fail_order(request: web.Request) -> web.Response:
    sim, data = _sim(request), await _body(request)
    order = sim.fail(sim.lookup(request.match_info["no"], request.query.get("mchid")), data.get("message"))
    return web.json_response(order.as_sim())


async def renotify_order(request: web.Request) -> web.Response:
    sim = _sim(request)
    order = sim.lookup(request.match_info["no"], request.query.get("mchid"))
    if not order.was_paid:
        return _err(409, "the order is not paid")
    sim.notify_payment(order)
    return web.json_response({"sent": bool(order.notify_url)})


async def get_refund(request: web.Request) -> web.Response:
    for r in _sim(request).refunds.values():
        if r.out_refund_no == request.match_info["no"]:
            return web.json_response({**r.as_refund(), "mchid": r.mchid, "sub_mchid": r.sub_mchid or None})
    return _err(404, "退款单不存在", "RESOURCE_NOT_EXISTS")


async def clock(request: web.Request) -> web.Response:
    sim = _sim(request)
    if request.method == "DELETE":
        sim.clock_offset = dt.timedelta(0)
    elif request.method == "POST":
        data = await _body(request)
        real = dt.datetime.now(CST).replace(microsecond=0)
        if "offset_seconds" in data:
            sim.clock_offset = dt.timedelta(seconds=float(data["offset_seconds"]))
        elif "now" in data:
            sim.clock_offset = dt.datetime.fromisoformat(str(data["now"])) - real
        elif "date" in data:  # same time of day, another date
            target = dt.date.fromisoformat(str(data["date"]))
            sim.clock_offset = dt.timedelta(days=(target - real.date()).days)
        else:
            raise ValueError("give offset_seconds, now or date")
    return web.json_response({"now": format_time(sim.now()),
                              "offset_seconds": sim.clock_offset.total_seconds()})


async def settings(request: web.Request) -> web.Response:
    sim = _sim(request)
    if request.method == "POST":
        data = await _body(request)
        for key in SETTINGS:
            if key in data:
                setattr(sim, key, type(getattr(sim, key))(data[key]))
        if "next_refund_status" in data:
            states = data["next_refund_status"]
            states = [states] if isinstance(states, str) else list(states)
            if any(s not in ("SUCCESS", "ABNORMAL", "CLOSED") for s in states):
                raise ValueError("next_refund_status: SUCCESS, ABNORMAL or CLOSED")
            sim.next_refund_status = list(states)
        if "notify_retry_delays" in data:
            sim.notifier.retry_delays = [float(x) for x in data["notify_retry_delays"]]
    return web.json_response({**{k: getattr(sim, k) for k in SETTINGS},
                              "next_refund_status": sim.next_refund_status,
                              "notify_retry_delays": sim.notifier.retry_delays})


async def notifies(request: web.Request) -> web.Response:
    return web.json_response([d.as_dict() for d in _sim(request).notifier.deliveries])


async def reset(request: web.Request) -> web.Response:
    _sim(request).reset()
    request.app[FAULTS_KEY].clear()
    return web.json_response({"reset": True})


_PAGE = """<!doctype html><html lang="zh"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>微信支付（沙箱）</title></head>
<body style="font-family:sans-serif;max-width:28em;margin:2em auto;text-align:center">
<h2>微信支付 · 沙箱</h2><p>{desc}</p><p style="font-size:2em">¥{yuan}</p><p>{state}</p>
<form method="post" action="/_sim/checkout?prepay_id={prepay}"><button style="font-size:1.2em;padding:.5em 2em"
{disabled}>确认支付 / Pay</button></form></body></html>"""


async def checkout(request: web.Request) -> web.Response:
    """A tiny payment page: the h5_url of H5 orders, usable from a browser."""
    sim = _sim(request)
    prepay = request.query.get("prepay_id", "")
    order = next((o for o in sim.orders.values() if prepay and o.prepay_id == prepay), None)
    if order is None:
        return _err(404, "unknown prepay_id")
    if request.method == "POST":
        sim.confirm(order)
    sim.settle(order)
    page = _PAGE.format(desc=html.escape(order.description), yuan=fen_to_yuan(order.total),
                        state=html.escape(order.as_transaction()["trade_state_desc"]),
                        prepay=html.escape(prepay), disabled="" if order.state == "NOTPAY" else "disabled")
    return web.Response(text=page, content_type="text/html")


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/_sim/", index)
    r.add_get("/_sim/orders", list_orders)
    r.add_get("/_sim/orders/{no}", get_order)
    r.add_post("/_sim/orders/{no}/pay", pay_order)
    r.add_post("/_sim/orders/{no}/fail", fail_order)
    r.add_post("/_sim/orders/{no}/notify", renotify_order)
    r.add_get("/_sim/refunds/{no}", get_refund)
    add_script_routes(r, SIM_KEY)
    add_fault_routes(r, FAULTS_KEY)
    for method in ("GET", "POST", "DELETE"):
        r.add_route(method, "/_sim/clock", clock)
    r.add_get("/_sim/settings", settings)
    r.add_post("/_sim/settings", settings)
    r.add_get("/_sim/notifies", notifies)
    r.add_post("/_sim/reset", reset)
    r.add_get("/_sim/checkout", checkout)
    r.add_post("/_sim/checkout", checkout)
