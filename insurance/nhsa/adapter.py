"""``NhsaAdapter``: the national medical-insurance platform, one region profile at a time."""
from __future__ import annotations

from typing import Any, ClassVar

import aiohttp
from pydantic import ValidationError

from gateway.errors import InsuranceProtocolError, InsuranceRejected, InsuranceTimeout, InsuranceUnavailable
from gateway.insurance import (
    Ack,
    AdmissionRequest,
    DischargeRequest,
    EVoucher,
    EVoucherRequest,
    FeeLine,
    FeeUploadResult,
    InsuranceAdapter,
    OutpatientRegistration,
    PersonInfo,
    PersonQuery,
    SettlementRef,
    SettleRequest,
    Settlement,
    SignIn,
    Visit,
    VisitInfo,
    VisitRef,
)

from . import convert
from .client import Answer, NhsaClient
from .config import NhsaConfig
from .msg_person import EVoucherAnswer, EVoucherData, EVoucherQuery, EVoucherQueryData, PersonInfoOutput, PersonQueryInput
from .msg_settle import ReverseCallInput, ReverseSettlementInput, SettleOutput
from .msg_visit import (
    AdmissionInfo,
    AdmissionOutput,
    CancelRegisterInput,
    DischargeInfo,
    FeeUploadOutput,
    MdtrtInfo,
    RegisterInput,
    RegisterOutput,
    RevokeInpatientFee,
    RevokeOutpatientFeesInput,
    VisitRefInput,
)
from .recon import ReconciliationFlows
from .wire import dumps, loads


class NhsaAdapter(ReconciliationFlows, InsuranceAdapter):
    """国家医保信息平台 (two-digit transaction codes); see ``docs/insurance/nhsa.md``."""

    id: ClassVar[str] = "nhsa"
    name_zh: ClassVar[str] = "国家医保信息平台"
    name_en: ClassVar[str] = "National medical-insurance platform (NHSA)"
    config_model: ClassVar[type[NhsaConfig]] = NhsaConfig
    config: NhsaConfig

    def __init__(self, config: NhsaConfig | dict[str, Any], session: aiohttp.ClientSession) -> None:
        super().__init__(config, session)
        self.client = NhsaClient(self.config, session)
        self.profile = self.config.profile

    async def _call(self, infno: str, body: Any, visit: VisitRef | None = None, *, psn_no: str | None = None,
                    insuplc_admdvs: str = "", insutype: str | None = None) -> Answer:
        if visit is not None:
            psn_no, insuplc_admdvs = visit.psn_no, visit.insuplc_admdvs
            insutype = insutype or visit.insutype
        return await self.client.call(infno, body, psn_no=psn_no, insuplc_admdvs=insuplc_admdvs, insutype=insutype)

    def allocate_msgids(self, n: int) -> list[str]:
        return [self.client.msgids.next() for _ in range(n)]

    @staticmethod
    def _ack(answer: Answer) -> Ack:
        out = answer.output if isinstance(answer.output, dict) else {}
        return Ack(infno=answer.infno, msgid=answer.msgid, warn_msg=answer.warn_msg, output=out)

    # --- session and identity ------------------------------------------------------------
    async def sign_in(self) -> SignIn:
        return await self.client.sign_in()

    async def sign_out(self) -> Ack:
        sign_no = self.client.sign_no or ""
        answer = await self.client.call("9002", {"signOut": {"sign_no": sign_no, "opter_no": self.config.opter}})
        self.client.forget_sign_in()
        return self._ack(answer)

    async def person_info(self, query: PersonQuery) -> PersonInfo:
        data = PersonQueryInput(mdtrt_cert_type=query.cert_type.value, mdtrt_cert_no=query.cert_no,
                                card_sn=query.card_sn or "", begntime=query.begin_time,
                                psn_cert_type=query.psn_cert_type if query.certno else "",
                                certno=query.certno or "", psn_name=query.psn_name or "").wire()
        answer = await self._call("1101", {"data": data})
        out = self.client.parse(PersonInfoOutput, answer.output, answer)
        return convert.person_from_wire(out, self.profile, answer.msgid, answer.warn_msg)

    async def decode_evoucher(self, req: EVoucherRequest) -> EVoucher:
        org = self.config.evoucher_org_id or self.config.fixmedins_code
        body = EVoucherQuery(orgId=org, data=EVoucherQueryData(
            orgId=org, businessType=req.business_type, operatorId=req.operator_id, operatorName=req.operator_name,
            officeId=req.office_id, officeName=req.office_name, deviceType=req.device_type,
            qrCode=req.qr_code)).wire()
        url = (self.config.evoucher_url or self.config.base_url) + self.profile.evoucher_path
        ctx = {"infno": "ec.query", "channel": "nhsa"}
        try:
            async with self.session.post(url, data=dumps(body).encode(), timeout=self.client.timeout,
                                         headers={"Content-Type": "application/json"}) as resp:
                raw, status = await resp.read(), resp.status
        except TimeoutError as exc:
            raise InsuranceTimeout("e-voucher decode timed out", **ctx) from exc
        except aiohttp.ClientError as exc:
            raise InsuranceUnavailable(f"e-voucher decode: {exc}", **ctx) from exc
        if status >= 300:
            raise InsuranceUnavailable(f"e-voucher decode: HTTP {status}", **ctx)
        try:
            answer = EVoucherAnswer.model_validate(loads(raw))
            if answer.code != "0":
                raise InsuranceRejected(answer.message or f"e-voucher code {answer.code}", **ctx)
            data = EVoucherData.model_validate(loads(answer.data or ""))
        except (ValueError, ValidationError) as exc:
            raise InsuranceProtocolError(f"e-voucher answer unparseable: {exc}", **ctx) from exc
        return EVoucher(ec_token=data.ecToken, id_no=data.idNo, id_type=data.idType, name=data.userName,
                        insu_org=data.insuOrg, ec_index_no=data.ecIndexNo, gender=data.gender,
                        birthday=data.birthday, extra=dict(data.model_extra or {}))

    # --- outpatient ----------------------------------------------------------------------
    async def register_outpatient(self, req: OutpatientRegistration) -> Visit:
        data = RegisterInput(psn_no=req.psn_no, insutype=req.insutype, begntime=req.begin_time,
                             mdtrt_cert_type=req.cert_type.value, mdtrt_cert_no=req.cert_no,
                             ipt_otp_no=req.ipt_otp_no, atddr_no=req.doctor_code, dr_name=req.doctor_name,
                             dept_code=req.dept_code, dept_name=req.dept_name, caty=req.caty).wire()
        answer = await self._call("2201", {"data": {**data, **req.extra}}, psn_no=req.psn_no,
                                  insuplc_admdvs=req.insuplc_admdvs, insutype=req.insutype)
        out = self.client.parse(RegisterOutput, (answer.output or {}).get("data"), answer)
        return Visit(mdtrt_id=out.mdtrt_id, psn_no=out.psn_no, ipt_otp_no=out.ipt_otp_no or req.ipt_otp_no,
                     msgid=answer.msgid, warn_msg=answer.warn_msg)

    async def cancel_outpatient(self, visit: VisitRef, ipt_otp_no: str) -> Ack:
        data = CancelRegisterInput(psn_no=visit.psn_no, mdtrt_id=visit.mdtrt_id, ipt_otp_no=ipt_otp_no).wire()
        return self._ack(await self._call("2202", {"data": data}, visit))

    async def upload_visit_info(self, info: VisitInfo) -> Ack:
        mdtrt = MdtrtInfo(mdtrt_id=info.visit.mdtrt_id, psn_no=info.visit.psn_no, med_type=info.med_type,
                          begntime=info.begin_time, main_cond_dscr=info.main_cond_dscr, dise_codg=info.dise_codg,
                          dise_name=info.dise_name).wire()
        body = {"mdtrtinfo": {**mdtrt, **info.extra}, "diseinfo": convert.diseinfo(info.diagnoses)}
        return self._ack(await self._call("2203", body, info.visit))

    async def _upload_fees(self, infno: str, visit: VisitRef, lines: list[FeeLine]) -> FeeUploadResult:
        details = [convert.fee_detail(line, visit.psn_no, visit.mdtrt_id) for line in lines]
        answer = await self._call(infno, {"feedetail": details}, visit)
        out = self.client.parse(FeeUploadOutput, answer.output, answer)
        return FeeUploadResult(lines=[convert.fee_result(r) for r in out.result], msgid=answer.msgid,
                               warn_msg=answer.warn_msg)

    async def upload_outpatient_fees(self, visit: VisitRef, lines: list[FeeLine]) -> FeeUploadResult:
        return await self._upload_fees("2204", visit, lines)

    async def revoke_outpatient_fees(self, visit: VisitRef, chrg_bchno: str = "0000") -> Ack:
        data = RevokeOutpatientFeesInput(mdtrt_id=visit.mdtrt_id, chrg_bchno=chrg_bchno, psn_no=visit.psn_no).wire()
        return self._ack(await self._call("2205", {"data": data}, visit))

    async def _settle(self, infno: str, req: SettleRequest, *, settle: bool, inpatient: bool) -> Settlement:
        data = convert.settle_input(req, self.profile, settle=settle, inpatient=inpatient)
        answer = await self._call(infno, {"data": data}, req.visit, insutype=req.insutype)
        out = self.client.parse(SettleOutput, answer.output, answer)
        return convert.settlement_from_wire(out, self.profile, infno=infno, msgid=answer.msgid,
                                            warn=answer.warn_msg, pre=not settle)

    async def _reverse_settlement(self, infno: str, ref: SettlementRef) -> Settlement:
        data = ReverseSettlementInput(setl_id=ref.setl_id, mdtrt_id=ref.visit.mdtrt_id,
                                      psn_no=ref.visit.psn_no).wire()
        answer = await self._call(infno, {"data": data}, ref.visit)
        out = self.client.parse(SettleOutput, answer.output, answer)
        return convert.settlement_from_wire(out, self.profile, infno=infno, msgid=answer.msgid,
                                            warn=answer.warn_msg, pre=False)

    async def pre_settle_outpatient(self, req: SettleRequest) -> Settlement:
        return await self._settle("2206", req, settle=False, inpatient=False)

    async def settle_outpatient(self, req: SettleRequest) -> Settlement:
        return await self._settle("2207", req, settle=True, inpatient=False)

    async def reverse_outpatient_settlement(self, ref: SettlementRef) -> Settlement:
        return await self._reverse_settlement("2208", ref)

    # --- inpatient -------------------------------------------------------------------------
    async def admit(self, req: AdmissionRequest) -> Visit:
        info = AdmissionInfo(
            psn_no=req.psn_no, insutype=req.insutype, begntime=req.begin_time, mdtrt_cert_type=req.cert_type.value,
            mdtrt_cert_no=req.cert_no, med_type=req.med_type, ipt_no=req.ipt_no, medrcdno=req.medrcdno,
            atddr_no=req.atddr_no, chfpdr_name=req.chfpdr_name, adm_diag_dscr=req.adm_diag_dscr,
            adm_dept_codg=req.adm_dept_codg, adm_dept_name=req.adm_dept_name, adm_bed=req.adm_bed,
            dise_codg=req.dise_codg, dise_name=req.dise_name).wire()
        body = {"mdtrtinfo": {**info, **req.extra}, "diseinfo": convert.diseinfo(req.diagnoses)}
        answer = await self._call("2401", body, psn_no=req.psn_no, insuplc_admdvs=req.insuplc_admdvs,
                                  insutype=req.insutype)
        out = self.client.parse(AdmissionOutput, (answer.output or {}).get("result"), answer)
        return Visit(mdtrt_id=out.mdtrt_id, psn_no=req.psn_no, ipt_otp_no=req.ipt_no, msgid=answer.msgid,
                     warn_msg=answer.warn_msg)

    async def cancel_admission(self, visit: VisitRef) -> Ack:
        data = VisitRefInput(mdtrt_id=visit.mdtrt_id, psn_no=visit.psn_no).wire()
        return self._ack(await self._call("2404", {"data": data}, visit))

    async def discharge(self, req: DischargeRequest) -> Ack:
        info = DischargeInfo(
            mdtrt_id=req.visit.mdtrt_id, psn_no=req.visit.psn_no, insutype=req.visit.insutype or "",
            endtime=req.end_time, dise_codg=req.dise_codg, dise_name=req.dise_name,
            dscg_dept_codg=req.dscg_dept_codg, dscg_dept_name=req.dscg_dept_name, dscg_way=req.dscg_way).wire()
        body = {"dscginfo": {**info, **req.extra}, "diseinfo": convert.diseinfo(req.diagnoses)}
        return self._ack(await self._call("2402", body, req.visit))

    async def cancel_discharge(self, visit: VisitRef) -> Ack:
        data = VisitRefInput(mdtrt_id=visit.mdtrt_id, psn_no=visit.psn_no).wire()
        return self._ack(await self._call("2405", {"data": data}, visit))

    async def upload_inpatient_fees(self, visit: VisitRef, lines: list[FeeLine]) -> FeeUploadResult:
        return await self._upload_fees("2301", visit, lines)

    async def revoke_inpatient_fees(self, visit: VisitRef, feedetl_sn: str = "0000") -> Ack:
        data = [RevokeInpatientFee(feedetl_sn=feedetl_sn, mdtrt_id=visit.mdtrt_id, psn_no=visit.psn_no).wire()]
        return self._ack(await self._call("2302", {"data": data}, visit))

    async def pre_settle_inpatient(self, req: SettleRequest) -> Settlement:
        return await self._settle("2303", req, settle=False, inpatient=True)

    async def settle_inpatient(self, req: SettleRequest) -> Settlement:
        return await self._settle("2304", req, settle=True, inpatient=True)

    async def reverse_inpatient_settlement(self, ref: SettlementRef) -> Settlement:
        return await self._reverse_settlement("2305", ref)

    # --- recovery ----------------------------------------------------------------------------
    async def reverse_call(self, psn_no: str, insuplc_admdvs: str, omsgid: str, oinfno: str) -> Ack:
        data = ReverseCallInput(psn_no=psn_no, omsgid=omsgid, oinfno=oinfno).wire()
        return self._ack(await self._call("2601", {"data": data}, psn_no=psn_no, insuplc_admdvs=insuplc_admdvs))
