"""Cross-cutting concerns: problem+json errors, caller authentication, interface log."""
from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from ..errors import (AuthFailed, BadSignature, Forbidden, MissingAuthHeaders, NonceReplayed,
                      TimestampExpired, YinyiError)
from ..metrics import HTTP_LATENCY, HTTP_REQUESTS
from . import signing
from .keys import CORE, REQUEST_APP

log = logging.getLogger("yinyi.api")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Routes that need no caller signature. Channel callbacks carry the channel's own.
PUBLIC_PREFIXES = ("/v1/notify/", "/v1/health", "/v1/openapi.json", "/metrics", "/docs")


def problem(exc: YinyiError, lang: str) -> web.Response:
    return web.Response(body=orjson.dumps(exc.to_problem(lang), default=str), status=exc.status,
                        content_type="application/problem+json", charset="utf-8")


def _lang(request: web.Request) -> str:
    return "en" if request.headers.get("Accept-Language", "zh").lower().startswith("en") else "zh"


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except YinyiError as exc:
        return problem(exc, _lang(request))
    except web.HTTPException as exc:
        if exc.status == 404:
            from ..errors import NotFound

            return problem(NotFound(f"no route {request.method} {request.path}"), _lang(request))
        if exc.status == 405:
            from ..errors import BadRequest

            err = BadRequest(f"method {request.method} not allowed on {request.path}")
            resp = problem(err, _lang(request))
            resp.set_status(405)
            return resp
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem(YinyiError("internal error; see the gateway log"), _lang(request))


async def authenticate(request: web.Request) -> None:
    core = request.app[CORE]
    h = request.headers
    app_id, ts, nonce, sig = (h.get("X-App-Id"), h.get("X-Timestamp"), h.get("X-Nonce"), h.get("X-Signature"))
    if not (app_id and ts and nonce and sig):
        raise MissingAuthHeaders("X-App-Id, X-Timestamp, X-Nonce and X-Signature are required")
    window = core.settings.signature_window_seconds
    try:
        skew = abs(time.time() - int(ts))
    except ValueError as exc:
        raise TimestampExpired("X-Timestamp must be unix seconds") from exc
    if skew > window:
        raise TimestampExpired(f"timestamp is {int(skew)} s off; the window is ±{window} s")
    if not (8 <= len(nonce) <= 64):
        raise AuthFailed("X-Nonce must be 8 to 64 characters")
    app = await core.directory.get_app(app_id)
    body = await request.read()
    if not signing.verify(app.secret, sig, request.method, request.raw_path, ts, nonce, body,
                          request.headers.get("X-Operator"), request.headers.get("X-Operator-Roles")):
        raise BadSignature("X-Signature does not match the request")
    # Claimed only after the signature holds, so nobody can burn another app's nonces.
    if not await core.nonces.claim(app.id, nonce, window * 2):
        raise NonceReplayed("this X-Nonce was already used")
    if request.path.startswith("/v1/admin") and "admin" not in app.scopes:
        raise Forbidden("this app has no admin scope")
    request[REQUEST_APP] = app


@web.middleware
async def access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate /v1 callers, and record every inbound call in the interface log and metrics."""
    t0 = time.perf_counter()
    route = request.match_info.route.resource.canonical if request.match_info.route.resource else request.path
    status, error_code = 500, None
    response: web.StreamResponse | None = None
    try:
        if request.path.startswith("/v1/") and not request.path.startswith(PUBLIC_PREFIXES):
            await authenticate(request)
        response = await errors_middleware(request, handler)
        status = response.status
        if isinstance(response, web.Response) and response.content_type == "application/problem+json":
            error_code = orjson.loads(response.body).get("code") if response.body else None
        return response
    except YinyiError as exc:
        status, error_code = exc.status, exc.code
        response = problem(exc, _lang(request))
        return response
    finally:
        elapsed = time.perf_counter() - t0
        HTTP_REQUESTS.labels(route=route, status=str(status)).inc()
        HTTP_LATENCY.labels(route=route).observe(elapsed)
        console = request.path == "/console" or request.path.startswith("/console/")
        if route not in ("/metrics", "/v1/health") and (not console or request.path.startswith("/console/api/")):
            core = request.app[CORE]
            app = request.get(REQUEST_APP)
            outcome = "normal" if status < 400 else ("rejected" if status < 500 else "abnormal")
            if console:  # passwords, codes and session tokens: the console's bodies are never logged here
                body = resp_body = None
            else:
                body = await request.read() if request.body_exists else None  # cached by aiohttp: no second read
                resp_body = response.body if isinstance(response, web.Response) else None
            core.ilog.record(direction="in", interface=f"{request.method} {route}", outcome=outcome,
                             latency_ms=elapsed * 1000, http_status=status,
                             app_id="console" if console else (app.id if app else request.headers.get("X-App-Id")),
                             payment_id=request.match_info.get("payment_id"), error_code=error_code,
                             request=body, response=resp_body)
