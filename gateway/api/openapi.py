"""OpenAPI 3.1 description of the unified API, built from the pydantic models."""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import BaseModel

from .. import __version__
from ..errors import ALL_ERRORS
from ..schemas import EventOut, PaymentCreate, PaymentOut, RefundCreate, RefundOut, ReviewResolve
from ..services.his_systems import SystemIn
from ..services.notices import NotifierIn

_MODELS: list[type[BaseModel]] = [PaymentCreate, PaymentOut, RefundCreate, RefundOut, EventOut, ReviewResolve,
                                  SystemIn, NotifierIn]

_AUTH_DOC = (
    "Every /v1 request except notify, health and openapi is signed by the calling app: headers X-App-Id, "
    "X-Timestamp (unix seconds, ±300 s), X-Nonce (8-64 chars, single use), X-Signature = hex HMAC-SHA256(secret, "
    "METHOD + '\\n' + path-with-query + '\\n' + timestamp + '\\n' + nonce + '\\n' + sha256-hex(body))."
)


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _op(summary: str, *, body: type[BaseModel] | None = None, resp: Any = None, params: list[dict] | None = None,
        secured: bool = True, tag: str = "payments") -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": {
        "200": {"description": "OK", "content": {"application/json": {"schema": resp or {"type": "object"}}}},
        "default": {"description": "Error", "content": {"application/problem+json": {
            "schema": {"$ref": "#/components/schemas/Problem"}}}}}}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    if params:
        op["parameters"] = params
    if secured:
        op["security"] = [{"appSignature": []}]
    return op


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _summary(handler: Any) -> str:
    doc = (getattr(handler, "__doc__", None) or "").strip().splitlines()
    return doc[0] if doc else getattr(handler, "__name__", "").replace("_", " ").capitalize()


def with_routes(spec: dict[str, Any], routes: list[tuple[str, str, Any]]) -> dict[str, Any]:
    """Add every registered ``/v1`` route the hand-written description lacks, from its handler's docstring,
    so the published description never misses a route (plugins' routes included)."""
    import copy
    import re

    out = copy.deepcopy(spec)
    for method, path, handler in routes:
        if not path.startswith("/v1/") or method in ("HEAD", "OPTIONS", "*"):
            continue
        item = out["paths"].setdefault(path, {})
        if method.lower() in item:
            continue
        names = re.findall(r"{([^}]+)}", path)
        tag = "admin" if path.startswith("/v1/admin") else path.split("/")[2]
        item[method.lower()] = _op(_summary(handler), tag=tag, params=[_path_param(n) for n in names] or None)
    return out


@lru_cache(maxsize=1)
def build_openapi() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for m in _MODELS:
        s = m.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in s.pop("$defs", {}).items():
            schemas[name] = sub
        schemas[m.__name__] = s
    schemas["Problem"] = {
        "type": "object", "required": ["code", "status", "title"],
        "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                       "code": {"type": "string", "enum": sorted({e.code for e in ALL_ERRORS})},
                       "message_zh": {"type": "string"}, "message_en": {"type": "string"},
                       "detail": {"type": "string"}}}
    pid = _path_param("payment_id")
    paths = {
        "/v1/payments": {
            "post": _op("Create a payment (统一下单); idempotent by out_trade_no", body=PaymentCreate,
                        resp=_ref(PaymentOut)),
            "get": _op("Find a payment by out_trade_no", resp=_ref(PaymentOut), params=[
                {"name": "out_trade_no", "in": "query", "required": True, "schema": {"type": "string"}}]),
        },
        "/v1/payments/{payment_id}": {"get": _op("Get a payment", resp=_ref(PaymentOut), params=[pid])},
        "/v1/payments/{payment_id}/events": {"get": _op("Status history of a payment", params=[pid],
                                                        resp={"type": "array", "items": _ref(EventOut)})},
        "/v1/payments/{payment_id}/refunds": {"post": _op("Refund along the original route (原路退回)",
                                                          body=RefundCreate, resp=_ref(RefundOut), params=[pid])},
        "/v1/payments/{payment_id}/reverse": {"post": _op("Reverse a payment-code payment (撤销)",
                                                          resp=_ref(PaymentOut), params=[pid])},
        "/v1/payments/{payment_id}/close": {"post": _op("Close an unpaid order (关单)", resp=_ref(PaymentOut),
                                                        params=[pid])},
        "/v1/refunds/{refund_id}": {"get": _op("Get a refund", resp=_ref(RefundOut),
                                               params=[_path_param("refund_id")])},
        "/v1/notify/{channel}/{merchant}": {"post": _op(
            "Channel callback, verified with the channel's own signature scheme", secured=False, tag="channels",
            params=[_path_param("channel"), _path_param("merchant")])},
        "/v1/health": {"get": _op("Health", secured=False, tag="operations")},
        "/v1/admin/interfaces": {"get": _op("Per-interface call counts (接口状态)", tag="admin")},
        "/v1/admin/interface-logs": {"get": _op("Interface log search", tag="admin")},
        "/v1/admin/reviews": {"get": _op("Review queue with evidence", tag="admin")},
        "/v1/admin/reviews/payments/{payment_id}": {"post": _op("Decide a payment under review", body=ReviewResolve,
                                                                tag="admin", params=[pid])},
        "/v1/admin/reviews/refunds/{refund_id}": {"post": _op("Decide a refund under review", body=ReviewResolve,
                                                              tag="admin", params=[_path_param("refund_id")])},
        "/v1/admin/plugins": {"get": _op("Loaded plugins and channels", tag="admin")},
        "/v1/his/pending-charges": {"get": _op("Pending charges of a patient (待缴费)", tag="his", params=[
            {"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
            for n in ("system", "business_type", "card_no", "id_no", "visit_no", "patient_id")])},
        "/v1/payments/{payment_id}/his": {"get": _op("Write-back of a payment to its business system", tag="his",
                                                     params=[pid])},
        "/v1/admin/his/systems/{id}": {"put": _op("Create or update a business system", body=SystemIn,
                                                  tag="admin", params=[_path_param("id")])},
        "/v1/admin/notifiers/{name}": {"put": _op("Configure a notifier", body=NotifierIn, tag="admin",
                                                  params=[_path_param("name")])},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "yinyi unified payment API", "version": __version__, "description": _AUTH_DOC},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {"appSignature": {
            "type": "apiKey", "in": "header", "name": "X-Signature", "description": _AUTH_DOC}}},
    }
