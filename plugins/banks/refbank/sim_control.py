"""Simulator control surface under ``/_sim/`` (no signatures; a loopback sandbox only)."""
from __future__ import annotations

import datetime as dt
import html
from typing import Any

from aiohttp import web

from gateway.money import fen_to_yuan
from gateway.testing.simkit import add_fault_routes, add_script_routes
from gateway.testing.simkit import json_error as _err
from gateway.testing.simkit import read_json_object as _body

from .crypto import public_key_pem
from .recon import write_recon
from .sim_api import SIM_KEY
from .sim_core import RefBankSimulator
from .sim_faults import FAULTS_KEY, KINDS
from .sim_model import MAGIC_DOC, OUTCOMES, SimError
from .wire import BANK_ID, CST, FAIL_CODES, format_time

SETTINGS = ("refund_settle_seconds", "confirm_timeout_seconds", "password_free_limit", "fee_rate_bp",
            "bill_same_day", "qr_ttl_minutes")
_NOT_FOUND = ("ORDER_NOT_FOUND", "REFUND_NOT_FOUND", "MERCHANT_NOT_FOUND")


def _sim(request: web.Request) -> RefBankSimulator:
    return request.app[SIM_KEY]


@web.middleware
async def control_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    if not request.path.startswith("/_sim"):
        return await handler(request)
    try:
        return await handler(request)
    except SimError as exc:
        status = 404 if exc.code in _NOT_FOUND else exc.status if exc.status >= 400 else 409
        return _err(status, exc.message, exc.code)
    except (ValueError, TypeError) as exc:
        return _err(400, str(exc))


async def index(request: web.Request) -> web.Response:
    sim = _sim(request)
    return web.json_response({
        "channel": "ecny",
        "bank": BANK_ID,
        "base_url": sim.base_url,
        "bank_key_id": sim.bank_key_id,
        "bank_public_key": public_key_pem(sim.bank_key),
        "merchants": [{"merchant_id": m.merchant_id, "name": m.name, "key_id": m.key_id}
                      for m in sim.merchants.values()],
        "magic_auth_codes": {f"…{k}": v for k, v in MAGIC_DOC.items()},
        "script_outcomes": list(OUTCOMES),
        "fail_codes": FAIL_CODES,
        "fault_kinds": list(KINDS),
        "now": format_time(sim.now()),
    })


def _merchant_q(request: web.Request) -> str | None:
    return request.query.get("merchant_id") or None


async def list_orders(request: web.Request) -> web.Response:
    sim = _sim(request)
    return web.json_response([sim.settle(o).as_sim() for o in sim.orders.values()])


async def get_order(request: web.Request) -> web.Response:
    return web.json_response(_sim(request).lookup(request.match_info["no"], _merchant_q(request)).as_sim())


async def pay_order(request: web.Request) -> web.Response:
    sim, data = _sim(request), await _body(request)
    order = sim.lookup(request.match_info["no"], _merchant_q(request))
    seed = data.get("wallet_seed")
    sim.confirm(order, str(seed) if seed else None)
    return web.json_response(order.as_sim())


async def fail_order(request: web.Request) -> web.Response:
    sim, data = _sim(request), await _body(request)
    order = sim.lookup(request.match_info["no"], _merchant_q(request))
    sim.fail(order, data.get("fail_code"))
    return web.json_response(order.as_sim())


async def renotify_order(request: web.Request) -> web.Response:
    sim = _sim(request)
    order = sim.lookup(request.match_info["no"], _merchant_q(request))
    if not order.was_paid:
        return _err(409, "the order is not paid")
    sim.notify_payment(order)
    return web.json_response({"sent": bool(order.notify_url)})


async def get_refund(request: web.Request) -> web.Response:
    for r in _sim(request).refunds.values():
        if r.out_refund_no == request.match_info["no"] and _merchant_q(request) in (None, r.merchant_id):
            return web.json_response({**r.as_refund(), "notify_url": r.notify_url or None,
                                      "fee_returned": fen_to_yuan(r.fee_returned)})
    return _err(404, "退款单不存在", "REFUND_NOT_FOUND")


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
        elif "date" in data:  # same time of day, another date: trades land on that bill date
            sim.clock_offset = dt.timedelta(days=(dt.date.fromisoformat(str(data["date"])) - real.date()).days)
        else:
            raise ValueError("give offset_seconds, now or date")
    return web.json_response({"now": sim.now().isoformat(), "offset_seconds": sim.clock_offset.total_seconds()})


async def settings(request: web.Request) -> web.Response:
    sim = _sim(request)
    if request.method == "POST":
        data = await _body(request)
        for key in SETTINGS:
            if key in data:
                kind = type(getattr(sim, key))
                value = data[key]
                if kind is bool and not isinstance(value, bool):
                    raise ValueError(f"{key} must be true or false")
                setattr(sim, key, kind(value))
        if "next_refund_status" in data:
            states = data["next_refund_status"]
            states = [states] if isinstance(states, str) else list(states)
            if any(s not in ("SUCCESS", "FAIL", "DECLINE") for s in states):
                raise ValueError("next_refund_status: SUCCESS, FAIL or DECLINE")
            sim.next_refund_status = list(states)
        if "notify_retry_delays" in data:
            sim.notifier.retry_delays = [float(x) for x in data["notify_retry_delays"]]
    return web.json_response({**{k: getattr(sim, k) for k in SETTINGS},
                              "next_refund_status": sim.next_refund_status,
                              "notify_retry_delays": sim.notifier.retry_delays})


async def notifies(request: web.Request) -> web.Response:
    return web.json_response([d.as_dict() for d in _sim(request).notifier.deliveries])


async def bill_file(request: web.Request) -> web.Response:
    """The reconciliation file of a day as the bank would send it (unsigned preview)."""
    sim = _sim(request)
    day = dt.date.fromisoformat(request.match_info["date"])
    merchant_id = _merchant_q(request) or sim.default_merchant.merchant_id
    return web.Response(text=write_recon(sim.recon_file(merchant_id, day)), content_type="text/plain",
                        charset="utf-8")


async def reset(request: web.Request) -> web.Response:
    _sim(request).reset()
    request.app[FAULTS_KEY].clear()
    return web.json_response({"reset": True})


_PAGE = """<!doctype html><html lang="zh"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>数字人民币（沙箱）</title></head>
<body style="font-family:sans-serif;max-width:28em;margin:2em auto;text-align:center">
<h2>数字人民币 · 沙箱</h2><p>{subject}</p><p style="font-size:2em">¥{yuan}</p><p>{state}</p>
<form method="post"><button style="font-size:1.2em;padding:.5em 2em" {disabled}>确认支付 / Pay</button></form>
</body></html>"""
_STATE_TEXT = {"WAIT_PAY": "待支付", "SUCCESS": "支付成功", "REFUND": "已退款", "CLOSED": "已关闭",
               "FAIL": "支付失败", "PAYING": "支付中", "REVOKED": "已撤销"}


async def qr_page(request: web.Request) -> web.Response:
    """What the wallet app shows after scanning a dynamic QR code: a page to pay it."""
    sim = _sim(request)
    token = request.match_info["token"]
    order = next((o for o in sim.orders.values() if o.qr_token == token), None)
    if order is None:
        return _err(404, "unknown QR code")
    if request.method == "POST":
        sim.confirm(order)
    sim.settle(order)
    page = _PAGE.format(subject=html.escape(order.subject), yuan=fen_to_yuan(order.amount),
                        state=_STATE_TEXT.get(order.status, order.status),
                        disabled="" if order.status == "WAIT_PAY" else "disabled")
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
    r.add_get("/_sim/bills/{date}", bill_file)
    r.add_post("/_sim/reset", reset)
    r.add_get("/_sim/qr/{token}", qr_page)
    r.add_post("/_sim/qr/{token}", qr_page)
