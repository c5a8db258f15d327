"""Caller authentication and bad input: each gets its own stable code and changes nothing."""
from __future__ import annotations

import time

import aiohttp
import orjson
import pytest

from gateway.api.signing import signed_headers

PAY = {"out_trade_no": "T-AUTH-1", "amount": 100, "subject": "挂号费", "business_type": "outpatient",
       "method": "code", "auth_code": "134567890123456789"}


async def _raw(gw, method, path, body=b"", headers=None):
    async with aiohttp.ClientSession() as s:
        async with s.request(method, gw.base_url + path, data=body or None, headers=headers or {}) as r:
            return r.status, r.headers.get("Content-Type", ""), orjson.loads(await r.read())


async def _count_payments(gw) -> int:
    from sqlalchemy import func, select

    from gateway.db.models import Payment

    async with gw.core.sm() as s:
        return (await s.execute(select(func.count()).select_from(Payment))).scalar_one()


def _headers(gw, method, path, body, **kw):
    c = gw.sandbox["caller"]
    return signed_headers(c["app_id"], c["secret"], method, path, body, **kw)


async def test_missing_headers(gw) -> None:
    status, ctype, body = await _raw(gw, "POST", "/v1/payments", orjson.dumps(PAY))
    assert status == 401 and ctype.startswith("application/problem+json")
    assert body["code"] == "AUTH_HEADERS_MISSING"
    assert body["message_zh"] and body["message_en"]
    assert await _count_payments(gw) == 0


async def test_bad_signature(gw) -> None:
    raw = orjson.dumps(PAY)
    h = _headers(gw, "POST", "/v1/payments", raw)
    tampered = orjson.dumps({**PAY, "amount": 1})
    status, _, body = await _raw(gw, "POST", "/v1/payments", tampered, h)
    assert (status, body["code"]) == (401, "SIGNATURE_INVALID")
    assert await _count_payments(gw) == 0


async def test_expired_timestamp(gw) -> None:
    raw = orjson.dumps(PAY)
    h = _headers(gw, "POST", "/v1/payments", raw, timestamp=int(time.time()) - 301)
    status, _, body = await _raw(gw, "POST", "/v1/payments", raw, h)
    assert (status, body["code"]) == (401, "TIMESTAMP_EXPIRED")


async def test_replayed_nonce(gw) -> None:
    path = "/v1/payments?out_trade_no=nothing"
    h = _headers(gw, "GET", path, b"")
    first = await _raw(gw, "GET", path, b"", h)
    assert first[0] == 404 and first[2]["code"] == "PAYMENT_NOT_FOUND"
    status, _, body = await _raw(gw, "GET", path, b"", h)
    assert (status, body["code"]) == (401, "NONCE_REPLAYED")


async def test_unknown_app(gw) -> None:
    raw = orjson.dumps(PAY)
    h = signed_headers("app_nobody", "x" * 32, "POST", "/v1/payments", raw)
    status, _, body = await _raw(gw, "POST", "/v1/payments", raw, h)
    assert (status, body["code"]) == (401, "APP_UNKNOWN")


async def test_admin_scope_required(gw) -> None:
    status, body = await gw.client.get("/v1/admin/interfaces")
    assert (status, body["code"]) == (403, "FORBIDDEN")
    status, body = await gw.admin.get("/v1/admin/interfaces")
    assert status == 200 and isinstance(body["interfaces"], list)


@pytest.mark.parametrize("amount,code", [(1.5, "INVALID_AMOUNT"), (-100, "INVALID_AMOUNT"), (0, "INVALID_AMOUNT"),
                                         ("100", "INVALID_AMOUNT"), (100.0, "INVALID_AMOUNT")])
async def test_bad_amounts(gw, amount, code) -> None:
    status, body = await gw.client.post("/v1/payments", {**PAY, "amount": amount})
    assert (status, body["code"]) == (400, code)
    assert await _count_payments(gw) == 0


async def test_malformed_body(gw) -> None:
    status, body = await gw.client.request("POST", "/v1/payments", raw=b"{not json")
    assert (status, body["code"]) == (400, "BAD_REQUEST")
    status, body = await gw.client.request("POST", "/v1/payments", raw=b"[1,2]")
    assert (status, body["code"]) == (400, "BAD_REQUEST")
    status, body = await gw.client.post("/v1/payments", {**PAY, "unexpected": 1})
    assert (status, body["code"]) == (400, "VALIDATION_FAILED")
    assert any(e["field"] == "unexpected" for e in body["errors"])


async def test_unknown_channel(gw) -> None:
    status, body = await gw.client.post("/v1/payments", {**PAY, "method": "qr", "channel": "nosuchpay",
                                                         "auth_code": None})
    assert (status, body["code"]) == (400, "UNKNOWN_CHANNEL")


async def test_unrecognised_auth_code_names_accepted_forms(gw) -> None:
    status, body = await gw.client.post("/v1/payments", {**PAY, "auth_code": "999999999999999999"})
    assert (status, body["code"]) == (400, "AUTH_CODE_UNRECOGNISED")
    assert "wechatpay" in body["accepted_forms"]


async def test_english_messages(gw) -> None:
    status, body = await gw.client.request("POST", "/v1/payments", PAY | {"amount": -1},
                                           headers={"Accept-Language": "en"})
    assert status == 400 and body["title"] == body["message_en"]


async def test_business_type_forbidden(gw) -> None:
    app_id, secret = await gw.core.directory.create_app("exam only", business_types=["exam"])
    from gateway.testing import SignedClient

    async with SignedClient(gw.base_url, app_id, secret) as c:
        status, body = await c.post("/v1/payments", PAY)
    assert (status, body["code"]) == (403, "BUSINESS_TYPE_FORBIDDEN")


def gw_app_routes(gw) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    from gateway.api.app import create_app

    app = create_app(core=gw.core)
    return [(r.method, r.resource.canonical) for r in app.router.routes()
            if r.resource is not None and r.resource.canonical.startswith("/v1/") and r.method != "HEAD"]


async def test_health_openapi_metrics_are_public(gw) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(gw.base_url + "/v1/health") as r:
            assert r.status == 200 and (await r.json())["checks"]["database"] == "ok"
        async with s.get(gw.base_url + "/v1/openapi.json") as r:
            spec = await r.json()
            assert "/v1/payments" in spec["paths"] and "PaymentCreate" in spec["components"]["schemas"]
            # Every registered /v1 route is described, admin and plugin routes included.
            for route in gw_app_routes(gw):
                method, path = route
                assert method.lower() in spec["paths"].get(path, {}), (method, path)
        async with s.get(gw.base_url + "/metrics") as r:
            assert "yinyi_http_requests_total" in await r.text()


async def test_rejections_are_counted_in_the_interface_log(gw) -> None:
    await _raw(gw, "POST", "/v1/payments", orjson.dumps(PAY))  # rejected: no headers
    await gw.core.ilog.flush()
    stats = {s["interface"]: s for s in await gw.core.ilog.stats()}
    row = stats["POST /v1/payments"]
    assert row["rejected"] >= 1 and row["total"] >= 1
