"""Pending charges (待缴费) through the shipped configuration, over HTTP."""
from __future__ import annotations

import pytest

from gateway.errors import HisNotSupported, HisRejected
from gateway.his import HisCapability, PatientQuery
from his_adapters.rest import RestHisAdapter
from his_adapters.simhis import Item, SimHospital

from .conftest import MakeAdapter


def _patient_with_pending(hospital: SimHospital) -> str:
    return next(p for p in hospital.patients if hospital.pending(p))


@pytest.mark.parametrize("identifier", ["card_no", "id_no", "patient_id"])
async def test_pending_by_identifier(adapter: RestHisAdapter, hospital: SimHospital, identifier: str) -> None:
    patient = hospital.patients[_patient_with_pending(hospital)]
    charges = await adapter.pending_charges(PatientQuery(**{identifier: getattr(patient, identifier)}))
    expected = hospital.pending(patient.patient_id)
    assert [c.charge_id for c in charges] == [c.charge_id for c in expected]
    for got, want in zip(charges, expected, strict=True):
        assert got.patient_id == patient.patient_id and got.patient_name == patient.name
        assert got.amount == want.amount and got.bill_type == want.bill_type
        assert got.visit_no == want.visit_no and got.department == want.department and got.doctor == want.doctor
        assert got.created_at == want.created_at and got.created_at.tzinfo is not None
        assert [(i.name, i.code, i.quantity, i.amount) for i in got.items] == \
            [(i.name, i.code, i.quantity, i.amount) for i in want.items]
        assert sum(i.amount for i in got.items) == got.amount


async def test_pending_by_visit_number_only_that_visit(adapter: RestHisAdapter, hospital: SimHospital) -> None:
    patient_id = next(p for p in hospital.patients
                      if len({c.visit_no for c in hospital.pending(p)}) > 1)
    visit_no = hospital.pending(patient_id)[0].visit_no
    charges = await adapter.pending_charges(PatientQuery(visit_no=visit_no))
    assert charges and {c.visit_no for c in charges} == {visit_no}
    assert {c.charge_id for c in charges} == {c.charge_id for c in hospital.pending(patient_id, visit_no)}


async def test_all_four_bill_types_come_back(adapter: RestHisAdapter, hospital: SimHospital) -> None:
    seen = set()
    for patient in hospital.patients.values():
        seen |= {c.bill_type for c in await adapter.pending_charges(PatientQuery(card_no=patient.card_no))}
    assert seen == {"outpatient_registration", "outpatient_settlement", "inpatient_deposit", "inpatient_settlement"}


async def test_unknown_patient_is_a_refusal_with_the_his_code(adapter: RestHisAdapter) -> None:
    with pytest.raises(HisRejected) as info:
        await adapter.pending_charges(PatientQuery(card_no="000000000000"))
    assert info.value.extra["his_code"] == "1006"
    assert info.value.extra["his_message"] == "患者信息不存在"


async def test_nothing_due_is_an_empty_list(adapter: RestHisAdapter, hospital: SimHospital) -> None:
    patient_id = _patient_with_pending(hospital)
    for charge in hospital.pending(patient_id):
        charge.status = "cancelled"
    assert await adapter.pending_charges(PatientQuery(patient_id=patient_id)) == []


async def test_one_fen_and_large_amounts(adapter: RestHisAdapter, hospital: SimHospital) -> None:
    patient_id = next(iter(hospital.patients))
    small = hospital.add_charge(patient_id, 1, items=[Item("棉签", "WS001", "1", 1)])
    large = hospital.add_charge(patient_id, 12_345_678_901, bill_type="inpatient_deposit")
    got = {c.charge_id: c for c in await adapter.pending_charges(PatientQuery(patient_id=patient_id))}
    assert got[small.charge_id].amount == 1 and got[small.charge_id].items[0].amount == 1
    assert got[large.charge_id].amount == 12_345_678_901


async def test_query_type_style_request(make_adapter: MakeAdapter, hospital: SimHospital) -> None:
    # the same simulator, asked through one parameter named by a configured code
    patient = hospital.patients[_patient_with_pending(hospital)]
    adapter = make_adapter(pending={"request": {"cardNo": "${query_value}", "idCardNo": None, "visitNo": None,
                                                "patientId": None}})
    charges = await adapter.pending_charges(PatientQuery(card_no=patient.card_no))
    assert {c.charge_id for c in charges} == {c.charge_id for c in hospital.pending(patient.patient_id)}


async def test_extras_are_collected(make_adapter: MakeAdapter, hospital: SimHospital) -> None:
    patient = hospital.patients[_patient_with_pending(hospital)]
    adapter = make_adapter(pending={"mapping": {"fields": {"extra.card": "$.data.cardNo"}}})
    charges = await adapter.pending_charges(PatientQuery(patient_id=patient.patient_id))
    assert all(c.extra == {"card": patient.card_no} for c in charges)


async def test_an_unconfigured_operation_is_not_supported(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter(pending=None)
    assert not adapter.configured(HisCapability.PENDING) and adapter.configured(HisCapability.BILLS)
    assert not adapter.supports(HisCapability.PENDING) and adapter.supports(HisCapability.BILLS)
    assert RestHisAdapter.supports(HisCapability.PENDING)  # the class can, this system cannot
    with pytest.raises(HisNotSupported):
        await adapter.pending_charges(PatientQuery(card_no="1"))
