"""Unified payment flows through the gateway to the WeChat Pay simulator, over real HTTP."""
from __future__ import annotations

import asyncio
import secrets
from typing import Any

import aiohttp
import pytest

from channels.wechatpay.adapter import WeChatPayChannel
from tests.conftest import Gateway, wait_for


def code(suffix: str = "1234") -> str:
    """A WeChat payment code; the last four digits pick a simulator script (see docs/channels/wechatpay.md)."""
    return "13" + "".join(secrets.choice("0123456789") for _ in range(12)) + suffix


def pay_body(**kw: Any) -> dict[str, Any]:
    body = {"out_trade_no": "T" + secrets.token_hex(6), "amount": 2500, "subject": "门诊缴费",
            "business_type": "outpatient", "method": "code", "auth_code": code(), "campus": "main",
            "entry": "window-3", "operator": "cashier-07"}
    body.update(kw)
    return {k: v for k, v in body.items() if v is not None}


async def sim(gw_or_handle: Any, method: str, path: str, json: Any = None) -> Any:
    base = gw_or_handle.sandbox["simulators"]["wechatpay"]["base_url"] if isinstance(gw_or_handle, Gateway) \
        else gw_or_handle.base_url
    async with aiohttp.ClientSession() as s:
        async with s.request(method, base + path, json=json) as r:
            return await r.json()


async def status_of(gw: Gateway, pid: str) -> str:
    _, body = await gw.client.get(f"/v1/payments/{pid}")
    return body["status"]


async def test_pay_by_code_succeeds_and_is_queryable(gw: Gateway) -> None:
    req = pay_body()
    status, p = await gw.client.post("/v1/payments", req)
    assert status == 200, p
    assert p["status"] == "SUCCEEDED" and p["channel"] == "wechatpay" and p["amount"] == 2500
    assert p["channel_trade_no"] and p["merchant_id"].startswith("mch_wechatpay_")
    truth = await sim(gw, "GET", f"/_sim/orders/{p['payment_id']}")
    assert truth["trade_state"] == "SUCCESS" and truth["amount"]["total"] == 2500
    _, again = await gw.client.get(f"/v1/payments/{p['payment_id']}")
    assert again["status"] == "SUCCEEDED"
    _, found = await gw.client.get(f"/v1/payments?out_trade_no={req['out_trade_no']}")
    assert found["payment_id"] == p["payment_id"]
    _, events = await gw.client.get(f"/v1/payments/{p['payment_id']}/events")
    assert [(e["from_status"], e["to_status"]) for e in events] == [(None, "CREATED"), ("CREATED", "SUCCEEDED")]


async def test_other_apps_cannot_see_a_payment(gw: Gateway) -> None:
    _, p = await gw.client.post("/v1/payments", pay_body())
    from gateway.testing import SignedClient

    app_id, secret = await gw.core.directory.create_app("other")
    async with SignedClient(gw.base_url, app_id, secret) as other:
        status, body = await other.get(f"/v1/payments/{p['payment_id']}")
    assert (status, body["code"]) == (404, "PAYMENT_NOT_FOUND")


async def test_qr_payment_settles_by_notify_and_duplicates_are_harmless(gw: Gateway) -> None:
    status, p = await gw.client.post("/v1/payments", pay_body(method="qr", channel="wechatpay", auth_code=None))
    assert status == 200 and p["status"] == "PAYING" and p["code_url"].startswith("weixin://")
    await sim(gw, "POST", f"/_sim/orders/{p['payment_id']}/pay", {})
    await wait_for(lambda: _is(gw, p["payment_id"], "SUCCEEDED"))
    _, events = await gw.client.get(f"/v1/payments/{p['payment_id']}/events")
    assert events[-1]["source"] in ("notify", "query")
    before = len(events)
    for _ in range(3):  # the channel re-sends its notify: nothing changes
        await sim(gw, "POST", f"/_sim/orders/{p['payment_id']}/notify")
    await asyncio.sleep(0.5)
    _, events = await gw.client.get(f"/v1/payments/{p['payment_id']}/events")
    assert len(events) == before


async def _is(gw: Gateway, pid: str, status: str) -> bool:
    return await status_of(gw, pid) == status


async def test_forged_notify_is_rejected_and_changes_nothing(gw: Gateway) -> None:
    _, p = await gw.client.post("/v1/payments", pay_body(method="qr", channel="wechatpay", auth_code=None))
    mid = p["merchant_id"]
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{gw.base_url}/v1/notify/wechatpay/{mid}", data=b'{"id":"x","resource":{}}',
                          headers={"Wechatpay-Signature": "bad", "Wechatpay-Timestamp": "1",
                                   "Wechatpay-Nonce": "n", "Wechatpay-Serial": "PUB_KEY_ID_x",
                                   "Content-Type": "application/json"}) as r:
            assert r.status >= 400
            assert (await r.json())["code"] == "NOTIFY_REJECTED"
    assert await status_of(gw, p["payment_id"]) == "PAYING"


async def test_jsapi_and_h5(gw: Gateway) -> None:
    _, p = await gw.client.post("/v1/payments", pay_body(method="jsapi", channel="wechatpay", auth_code=None,
                                                         openid="oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"))
    assert p["status"] == "PAYING" and {"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"} <= set(
        p["jsapi_params"])
    _, h = await gw.client.post("/v1/payments", pay_body(method="h5", channel="wechatpay", auth_code=None))
    assert h["status"] == "PAYING" and h["h5_url"]


async def test_idempotent_retry_and_conflict(gw: Gateway) -> None:
    req = pay_body()
    _, a = await gw.client.post("/v1/payments", req)
    _, b = await gw.client.post("/v1/payments", req)
    assert a["payment_id"] == b["payment_id"] and b["status"] == "SUCCEEDED"
    status, c = await gw.client.post("/v1/payments", {**req, "amount": req["amount"] + 1})
    assert (status, c["code"]) == (409, "IDEMPOTENCY_CONFLICT") and c["payment_id"] == a["payment_id"]
    orders = [o for o in await sim(gw, "GET", "/_sim/orders") if o["out_trade_no"] == a["payment_id"]]
    assert len(orders) == 1


async def test_fifty_concurrent_identical_requests_charge_once(gw: Gateway) -> None:
    # Slow the channel so that all fifty arrive while the first is still in flight.
    await sim(gw, "POST", "/_sim/faults", {"kind": "latency", "path": "codepay", "delay_seconds": 0.5})
    req = pay_body()
    results = await asyncio.gather(*(gw.client.post("/v1/payments", req) for _ in range(50)))
    ids = {body["payment_id"] for status, body in results if status == 200}
    assert len(ids) == 1 and all(status == 200 for status, _ in results)
    pid = ids.pop()
    orders = [o for o in await sim(gw, "GET", "/_sim/orders") if o["out_trade_no"] == pid]
    assert len(orders) == 1
    await wait_for(lambda: _is(gw, pid, "SUCCEEDED"))


async def test_declined_code_is_failed_with_the_channels_code(gw: Gateway) -> None:
    _, p = await gw.client.post("/v1/payments", pay_body(auth_code=code("9011")))
    assert p["status"] == "FAILED" and p["error_code"] == "NOTENOUGH"


async def test_userpaying_then_success_settled_by_the_resolver(gw: Gateway, monkeypatch) -> None:
    monkeypatch.setattr(WeChatPayChannel, "code_poll_schedule", (1, 2, 3, 4, 6, 8, 10, 12))
    _, p = await gw.client.post("/v1/payments", pay_body(auth_code=code("9001")))
    assert p["status"] == "PAYING"
    await wait_for(lambda: _is(gw, p["payment_id"], "SUCCEEDED"), timeout=15)


async def test_wait_seconds_holds_the_answer_until_settled(gw: Gateway, monkeypatch) -> None:
    monkeypatch.setattr(WeChatPayChannel, "code_poll_schedule", (1, 2, 3, 4, 6, 8, 10, 12))
    _, p = await gw.client.post("/v1/payments", pay_body(auth_code=code("9001"), wait_seconds=15))
    assert p["status"] == "SUCCEEDED"


async def test_still_paying_after_the_schedule_is_reversed(gw: Gateway, monkeypatch) -> None:
    monkeypatch.setattr(WeChatPayChannel, "code_poll_schedule", (0.5, 1, 1.5))
    monkeypatch.setattr(WeChatPayChannel, "reverse_retry_seconds", 1.0)
    # The channel refuses to reverse while the patient's password prompt is open;
    # the resolver keeps trying until the prompt times out, then the reverse holds.
    await sim(gw, "POST", "/_sim/settings", {"userpaying_timeout_seconds": 4})
    _, p = await gw.client.post("/v1/payments", pay_body(auth_code=code("9004")))
    assert p["status"] == "PAYING"
    await wait_for(lambda: _is(gw, p["payment_id"], "REVERSED"), timeout=15)
    truth = await sim(gw, "GET", f"/_sim/orders/{p['payment_id']}")
    assert truth["trade_state"] == "REVOKED"


async def test_charged_but_answer_lost_becomes_unknown_then_succeeded(gw: Gateway) -> None:
    gw.core.settings.upstream_timeout_seconds = 1.0
    await sim(gw, "POST", "/_sim/faults", {"kind": "timeout", "path": "codepay", "when": "after", "count": 1,
                                           "delay_seconds": 5})
    _, p = await gw.client.post("/v1/payments", pay_body())
    assert p["status"] == "UNKNOWN"  # never FAILED: the channel did not answer
    await wait_for(lambda: _is(gw, p["payment_id"], "SUCCEEDED"), timeout=15)
    truth = await sim(gw, "GET", f"/_sim/orders/{p['payment_id']}")
    assert truth["trade_state"] == "SUCCESS"


async def test_system_error_with_charge_is_settled_by_query(gw: Gateway) -> None:
    _, p = await gw.client.post("/v1/payments", pay_body(auth_code=code("9021")))
    assert p["status"] == "UNKNOWN"
    await wait_for(lambda: _is(gw, p["payment_id"], "SUCCEEDED"), timeout=15)


async def test_order_the_channel_never_saw_fails_after_grace(gw: Gateway) -> None:
    gw.core.settings.not_found_grace_seconds = 1.0
    await sim(gw, "POST", "/_sim/faults", {"kind": "http_error", "path": "codepay", "when": "before", "count": 1})
    _, p = await gw.client.post("/v1/payments", pay_body())
    assert p["status"] == "UNKNOWN"
    await wait_for(lambda: _is(gw, p["payment_id"], "FAILED"), timeout=15)
    _, body = await gw.client.get(f"/v1/payments/{p['payment_id']}")
    assert body["error_code"] == "CHANNEL_ORDER_NOT_FOUND"


async def test_refunds_partial_full_and_beyond(gw: Gateway) -> None:
    _, p = await gw.client.post("/v1/payments", pay_body(amount=1000))
    pid = p["payment_id"]
    status, r1 = await gw.client.post(f"/v1/payments/{pid}/refunds", {"out_refund_no": "RF1", "amount": 300,
                                                                      "reason": "退号"})
    assert status == 200 and r1["status"] in ("SUCCEEDED", "PROCESSING")
    await wait_for(lambda: _refund_is(gw, r1["refund_id"], "SUCCEEDED"), timeout=15)
    assert await status_of(gw, pid) == "PARTIALLY_REFUNDED"
    status, again = await gw.client.post(f"/v1/payments/{pid}/refunds", {"out_refund_no": "RF1", "amount": 300,
                                                                         "reason": "退号"})
    assert again["refund_id"] == r1["refund_id"]  # idempotent retry
    status, over = await gw.client.post(f"/v1/payments/{pid}/refunds", {"out_refund_no": "RF2", "amount": 701})
    assert (status, over["code"]) == (409, "REFUND_EXCEEDS_PAID") and over["refundable"] == 700
    status, r3 = await gw.client.post(f"/v1/payments/{pid}/refunds", {"out_refund_no": "RF3", "amount": 700})
    await wait_for(lambda: _refund_is(gw, r3["refund_id"], "SUCCEEDED"), timeout=15)
    _, final = await gw.client.get(f"/v1/payments/{pid}")
    assert final["status"] == "REFUNDED" and final["refunded_amount"] == 1000


async def _refund_is(gw: Gateway, rid: str, status: str) -> bool:
    _, body = await gw.client.get(f"/v1/refunds/{rid}")
    return body["status"] == status


async def test_concurrent_refunds_never_exceed_the_payment(gw: Gateway) -> None:
    _, p = await gw.client.post("/v1/payments", pay_body(amount=100))
    pid = p["payment_id"]
    results = await asyncio.gather(*(gw.client.post(f"/v1/payments/{pid}/refunds",
                                                    {"out_refund_no": f"C{i}", "amount": 30}) for i in range(10)))
    accepted = [b for s, b in results if s == 200]
    refused = [b for s, b in results if s == 409]
    assert len(accepted) == 3 and len(refused) == 7
    assert all(b["code"] == "REFUND_EXCEEDS_PAID" for b in refused)
    for r in accepted:
        await wait_for(lambda r=r: _refund_is(gw, r["refund_id"], "SUCCEEDED"), timeout=15)
    _, final = await gw.client.get(f"/v1/payments/{pid}")
    assert final["refunded_amount"] == 90 and final["status"] == "PARTIALLY_REFUNDED"


async def test_refund_of_unpaid_payment_is_refused(gw: Gateway) -> None:
    _, p = await gw.client.post("/v1/payments", pay_body(method="qr", channel="wechatpay", auth_code=None))
    status, body = await gw.client.post(f"/v1/payments/{p['payment_id']}/refunds", {"out_refund_no": "X1",
                                                                                     "amount": 1})
    assert (status, body["code"]) == (409, "INVALID_STATE") and body["status"] == 409


async def test_reverse_a_paid_code_payment(gw: Gateway) -> None:
    _, p = await gw.client.post("/v1/payments", pay_body())
    status, r = await gw.client.post(f"/v1/payments/{p['payment_id']}/reverse")
    assert status == 200 and r["status"] == "REVERSED"
    truth = await sim(gw, "GET", f"/_sim/orders/{p['payment_id']}")
    assert truth["trade_state"] == "REVOKED"
    status, body = await gw.client.post(f"/v1/payments/{p['payment_id']}/refunds", {"out_refund_no": "Z", "amount": 1})
    assert body["code"] == "INVALID_STATE"


async def test_close_an_unpaid_qr_order(gw: Gateway) -> None:
    _, p = await gw.client.post("/v1/payments", pay_body(method="qr", channel="wechatpay", auth_code=None))
    status, c = await gw.client.post(f"/v1/payments/{p['payment_id']}/close")
    assert status == 200 and c["status"] == "CLOSED"
    truth = await sim(gw, "GET", f"/_sim/orders/{p['payment_id']}")
    assert truth["trade_state"] == "CLOSED"
    status, body = await gw.client.post(f"/v1/payments/{p['payment_id']}/close")
    assert status == 200 and body["status"] == "CLOSED"


async def test_close_refused_for_code_payment(gw: Gateway) -> None:
    _, p = await gw.client.post("/v1/payments", pay_body())
    status, body = await gw.client.post(f"/v1/payments/{p['payment_id']}/close")
    assert (status, body["code"]) == (409, "INVALID_STATE")


async def test_expired_qr_order_is_closed_at_the_channel_first(gw: Gateway) -> None:
    _, p = await gw.client.post("/v1/payments", pay_body(method="qr", channel="wechatpay", auth_code=None,
                                                         expire_minutes=1))
    pid = p["payment_id"]
    from gateway.db.models import utcnow

    await gw.core.ledger.update_payment(pid, expire_at=utcnow(), next_check_at=utcnow())
    await wait_for(lambda: _is(gw, pid, "CLOSED"), timeout=15)
    truth = await sim(gw, "GET", f"/_sim/orders/{pid}")
    assert truth["trade_state"] == "CLOSED"


async def test_unsettleable_payment_goes_to_review_and_is_decided(gw: Gateway) -> None:
    gw.core.settings.resolver_max_attempts = 2
    await sim(gw, "POST", "/_sim/faults", {"kind": "http_error", "path": "codepay"})  # pay and every query break
    await sim(gw, "POST", "/_sim/faults", {"kind": "http_error", "path": "out-trade-no"})
    _, p = await gw.client.post("/v1/payments", pay_body())
    pid = p["payment_id"]
    assert p["status"] == "UNKNOWN"
    from gateway.db.models import utcnow

    async def in_review() -> bool:
        await gw.core.ledger.update_payment(pid, next_check_at=utcnow())  # skip the backoff
        _, b = await gw.client.get(f"/v1/payments/{pid}")
        return b["needs_review"]

    await wait_for(in_review, timeout=20, interval=0.3)
    _, queue = await gw.admin.get("/v1/admin/reviews")
    item = next(i for i in queue["payments"] if i["payment"]["payment_id"] == pid)
    assert item["reason"] and item["events"] and item["interface_calls"]
    status, bad = await gw.admin.post(f"/v1/admin/reviews/payments/{pid}",
                                      {"action": "set_status", "status": "REFUNDED", "comment": "试试",
                                       "operator": "fin-01"})
    assert (status, bad["code"]) == (409, "INVALID_STATE")
    status, done = await gw.admin.post(f"/v1/admin/reviews/payments/{pid}",
                                       {"action": "set_status", "status": "FAILED",
                                        "comment": "渠道对账单无此交易", "operator": "fin-01"})
    assert status == 200 and done["status"] == "FAILED" and not done["needs_review"]
    _, events = await gw.client.get(f"/v1/payments/{pid}/events")
    assert events[-1]["source"] == "manual" and events[-1]["operator"] == "fin-01"
    from sqlalchemy import select

    from gateway.db.models import AuditLog

    async with gw.core.sm() as s:
        audits = (await s.execute(select(AuditLog).where(AuditLog.target == pid))).scalars().all()
    assert [a.action for a in audits] == ["review.payment.set_status"]


async def test_interface_log_counts_outbound_calls(gw: Gateway) -> None:
    await gw.client.post("/v1/payments", pay_body())
    await gw.client.post("/v1/payments", pay_body(auth_code=code("9011")))
    await gw.core.ilog.flush()
    _, stats = await gw.admin.get("/v1/admin/interfaces")
    rows = {r["interface"]: r for r in stats["interfaces"]}
    assert rows["wechatpay.pay.code"]["total"] == 2
    assert rows["wechatpay.pay.code"]["normal"] == 1 and rows["wechatpay.pay.code"]["rejected"] == 1
    _, logs = await gw.admin.get("/v1/admin/interface-logs?interface=POST%20/v1/payments&limit=5")
    assert logs["items"] and "*" in logs["items"][0]["request_body"]  # the auth code is masked
    assert all(len(i["request_body"] or "") < 4001 for i in logs["items"])
