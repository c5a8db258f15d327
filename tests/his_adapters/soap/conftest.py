"""Fixtures: the SOAP HIS simulator on loopback and adapters pointed at it (shipped config)."""
from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from gateway.his import PendingCharge, RefundWriteBack, WriteBack
from gateway.testing.fixtures import session  # noqa: F401 - a fixture
from his_adapters.simhis import CST, SimHospital
from his_adapters.soap import SoapHisAdapter, SoapHisConfig
from his_adapters.soap.simulator import SoapHisSimHandle, start_simulator


@pytest.fixture
async def sim() -> AsyncIterator[SoapHisSimHandle]:
    handle = await start_simulator("127.0.0.1", 0, hospital=SimHospital(seed=11, patients=12))
    try:
        yield handle
    finally:
        await handle.stop()


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` merged in, nested dicts merged key by key."""
    out = dict(base)
    for key, value in overrides.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


MakeAdapter = Callable[..., SoapHisAdapter]


@pytest.fixture
def sim_config(sim: SoapHisSimHandle) -> dict[str, Any]:
    return sim.system_configs()[0]["config"]


@pytest.fixture
def make_adapter(sim_config: dict[str, Any], session: aiohttp.ClientSession) -> MakeAdapter:
    def make(**overrides: Any) -> SoapHisAdapter:
        return SoapHisAdapter(SoapHisConfig.model_validate(merge(sim_config, overrides)), session)

    return make


@pytest.fixture
def adapter(make_adapter: MakeAdapter) -> SoapHisAdapter:
    return make_adapter(timeout_seconds=0.5)


def today() -> dt.date:
    return dt.datetime.now(CST).date()


_seq = iter(range(1, 1_000_000))


def write_back_for(charges: list[PendingCharge], *, amount: int | None = None, channel: str = "wechatpay",
                   payment_id: str | None = None) -> WriteBack:
    n = next(_seq)
    first = charges[0]
    return WriteBack(
        payment_id=payment_id or f"PAY{n:08d}", out_trade_no=f"OUT{n:08d}", app_id="kiosk-1",
        amount=sum(c.amount for c in charges) if amount is None else amount, channel=channel, method="qr",
        channel_trade_no=f"4200{n:016d}", paid_at=dt.datetime.now(dt.UTC).replace(microsecond=0),
        patient_id=first.patient_id, visit_no=first.visit_no, charge_ids=[c.charge_id for c in charges],
        bill_type=first.bill_type, operator="KIOSK01")


def refund_for(wb: WriteBack, amount: int, refund_id: str | None = None) -> RefundWriteBack:
    n = next(_seq)
    return RefundWriteBack(
        refund_id=refund_id or f"REF{n:08d}", payment_id=wb.payment_id, amount=amount, total=wb.amount,
        refunded_at=dt.datetime.now(dt.UTC).replace(microsecond=0), patient_id=wb.patient_id,
        channel=wb.channel, reason="患者申请退费", bill_type=wb.bill_type)
