"""Configuration through the admin API: merchants, entries, channel switches, apps; routing."""
from __future__ import annotations

from gateway.testing import SignedClient
from tests.conftest import Gateway
from tests.gateway.test_payments import code, pay_body


async def test_merchant_secrets_are_never_returned(gw: Gateway) -> None:
    status, body = await gw.admin.get("/v1/admin/merchants")
    assert status == 200 and body["items"]
    text = str(body)
    assert "PRIVATE KEY" not in text and "apiv3_key" not in text
    m = body["items"][0]
    assert m["config"]["mchid"] and "private_key" not in m["config"]


async def test_invalid_merchant_config_is_refused_with_fields(gw: Gateway) -> None:
    status, body = await gw.admin.post("/v1/admin/merchants", {"channel": "wechatpay", "name": "x",
                                                               "config": {"mchid": "1"}})
    assert (status, body["code"]) == (400, "VALIDATION_FAILED")
    assert any(e["field"] == "private_key" for e in body["errors"])
    status, body = await gw.admin.post("/v1/admin/merchants", {"channel": "nosuch", "name": "x", "config": {}})
    assert body["code"] == "UNKNOWN_CHANNEL"


async def test_channel_switch_takes_effect_without_restart(gw: Gateway) -> None:
    status, body = await gw.admin.request("PATCH", "/v1/admin/channels/wechatpay", {"disabled_methods": ["qr"]})
    assert status == 200 and body["items"][0]["disabled_methods"] == ["qr"]
    status, body = await gw.client.post("/v1/payments", pay_body(method="qr", channel="wechatpay", auth_code=None))
    assert (status, body["code"]) == (422, "CHANNEL_DISABLED")
    status, body = await gw.client.post("/v1/payments", pay_body())  # payment code still works
    assert status == 200 and body["status"] == "SUCCEEDED"
    await gw.admin.request("PATCH", "/v1/admin/channels/wechatpay", {"enabled": False})
    status, body = await gw.client.post("/v1/payments", pay_body())
    assert (status, body["code"]) == (400, "AUTH_CODE_UNRECOGNISED")  # detection skips a switched-off channel
    await gw.admin.request("PATCH", "/v1/admin/channels/wechatpay", {"enabled": True, "disabled_methods": []})
    status, body = await gw.client.post("/v1/payments", pay_body())
    assert status == 200
    from sqlalchemy import select

    from gateway.db.models import AuditLog

    async with gw.core.rsm() as s:
        actions = [a.action for a in (await s.execute(select(AuditLog))).scalars()]
    assert actions.count("channel.switch") == 3


async def test_entries_route_to_their_merchant_and_limit_channels(gw: Gateway) -> None:
    caller = gw.sandbox["caller"]["app_id"]
    status, e = await gw.admin.request("POST", "/v1/admin/entries", {
        "code": "kiosk-01", "name": "门诊一楼自助机", "app_id": caller, "campus_id": "main",
        "business_type": "outpatient", "channels": ["wechatpay"], "methods": ["code"],
        "merchants": {"wechatpay": "mch_wechatpay_2"}}, headers={"X-Operator": "it-zhang"})
    assert status == 201, e
    status, p = await gw.client.post("/v1/payments", pay_body(entry="kiosk-01"))
    assert status == 200 and p["merchant_id"] == "mch_wechatpay_2" and p["campus"] == "main"
    status, body = await gw.client.post("/v1/payments", pay_body(entry="kiosk-01", method="qr", channel="wechatpay",
                                                                 auth_code=None))
    assert (status, body["code"]) == (403, "CHANNEL_NOT_ALLOWED")
    status, body = await gw.client.post("/v1/payments", pay_body(entry="window-9"))
    assert (status, body["code"]) == (422, "ENTRY_UNKNOWN") and body["entries"] == ["kiosk-01"]
    status, body = await gw.client.post("/v1/payments", pay_body(entry="kiosk-01", business_type="inpatient_deposit"))
    assert (status, body["code"]) == (422, "ENTRY_MISMATCH")
    # Re-route the entry to the other merchant: effective at once in this process.
    status, _ = await gw.admin.request("PATCH", f"/v1/admin/entries/{e['id']}",
                                       {"merchants": {"wechatpay": "mch_wechatpay_1"}})
    assert status == 200
    status, p = await gw.client.post("/v1/payments", pay_body(entry="kiosk-01"))
    assert p["merchant_id"] == "mch_wechatpay_1"
    from sqlalchemy import select

    from gateway.db.models import AuditLog

    async with gw.core.rsm() as s:
        row = (await s.execute(select(AuditLog).where(AuditLog.action == "entry.create"))).scalar_one()
    assert row.actor.endswith(":it-zhang")


async def test_disabled_merchant_is_not_routed(gw: Gateway) -> None:
    await gw.admin.request("PATCH", "/v1/admin/merchants/mch_wechatpay_1", {"enabled": False})
    status, p = await gw.client.post("/v1/payments", pay_body())
    assert status == 200 and p["merchant_id"] == "mch_wechatpay_2"
    await gw.admin.request("PATCH", "/v1/admin/merchants/mch_wechatpay_2", {"enabled": False})
    status, body = await gw.client.post("/v1/payments", pay_body())
    assert (status, body["code"]) == (422, "NO_MERCHANT")


async def test_retry_after_reconfiguration_still_returns_its_payment(gw: Gateway) -> None:
    req = pay_body(auth_code=code())
    _, first = await gw.client.post("/v1/payments", req)
    await gw.admin.request("PATCH", "/v1/admin/channels/wechatpay", {"enabled": False})
    status, again = await gw.client.post("/v1/payments", req)
    assert status == 200 and again["payment_id"] == first["payment_id"]


async def test_apps_create_disable_rotate(gw: Gateway) -> None:
    status, app = await gw.admin.post("/v1/admin/apps", {"name": "体检系统", "business_types": ["exam"]})
    assert status == 201 and app["secret"]
    status, listed = await gw.admin.get("/v1/admin/apps")
    assert all("secret" not in a for a in listed["items"])
    async with SignedClient(gw.base_url, app["app_id"], app["secret"]) as c:
        status, p = await c.post("/v1/payments", pay_body(business_type="exam"))
        assert status == 200
        status, rotated = await gw.admin.post(f"/v1/admin/apps/{app['app_id']}/rotate-secret")
        gw.core.directory.invalidate()
        status, body = await c.post("/v1/payments", pay_body(business_type="exam"))
        assert (status, body["code"]) == (401, "SIGNATURE_INVALID")
    async with SignedClient(gw.base_url, app["app_id"], rotated["secret"]) as c:
        status, _ = await c.post("/v1/payments", pay_body(business_type="exam"))
        assert status == 200
        await gw.admin.request("PATCH", f"/v1/admin/apps/{app['app_id']}", {"enabled": False})
        status, body = await c.post("/v1/payments", pay_body(business_type="exam"))
        assert (status, body["code"]) == (401, "APP_UNKNOWN")
    status, body = await gw.admin.post("/v1/admin/apps", {"name": "x", "scopes": ["root"]})
    assert body["code"] == "VALIDATION_FAILED"
