"""Wire messages: pre-settlement and settlement (2206/2207, 2303/2304), their
reversals (2208/2305) and the reversal of a failed call (2601)."""
from __future__ import annotations

from pydantic import AliasChoices, Field

from .wire import Code, Dec, OptCode, OptYuan, WireModel, WireTime, Yuan


class SettleInput(WireModel):
    """2206/2207 and 2303/2304 ``input.data`` (settlement adds the scope amounts)."""

    psn_no: str
    mdtrt_cert_type: str
    mdtrt_cert_no: str
    card_sn: str | None = None
    med_type: OptCode = None
    medfee_sumamt: Yuan
    psn_setlway: str = "01"
    mdtrt_id: str
    chrg_bchno: str | None = None
    acct_used_flag: str = "0"
    insutype: Code
    invono: str | None = None
    mid_setl_flag: str | None = None
    fulamt_ownpay_amt: OptYuan = None
    overlmt_selfpay: OptYuan = None
    preselfpay_amt: OptYuan = None
    inscp_scp_amt: OptYuan = None
    dscg_time: WireTime = None


class SetlInfo(WireModel):
    """``output.setlinfo``. The spec's field list spells ``pdn_cash_pay`` where it
    means ``psn_cash_pay``; both are read."""

    setl_id: OptCode = None
    mdtrt_id: Code
    psn_no: str
    psn_name: str | None = None
    psn_cert_type: OptCode = None
    certno: str | None = None
    gend: OptCode = None
    naty: OptCode = None
    brdy: str | None = None
    age: Dec = None
    insutype: Code
    psn_type: OptCode = None
    cvlserv_flag: OptCode = None
    setl_time: WireTime = None
    mdtrt_cert_type: OptCode = None
    med_type: OptCode = None
    medfee_sumamt: Yuan
    fulamt_ownpay_amt: OptYuan = None
    overlmt_selfpay: OptYuan = None
    preselfpay_amt: OptYuan = None
    inscp_scp_amt: OptYuan = None
    act_pay_dedc: OptYuan = None
    hifp_pay: OptYuan = None
    pool_prop_selfpay: Dec = None
    cvlserv_pay: OptYuan = None
    hifes_pay: OptYuan = None
    hifmi_pay: OptYuan = None
    hifob_pay: OptYuan = None
    maf_pay: OptYuan = None
    oth_pay: OptYuan = None
    fund_pay_sumamt: Yuan
    psn_part_amt: Yuan
    acct_pay: OptYuan = None
    psn_cash_pay: Yuan = Field(validation_alias=AliasChoices("psn_cash_pay", "pdn_cash_pay"))
    hosp_part_amt: OptYuan = None
    balc: OptYuan = None
    acct_mulaid_pay: OptYuan = None
    medins_setl_id: str | None = None
    clr_optins: OptCode = None
    clr_way: OptCode = None
    clr_type: OptCode = None


class SetlDetail(WireModel):
    """One ``output.setldetail`` row: a fund's share."""

    fund_pay_type: Code
    inscp_scp_amt: OptYuan = None
    crt_payb_lmt_amt: OptYuan = None
    fund_payamt: Yuan
    fund_pay_type_name: str | None = None
    setl_proc_info: str | None = None


class SettleOutput(WireModel):
    setlinfo: SetlInfo
    setldetail: list[SetlDetail] = Field(default_factory=list)


class ReverseSettlementInput(WireModel):
    """2208/2305 ``input.data``."""

    setl_id: str
    mdtrt_id: str
    psn_no: str


class ReverseCallInput(WireModel):
    """2601 ``input.data``: undo the call ``omsgid`` of transaction ``oinfno``."""

    psn_no: str
    omsgid: str
    oinfno: str
