"""Route handlers: parse, call the service layer, serialise. No business logic here."""
from __future__ import annotations

from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from ..errors import BadRequest, InvalidAmount, ValidationFailed
from ..schemas import (EventOut, PaymentCreate, RefundCreate, ReviewResolve, payment_out,
                       refund_out)
from .keys import CONSOLE_USER, CORE, REQUEST_APP

M = TypeVar("M", bound=BaseModel)


def json_response(data: Any, status: int = 200) -> web.Response:
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


async def parse(request: web.Request, model: type[M], *, overrides: dict[str, Any] | None = None) -> M:
    raw = await request.read()
    try:
        data = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object")
    if overrides:
        data.update(overrides)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [{"field": ".".join(str(x) for x in e["loc"]), "message": e["msg"], "type": e["type"]}
                  for e in exc.errors(include_url=False, include_context=False, include_input=False)]
        if any(e["field"] in ("amount",) for e in errors):
            raise InvalidAmount("amount must be a positive integer number of fen (no decimals, no strings)",
                                errors=errors) from exc
        raise ValidationFailed("; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors) from exc


def _app_id(request: web.Request) -> str | None:
    """The calling app, whose payments alone it may see; None for a console user (every app's)."""
    if request.get(CONSOLE_USER) is not None:
        return None
    return request[REQUEST_APP].id


async def create_payment(request: web.Request) -> web.Response:
    req = await parse(request, PaymentCreate)
    payment = await request.app[CORE].payments.create(_app_id(request), req)
    return json_response(payment_out(payment))


async def get_payment(request: web.Request) -> web.Response:
    p = await request.app[CORE].payments.get(_app_id(request), request.match_info["payment_id"])
    return json_response(payment_out(p))


async def find_payment(request: web.Request) -> web.Response:
    out_trade_no = request.query.get("out_trade_no")
    if not out_trade_no:
        raise ValidationFailed("query parameter out_trade_no is required")
    app_id = _app_id(request)
    if app_id is None:  # the console: any app's, narrowed by ?app_id= when several apps used the number
        p = await request.app[CORE].payments.by_out_trade_no_any(out_trade_no, request.query.get("app_id"))
    else:
        p = await request.app[CORE].payments.by_out_trade_no(app_id, out_trade_no)
    return json_response(payment_out(p))


async def payment_events(request: web.Request) -> web.Response:
    core = request.app[CORE]
    p = await core.payments.get(_app_id(request), request.match_info["payment_id"])
    events = await core.ledger.payment_events(p.id)
    return json_response([EventOut(from_status=e.from_status, to_status=e.to_status, source=e.source,
                                   refund_id=e.refund_id, operator=e.operator, detail=e.detail,
                                   created_at=e.created_at).model_dump(mode="json") for e in events])


async def create_refund(request: web.Request) -> web.Response:
    req = await parse(request, RefundCreate)
    r = await request.app[CORE].refunds.create(_app_id(request), request.match_info["payment_id"], req)
    return json_response(refund_out(r))


async def get_refund(request: web.Request) -> web.Response:
    r = await request.app[CORE].refunds.get(_app_id(request), request.match_info["refund_id"])
    return json_response(refund_out(r))


async def reverse_payment(request: web.Request) -> web.Response:
    p = await request.app[CORE].payments.reverse(_app_id(request), request.match_info["payment_id"],
                                                 operator=request.query.get("operator"))
    return json_response(payment_out(p))


async def close_payment(request: web.Request) -> web.Response:
    p = await request.app[CORE].payments.close(_app_id(request), request.match_info["payment_id"],
                                               operator=request.query.get("operator"))
    return json_response(payment_out(p))


async def channel_notify(request: web.Request) -> web.Response:
    body = await request.read()
    status, payload, ctype = await request.app[CORE].payments.handle_notify(
        request.match_info["channel"], request.match_info["merchant"], request.headers, body)
    return web.Response(body=payload, status=status, content_type=ctype)


async def health(request: web.Request) -> web.Response:
    core = request.app[CORE]
    from sqlalchemy import text

    checks: dict[str, str] = {}
    try:
        async with core.sm() as s:
            await s.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # pragma: no cover - reported, not raised
        checks["database"] = f"error: {exc}"
    checks["nonce_store"] = type(core.nonces).__name__
    ok = all(v == "ok" for k, v in checks.items() if k == "database")
    from .. import __version__

    return json_response({"status": "ok" if ok else "degraded", "version": __version__, "checks": checks,
                          "channels": core.registry.enabled_channels()}, status=200 if ok else 503)


async def metrics(request: web.Request) -> web.Response:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from ..metrics import REGISTRY

    resp = web.Response(body=generate_latest(REGISTRY))
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return resp


# --- admin ------------------------------------------------------------------------------
async def admin_interfaces(request: web.Request) -> web.Response:
    return json_response({"interfaces": await request.app[CORE].ilog.stats()})


async def admin_interface_logs(request: web.Request) -> web.Response:
    q = request.query
    try:
        limit = int(q.get("limit", "100"))
    except ValueError as exc:
        raise ValidationFailed("limit must be an integer") from exc
    rows = await request.app[CORE].ilog.search(interface=q.get("interface"), payment_id=q.get("payment_id"),
                                               outcome=q.get("outcome"), limit=max(1, limit))
    return json_response({"items": rows})


async def admin_reviews(request: web.Request) -> web.Response:
    return json_response(await request.app[CORE].reviews.queue())


def _console_operator(request: web.Request) -> dict[str, Any] | None:
    """A console user decides as themself, whatever the body's ``operator`` says."""
    ident = request.get(CONSOLE_USER)
    return {"operator": ident.actor} if ident is not None else None


async def admin_resolve_payment(request: web.Request) -> web.Response:
    decision = await parse(request, ReviewResolve, overrides=_console_operator(request))
    return json_response(await request.app[CORE].reviews.resolve_payment(request.match_info["payment_id"], decision))


async def admin_resolve_refund(request: web.Request) -> web.Response:
    decision = await parse(request, ReviewResolve, overrides=_console_operator(request))
    return json_response(await request.app[CORE].reviews.resolve_refund(request.match_info["refund_id"], decision))


async def admin_plugins(request: web.Request) -> web.Response:
    core = request.app[CORE]
    return json_response({"plugins": [p.as_dict() for p in core.plugins],
                          "channels": [channel_info(core, cid) for cid in core.registry.channels]})


def channel_info(core: Any, cid: str) -> dict[str, Any]:
    cls = core.registry.channels[cid]
    return {"id": cid, "name_zh": cls.name_zh, "name_en": cls.name_en,
            "capabilities": sorted(c.value for c in cls.capabilities),
            "enabled": cid not in core.registry.disabled_channels,
            "plugin": core.registry.origin.get(("channel", cid)), "auth_code_hint": cls.auth_code_hint}


async def openapi(request: web.Request) -> web.Response:
    from .openapi import build_openapi, with_routes

    routes = [(r.method, r.resource.canonical, r.handler) for r in request.app.router.routes()
              if r.resource is not None]
    return json_response(with_routes(build_openapi(), routes))


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/v1/payments", create_payment)
    r.add_get("/v1/payments", find_payment)
    r.add_get("/v1/payments/{payment_id}", get_payment)
    r.add_get("/v1/payments/{payment_id}/events", payment_events)
    r.add_post("/v1/payments/{payment_id}/refunds", create_refund)
    r.add_post("/v1/payments/{payment_id}/reverse", reverse_payment)
    r.add_post("/v1/payments/{payment_id}/close", close_payment)
    r.add_get("/v1/refunds/{refund_id}", get_refund)
    r.add_post("/v1/notify/{channel}/{merchant}", channel_notify)
    r.add_get("/v1/health", health)
    r.add_get("/v1/openapi.json", openapi)
    r.add_get("/metrics", metrics)
    r.add_get("/v1/admin/interfaces", admin_interfaces)
    r.add_get("/v1/admin/interface-logs", admin_interface_logs)
    r.add_get("/v1/admin/reviews", admin_reviews)
    r.add_post("/v1/admin/reviews/payments/{payment_id}", admin_resolve_payment)
    r.add_post("/v1/admin/reviews/refunds/{refund_id}", admin_resolve_refund)
    r.add_get("/v1/admin/plugins", admin_plugins)
