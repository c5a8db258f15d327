"""The simulator on its raw wire: request authentication, signed answers, error codes, control surface."""
from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import time

import pytest

from channels.ecny import EcnyConfig
from gateway.channel import SimulatorInfo
from plugins.banks.refbank import crypto
from plugins.banks.refbank.recon import parse_recon
from plugins.banks.refbank.simulator import start_simulator
from plugins.banks.refbank.wire import CST, PATH_BILL, PATH_CODEPAY, PATH_QUERY, PATH_REFUND

from .conftest import Wire

PAY = {"out_trade_no": "W1", "auth_code": "0123456789012345678", "amount": "1.00", "subject": "挂号费"}


def today() -> dt.date:
    return dt.datetime.now(CST).date()


async def test_signed_request_gets_a_signed_answer(wire: Wire, sim) -> None:  # type: ignore[no-untyped-def]
    ans = await wire.post(PATH_CODEPAY, PAY)
    assert ans.status == 200 and ans.headers["Content-Type"].startswith("application/json")
    signed = ans.verify(sim, sim.merchants[0].merchant_id)
    assert signed.key_id == sim.simulator.bank_key_id and ans.headers[crypto.HEADER_REQUEST_ID]
    data = ans.json()
    assert data["code"] == "SUCCESS" and data["message"] == "成功"
    assert data["data"]["trade_status"] == "SUCCESS" and data["data"]["amount"] == "1.00"
    # the answer is bound to this request: it does not verify for another nonce
    ans.nonce = "0" * 32
    with pytest.raises(crypto.SignatureError):
        ans.verify(sim, sim.merchants[0].merchant_id)


@pytest.mark.parametrize("case,code", [
    ("no headers", "MERCHANT_NOT_FOUND"),
    ("unknown merchant", "MERCHANT_NOT_FOUND"),
    ("unknown key id", "KEY_NOT_FOUND"),
    ("other key", "SIGN_INVALID"),
    ("other body", "SIGN_INVALID"),
    ("other path", "SIGN_INVALID"),
    ("stale", "REQUEST_EXPIRED"),
    ("future", "REQUEST_EXPIRED"),
    ("no signature", "SIGN_INVALID"),
    ("other sign type", "SIGN_INVALID"),
])
async def test_requests_that_do_not_authenticate(wire: Wire, sim, case: str, code: str) -> None:  # type: ignore[no-untyped-def]
    kw: dict = {
        "no headers": {"drop": crypto.SIGNATURE_HEADERS},
        "unknown merchant": {"merchant_id": "898999999999999"},
        "unknown key id": {"key_id": "MK000000000000"},
        "other key": {"key": sim.merchants[1].merchant_key},
        "other body": {"signed_body": b'{"out_trade_no":"W1"}'},
        "other path": {"signed_path": PATH_QUERY},
        "stale": {"timestamp": str(int(time.time()) - 301)},
        "future": {"timestamp": str(int(time.time()) + 301)},
        "no signature": {"drop": [crypto.HEADER_SIGNATURE]},
        "other sign type": {"headers": {crypto.HEADER_SIGN_TYPE: "SM2"}},
    }[case]
    ans = await wire.post(PATH_CODEPAY, PAY, **kw)
    assert ans.status == 401 and ans.json()["code"] == code and ans.json()["message"]
    # refusals are signed too, for the merchant id the request named
    named = kw.get("merchant_id", "-" if case == "no headers" else sim.merchants[0].merchant_id)
    ans.verify(sim, named)
    assert sim.simulator.orders == {}  # nothing happened


async def test_a_replayed_request_is_refused(wire: Wire) -> None:
    first = await wire.post(PATH_QUERY, {"out_trade_no": "none"}, nonce="ab" * 16)
    assert first.json()["code"] == "ORDER_NOT_FOUND"
    again = await wire.post(PATH_QUERY, {"out_trade_no": "none"}, nonce="ab" * 16)
    assert (again.status, again.json()["code"]) == (401, "NONCE_REPLAYED")
    other = await wire.post(PATH_QUERY, {"out_trade_no": "none"}, nonce="ab" * 16, merchant=1)
    assert other.json()["code"] == "ORDER_NOT_FOUND"  # nonces are per merchant


@pytest.mark.parametrize("body,message", [
    ({**PAY, "amount": 1.0}, "amount"),
    ({**PAY, "amount": "1,00"}, "amount"),
    ({**PAY, "amount": "0.00"}, "amount"),
    ({**PAY, "out_trade_no": "有中文"}, "out_trade_no"),
    ({**PAY, "subject": ""}, "subject"),
    ({**PAY, "currency": "USD"}, "currency"),
    ({**PAY, "notify_url": "ftp://x"}, "notify_url"),
    (b"[1,2]", "JSON"),
    (b"{not json", "JSON"),
])
async def test_parameter_errors(wire: Wire, sim, body, message: str) -> None:  # type: ignore[no-untyped-def]
    ans = await wire.post(PATH_CODEPAY, body)
    assert (ans.status, ans.json()["code"]) == (200, "PARAM_ERROR") and message in ans.json()["message"]
    ans.verify(sim, sim.merchants[0].merchant_id)


async def test_unknown_path_and_method(wire: Wire, sim) -> None:  # type: ignore[no-untyped-def]
    ans = await wire.post("/ecny/v1/trade/teleport", {})
    assert (ans.status, ans.json()["code"]) == (404, "NOT_FOUND")
    ans.verify(sim, sim.merchants[0].merchant_id)
    ans = await wire.post(PATH_QUERY, {}, method="PUT")
    assert ans.json()["code"] == "NOT_FOUND"


async def test_refund_codes(wire: Wire) -> None:
    await wire.post(PATH_CODEPAY, PAY)
    body = {"out_trade_no": "W1", "out_refund_no": "W1-1", "refund_amount": "0.40", "total_amount": "1.00"}
    assert (await wire.post(PATH_REFUND, body)).json()["data"]["refund_status"] == "PROCESSING"
    over = await wire.post(PATH_REFUND, {**body, "out_refund_no": "W1-2", "refund_amount": "0.61"})
    assert over.json()["code"] == "AMOUNT_EXCEEDS_REFUNDABLE" and "0.60" in over.json()["message"]


async def test_bill_download_plain_and_gzip(wire: Wire, sim) -> None:  # type: ignore[no-untyped-def]
    await wire.post(PATH_CODEPAY, PAY)
    day = today().strftime("%Y%m%d")
    plain = await wire.post(PATH_BILL, {"bill_date": day})
    assert plain.status == 200 and plain.headers["Content-Type"].startswith("text/plain")
    plain.verify(sim, sim.merchants[0].merchant_id)  # the file itself is signed
    recon = parse_recon(plain.body, merchant_id=sim.merchants[0].merchant_id, bill_date=today())
    assert recon.pay_amount == 100 and plain.headers["Content-Disposition"].endswith('.txt"')
    packed = await wire.post(PATH_BILL, {"bill_date": day, "compress": "GZIP"})
    assert packed.headers["Content-Type"] == "application/gzip" and gzip.decompress(packed.body) == plain.body
    packed.verify(sim, sim.merchants[0].merchant_id)
    later = (today() + dt.timedelta(days=1)).strftime("%Y%m%d")
    assert (await wire.post(PATH_BILL, {"bill_date": later})).json()["code"] == "BILL_NOT_READY"
    assert (await wire.post(PATH_BILL, {"bill_date": "2024-05-01"})).json()["code"] == "PARAM_ERROR"
    assert (await wire.post(PATH_BILL, {"bill_date": day, "compress": "ZIP"})).json()["code"] == "PARAM_ERROR"


# --- control surface ---------------------------------------------------------------------------------
async def ctl(session, sim, method: str, path: str, body=None, expect: int = 200):  # type: ignore[no-untyped-def]
    async with session.request(method, sim.control_url + path, json=body) as resp:
        assert resp.status == expect, (resp.status, await resp.text())
        return await resp.json() if resp.content_type == "application/json" else await resp.text()


async def test_control_index_and_truth(wire: Wire, sim, session) -> None:  # type: ignore[no-untyped-def]
    index = await ctl(session, sim, "GET", "/")
    assert index["channel"] == "ecny" and index["bank"] == "refbank"
    assert index["bank_key_id"] == sim.simulator.bank_key_id
    assert "…9001" in index["magic_auth_codes"] and "PAYING" in index["script_outcomes"]
    assert set(index["fault_kinds"]) >= {"latency", "timeout", "http_error", "reset", "bad_signature"}
    assert len(index["merchants"]) == 2 and "private_key" not in str(index["merchants"])
    await wire.post(PATH_CODEPAY, PAY)
    order = await ctl(session, sim, "GET", "/orders/W1")
    assert order["trade_status"] == "SUCCESS" and order["auth_code"] == PAY["auth_code"] and order["fee"] == "0.00"
    assert [o["out_trade_no"] for o in await ctl(session, sim, "GET", "/orders")] == ["W1"]
    await ctl(session, sim, "GET", "/orders/none", expect=404)
    await ctl(session, sim, "GET", f"/orders/W1?merchant_id={sim.merchants[1].merchant_id}", expect=404)
    await ctl(session, sim, "POST", "/orders/W1/pay", expect=409)
    await ctl(session, sim, "POST", "/orders/W1/fail", expect=409)
    await ctl(session, sim, "GET", "/refunds/none", expect=404)
    await ctl(session, sim, "POST", "/reset")
    assert await ctl(session, sim, "GET", "/orders") == []


async def test_control_scripts(wire: Wire, sim, session) -> None:  # type: ignore[no-untyped-def]
    s = await ctl(session, sim, "POST", "/scripts", {"outcome": "paying", "then": "fail", "fail_code": "RISK_REJECTED",
                                                      "after_seconds": 0.1, "times": 2}, expect=201)
    assert s["outcome"] == "PAYING" and s["times"] == 2
    await ctl(session, sim, "POST", "/scripts", {"outcome": "NOPE"}, expect=400)
    await ctl(session, sim, "POST", "/scripts", {"then": "later"}, expect=400)
    await ctl(session, sim, "POST", "/scripts", {"sub_status": "THINKING"}, expect=400)
    await ctl(session, sim, "POST", "/scripts", {"fail_code": "NOPE"}, expect=400)
    first = (await wire.post(PATH_CODEPAY, PAY)).json()["data"]
    assert first["trade_status"] == "PAYING" and first["sub_status"] == "USER_CONFIRMING"
    await asyncio.sleep(0.15)
    later = (await wire.post(PATH_QUERY, {"out_trade_no": "W1"})).json()["data"]
    assert (later["trade_status"], later["fail_code"]) == ("FAIL", "RISK_REJECTED")
    assert len(await ctl(session, sim, "GET", "/scripts")) == 1  # one use left
    await ctl(session, sim, "DELETE", "/scripts")
    assert await ctl(session, sim, "GET", "/scripts") == []


async def test_control_settings_and_clock(wire: Wire, sim, session) -> None:  # type: ignore[no-untyped-def]
    got = await ctl(session, sim, "POST", "/settings", {"fee_rate_bp": 100, "confirm_timeout_seconds": 2,
                                                         "notify_retry_delays": [0.1]})
    assert got["fee_rate_bp"] == 100 and got["notify_retry_delays"] == [0.1]
    await ctl(session, sim, "POST", "/settings", {"next_refund_status": ["LATER"]}, expect=400)
    clock = await ctl(session, sim, "POST", "/clock", {"date": "2024-05-01"})
    assert clock["now"].startswith("2024-05-01")
    await wire.post(PATH_CODEPAY, PAY)
    text = await ctl(session, sim, "GET", "/bills/2024-05-01")
    recon = parse_recon(text, merchant_id=sim.merchants[0].merchant_id, bill_date=dt.date(2024, 5, 1))
    assert recon.pay_amount == 100 and recon.fee_amount == 1
    await ctl(session, sim, "POST", "/clock", {"now": "2024-05-02T09:30:00+08:00"})
    assert (await ctl(session, sim, "GET", "/clock"))["now"].startswith("2024-05-02T09:30")
    await ctl(session, sim, "POST", "/clock", {}, expect=400)
    assert (await ctl(session, sim, "DELETE", "/clock"))["offset_seconds"] == 0


async def test_confirmation_prompt_times_out(wire: Wire, sim, session) -> None:  # type: ignore[no-untyped-def]
    await ctl(session, sim, "POST", "/settings", {"confirm_timeout_seconds": 0.1})
    data = (await wire.post(PATH_CODEPAY, {**PAY, "auth_code": "0123456789012349004"})).json()["data"]
    assert data["trade_status"] == "PAYING"
    await asyncio.sleep(0.15)
    data = (await wire.post(PATH_QUERY, {"out_trade_no": "W1"})).json()["data"]
    assert (data["trade_status"], data["fail_code"]) == ("FAIL", "CONFIRM_TIMEOUT")


# --- the handle ------------------------------------------------------------------------------------
async def test_handle_api() -> None:
    with pytest.raises(ValueError):
        await start_simulator(merchants=0)
    async with await start_simulator("127.0.0.1", 0, merchants=3) as handle:
        assert handle.base_url.startswith("http://127.0.0.1:") and handle.control_url == handle.base_url + "/_sim"
        info = handle.info
        assert isinstance(info, SimulatorInfo) and info.channel == "ecny" and info.base_url == handle.base_url
        assert len(info.merchants) == 3 and info.merchants[0]["bank"] == "refbank"
        assert info.merchants[0]["sample_auth_code"].startswith("01")
        configs = handle.merchant_configs()
        assert len(configs) == 3 and len({c["bank_config"]["merchant_id"] for c in configs}) == 3
        for cfg in configs:
            assert cfg["bank"] == "refbank" and cfg["bank_config"]["base_url"] == handle.base_url
            EcnyConfig.model_validate(cfg)
        assert handle.simulator.merchants and handle.faults.faults == []
