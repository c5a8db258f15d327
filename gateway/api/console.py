"""The finance console over HTTP: the pages at ``/console/``, the console API at ``/console/api/``.

- Login is a password, then a TOTP code; the session is a row whose token's hash matches the
  ``yinyi_console`` cookie (HttpOnly, SameSite=Strict, Path=/console).
- Every non-GET API request carries ``X-CSRF-Token`` equal to the session's token.
- ``/console/api/admin/<rest>`` is ``/v1/admin/<rest>``: the same handlers, authenticated by
  the session, guarded by a permission per method and route, with the user as operator and the
  user's approval roles as roles (``actor()`` and ``roles()`` read the identity set here).
- Every console response carries a strict Content-Security-Policy.
See docs/console.md.
"""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from ..console import queries
from ..console.dictionaries import dictionaries as build_dictionaries
from ..console.org import DepartmentIn, Organisation
from ..console.permissions import (EXPORT_ROUTES, GROUP_EN, GROUP_ZH, KNOWN_APPROVAL_ROLES, PERMISSIONS,
                                   admin_permission)
from ..console.service import PasswordIn, RoleIn, RolePatch, UserIn, UserPatch, role_out, user_out
from ..errors import (ConsoleCsrfFailed, ConsolePasswordChangeRequired, ConsolePermissionDenied, ValidationFailed,
                      YinyiError)
from ..vault import mask
from .admin import wants_unmask
from .handlers import find_payment, get_payment, get_refund, json_response, parse
from .his import _day, _list
from .keys import CORE, CONSOLE_USER
from .middleware import Handler, errors_middleware

COOKIE = "yinyi_console"
API = "/console/api"
ADMIN_PREFIX = f"{API}/admin"
STATIC_DIR = Path(__file__).resolve().parent.parent / "console" / "static"
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
PUBLIC, ANY = "public", "any"

# Console routes of their own: the permission each needs (a tuple: any of them).
NATIVE: dict[tuple[str, str], Any] = {
    ("POST", f"{API}/login"): PUBLIC,
    ("POST", f"{API}/login/totp"): PUBLIC,
    ("POST", f"{API}/logout"): ANY,
    ("GET", f"{API}/me"): ANY,
    ("POST", f"{API}/me/password"): ANY,
    ("GET", f"{API}/overview"): "overview.view",
    ("GET", f"{API}/payments"): "payments.view",
    ("GET", f"{API}/payments/search"): "payments.view",
    ("GET", f"{API}/payments/{{payment_id}}"): "payments.view",
    ("GET", f"{API}/payments/{{payment_id}}/detail"): "payments.view",
    ("POST", f"{API}/payments/{{payment_id}}/refund-requests"): "payments.refund",
    ("GET", f"{API}/refunds/{{refund_id}}"): "payments.view",
    ("GET", f"{API}/system/users"): "system.users",
    ("POST", f"{API}/system/users"): "system.users",
    ("GET", f"{API}/system/users/{{username}}"): "system.users",
    ("PUT", f"{API}/system/users/{{username}}"): "system.users",
    ("DELETE", f"{API}/system/users/{{username}}"): "system.users",
    ("GET", f"{API}/system/roles"): ("system.roles", "system.users"),
    ("POST", f"{API}/system/roles"): "system.roles",
    ("GET", f"{API}/system/roles/{{id}}"): ("system.roles", "system.users"),
    ("PUT", f"{API}/system/roles/{{id}}"): "system.roles",
    ("DELETE", f"{API}/system/roles/{{id}}"): "system.roles",
    ("GET", f"{API}/system/permissions"): ("system.roles", "system.users"),
    ("GET", f"{API}/system/oplog"): "oplog.view",
    ("GET", f"{API}/system/oplog/verify"): "oplog.view",
    ("GET", f"{API}/system/jobs"): "config.view",
    ("GET", f"{API}/system/sessions"): ANY,
    ("DELETE", f"{API}/system/sessions/{{id}}"): ANY,
    ("GET", f"{API}/system/dictionaries"): ANY,
    ("GET", f"{API}/system/departments"): ("config.view", "system.users"),
    ("PUT", f"{API}/system/departments/{{id}}"): "config.edit",
    ("DELETE", f"{API}/system/departments/{{id}}"): "config.edit",
}
# What a user who must change the initial password may still do.
WHILE_MUST_CHANGE = {("POST", f"{API}/logout"), ("GET", f"{API}/me"), ("POST", f"{API}/me/password")}
# Admin routes whose body is a file (raw bytes, any content type): logged by size and digest.
UPLOAD_ROUTES = ("/his/systems/{id}/bill-import", "/recon/bank-statements")
_TARGET_KEYS = ("id", "payment_id", "refund_id", "username", "key", "name", "channel")


def permission_for(method: str, canonical: str) -> Any:
    """The permission a console API route needs: PUBLIC, ANY, a code, or a tuple of codes (any)."""
    method = "GET" if method == "HEAD" else method
    if canonical.startswith(ADMIN_PREFIX + "/"):
        return admin_permission(method, canonical[len(ADMIN_PREFIX):])
    return NATIVE.get((method, canonical), "system.users")


def _ident(request: web.Request) -> Any:
    return request[CONSOLE_USER]


def _target(request: web.Request) -> str | None:
    return next((request.match_info[k] for k in _TARGET_KEYS if k in request.match_info), None)


def _is_export(method: str, canonical: str, request: web.Request) -> bool:
    rest = canonical[len(ADMIN_PREFIX):] if canonical.startswith(ADMIN_PREFIX + "/") else None
    return (method == "GET" and rest in EXPORT_ROUTES
            and request.query.get("format", "json").lower() not in ("", "json"))


def _security_headers(headers: Any, api: bool) -> None:
    headers["Content-Security-Policy"] = CSP
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Frame-Options"] = "DENY"
    if api:
        headers["Cache-Control"] = "no-store"


@web.middleware
async def console_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Sessions, CSRF and permissions for /console/api; security headers on every /console response."""
    if request.path != "/console" and not request.path.startswith("/console/"):
        return await handler(request)
    api = request.path.startswith(API + "/")
    try:
        resp = await errors_middleware(request, functools.partial(_guard, handler=handler))
    except web.HTTPException as exc:
        _security_headers(exc.headers, api)
        raise
    _security_headers(resp.headers, api)
    return resp


async def _guard(request: web.Request, *, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith(API + "/"):
        return await handler(request)  # pages and static files
    resource = request.match_info.route.resource
    if resource is None:
        return await handler(request)  # no such route: 404 / 405
    canonical = resource.canonical
    method = "GET" if request.method == "HEAD" else request.method
    needed = permission_for(method, canonical)
    if needed == PUBLIC:
        return await handler(request)
    core = request.app[CORE]
    ident = await core.console.authenticate(request.cookies.get(COOKIE), ip=request.remote)
    request[CONSOLE_USER] = ident
    if method not in SAFE:
        sent = request.headers.get("X-CSRF-Token", "")
        if not hmac.compare_digest(sent.encode(), ident.csrf_token.encode()):
            raise ConsoleCsrfFailed("X-CSRF-Token is missing or does not match the session")
    if ident.must_change_password and (method, canonical) not in WHILE_MUST_CHANGE:
        raise ConsolePasswordChangeRequired("POST /console/api/me/password first")
    codes = [] if needed == ANY else ([needed] if isinstance(needed, str) else list(needed))
    unmask, export = wants_unmask(request), _is_export(method, canonical, request)
    missing = None
    if codes and not any(ident.has(c) for c in codes):
        missing = codes[0]
    elif unmask and not ident.has("pii.view"):
        missing = "pii.view"
    elif export and not ident.has("reports.export"):
        missing = "reports.export"
    if missing is not None:
        if method not in SAFE or missing == "pii.view":
            await core.console.oplog.write(username=ident.username, ip=ident.ip, action="permission.denied",
                                           target=_target(request),
                                           detail={"method": method, "route": canonical, "permission": missing})
        raise ConsolePermissionDenied(f"this needs the permission {missing}", permission=missing)
    change = canonical.startswith(ADMIN_PREFIX + "/") and method not in SAFE
    try:
        resp = await handler(request)
    except YinyiError as exc:
        if change:
            await _log_change(request, ident, method, canonical, exc.status, exc.code)
        raise
    if change:
        await _log_change(request, ident, method, canonical, resp.status, None)
    if resp.status < 400:
        for flag, action in ((unmask, "pii.unmask"), (export, "report.export")):
            if flag:
                await core.console.oplog.write(username=ident.username, ip=ident.ip, action=action,
                                               target=_target(request) or canonical,
                                               detail={"route": canonical, "query": dict(request.query)})
    return resp


async def _log_change(request: web.Request, ident: Any, method: str, canonical: str, status: int,
                      code: str | None) -> None:
    """Every change made through an admin alias: who, from where, what, on what, with which answer."""
    raw = await request.read() if request.body_exists else b""
    body: Any = None
    if raw and canonical[len(ADMIN_PREFIX):] not in UPLOAD_ROUTES:
        try:
            body = _redact(mask(orjson.loads(raw)))
        except orjson.JSONDecodeError:
            body = None
    if raw and body is None:  # an uploaded file (bill, statement): what and how big, never its content
        body = {"bytes": len(raw), "filename": request.query.get("filename") or request.headers.get("X-Filename"),
                "content_type": request.content_type, "sha256": hashlib.sha256(raw).hexdigest()}
    text = orjson.dumps(body).decode() if body is not None else None
    detail = {"method": method, "route": canonical, "status": status, "code": code,
              "query": dict(request.query), "body": body if text is None or len(text) <= 2000 else text[:2000]}
    await request.app[CORE].console.oplog.write(username=ident.username, ip=ident.ip,
                                                action=f"{method} {canonical[len(API):]}"[:96],
                                                target=_target(request), detail=detail)


def _redact(data: Any) -> Any:
    """Adapter configurations may hold keys under any name: they never reach the log."""
    if isinstance(data, dict):
        return {k: ("<omitted>" if k == "config" else _redact(v)) for k, v in data.items()}
    if isinstance(data, list):
        return [_redact(v) for v in data]
    return data


# --- login, session, own account ---------------------------------------------------------------------
class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(max_length=64)
    password: str = Field(max_length=128)


class TotpIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    login_token: str = Field(min_length=10, max_length=128)
    code: str = Field(min_length=6, max_length=10)


def _me(ident: Any) -> dict[str, Any]:
    return {"user": ident.user_out(), "csrf_token": ident.csrf_token}


async def login(request: web.Request) -> web.Response:
    body = await parse(request, LoginIn)
    return json_response(await request.app[CORE].console.login(body.username.strip(), body.password,
                                                               ip=request.remote))


async def login_totp(request: web.Request) -> web.Response:
    body = await parse(request, TotpIn)
    core = request.app[CORE]
    token, ident = await core.console.login_totp(body.login_token, body.code, ip=request.remote,
                                                 user_agent=request.headers.get("User-Agent"))
    resp = json_response(_me(ident))
    resp.set_cookie(COOKIE, token, path="/console", httponly=True, samesite="Strict",
                    secure=request.secure or core.settings.console_cookie_secure)
    return resp


async def logout(request: web.Request) -> web.Response:
    await request.app[CORE].console.logout(_ident(request))
    resp = json_response({"ok": True})
    resp.del_cookie(COOKIE, path="/console")
    return resp


async def me(request: web.Request) -> web.Response:
    return json_response(_me(_ident(request)))


async def me_password(request: web.Request) -> web.Response:
    body = await parse(request, PasswordIn)
    await request.app[CORE].console.change_password(_ident(request), body)
    return json_response({"ok": True})


# --- overview and payments -------------------------------------------------------------------------------
def _int(request: web.Request, key: str, default: int) -> int:
    try:
        return int(request.query.get(key, str(default)))
    except ValueError as exc:
        raise ValidationFailed(f"{key} must be an integer") from exc


async def overview(request: web.Request) -> web.Response:
    ident = _ident(request)
    return json_response(await queries.overview(request.app[CORE], begin=_day(request, "begin"),
                                                end=_day(request, "end"), actor=ident.actor,
                                                roles=list(ident.approval_roles)))


async def payment_search(request: web.Request) -> web.Response:
    q = request.query
    return json_response(await queries.search_payments(
        request.app[CORE], begin=_day(request, "begin"), end=_day(request, "end"), status=_list(request, "status"),
        channel=q.get("channel") or None, method=q.get("method") or None, entry=q.get("entry") or None,
        campus=q.get("campus") or None, out_trade_no=q.get("out_trade_no") or None,
        channel_trade_no=q.get("channel_trade_no") or None, patient=(q.get("patient") or "").strip() or None,
        limit=_int(request, "limit", 50), offset=_int(request, "offset", 0)))


async def payment_detail(request: web.Request) -> web.Response:
    return json_response(await queries.payment_detail(request.app[CORE], request.match_info["payment_id"],
                                                      reveal=wants_unmask(request)))


class RefundRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: StrictInt = Field(gt=0, le=10_000_000_000)
    reason: str | None = Field(default=None, max_length=80)


async def refund_request(request: web.Request) -> web.Response:
    body = await parse(request, RefundRequestIn)
    ident = _ident(request)
    core = request.app[CORE]
    pid = request.match_info["payment_id"]
    out = await core.refund_requests.request(pid, amount=body.amount, reason=body.reason, actor=ident.actor)
    await core.console.oplog.write(username=ident.username, ip=ident.ip, action="payment.refund_request", target=pid,
                                   detail={"approval_id": out["id"], "amount": body.amount, "reason": body.reason,
                                           "required_role": out["required_role"]})
    return json_response(out, status=202)


# --- system: users, roles, permissions, oplog, jobs, sessions -----------------------------------------------
async def users(request: web.Request) -> web.Response:
    return json_response({"items": await request.app[CORE].console.list_users()})


async def create_user(request: web.Request) -> web.Response:
    body = await parse(request, UserIn)
    ident = _ident(request)
    return json_response(await request.app[CORE].console.create_user(body, by=ident.username, ip=ident.ip),
                         status=201)


async def get_user(request: web.Request) -> web.Response:
    return json_response(user_out(await request.app[CORE].console.get_user(request.match_info["username"])))


async def put_user(request: web.Request) -> web.Response:
    body = await parse(request, UserPatch)
    ident = _ident(request)
    return json_response(await request.app[CORE].console.update_user(
        request.match_info["username"], body, by=ident.username, ip=ident.ip, by_user_id=ident.user_id))


async def delete_user(request: web.Request) -> web.Response:
    ident = _ident(request)
    await request.app[CORE].console.delete_user(request.match_info["username"], by=ident.username, ip=ident.ip,
                                                by_user_id=ident.user_id)
    return json_response({"ok": True})


async def roles_list(request: web.Request) -> web.Response:
    return json_response({"items": await request.app[CORE].console.list_roles()})


async def create_role(request: web.Request) -> web.Response:
    body = await parse(request, RoleIn)
    ident = _ident(request)
    return json_response(await request.app[CORE].console.create_role(body, by=ident.username, ip=ident.ip),
                         status=201)


async def get_role(request: web.Request) -> web.Response:
    return json_response(role_out(await request.app[CORE].console.get_role(request.match_info["id"])))


async def put_role(request: web.Request) -> web.Response:
    body = await parse(request, RolePatch)
    ident = _ident(request)
    return json_response(await request.app[CORE].console.update_role(request.match_info["id"], body,
                                                                     by=ident.username, ip=ident.ip))


async def delete_role(request: web.Request) -> web.Response:
    ident = _ident(request)
    await request.app[CORE].console.delete_role(request.match_info["id"], by=ident.username, ip=ident.ip)
    return json_response({"ok": True})


async def permissions(request: web.Request) -> web.Response:
    core = request.app[CORE]
    tiers = [str(t.get("role")) for t in core.settings.approval_tiers if t.get("role")]
    return json_response({
        "items": [{"code": p.code, "group": p.group, "group_zh": GROUP_ZH[p.group], "group_en": GROUP_EN[p.group],
                   "label_zh": p.label_zh, "label_en": p.label_en} for p in PERMISSIONS],
        "approval_roles": sorted(set(KNOWN_APPROVAL_ROLES) | set(tiers)),
        "approval_tiers": core.settings.approval_tiers})


def _moment(request: web.Request, key: str, end: bool) -> dt.datetime | None:
    """A query bound: YYYY-MM-DD (a business day; ``end`` includes the whole day) or an ISO date-time."""
    raw = request.query.get(key)
    if not raw:
        return None
    from ..timeutil import CHINA, local_day_bounds

    try:
        if len(raw) == 10:
            bounds = local_day_bounds(dt.date.fromisoformat(raw))
            return bounds[1] if end else bounds[0]
        at = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
        return (at if at.tzinfo else at.replace(tzinfo=CHINA)).astimezone(dt.UTC)
    except ValueError as exc:
        raise ValidationFailed(f"{key} must be YYYY-MM-DD or an ISO 8601 date-time") from exc


async def oplog(request: web.Request) -> web.Response:
    q = request.query
    return json_response(await request.app[CORE].console.oplog.search(
        user=q.get("user") or None, action=q.get("action") or None, target=q.get("target") or None,
        begin=_moment(request, "begin", False), end=_moment(request, "end", True),
        limit=_int(request, "limit", 100), offset=_int(request, "offset", 0)))


async def oplog_verify(request: web.Request) -> web.Response:
    return json_response(await request.app[CORE].console.oplog.verify())


async def jobs(request: web.Request) -> web.Response:
    return json_response(await queries.jobs(request.app[CORE], limit=_int(request, "limit", 20)))


async def sessions(request: web.Request) -> web.Response:
    ident = _ident(request)
    everyone = ident.has("system.users")
    return json_response({"items": await request.app[CORE].console.sessions(ident, everyone=everyone),
                          "all_users": everyone})


async def end_session(request: web.Request) -> web.Response:
    ident = _ident(request)
    await request.app[CORE].console.end_session(ident, request.match_info["id"])
    resp = json_response({"ok": True})
    if request.match_info["id"] == ident.session_id:
        resp.del_cookie(COOKIE, path="/console")
    return resp


# --- system: organisation and code tables -------------------------------------------------------------
async def dictionaries(request: web.Request) -> web.Response:
    return json_response(await build_dictionaries(request.app[CORE]))


async def departments(request: web.Request) -> web.Response:
    return json_response({"items": await Organisation(request.app[CORE]).departments()})


async def put_department(request: web.Request) -> web.Response:
    body = await parse(request, DepartmentIn)
    ident = _ident(request)
    return json_response(await Organisation(request.app[CORE]).put_department(
        request.match_info["id"], body, by=ident.username, ip=ident.ip))


async def delete_department(request: web.Request) -> web.Response:
    ident = _ident(request)
    await Organisation(request.app[CORE]).delete_department(request.match_info["id"], by=ident.username, ip=ident.ip)
    return json_response({"ok": True})


# --- pages -----------------------------------------------------------------------------------------------
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".mjs": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".json": "application/json", ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon",
          ".woff2": "font/woff2", ".woff": "font/woff", ".map": "application/json", ".txt": "text/plain; charset=utf-8"}
_PLACEHOLDER = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>银医 财务管理后台 / yinyi finance console</title></head>
<body><h1>银医 财务管理后台</h1><p>控制台页面尚未安装。/ The console pages are not installed.</p>
<p>API: <code>/console/api/</code> (docs/console.md)</p></body></html>
"""


def _file(path: Path) -> web.StreamResponse:
    resp = web.FileResponse(path)
    resp.headers["Content-Type"] = _TYPES.get(path.suffix.lower(), "application/octet-stream")
    resp.headers["Cache-Control"] = "no-cache"  # revalidated (Last-Modified / ETag): never stale after an upgrade
    return resp


async def index(request: web.Request) -> web.StreamResponse:
    page = STATIC_DIR / "index.html"
    if page.is_file():
        return _file(page)
    return web.Response(text=_PLACEHOLDER, content_type="text/html", headers={"Cache-Control": "no-cache"})


async def to_index(request: web.Request) -> web.Response:
    return web.Response(status=302, headers={"Location": "/console/"})


async def static(request: web.Request) -> web.StreamResponse:
    rel = request.match_info["path"]
    root = STATIC_DIR.resolve()
    target = (root / rel).resolve()
    if any(part.startswith(".") for part in Path(rel).parts) or not target.is_relative_to(root) \
            or not target.is_file():
        raise web.HTTPNotFound()
    return _file(target)


def add_console_routes(app: web.Application) -> None:
    """The console's own routes, and an alias under /console/api/admin of every /v1/admin route
    (call after every other route, plugins' included, is added)."""
    r = app.router
    for method, path, handler in _aliases(app):
        r.add_route(method, path, handler)
    r.add_get("/console", to_index)
    r.add_get("/console/", index)
    r.add_get("/console/static/{path:.+}", static)
    r.add_post(f"{API}/login", login)
    r.add_post(f"{API}/login/totp", login_totp)
    r.add_post(f"{API}/logout", logout)
    r.add_get(f"{API}/me", me)
    r.add_post(f"{API}/me/password", me_password)
    r.add_get(f"{API}/overview", overview)
    r.add_get(f"{API}/payments", find_payment)
    r.add_get(f"{API}/payments/search", payment_search)
    r.add_get(f"{API}/payments/{{payment_id}}", get_payment)
    r.add_get(f"{API}/payments/{{payment_id}}/detail", payment_detail)
    r.add_post(f"{API}/payments/{{payment_id}}/refund-requests", refund_request)
    r.add_get(f"{API}/refunds/{{refund_id}}", get_refund)
    r.add_get(f"{API}/system/users", users)
    r.add_post(f"{API}/system/users", create_user)
    r.add_get(f"{API}/system/users/{{username}}", get_user)
    r.add_put(f"{API}/system/users/{{username}}", put_user)
    r.add_delete(f"{API}/system/users/{{username}}", delete_user)
    r.add_get(f"{API}/system/roles", roles_list)
    r.add_post(f"{API}/system/roles", create_role)
    r.add_get(f"{API}/system/roles/{{id}}", get_role)
    r.add_put(f"{API}/system/roles/{{id}}", put_role)
    r.add_delete(f"{API}/system/roles/{{id}}", delete_role)
    r.add_get(f"{API}/system/permissions", permissions)
    r.add_get(f"{API}/system/oplog", oplog)
    r.add_get(f"{API}/system/oplog/verify", oplog_verify)
    r.add_get(f"{API}/system/jobs", jobs)
    r.add_get(f"{API}/system/sessions", sessions)
    r.add_delete(f"{API}/system/sessions/{{id}}", end_session)
    r.add_get(f"{API}/system/dictionaries", dictionaries)
    r.add_get(f"{API}/system/departments", departments)
    r.add_put(f"{API}/system/departments/{{id}}", put_department)
    r.add_delete(f"{API}/system/departments/{{id}}", delete_department)


def _aliases(app: web.Application) -> list[tuple[str, str, Any]]:
    out = []
    for route in app.router.routes():
        resource = route.resource
        if resource is None or not resource.canonical.startswith("/v1/admin/"):
            continue
        out.append((route.method, ADMIN_PREFIX + resource.canonical[len("/v1/admin"):], route.handler))
    return out
