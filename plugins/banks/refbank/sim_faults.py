"""Simulator fault injection for the bank API: latency, timeouts, 5xx, resets, bad signatures.

The fault model (kinds, ``before``/``after``, ``rate``, ``count``, ``path``,
``method``) is the generic one of ``channels.wechatpay.sim_faults``; this module
applies it to the bank's own paths, error body and signature headers. A fault
``before`` acts before the bank does anything; ``after`` lets the bank act (the
charge, revoke or refund is committed) and then loses or spoils the answer.
"""
from __future__ import annotations

import base64
from typing import Any

from aiohttp import web

from channels.wechatpay.sim_faults import KINDS, Fault, FaultSet
from gateway.testing.simkit import act_out_fault

from . import crypto
from .wire import API_PREFIX, dumps

FAULTS_KEY = web.AppKey("refbank_faults", FaultSet)

__all__ = ["FAULTS_KEY", "KINDS", "Fault", "FaultSet", "fault_middleware"]


def _error(status: int) -> web.Response:
    # an overloaded front end answers unsigned, as real gateways in front of banks do
    return web.Response(status=status, body=dumps({"code": "SYSTEM_ERROR", "message": "系统繁忙，请稍后再试"}),
                        content_type="application/json", charset="utf-8")


def _spoil(resp: web.StreamResponse, kind: str) -> None:
    if kind == "no_signature":
        for name in crypto.SIGNATURE_HEADERS:
            resp.headers.pop(name, None)
    elif crypto.HEADER_SIGNATURE in resp.headers:
        # a well-formed signature over something else
        fake = bytearray(base64.b64decode(resp.headers[crypto.HEADER_SIGNATURE]))
        fake[len(fake) // 2] ^= 0xFF
        resp.headers[crypto.HEADER_SIGNATURE] = base64.b64encode(bytes(fake)).decode()


async def _act(request: web.Request, fault: Fault) -> web.Response | None:
    """Apply a latency/timeout/5xx/reset fault; None means "go on"."""
    return await act_out_fault(request, fault.kind, fault.delay_seconds, lambda: _error(fault.status))


@web.middleware
async def fault_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    if not request.path.startswith(API_PREFIX):
        return await handler(request)
    fault = request.app[FAULTS_KEY].pick(request.method, request.path)
    if fault is None:
        return await handler(request)
    if fault.kind in ("bad_signature", "no_signature"):
        resp = await handler(request)
        _spoil(resp, fault.kind)
        return resp
    if fault.when == "before":
        early = await _act(request, fault)
        if early is not None:
            return early
        return await handler(request)
    resp = await handler(request)
    late = await _act(request, fault)
    return late if late is not None else resp
