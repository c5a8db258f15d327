"""Mapping between the core's insurance types (fen, UTC) and the wire messages."""
from __future__ import annotations

from typing import Any

from gateway.errors import InsuranceProtocolError
from gateway.insurance import (
    FUND_FIELDS,
    Diagnosis,
    FeeLine,
    FeeLineResult,
    FundPayment,
    InsuranceRecord,
    PersonInfo,
    SettleRequest,
    Settlement,
    SettlementSplit,
    SplitInvariantError,
)
from gateway.money import MoneyFormatError, fen_to_yuan

from .msg_person import PersonInfoOutput
from .msg_settle import SettleInput, SettleOutput
from .msg_visit import DiseInfo, FeeDetail, FeeResult
from .profiles import RegionProfile
from .wire import WireFormatError, _opt_fen


def yuan(fen: int | None) -> str | None:
    return None if fen is None else fen_to_yuan(fen)


def extra_fen(extras: dict[str, Any] | None, field: str | None) -> int | None:
    """A money field a region adds (wallet, extra funds), read from a model's extras."""
    if not field or not extras or field not in extras:
        return None
    try:
        return _opt_fen(extras[field])
    except (WireFormatError, MoneyFormatError) as exc:
        raise InsuranceProtocolError(f"bad amount in {field}: {extras[field]!r}") from exc


def person_from_wire(out: PersonInfoOutput, profile: RegionProfile, msgid: str, warn: str | None) -> PersonInfo:
    base = out.baseinfo
    records = [
        InsuranceRecord(
            insutype=row.insutype, psn_type=row.psn_type, balance=row.balc or 0,
            wallet_balance=extra_fen(row.model_extra, profile.wallet_balance_field),
            insured_status=row.psn_insu_stas, insured_since=row.psn_insu_date, paused_since=row.paus_insu_date,
            civil_servant=row.cvlserv_flag == "1", insuplc_admdvs=row.insuplc_admdvs, employer=row.emp_name)
        for row in out.insuinfo
    ]
    return PersonInfo(psn_no=base.psn_no, psn_cert_type=base.psn_cert_type, certno=base.certno,
                      name=base.psn_name, gender=base.gend, nation=base.naty, birthday=base.brdy, age=base.age,
                      insurances=records, identities=list(out.idetinfo), msgid=msgid, warn_msg=warn)


def diseinfo(diagnoses: list[Diagnosis]) -> list[dict[str, Any]]:
    return [DiseInfo(**d.model_dump()).wire() for d in diagnoses]


def fee_detail(line: FeeLine, psn_no: str, mdtrt_id: str) -> dict[str, Any]:
    detail = FeeDetail(
        feedetl_sn=line.feedetl_sn, init_feedetl_sn=line.init_feedetl_sn, mdtrt_id=mdtrt_id,
        drord_no=line.drord_no, psn_no=psn_no, med_type=line.med_type, chrg_bchno=line.chrg_bchno,
        rxno=line.rxno, fee_ocur_time=line.fee_time, med_list_codg=line.med_list_codg,
        medins_list_codg=line.medins_list_codg, det_item_fee_sumamt=fen_to_yuan(line.amount),
        cnt=line.quantity, pric=line.unit_price, bilg_dept_codg=line.dept_code, bilg_dr_codg=line.doctor_code)
    return {**detail.wire(), **line.extra}


def fee_result(row: FeeResult) -> FeeLineResult:
    return FeeLineResult(
        feedetl_sn=row.feedetl_sn, amount=row.det_item_fee_sumamt, quantity=row.cnt or 0,
        unit_price=row.pric or 0, price_limit=row.pric_uplmt_amt, selfpay_prop=row.selfpay_prop or 0,
        fulamt_ownpay=row.fulamt_ownpay_amt or 0, overlmt=row.overlmt_amt or 0,
        preselfpay=row.preselfpay_amt or 0, inscp_scp=row.inscp_scp_amt or 0, chrgitm_lv=row.chrgitm_lv,
        med_chrgitm_type=row.med_chrgitm_type)


def settle_input(req: SettleRequest, profile: RegionProfile, *, settle: bool, inpatient: bool) -> dict[str, Any]:
    data = SettleInput(
        psn_no=req.visit.psn_no, mdtrt_cert_type=req.cert_type.value, mdtrt_cert_no=req.cert_no,
        card_sn=req.card_sn, med_type=req.med_type, medfee_sumamt=fen_to_yuan(req.total),
        psn_setlway=req.psn_setlway, mdtrt_id=req.visit.mdtrt_id,
        chrg_bchno=None if inpatient else (req.chrg_bchno or "0000"),
        acct_used_flag="1" if req.use_account else "0", insutype=req.insutype,
        invono=req.invono if settle else None,
        mid_setl_flag=("1" if req.mid_settlement else "0") if inpatient else None,
        fulamt_ownpay_amt=yuan(req.fulamt_ownpay) if settle or inpatient else None,
        overlmt_selfpay=yuan(req.overlmt_selfpay) if settle or inpatient else None,
        preselfpay_amt=yuan(req.preselfpay) if settle or inpatient else None,
        inscp_scp_amt=yuan(req.inscp_scp) if settle or inpatient else None,
        dscg_time=req.discharge_time if inpatient else None,
    ).wire()
    if req.password is not None and profile.password_field:
        data[profile.password_field] = req.password.get_secret_value()
    return {**data, **req.extra}


def settlement_from_wire(out: SettleOutput, profile: RegionProfile, *, infno: str, msgid: str,
                         warn: str | None, pre: bool) -> Settlement:
    info = out.setlinfo
    extras = info.model_extra or {}
    funds = {name: getattr(info, name) for name in FUND_FIELDS if getattr(info, name) is not None}
    for name in profile.extra_fund_fields:
        value = extra_fen(extras, name)
        if value is not None:
            funds[name] = value
    split = SettlementSplit(
        total=info.medfee_sumamt, fulamt_ownpay=info.fulamt_ownpay_amt or 0,
        overlmt_selfpay=info.overlmt_selfpay or 0, preselfpay=info.preselfpay_amt or 0,
        inscp_scp=info.inscp_scp_amt or 0, deductible=info.act_pay_dedc or 0, fund_total=info.fund_pay_sumamt,
        funds=funds, psn_part=info.psn_part_amt, acct_pay=info.acct_pay or 0,
        acct_mulaid_pay=info.acct_mulaid_pay or 0, wallet_pay=extra_fen(extras, profile.wallet_field),
        cash_pay=info.psn_cash_pay, hosp_part=info.hosp_part_amt or 0)
    try:
        split.check()
    except SplitInvariantError as exc:
        # a settlement we cannot account for must not stand: the caller reverses it by msgid
        raise InsuranceProtocolError(f"{infno}: settlement split does not add up: {exc}", infno=infno,
                                     msgid=msgid, channel="nhsa", setl_id=info.setl_id) from exc
    details = [FundPayment(fund_pay_type=d.fund_pay_type, name=d.fund_pay_type_name, amount=d.fund_payamt,
                           inscp_scp_amt=d.inscp_scp_amt, crt_payb_lmt_amt=d.crt_payb_lmt_amt,
                           setl_proc_info=d.setl_proc_info) for d in out.setldetail]
    return Settlement(
        setl_id=None if pre else info.setl_id, mdtrt_id=info.mdtrt_id, psn_no=info.psn_no,
        psn_name=info.psn_name, certno=info.certno, insutype=info.insutype, psn_type=info.psn_type,
        med_type=info.med_type, clr_type=info.clr_type, clr_way=info.clr_way, setl_optins=info.clr_optins,
        setl_time=info.setl_time, split=split, balance_after=info.balc, fund_payments=details, infno=infno,
        msgid=msgid, medins_setl_id=info.medins_setl_id, pre_settlement=pre, warn_msg=warn)
