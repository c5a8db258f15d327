"""Every planned fault of the simulated HIS surfaces as the contract's error or result."""
from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from gateway.errors import HisProtocolError, HisRejected, HisTimeout, HisUnavailable
from gateway.his import PatientQuery, WriteBackStatus
from his_adapters.rest import RestHisAdapter, RestHisConfig
from his_adapters.rest.simulator import RestHisSimHandle, start_simulator
from his_adapters.simhis import SimHospital

from .conftest import Control, MakeAdapter, china_today, first_pending, write_back_for

EXCEPTION_OF = {"timeout": HisTimeout, "error": HisUnavailable, "down": HisUnavailable,
                "malformed": HisProtocolError, "unknown_status": HisProtocolError}


@pytest.fixture
def quick(make_adapter: MakeAdapter) -> RestHisAdapter:
    return make_adapter(timeout_seconds=0.5)


def _calls(adapter: RestHisAdapter, hospital: SimHospital) -> dict[str, Callable[[], Awaitable[Any]]]:
    charge = first_pending(hospital)
    patient = hospital.patients[charge.patient_id]
    return {
        "pending": lambda: adapter.pending_charges(PatientQuery(card_no=patient.card_no)),
        "write_back": lambda: adapter.write_back(write_back_for(charge, "F1")),
        "write_back_query": lambda: adapter.query_write_back("F1"),
        "bill": lambda: adapter.daily_bill(china_today(), charge.bill_type),
    }


@pytest.mark.parametrize("kind", sorted(EXCEPTION_OF))
@pytest.mark.parametrize("op", ["pending", "write_back", "write_back_query", "bill"])
async def test_fault_kinds_raise_the_contract_errors(quick: RestHisAdapter, hospital: SimHospital, op: str,
                                                     kind: str) -> None:
    hospital.faults.set(op, kind, count=1)
    with pytest.raises(EXCEPTION_OF[kind]):
        await _calls(quick, hospital)[op]()
    assert hospital.find_record("F1") is None
    await _calls(quick, hospital)[op]()  # the fault is used up


async def test_refuse_fault_is_a_refusal(adapter: RestHisAdapter, hospital: SimHospital) -> None:
    hospital.faults.set("*", "refuse")
    result = await adapter.write_back(write_back_for(first_pending(hospital), "F2"))
    assert result.status is WriteBackStatus.REJECTED and result.error_code == "1099"
    with pytest.raises(HisRejected) as info:
        await adapter.daily_bill(china_today(), "outpatient_settlement")
    assert info.value.extra["his_code"] == "1099"
    hospital.faults.clear()
    assert (await adapter.write_back(write_back_for(first_pending(hospital), "F2"))).status is WriteBackStatus.RECORDED


@pytest.mark.parametrize("kind", ["timeout", "error", "down", "malformed", "unknown_status"])
async def test_recorded_but_unheard_then_a_retry_is_recorded_once(quick: RestHisAdapter, hospital: SimHospital,
                                                                  kind: str) -> None:
    charge = first_pending(hospital)
    wb = write_back_for(charge, "F3")
    hospital.faults.set("write_back", kind, count=1, after=True)
    with pytest.raises(EXCEPTION_OF[kind]):
        await quick.write_back(wb)
    assert hospital.find_record("F3") is not None  # the HIS has it; the gateway did not hear
    retried = await quick.write_back(wb)
    assert retried.status is WriteBackStatus.RECORDED
    assert retried.his_serial == hospital.find_record("F3").his_serial  # type: ignore[union-attr]
    assert sum(1 for r in hospital.records if r.payment_id == "F3") == 1


async def test_after_timeout_is_settled_by_the_query(quick: RestHisAdapter, hospital: SimHospital) -> None:
    hospital.faults.set("write_back", "timeout", count=1, after=True)
    with pytest.raises(HisTimeout):
        await quick.write_back(write_back_for(first_pending(hospital), "F4"))
    found = await quick.query_write_back("F4")
    assert found is not None and found.status is WriteBackStatus.RECORDED


async def test_refund_write_back_faults(quick: RestHisAdapter, hospital: SimHospital) -> None:
    from .test_write_back import refund_of

    charge = first_pending(hospital)
    await quick.write_back(write_back_for(charge, "F5"))
    rwb = refund_of("F5", "FR5", 1, charge.amount, charge.patient_id)
    hospital.faults.set("refund_write_back", "timeout", count=1, after=True)
    with pytest.raises(HisTimeout):
        await quick.write_back_refund(rwb)
    again = await quick.write_back_refund(rwb)
    assert again.status is WriteBackStatus.RECORDED and hospital.refunded("F5") == 1


async def test_fault_count_and_wildcard(adapter: RestHisAdapter, hospital: SimHospital) -> None:
    hospital.faults.set("*", "error", count=2)
    for _ in range(2):
        with pytest.raises(HisUnavailable):
            await adapter.daily_bill(china_today(), "outpatient_settlement")
    assert (await adapter.daily_bill(china_today(), "outpatient_settlement")).lines == []


async def test_faults_planned_through_the_control_surface(adapter: RestHisAdapter, control: Control) -> None:
    await control("POST", "/faults", {"op": "bill", "kind": "malformed"}, expect=201)
    with pytest.raises(HisProtocolError):
        await adapter.daily_bill(china_today(), "outpatient_settlement")
    await control("DELETE", "/faults")
    await adapter.daily_bill(china_today(), "outpatient_settlement")


async def test_a_stopped_his_is_unavailable(make_adapter: MakeAdapter, sim: RestHisSimHandle) -> None:
    other = await start_simulator("127.0.0.1", 0, hospital=SimHospital(patients=1), secret=sim.secret)
    base_url = other.base_url
    await other.stop()
    adapter = make_adapter(base_url=base_url)
    with pytest.raises(HisUnavailable):
        await adapter.daily_bill(china_today(), "outpatient_settlement")


async def test_a_held_request_ends_when_the_simulator_stops(session: Any) -> None:
    handle = await start_simulator("127.0.0.1", 0, hospital=SimHospital(patients=2))
    adapter = RestHisAdapter(RestHisConfig.model_validate(handle.system_configs()[0]["config"]), session)
    handle.hospital.faults.set("bill", "timeout")
    call = asyncio.create_task(adapter.daily_bill(china_today(), "outpatient_settlement"))
    await asyncio.sleep(0.2)
    started = dt.datetime.now(dt.UTC)
    await handle.stop()
    with pytest.raises((HisUnavailable, HisTimeout)):
        await asyncio.wait_for(call, 5)
    assert dt.datetime.now(dt.UTC) - started < dt.timedelta(seconds=5)
