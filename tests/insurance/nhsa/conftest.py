"""Fixtures: the insurance-centre simulator on loopback (per profile), an adapter
pointed at it, the control surface, and builders for visits and fees."""
from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from gateway.insurance import (
    AdmissionRequest,
    CertType,
    DischargeRequest,
    FeeLine,
    OutpatientRegistration,
    PersonInfo,
    PersonQuery,
    SettleRequest,
    VisitRef,
)
from gateway.testing.fixtures import session  # noqa: F401 - a fixture
from insurance.nhsa import NhsaAdapter
from insurance.nhsa.simulator import NhsaSimHandle, start_simulator

ZHANGSAN_ID = "430102198001011234"  # employee 310, account 1000.00, wallet 200.00, password 123456
LISI_ID = "430102199002022345"  # resident 390, no account, wallet 50.00
WANGWU_ID = "430102197503033456"  # employee, civil servant, mutual aid 300.00, medical aid, password 654321
PROFILES = ("national", "sm_oauth")


@pytest.fixture(params=PROFILES)
async def sim(request: pytest.FixtureRequest) -> AsyncIterator[NhsaSimHandle]:
    handle = await start_simulator("127.0.0.1", 0, profile=request.param)
    try:
        yield handle
    finally:
        await handle.stop()


@pytest.fixture
def make_adapter(sim: NhsaSimHandle, session: aiohttp.ClientSession) -> Callable[..., NhsaAdapter]:
    def make(**overrides: Any) -> NhsaAdapter:
        return NhsaAdapter(sim.config(**{"timeout_seconds": 3.0, **overrides}), session)

    return make


@pytest.fixture
def adapter(make_adapter: Callable[..., NhsaAdapter]) -> NhsaAdapter:
    return make_adapter()


Control = Callable[..., Awaitable[Any]]


@pytest.fixture
def control(sim: NhsaSimHandle, session: aiohttp.ClientSession) -> Control:
    async def call(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        async with session.request(method, sim.control_url + path, json=body) as resp:
            data = await resp.json()
            assert resp.status < 400, (resp.status, data)
            return data

    return call


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def fee(sn: str, code: str, amount: int, *, qty: str = "1", batch: str | None = "B1", **kw: Any) -> FeeLine:
    return FeeLine(feedetl_sn=sn, fee_time=now(), med_list_codg=code, medins_list_codg=f"H-{code}", amount=amount,
                   quantity=Decimal(qty), unit_price=Decimal(amount) / 100 / Decimal(qty), chrg_bchno=batch, **kw)


async def person(adapter: NhsaAdapter, certno: str = ZHANGSAN_ID) -> PersonInfo:
    return await adapter.person_info(PersonQuery(cert_type=CertType.ID_CARD, cert_no=certno))


async def outpatient_visit(adapter: NhsaAdapter, p: PersonInfo, insutype: str | None = None) -> VisitRef:
    ins = p.insurance(insutype)
    visit = await adapter.register_outpatient(OutpatientRegistration(
        psn_no=p.psn_no, insuplc_admdvs=ins.insuplc_admdvs, insutype=ins.insutype, cert_type=CertType.ID_CARD,
        cert_no=p.certno or "", ipt_otp_no=f"MZ{now().timestamp()}", begin_time=now(), doctor_code="D001",
        doctor_name="王医生", dept_code="K01", dept_name="内科", caty="A03"))
    return VisitRef(psn_no=p.psn_no, insuplc_admdvs=ins.insuplc_admdvs, mdtrt_id=visit.mdtrt_id,
                    insutype=ins.insutype)


async def inpatient_visit(adapter: NhsaAdapter, p: PersonInfo, med_type: str = "21") -> VisitRef:
    ins = p.insurance()
    visit = await adapter.admit(AdmissionRequest(
        psn_no=p.psn_no, insuplc_admdvs=ins.insuplc_admdvs, insutype=ins.insutype, cert_type=CertType.ID_CARD,
        cert_no=p.certno or "", med_type=med_type, begin_time=now(), ipt_no=f"ZY{now().timestamp()}",
        atddr_no="D002", chfpdr_name="李主任", adm_diag_dscr="肺炎", adm_dept_codg="K02", adm_dept_name="呼吸科",
        adm_bed="12", dise_codg="J18.9", dise_name="肺炎"))
    return VisitRef(psn_no=p.psn_no, insuplc_admdvs=ins.insuplc_admdvs, mdtrt_id=visit.mdtrt_id,
                    insutype=ins.insutype)


def discharge_request(visit: VisitRef) -> DischargeRequest:
    return DischargeRequest(visit=visit, end_time=now(), dise_codg="J18.9", dise_name="肺炎", dscg_dept_codg="K02",
                            dscg_dept_name="呼吸科")


def settle_request(visit: VisitRef, p: PersonInfo, total: int, med_type: str = "11", **kw: Any) -> SettleRequest:
    defaults: dict[str, Any] = {"chrg_bchno": "B1"}
    defaults.update(kw)
    return SettleRequest(visit=visit, insutype=visit.insutype or "310", med_type=med_type,
                         cert_type=CertType.ID_CARD, cert_no=p.certno or "", total=total, **defaults)
