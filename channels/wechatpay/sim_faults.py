"""Simulator fault injection: latency, timeouts, 5xx, resets, bad signatures.

A fault applies ``before`` the simulated service acts (nothing happens upstream)
or ``after`` it (the state change is committed, then the answer is lost or
spoiled: the classic "charged but the cashier never heard").
"""
from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gateway.testing.simkit import FaultList, act_out_fault

KINDS = ("latency", "timeout", "http_error", "reset", "bad_signature", "no_signature")
SIGNATURE_HEADERS = ("Wechatpay-Signature", "Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Serial",
                     "Wechatpay-Signature-Type")


@dataclass
class Fault:
    kind: str
    path: str | None = None  # substring of the request path
    method: str | None = None
    rate: float = 1.0
    count: int | None = None  # how many times it may still fire; None = no limit
    when: str = "before"  # before | after
    delay_seconds: float = 30.0  # latency / timeout
    status: int = 500  # http_error
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
        count = spec.get("count")
        status = int(spec.get("status", 500))
        if not 500 <= status <= 599:
            raise ValueError("status must be a 5xx code")
        default_delay = 0.5 if kind == "latency" else 30.0
        return cls(kind=kind, path=spec.get("path") or None,
                   method=str(spec["method"]).upper() if spec.get("method") else None,
                   rate=rate, count=int(count) if count is not None else None, when=when,
                   delay_seconds=float(spec.get("delay_seconds", default_delay)), status=status)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "path": self.path, "method": self.method,
                "rate": self.rate, "count": self.count, "when": self.when,
                "delay_seconds": self.delay_seconds, "status": self.status, "fired": self.fired}


class FaultSet(FaultList):
    fault_type = Fault
    faults: list[Fault]

    def pick(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.path and fault.path not in path:
                continue
            if fault.method and fault.method != method:
                continue
            if self._fires(fault):
                return fault
        return None


FAULTS_KEY = web.AppKey("wechatpay_faults", FaultSet)


def _error_response(request: web.Request, status: int) -> web.Response:
    if request.path.startswith("/v3/"):
        return web.json_response({"code": "SYSTEM_ERROR", "message": "系统繁忙，请稍后再试"}, status=status)
    return web.Response(status=status, text="<html><body>502 Bad Gateway</body></html>",
                        content_type="text/html")


@web.middleware
async def fault_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.path.startswith("/_sim"):
        return await handler(request)
    fault = request.app[FAULTS_KEY].pick(request.method, request.path)
    if fault is None:
        return await handler(request)
    kind = fault.kind
    if fault.when == "before":
        early = await act_out_fault(request, kind, fault.delay_seconds, lambda: _error_response(request, fault.status))
        if early is not None:
            return early
    resp = await handler(request)
    if kind in ("bad_signature", "no_signature"):
        if kind == "no_signature":
            for name in SIGNATURE_HEADERS:
                resp.headers.pop(name, None)
        elif "Wechatpay-Signature" in resp.headers:
            # a well-formed signature over something else: what a probe looks like
            fake = bytearray(base64.b64decode(resp.headers["Wechatpay-Signature"]))
            fake[len(fake) // 2] ^= 0xFF
            resp.headers["Wechatpay-Signature"] = base64.b64encode(bytes(fake)).decode()
        return resp
    if fault.when == "after":
        late = await act_out_fault(request, kind, fault.delay_seconds, lambda: _error_response(request, fault.status))
        if late is not None:
            return late
    return resp
