"""Simulator fault injection: latency, timeouts, 5xx, resets, bad or missing signatures.

A fault applies ``before`` the simulated service acts (nothing happens upstream)
or ``after`` it (the state change is committed, then the answer is lost or
spoiled: the classic "charged but the cashier never heard"). Every Alipay call
goes to ``/gateway.do``, so faults pick calls by ``api`` (the method name, e.g.
``alipay.trade.pay``) as well as by path substring and HTTP method.
"""
from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from gateway.testing.simkit import FaultList, act_out_fault

KINDS = ("latency", "timeout", "http_error", "reset", "bad_signature", "no_signature")
HTTP_METHODS = ("GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS")


@dataclass
class Fault:
    kind: str
    api: str | None = None  # the Alipay method name, exactly
    path: str | None = None  # substring of the request path
    http_method: str | None = None
    rate: float = 1.0
    count: int | None = None  # how many times it may still fire; None = no limit
    when: str = "before"  # before | after
    delay_seconds: float = 30.0  # latency / timeout
    status: int = 502  # http_error
    id: str = field(default_factory=lambda: secrets.token_hex(4))
    fired: int = 0

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Fault:
        kind = str(spec.get("kind", ""))
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        when = str(spec.get("when", "before"))
        if when not in ("before", "after"):
            raise ValueError("when must be before or after")
        rate = float(spec.get("rate", 1.0))
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be within 0..1")
        status = int(spec.get("status", 502))
        if not 500 <= status <= 599:
            raise ValueError("status must be a 5xx code")
        api, http_method = spec.get("api"), spec.get("http_method")
        method = spec.get("method")  # an HTTP verb, or an Alipay method name
        if method:
            if str(method).upper() in HTTP_METHODS:
                http_method = http_method or method
            else:
                api = api or method
        count = spec.get("count")
        return cls(kind=kind, api=str(api) if api else None, path=spec.get("path") or None,
                   http_method=str(http_method).upper() if http_method else None, rate=rate,
                   count=int(count) if count is not None else None, when=when,
                   delay_seconds=float(spec.get("delay_seconds", 0.5 if kind == "latency" else 30.0)),
                   status=status)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "api": self.api, "path": self.path,
                "http_method": self.http_method, "rate": self.rate, "count": self.count, "when": self.when,
                "delay_seconds": self.delay_seconds, "status": self.status, "fired": self.fired}


class FaultSet(FaultList):
    fault_type = Fault
    faults: list[Fault]

    def pick(self, http_method: str, path: str, api: str) -> Fault | None:
        for fault in self.faults:
            if fault.api and fault.api != api:
                continue
            if fault.path and fault.path not in path:
                continue
            if fault.http_method and fault.http_method != http_method:
                continue
            if self._fires(fault):
                return fault
        return None


FAULTS_KEY = web.AppKey("alipay_faults", FaultSet)
API_KEY: Any = getattr(web, "RequestKey", lambda name, t: name)("alipay_api", str)


def _error_page(status: int) -> web.Response:
    return web.Response(status=status, text=f"<html><body><h1>{status} Bad Gateway</h1></body></html>",
                        content_type="text/html")


_SIGN_RE = re.compile(r',"sign":"([^"]*)"')


def spoil_signature(body: bytes, *, remove: bool) -> bytes:
    """Remove the answer's ``sign``, or replace it with a well-formed signature over something else."""
    text = body.decode("utf-8")
    m = _SIGN_RE.search(text)
    if m is None:
        return body
    if remove:
        return (text[: m.start()] + text[m.end():]).encode()
    fake = bytearray(base64.b64decode(m.group(1)))
    fake[len(fake) // 2] ^= 0xFF
    return (text[: m.start(1)] + base64.b64encode(bytes(fake)).decode() + text[m.end(1):]).encode()


async def _act(request: web.Request, fault: Fault) -> web.Response | None:
    return await act_out_fault(request, fault.kind, fault.delay_seconds, lambda: _error_page(fault.status))


@web.middleware
async def fault_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.path.startswith("/_sim"):
        return await handler(request)
    api = await request_api(request)
    fault = request.app[FAULTS_KEY].pick(request.method, request.path, api)
    if fault is None:
        return await handler(request)
    if fault.when == "before" and fault.kind not in ("bad_signature", "no_signature"):
        early = await _act(request, fault)
        if early is not None:
            return early
    resp = await handler(request)
    if fault.kind in ("bad_signature", "no_signature"):
        if isinstance(resp, web.Response) and isinstance(resp.body, bytes):
            resp.body = spoil_signature(resp.body, remove=fault.kind == "no_signature")
        return resp
    if fault.when == "after":
        late = await _act(request, fault)
        if late is not None:
            return late
    return resp


async def request_api(request: web.Request) -> str:
    """The Alipay ``method`` of a gateway call (query string or form), "" for anything else."""
    if API_KEY in request:
        return request[API_KEY]
    api = request.query.get("method", "")
    if not api and request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
        form = dict(_form_pairs(await request.read()))
        api = form.get("method", "")
    request[API_KEY] = api
    return api


def _form_pairs(body: bytes) -> list[tuple[str, str]]:
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        return []


__all__ = ["FAULTS_KEY", "KINDS", "Fault", "FaultSet", "fault_middleware", "request_api", "spoil_signature"]
