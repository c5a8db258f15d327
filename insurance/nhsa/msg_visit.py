"""Wire messages: registration (2201/2202), visit info (2203), fees (2204/2205,
2301/2302), admission and discharge (2401/2402/2404/2405)."""
from __future__ import annotations

from pydantic import Field

from .wire import Code, Dec, OptCode, OptYuan, WireModel, WireTime, Yuan


class RegisterInput(WireModel):
    """2201 ``input.data``."""

    psn_no: str
    insutype: Code
    begntime: WireTime
    mdtrt_cert_type: str
    mdtrt_cert_no: str
    ipt_otp_no: str
    atddr_no: str
    dr_name: str
    dept_code: str
    dept_name: str
    caty: str


class RegisterOutput(WireModel):
    """2201 ``output.data``."""

    mdtrt_id: Code
    psn_no: str
    ipt_otp_no: str | None = None


class CancelRegisterInput(WireModel):
    """2202 ``input.data``."""

    psn_no: str
    mdtrt_id: str
    ipt_otp_no: str


class DiseInfo(WireModel):
    diag_type: str = "1"
    diag_srt_no: int = 1
    diag_code: str
    diag_name: str
    diag_dept: str | None = None
    dise_dor_no: str | None = None
    dise_dor_name: str | None = None
    diag_time: WireTime = None
    vali_flag: str = "1"
    maindiag_flag: str | None = None


class MdtrtInfo(WireModel):
    """2203 ``input.mdtrtinfo``."""

    mdtrt_id: str
    psn_no: str
    med_type: Code
    begntime: WireTime
    main_cond_dscr: str | None = None
    dise_codg: str | None = None
    dise_name: str | None = None


class VisitInfoInput(WireModel):
    mdtrtinfo: MdtrtInfo
    diseinfo: list[DiseInfo] = Field(default_factory=list)


class FeeDetail(WireModel):
    """One ``feedetail`` row of 2204 (outpatient) or 2301 (inpatient)."""

    feedetl_sn: str
    init_feedetl_sn: str | None = None
    mdtrt_id: str
    drord_no: str | None = None
    psn_no: str
    med_type: OptCode = None
    chrg_bchno: str | None = None
    rxno: str | None = None
    fee_ocur_time: WireTime
    med_list_codg: str
    medins_list_codg: str
    det_item_fee_sumamt: Yuan
    cnt: Dec
    pric: Dec
    bilg_dept_codg: str | None = None
    bilg_dr_codg: str | None = None


class FeeUploadInput(WireModel):
    feedetail: list[FeeDetail]


class FeeResult(WireModel):
    """One row of 2204/2301 ``output.result``."""

    feedetl_sn: str
    det_item_fee_sumamt: Yuan
    cnt: Dec = None
    pric: Dec = None
    pric_uplmt_amt: Dec = None
    selfpay_prop: Dec = None
    fulamt_ownpay_amt: OptYuan = None
    overlmt_amt: OptYuan = None
    preselfpay_amt: OptYuan = None
    inscp_scp_amt: OptYuan = None
    chrgitm_lv: OptCode = None
    med_chrgitm_type: OptCode = None


class FeeUploadOutput(WireModel):
    result: list[FeeResult] = Field(default_factory=list)


class RevokeOutpatientFeesInput(WireModel):
    """2205 ``input.data``."""

    mdtrt_id: str
    chrg_bchno: str
    psn_no: str


class RevokeInpatientFee(WireModel):
    """One row of 2302 ``input.data``."""

    feedetl_sn: str
    mdtrt_id: str
    psn_no: str


class RevokeInpatientFeesInput(WireModel):
    data: list[RevokeInpatientFee]


class AdmissionInfo(WireModel):
    """2401 ``input.mdtrtinfo``."""

    psn_no: str
    insutype: Code
    begntime: WireTime
    mdtrt_cert_type: str
    mdtrt_cert_no: str
    med_type: Code
    ipt_no: str
    medrcdno: str | None = None
    atddr_no: str
    chfpdr_name: str
    adm_diag_dscr: str
    adm_dept_codg: str
    adm_dept_name: str
    adm_bed: str | None = None
    dise_codg: str
    dise_name: str


class AdmissionInput(WireModel):
    mdtrtinfo: AdmissionInfo
    diseinfo: list[DiseInfo] = Field(default_factory=list)


class AdmissionOutput(WireModel):
    """2401 ``output.result``."""

    mdtrt_id: Code


class DischargeInfo(WireModel):
    """2402 ``input.dscginfo``."""

    mdtrt_id: str
    psn_no: str
    insutype: Code
    endtime: WireTime
    dise_codg: str
    dise_name: str
    dscg_dept_codg: str
    dscg_dept_name: str
    dscg_way: str


class DischargeInput(WireModel):
    dscginfo: DischargeInfo
    diseinfo: list[DiseInfo] = Field(default_factory=list)


class VisitRefInput(WireModel):
    """2404/2405 ``input.data``."""

    mdtrt_id: str
    psn_no: str


