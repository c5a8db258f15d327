"""Simulator control surface under ``/_sim/`` (no signatures; loopback sandbox only).

Also the patient's pages: the cashier of an opened ``alipay.trade.wap.pay`` (H5)
and of any order by ``out_trade_no``.
"""
from __future__ import annotations

import datetime as dt
import html
from typing import Any
from urllib.parse import quote

from aiohttp import web

from gateway.money import fen_to_yuan
from gateway.testing.simkit import add_fault_routes, add_script_routes
from gateway.testing.simkit import json_error as _err
from gateway.testing.simkit import read_json_object as _body

from .sim_core import SIM_KEY, AlipaySimulator, Ctx
from .sim_faults import FAULTS_KEY, KINDS
from .sim_model import MAGIC_DOC, OUTCOMES, REFUND_ERRORS, SimError, SimOrder
from .wire import CST, format_time

SETTINGS = ("refund_settle_seconds", "userpaying_timeout_seconds", "fee_rate_bp", "bill_url_ttl_seconds",
            "order_timeout_minutes")
NOT_FOUND = ("ACQ.TRADE_NOT_EXIST",)


def _sim(request: web.Request) -> AlipaySimulator:
    return request.app[SIM_KEY]


@web.middleware
async def control_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    if not request.path.startswith("/_sim"):
        return await handler(request)
    try:
        return await handler(request)
    except SimError as exc:
        return _err(404 if exc.sub_code in NOT_FOUND else 409, exc.sub_msg, exc.sub_code)
    except (ValueError, TypeError) as exc:
        return _err(400, str(exc))


def _order(request: web.Request) -> SimOrder:
    return _sim(request).lookup(request.match_info["no"], request.query.get("app_id"))


async def index(request: web.Request) -> web.Response:
    sim = _sim(request)
    return web.json_response({
        "channel": "alipay",
        "base_url": sim.base_url,
        "gateway_url": f"{sim.base_url}/gateway.do",
        "merchants": [m.info(sim.base_url) for m in sim.merchants.values()],
        "magic_auth_codes": {f"…{k}": v for k, v in MAGIC_DOC.items()},
        "script_outcomes": list(OUTCOMES),
        "refund_errors": list(REFUND_ERRORS),
        "fault_kinds": list(KINDS),
        "now": format_time(sim.now()),
    })


async def list_orders(request: web.Request) -> web.Response:
    sim = _sim(request)
    return web.json_response([sim.settle(o).as_sim() for o in list(sim.orders.values())])


async def get_order(request: web.Request) -> web.Response:
    return web.json_response(_order(request).as_sim())


async def scan_order(request: web.Request) -> web.Response:
    return web.json_response(_sim(request).scan(_order(request)).as_sim())


async def pay_order(request: web.Request) -> web.Response:
    data = await _body(request)
    return web.json_response(_sim(request).confirm(_order(request), data.get("buyer_id")).as_sim())


async def fail_order(request: web.Request) -> web.Response:
    return web.json_response(_sim(request).fail(_order(request)).as_sim())


async def renotify_order(request: web.Request) -> web.Response:
    sim, order = _sim(request), _order(request)
    if not order.visible:
        return _err(409, "the order is not a trade yet (not scanned)")
    sim.notify(order)
    return web.json_response({"sent": bool(order.notify_url)})


async def get_refund(request: web.Request) -> web.Response:
    found = [r.as_sim() for r in _sim(request).refunds.values() if r.out_request_no == request.match_info["no"]]
    if not found:
        return _err(404, "退款不存在", "REFUND_NOT_EXIST")
    return web.json_response(found[0] if len(found) == 1 else found)


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
            target = dt.datetime.fromisoformat(str(data["now"]))
            sim.clock_offset = (target if target.tzinfo else target.replace(tzinfo=CST)) - real
        elif "date" in data:  # same time of day, another date
            sim.clock_offset = dt.timedelta(days=(dt.date.fromisoformat(str(data["date"])) - real.date()).days)
        else:
            raise ValueError("give offset_seconds, now or date")
    return web.json_response({"now": format_time(sim.now()), "offset_seconds": sim.clock_offset.total_seconds()})


async def settings(request: web.Request) -> web.Response:
    sim = _sim(request)
    if request.method == "POST":
        data = await _body(request)
        for key in SETTINGS:
            if key in data:
                setattr(sim, key, type(getattr(sim, key))(data[key]))
        if "next_refund_errors" in data:
            sim.set_refund_errors(data["next_refund_errors"])
        if "notify_retry_delays" in data:
            sim.notifier.retry_delays = [float(x) for x in data["notify_retry_delays"]]
    return web.json_response({**{k: getattr(sim, k) for k in SETTINGS},
                              "next_refund_errors": sim.next_refund_errors,
                              "notify_retry_delays": sim.notifier.retry_delays})


async def notifies(request: web.Request) -> web.Response:
    return web.json_response([d.as_dict() for d in _sim(request).notifier.deliveries])


async def reset(request: web.Request) -> web.Response:
    _sim(request).reset()
    request.app[FAULTS_KEY].clear()
    return web.json_response({"reset": True})


# --- the patient's pages ------------------------------------------------------------------
_PAGE = """<!doctype html><html lang="zh"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>支付宝（沙箱）</title></head>
<body style="font-family:sans-serif;max-width:28em;margin:2em auto;text-align:center">
<h2>支付宝 · 沙箱收银台</h2><p>{subject}</p><p style="font-size:2em">¥{yuan}</p><p>{state}</p>
<form method="post" action="/_sim/cashier?out_trade_no={no}&amp;app_id={app}"><button
style="font-size:1.2em;padding:.5em 2em" {disabled}>确认付款 / Pay</button></form></body></html>"""
_STATES = {"PRECREATED": "等待扫码", "WAIT_BUYER_PAY": "等待付款", "TRADE_SUCCESS": "支付成功",
           "TRADE_FINISHED": "交易结束", "TRADE_CLOSED": "交易关闭"}


def cashier_page(order: SimOrder) -> web.Response:
    page = _PAGE.format(subject=html.escape(order.subject), yuan=fen_to_yuan(order.total),
                        state=_STATES.get(order.state, order.state), no=quote(order.out_trade_no),
                        app=quote(order.app_id),
                        disabled="" if order.state in ("PRECREATED", "WAIT_BUYER_PAY") else "disabled")
    return web.Response(text=page, content_type="text/html")


def error_page(exc: SimError) -> web.Response:
    page = (f'<!doctype html><html lang="zh"><head><meta charset="utf-8"><title>支付宝（沙箱）</title></head>'
            f"<body><h3>支付出错了</h3><p>错误代码 {html.escape(exc.sub_code)}</p>"
            f"<p>错误原因: {html.escape(exc.sub_msg)}</p></body></html>")
    return web.Response(text=page, content_type="text/html", status=200)


def open_wap_pay(sim: AlipaySimulator, ctx: Ctx, biz: dict[str, Any]) -> web.Response:
    """The browser opened a signed ``alipay.trade.wap.pay`` URL: the trade exists from now on."""
    return cashier_page(sim.settle(sim.create(ctx, biz, "QUICK_WAP_WAY")))


async def cashier(request: web.Request) -> web.Response:
    sim = _sim(request)
    order = sim.lookup(request.query.get("out_trade_no", ""), request.query.get("app_id") or None)
    if request.method == "POST":
        sim.confirm(order)
    return cashier_page(sim.settle(order))


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/_sim/", index)
    r.add_get("/_sim/orders", list_orders)
    r.add_get("/_sim/orders/{no}", get_order)
    r.add_post("/_sim/orders/{no}/scan", scan_order)
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
    r.add_get("/_sim/cashier", cashier)
    r.add_post("/_sim/cashier", cashier)
