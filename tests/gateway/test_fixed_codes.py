"""Fixed collection codes and offline emergency collection, as a patient and finance would use them."""
from __future__ import annotations

import datetime as dt
import re

import aiohttp

from tests.conftest import Gateway, wait_for
from tests.gateway.test_payments import sim


async def _code(gw: Gateway, **kw) -> dict:  # type: ignore[no-untyped-def]
    body = {"name": "门诊收费处应急收款码", "campus_id": "main", "fee_item": "门诊费用",
            "merchants": {"wechatpay": "mch_wechatpay_1"}} | kw
    status, code = await gw.admin.post("/v1/admin/fixed-codes", body)
    assert status == 201, code
    return code


async def test_patient_pays_through_a_fixed_code(gw: Gateway) -> None:
    code = await _code(gw)
    assert code["pay_url"].endswith(f"/fixed/{code['id']}")
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{gw.base_url}/fixed/{code['id']}", headers={"User-Agent": "MicroMessenger/8.0"}) as r:
            page = await r.text()
            assert r.status == 200 and "金额" in page and "<script" not in page and "http" not in page.split("<body>")[1][:50]
        async with s.post(f"{gw.base_url}/fixed/{code['id']}", data={"amount": "12.50", "channel": "wechatpay"},
                          allow_redirects=False) as r:
            assert r.status == 303
            checkout = r.headers["Location"]
    prepay = re.search(r"prepay_id=([^&]+)", checkout).group(1)  # type: ignore[union-attr]
    async with aiohttp.ClientSession() as s:  # the patient confirms on the channel's page
        async with s.post(checkout.split("?")[0] + f"?prepay_id={prepay}") as r:
            assert r.status == 200
    from sqlalchemy import select

    from gateway.db.models import Payment

    async def paid() -> object:
        async with gw.core.rsm() as s:
            p = (await s.execute(select(Payment).where(Payment.entry == f"fixed:{code['id']}"))).scalar_one()
        return p if p.status == "SUCCEEDED" else None

    p = await wait_for(paid, timeout=15)
    assert p.amount == 1250 and p.collection_mode == "fixed" and p.merchant_id == "mch_wechatpay_1"


async def test_bad_amount_shows_the_form_again(gw: Gateway) -> None:
    code = await _code(gw, max_amount=10000)
    async with aiohttp.ClientSession() as s:
        for amount in ("abc", "0", "100.01", "1.234"):
            async with s.post(f"{gw.base_url}/fixed/{code['id']}", data={"amount": amount, "channel": "wechatpay"},
                              allow_redirects=False) as r:
                text = await r.text()
                assert r.status == 400 and "金额必须" in text, (amount, text[:300])
        async with s.get(f"{gw.base_url}/fixed/nosuch") as r:
            assert r.status == 404


async def test_offline_collection_is_exported_for_the_window(gw: Gateway) -> None:
    code = await _code(gw, offline=True)
    async with aiohttp.ClientSession() as s:
        for amount in ("8.00", "20.00"):
            async with s.post(f"{gw.base_url}/fixed/{code['id']}", data={"amount": amount, "channel": "wechatpay"},
                              allow_redirects=False) as r:
                assert r.status == 303
    from sqlalchemy import select

    from gateway.db.models import Payment

    async with gw.core.rsm() as s:
        pays = (await s.execute(select(Payment).where(Payment.collection_mode == "offline"))).scalars().all()
    assert len(pays) == 2
    for p in pays:
        await sim(gw, "POST", f"/_sim/orders/{p.id}/pay", {})
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date().isoformat()

    async def exported() -> object:
        _, body = await gw.admin.get(f"/v1/admin/collections?date={today}")
        return body if body["total_fen"] == 2800 else None

    body = await wait_for(exported, timeout=15)
    assert {i["amount_yuan"] for i in body["items"]} == {"8.00", "20.00"}
    status, csv_text = await gw.admin.get(f"/v1/admin/collections?date={today}&format=csv")
    assert status == 200 and "平台流水号" in csv_text and "20.00" in csv_text
    status, body = await gw.admin.get("/v1/admin/collections")
    assert (status, body["code"]) == (400, "VALIDATION_FAILED")


async def test_fixed_code_validation(gw: Gateway) -> None:
    status, body = await gw.admin.post("/v1/admin/fixed-codes", {"name": "x", "merchants": {"wechatpay": "nosuch"}})
    assert (status, body["code"]) == (400, "VALIDATION_FAILED")
    code = await _code(gw)
    status, body = await gw.admin.request("PATCH", f"/v1/admin/fixed-codes/{code['id']}", {"enabled": False})
    assert status == 200 and body["enabled"] is False
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{gw.base_url}/fixed/{code['id']}") as r:
            assert r.status == 410
