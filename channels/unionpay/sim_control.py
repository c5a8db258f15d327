"""Simulator control surface under ``/_sim/`` (JSON, no signatures; loopback sandbox only)."""
from __future__ import annotations

import datetime as dt
from typing import Any

from aiohttp import web

from channels.wechatpay.sim_faults import KINDS as FAULT_KINDS
from gateway.testing.simkit import add_fault_routes, add_script_routes
from gateway.testing.simkit import json_error as _err
from gateway.testing.simkit import read_json_object as _body

from .sim_core import REFUND_RESULTS, UnionPaySimulator
from .sim_gateway import FAULTS_KEY, SIM_KEY
from .sim_model import MAGIC_DOC, OUTCOMES, AcpError
from .wire import CST

SETTINGS = ("consume_settle_seconds", "refund_settle_seconds", "undo_settle_seconds", "password_timeout_seconds",
            "fee_rate_bp", "settle_cutoff_hour", "bill_summary")


def _sim(request: web.Request) -> UnionPaySimulator:
    return request.app[SIM_KEY]


@web.middleware
async def control_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    if not request.path.startswith("/_sim"):
        return await handler(request)
    try:
        return await handler(request)
    except AcpError as exc:
        return _err(404 if exc.code == "34" else 409, exc.message, exc.code)
    except (ValueError, TypeError) as exc:
        return _err(400, str(exc))


async def index(request: web.Request) -> web.Response:
    sim = _sim(request)
    return web.json_response({
        "channel": "unionpay",
        "base_url": sim.base_url,
        "merchants": [m.info(sim.base_url, sim.public_key_pem, sim.cert_pem) for m in sim.merchants.values()],
        "magic_auth_codes": {f"…{k}": v for k, v in MAGIC_DOC.items()},
        "script_outcomes": list(OUTCOMES),
        "fault_kinds": list(FAULT_KINDS),
        "now": sim.now().isoformat(),
        "settle_date": sim.settle_day().isoformat(),
    })


def _txn(request: web.Request, kind: str | None):  # noqa: ANN202 - SimTxn
    return _sim(request).lookup(request.match_info["no"], request.query.get("merId"), kind)


async def list_orders(request: web.Request) -> web.Response:
    kind = request.query.get("kind")
    return web.json_response([t.as_sim() for t in _sim(request).all_txns() if kind in (None, t.kind)])


async def get_order(request: web.Request) -> web.Response:
    return web.json_response(_txn(request, "consume").as_sim())


async def pay_order(request: web.Request) -> web.Response:
    return web.json_response(_sim(request).confirm(_txn(request, "consume")).as_sim())


async def fail_order(request: web.Request) -> web.Response:
    data = await _body(request)
    code = str(data.get("code", "69"))
    if len(code) != 2 or not code.isdigit() or code == "00":
        raise ValueError("code must be a two-digit failure respCode")
    return web.json_response(_sim(request).fail(_txn(request, "consume"), code).as_sim())


async def renotify(request: web.Request) -> web.Response:
    txn = _txn(request, None)
    if txn.state == "PROCESSING":
        return _err(409, "the transaction has not completed")
    _sim(request).notify(txn)
    return web.json_response({"sent": bool(txn.back_url)})


async def get_refund(request: web.Request) -> web.Response:
    sim = _sim(request)
    try:
        return web.json_response(_txn(request, "refund").as_sim())
    except AcpError:
        return web.json_response(sim.lookup(request.match_info["no"], request.query.get("merId"), "undo").as_sim())


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
    return web.json_response({"now": sim.now().isoformat(), "offset_seconds": sim.clock_offset.total_seconds(),
                              "settle_date": sim.settle_day().isoformat()})


async def settings(request: web.Request) -> web.Response:
    sim = _sim(request)
    if request.method == "POST":
        data = await _body(request)
        for key in SETTINGS:
            if key in data:
                current, value = getattr(sim, key), data[key]
                if isinstance(current, bool):
                    if not isinstance(value, bool):
                        raise ValueError(f"{key} must be true or false")
                else:
                    value = type(current)(value)
                setattr(sim, key, value)
        if "next_refund_result" in data:
            codes = data["next_refund_result"]
            codes = [codes] if isinstance(codes, str) else [str(c) for c in codes]
            if any(c not in REFUND_RESULTS for c in codes):
                raise ValueError(f"next_refund_result: codes among {', '.join(REFUND_RESULTS)}")
            sim.next_refund_result = codes
        if "bill_unavailable" in data:
            days = [str(d) for d in data["bill_unavailable"]]
            if any(len(d) != 4 or not d.isdigit() for d in days):
                raise ValueError("bill_unavailable: MMDD settlement days")
            sim.bill_unavailable = days
        if "notify_retry_delays" in data:
            sim.notifier.retry_delays = [float(x) for x in data["notify_retry_delays"]]
    return web.json_response({**{k: getattr(sim, k) for k in SETTINGS},
                              "next_refund_result": sim.next_refund_result,
                              "bill_unavailable": sim.bill_unavailable,
                              "notify_retry_delays": sim.notifier.retry_delays})


async def bill(request: web.Request) -> web.Response:
    """What the settlement file of a day holds, as totals (the truth to reconcile against)."""
    sim = _sim(request)
    day = dt.date.fromisoformat(request.match_info["date"])
    mer_id = request.query.get("merId") or sim.default_merchant.mer_id
    return web.json_response(sim.bill_truth(mer_id, day))


async def notifies(request: web.Request) -> web.Response:
    return web.json_response([d.as_dict() for d in _sim(request).notifier.deliveries])


async def reset(request: web.Request) -> web.Response:
    _sim(request).reset()
    request.app[FAULTS_KEY].clear()
    return web.json_response({"reset": True})


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/_sim/", index)
    r.add_get("/_sim/orders", list_orders)
    r.add_get("/_sim/orders/{no}", get_order)
    r.add_post("/_sim/orders/{no}/pay", pay_order)
    r.add_post("/_sim/orders/{no}/fail", fail_order)
    r.add_post("/_sim/orders/{no}/notify", renotify)
    r.add_get("/_sim/refunds/{no}", get_refund)
    r.add_post("/_sim/refunds/{no}/notify", renotify)
    add_script_routes(r, SIM_KEY)
    add_fault_routes(r, FAULTS_KEY)
    for method in ("GET", "POST", "DELETE"):
        r.add_route(method, "/_sim/clock", clock)
    r.add_get("/_sim/settings", settings)
    r.add_post("/_sim/settings", settings)
    r.add_get("/_sim/bills/{date}", bill)
    r.add_get("/_sim/notifies", notifies)
    r.add_post("/_sim/reset", reset)
