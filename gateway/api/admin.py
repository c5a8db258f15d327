"""Admin routes (scope ``admin``): configuration, callbacks. Thin: parse, call, serialise."""
from __future__ import annotations

from aiohttp import web

from ..errors import ValidationFailed
from ..services.config_admin import (AppIn, AppPatch, CampusIn, ChannelSwitch, EntryIn, EntryPatch,
                                     MerchantIn, MerchantPatch)
from .handlers import json_response, parse
from .keys import CONSOLE_USER, CORE, REQUEST_APP

UNMASK_VALUES = ("1", "true", "yes")


def actor(request: web.Request) -> str:
    """Who did it: the console user (``console:<username>``) behind a /console/api request; otherwise
    the admin app, and the person at it when the caller says (X-Operator)."""
    ident = request.get(CONSOLE_USER)
    if ident is not None:
        return ident.actor
    op = request.headers.get("X-Operator", "").strip()[:64]
    return f"{request[REQUEST_APP].id}:{op}" if op else request[REQUEST_APP].id


def wants_unmask(request: web.Request) -> bool:
    """``?unmask=1``: personal data in full. The console requires ``pii.view`` for it and writes it to
    the operation log; use :func:`reveal` in handlers."""
    return request.query.get("unmask", "").lower() in UNMASK_VALUES


async def reveal(request: web.Request, target: str) -> bool:
    """Whether to show personal data unmasked. An admin app's unmasked view is audited here; a console
    user's was checked (``pii.view``) and is logged by the console middleware."""
    if not wants_unmask(request):
        return False
    if request.get(CONSOLE_USER) is None:
        await request.app[CORE].ledger.audit(actor(request), "pii.unmask", target[:64],
                                             {"route": request.path, "query": dict(request.query)})
    return True


async def campuses(request: web.Request) -> web.Response:
    return json_response({"items": await request.app[CORE].config.list_campuses()})


async def put_campus(request: web.Request) -> web.Response:
    body = await parse(request, CampusIn)
    return json_response(await request.app[CORE].config.put_campus(actor(request), request.match_info["id"], body))


async def merchants(request: web.Request) -> web.Response:
    return json_response({"items": await request.app[CORE].config.list_merchants()})


async def create_merchant(request: web.Request) -> web.Response:
    body = await parse(request, MerchantIn)
    return json_response(await request.app[CORE].config.create_merchant(actor(request), body), status=201)


async def patch_merchant(request: web.Request) -> web.Response:
    body = await parse(request, MerchantPatch)
    return json_response(await request.app[CORE].config.patch_merchant(actor(request), request.match_info["id"], body))


async def entries(request: web.Request) -> web.Response:
    return json_response({"items": await request.app[CORE].config.list_entries(request.query.get("app_id"))})


async def create_entry(request: web.Request) -> web.Response:
    body = await parse(request, EntryIn)
    return json_response(await request.app[CORE].config.create_entry(actor(request), body), status=201)


async def patch_entry(request: web.Request) -> web.Response:
    body = await parse(request, EntryPatch)
    return json_response(await request.app[CORE].config.patch_entry(actor(request), request.match_info["id"], body))


async def channels(request: web.Request) -> web.Response:
    return json_response({"items": await request.app[CORE].config.list_channels()})


async def switch_channel(request: web.Request) -> web.Response:
    body = await parse(request, ChannelSwitch)
    return json_response({"items": await request.app[CORE].config.switch_channel(
        actor(request), request.match_info["channel"], body)})


async def apps(request: web.Request) -> web.Response:
    return json_response({"items": await request.app[CORE].config.list_apps()})


async def create_app(request: web.Request) -> web.Response:
    body = await parse(request, AppIn)
    return json_response(await request.app[CORE].config.create_app(actor(request), body), status=201)


async def patch_app(request: web.Request) -> web.Response:
    body = await parse(request, AppPatch)
    return json_response(await request.app[CORE].config.patch_app(actor(request), request.match_info["id"], body))


async def rotate_secret(request: web.Request) -> web.Response:
    return json_response(await request.app[CORE].config.rotate_secret(actor(request), request.match_info["id"]))


async def callbacks(request: web.Request) -> web.Response:
    q = request.query
    try:
        limit = int(q.get("limit", "100"))
    except ValueError as exc:
        raise ValidationFailed("limit must be an integer") from exc
    return json_response(await request.app[CORE].callbacks.search(status=q.get("status"),
                                                                  payment_id=q.get("payment_id"), limit=limit))


async def resend_callback(request: web.Request) -> web.Response:
    try:
        nid = int(request.match_info["id"])
    except ValueError as exc:
        raise ValidationFailed("notification id must be an integer") from exc
    return json_response(await request.app[CORE].callbacks.resend(nid, actor(request)))


async def audit_log(request: web.Request) -> web.Response:
    """操作日志: administrative actions, newest first, by ``action`` (prefix), ``actor``, ``target``."""
    q = request.query
    try:
        limit = min(int(q.get("limit", "200")), 1000)
    except ValueError as exc:
        raise ValidationFailed("limit must be an integer") from exc
    items = await request.app[CORE].ledger.audit_search(action=q.get("action"), actor=q.get("actor"),
                                                        target=q.get("target"), limit=limit)
    return json_response({"items": items})


def add_admin_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/v1/admin/audit", audit_log)
    r.add_get("/v1/admin/campuses", campuses)
    r.add_put("/v1/admin/campuses/{id}", put_campus)
    r.add_get("/v1/admin/merchants", merchants)
    r.add_post("/v1/admin/merchants", create_merchant)
    r.add_patch("/v1/admin/merchants/{id}", patch_merchant)
    r.add_get("/v1/admin/entries", entries)
    r.add_post("/v1/admin/entries", create_entry)
    r.add_patch("/v1/admin/entries/{id}", patch_entry)
    r.add_get("/v1/admin/channels", channels)
    r.add_patch("/v1/admin/channels/{channel}", switch_channel)
    r.add_get("/v1/admin/apps", apps)
    r.add_post("/v1/admin/apps", create_app)
    r.add_patch("/v1/admin/apps/{id}", patch_app)
    r.add_post("/v1/admin/apps/{id}/rotate-secret", rotate_secret)
    r.add_get("/v1/admin/callbacks", callbacks)
    r.add_post("/v1/admin/callbacks/{id}/resend", resend_callback)
