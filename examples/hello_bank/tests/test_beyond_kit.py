"""What the conformance kit does not reach: the channel's own promises, tested the same way."""
import datetime as dt
import json
import secrets
import time

import aiohttp
import pytest
from gateway.channel import Method, PayRequest, RefundRequest, RefundStatus, TradeStatus
from gateway.errors import NotifyRejected, UpstreamError
from hello_bank.adapter import HelloBankChannel, HelloBankConfig
from hello_bank.conformance import HelloBankDriver
from hello_bank.simulator import start_simulator
from hello_bank.wire import parse_bill, sign


@pytest.fixture
async def bank():
    handle = await start_simulator()
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2))
    control = aiohttp.ClientSession()
    adapter = HelloBankChannel(HelloBankConfig.model_validate(handle.merchant_configs()[0]), session)
    yield adapter, HelloBankDriver(handle, control)
    await session.close()
    await control.close()
    await handle.stop()


def code_payment(driver, outcome="success"):
    return PayRequest(out_trade_no="T" + secrets.token_hex(8), amount=1000, subject="test", method=Method.CODE,
                      auth_code=driver.auth_code(outcome))


async def test_a_patient_still_confirming_is_reversed_and_a_late_retry_charges_nothing(bank):
    adapter, driver = bank
    req = code_payment(driver, "paying_forever")
    assert (await adapter.pay(req)).status == TradeStatus.PAYING
    assert (await adapter.reverse(req.out_trade_no)).done
    assert (await adapter.pay(req)).status == TradeStatus.REVERSED
    assert await driver.truth(req.out_trade_no) == TradeStatus.REVERSED


async def test_a_reverse_that_overtakes_its_payment_kills_the_order_number(bank):
    adapter, driver = bank
    req = code_payment(driver)
    assert (await adapter.reverse(req.out_trade_no)).done  # the pay request is still on its way
    assert (await adapter.pay(req)).status == TradeStatus.REVERSED


@pytest.mark.parametrize("kind,when", [("http_error", "before"), ("reset", "after"), ("bad_signature", "after")])
async def test_a_broken_refund_is_unknown_never_failed(bank, kind, when):
    adapter, driver = bank
    pay = code_payment(driver)
    await adapter.pay(pay)
    refund = RefundRequest(out_trade_no=pay.out_trade_no, out_refund_no="R" + secrets.token_hex(8), amount=400,
                           total=1000)
    await driver.inject(kind, "refund", when=when)
    with pytest.raises(UpstreamError):
        await adapter.refund(refund)
    await driver.clear_faults()
    result = await adapter.refund(refund)  # the retry with the same number finds or makes the one refund
    assert result.status in (RefundStatus.PROCESSING, RefundStatus.SUCCEEDED)


async def test_notifies_are_verified_not_merely_parsed(bank):
    adapter, _ = bank
    key, merchant = adapter.config.api_key.get_secret_value(), adapter.config.merchant_no

    def signed(data, *, with_key=key, as_merchant=merchant):
        body = json.dumps(data).encode()
        ts, nonce = str(int(time.time())), secrets.token_hex(8)
        return {"X-HB-Merchant": as_merchant, "X-HB-Timestamp": ts, "X-HB-Nonce": nonce,
                "X-HB-Signature": sign(with_key, "notify", ts, nonce, body)}, body

    trade = {"out_trade_no": "T1", "trade_no": "HB1", "state": "SUCCESS", "amount": "10.00"}
    headers, body = signed({"event": "TRADE_SUCCESS", "merchant_no": merchant, "trade": trade})
    event, answer = await adapter.parse_notify(headers, body)
    assert event.trade.paid_amount == 1000 and answer.status == 200
    forged = json.dumps({"event": "TRADE_SUCCESS", "merchant_no": merchant, "trade": {**trade, "amount": "0.01"}})
    for h, b in [(headers, forged.encode()), signed({"event": "TRADE_SUCCESS", "trade": trade}, with_key="k" * 32),
                 signed({"event": "TRADE_SUCCESS", "trade": trade}, as_merchant="HB0")]:
        with pytest.raises(NotifyRejected):
            await adapter.parse_notify(h, b)


def test_a_bill_that_does_not_add_up_is_refused():
    bill = ("trade_time,trade_no,out_trade_no,type,amount,fee,refund_no,out_refund_no,method,status\n"
            "2024-05-01 10:00:00,HB1,T1,PAY,10.00,0.06,,,code,SUCCESS\n")
    assert parse_bill((bill + "TOTAL,1,10.00,0.00,0.06\n").encode(), dt.date(2024, 5, 1), "M").total_paid == 1000
    with pytest.raises(ValueError):
        parse_bill((bill + "TOTAL,1,12.00,0.00,0.06\n").encode(), dt.date(2024, 5, 1), "M")
