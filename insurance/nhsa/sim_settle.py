"""Simulated centre: admission and discharge, settlement, reversal, and 2601."""
from __future__ import annotations


from typing import TYPE_CHECKING, Any

from gateway.money import fen_to_yuan

from .sim_model import SimError, SimSettlement, SimVisit
from .sim_policy import LineSplit, Wallets, category, compute_split
from .wire import CST, format_time, parse_time

if TYPE_CHECKING:
    from .sim_core import InsuranceCentre

REVERSIBLE = ("2201", "2204", "2207", "2301", "2304", "2401", "2402")


class SettleMixin:
    settlements: dict[str, SimSettlement]

    def _init_settle(self: InsuranceCentre) -> None:
        self.settlements = {}

    # --- inpatient visit ------------------------------------------------------------------
    def tx_2401(self: InsuranceCentre, env: dict[str, Any], data: dict[str, Any]) -> Any:
        info = data.get("mdtrtinfo") or {}
        person = self.person(str(info.get("psn_no")), env)
        person.insurance(str(info.get("insutype")))
        if any(v.psn_no == person.psn_no and v.kind == "inpatient" and v.status == "admitted"
               for v in self.visits.values()):
            raise SimError("该人员存在未出院的住院登记")
        visit = SimVisit(self.next_id("Z"), person.psn_no, str(info.get("insutype")), "inpatient", "admitted",
                         str(info.get("med_type") or "21"), parse_time(info.get("begntime")) or self.now(),
                         ipt_otp_no=str(info.get("ipt_no")))
        visit.diagnoses = list(data.get("diseinfo") or [])
        self.visits[visit.mdtrt_id] = visit
        self.record(env, person.psn_no, lambda: self._cancel_admission(visit))
        return {"result": {"mdtrt_id": visit.mdtrt_id}}

    def _cancel_admission(self: InsuranceCentre, visit: SimVisit) -> None:
        if visit.status != "admitted":
            raise SimError("已办理出院或已撤销，不能撤销入院")
        if any(not f.revoked for f in visit.fees.values()):
            raise SimError("存在未撤销的费用明细，不能撤销入院")
        visit.status = "cancelled"

    def tx_2404(self: InsuranceCentre, env: dict[str, Any], data: dict[str, Any]) -> Any:
        d = data.get("data") or {}
        self._cancel_admission(self.visit(str(d.get("mdtrt_id")), str(d.get("psn_no")), "inpatient"))
        return {}

    def tx_2402(self: InsuranceCentre, env: dict[str, Any], data: dict[str, Any]) -> Any:
        info = data.get("dscginfo") or {}
        visit = self.visit(str(info.get("mdtrt_id")), str(info.get("psn_no")), "inpatient")
        if visit.status != "admitted":
            raise SimError("该就诊不是在院状态，不能办理出院")
        visit.status, visit.end = "discharged", parse_time(info.get("endtime")) or self.now()
        self.record(env, visit.psn_no, lambda: self._cancel_discharge(visit))
        return {}

    def _cancel_discharge(self: InsuranceCentre, visit: SimVisit) -> None:
        if visit.status != "discharged":
            raise SimError("该就诊未办理出院")
        if visit.settled():
            raise SimError("该就诊已结算，不能撤销出院")
        visit.status, visit.end = "admitted", None

    def tx_2405(self: InsuranceCentre, env: dict[str, Any], data: dict[str, Any]) -> Any:
        d = data.get("data") or {}
        self._cancel_discharge(self.visit(str(d.get("mdtrt_id")), str(d.get("psn_no")), "inpatient"))
        return {}

    # --- settlement -------------------------------------------------------------------------
    def _usage(self: InsuranceCentre, psn_no: str, cat: str, year: int) -> tuple[int, int]:
        """Deductible and pooled fund used this year in a category (reversals net out)."""
        dedc = fund = 0
        for s in self.settlements.values():
            if s.psn_no == psn_no and s.category == cat and s.time.astimezone(CST).year == year:
                dedc += s.buckets["deductible"]
                fund += s.funds.get("hifp_pay", 0)
        return dedc, fund

    def _compute(self: InsuranceCentre, env: dict[str, Any], d: dict[str, Any], kind: str, commit: bool) -> Any:
        person = self.person(str(d.get("psn_no")), env)
        visit = self.visit(str(d.get("mdtrt_id")), person.psn_no, kind)
        self._require_active(visit)
        insutype = str(d.get("insutype") or visit.insutype)
        ins = person.insurance(insutype)
        if kind == "inpatient" and visit.status != "discharged" and str(d.get("mid_setl_flag")) != "1":
            raise SimError("未办理出院，不能进行出院结算")
        med_type = str(d.get("med_type") or visit.med_type or ("21" if kind == "inpatient" else "11"))
        fees = visit.open_fees(None if kind == "inpatient" else str(d.get("chrg_bchno") or "0000"))
        if not fees:
            raise SimError("没有可结算的费用明细")
        total = sum(f.amount for f in fees)
        if self._fen(d.get("medfee_sumamt")) != total:
            raise SimError(f"医疗费总额[{d.get('medfee_sumamt')}]与费用明细合计[{fen_to_yuan(total)}]不符")
        if total < 0:
            raise SimError("医疗费总额不能为负")
        cert_type = str(d.get("mdtrt_cert_type"))
        if commit and cert_type in ("02", "03") and person.password is not None \
                and person.insuplc_admdvs[:2] == self.admvs[:2]:
            given = d.get(self.profile.password_field or "") if self.profile.password_field else None
            if given != person.password:
                raise SimError("个人密码校验失败，请重新输入")
        use = str(d.get("acct_used_flag", "0")) == "1"
        wallet = person.wallet_balance if self.profile.wallet_field else None
        now = self.now()
        cat = category(med_type)
        dedc_used, fund_used = self._usage(person.psn_no, cat, now.astimezone(CST).year)
        lines = [LineSplit(f.fulamt_ownpay, f.overlmt, f.preselfpay, f.inscp_scp) for f in fees]
        split = compute_split(lines=lines, insutype=insutype, med_type=med_type, civil_servant=ins.civil_servant,
                              medical_aid=person.medical_aid, deductible_used=dedc_used, fund_used=fund_used,
                              wallets=Wallets(person.acct_balance, person.mulaid_balance, wallet, use))
        b = split.buckets
        if cat == "pharmacy" and use and b["cash_pay"] > 0:
            raise SimError("个人账户余额不足，不能完成购药结算")
        if use and b["cash_pay"] > 0 and 0 < b["acct_pay"] == person.acct_balance:
            self.last_warn = "个人账户余额不足，剩余部分由个人现金支付"
        setl = SimSettlement(
            setl_id=self.next_id("S") if commit else "", mdtrt_id=visit.mdtrt_id, psn_no=person.psn_no,
            insutype=insutype, med_type=med_type, clr_type="21" if kind == "inpatient" else "11",
            clr_way="01", setl_optins=person.insuplc_admdvs, infno=env["infno"], msgid=env["msgid"], time=now,
            buckets=b, funds=split.funds, details=split.details,
            balance_after=person.acct_balance - b["acct_pay"], pool_prop_selfpay=split.pool_prop_selfpay,
            category=cat, fee_sns=[f.feedetl_sn for f in fees])
        if commit:
            self.settlements[setl.setl_id] = setl
            self._move_balances(person.psn_no, b, sign=-1)
            for fee in fees:
                fee.setl_id = setl.setl_id
            self.record(env, person.psn_no, lambda: self._reverse(setl, None))
        return self._setl_output(setl)

    def _move_balances(self: InsuranceCentre, psn_no: str, b: dict[str, int], sign: int) -> None:
        person = self.persons[psn_no]
        person.acct_balance += sign * b["acct_pay"]
        person.mulaid_balance += sign * b["acct_mulaid_pay"]
        person.wallet_balance += sign * b["wallet_pay"]

    def _reverse(self: InsuranceCentre, setl: SimSettlement, env: dict[str, Any] | None) -> SimSettlement:
        if setl.reversed_by is not None:
            raise SimError(f"结算ID[{setl.setl_id}]已撤销，不能重复撤销")
        negative = {k: -v for k, v in setl.buckets.items()}
        rev = SimSettlement(
            setl_id=self.next_id("R"), mdtrt_id=setl.mdtrt_id, psn_no=setl.psn_no, insutype=setl.insutype,
            med_type=setl.med_type, clr_type=setl.clr_type, clr_way=setl.clr_way, setl_optins=setl.setl_optins,
            infno=env["infno"] if env else "2601", msgid=env["msgid"] if env else setl.msgid, time=self.now(),
            buckets=negative, funds={k: -v for k, v in setl.funds.items()},
            details=[{**d, "fund_payamt": -int(d["fund_payamt"])} for d in setl.details],
            balance_after=self.persons[setl.psn_no].acct_balance + setl.buckets["acct_pay"],
            pool_prop_selfpay=setl.pool_prop_selfpay, category=setl.category, reversal_of=setl.setl_id)
        self.settlements[rev.setl_id] = rev
        setl.reversed_by = rev.setl_id
        self._move_balances(setl.psn_no, setl.buckets, sign=+1)
        visit = self.visits[setl.mdtrt_id]
        for sn in setl.fee_sns:
            visit.fees[sn].setl_id = None
        return rev

    def _reverse_tx(self: InsuranceCentre, env: dict[str, Any], data: dict[str, Any], kind: str) -> Any:
        d = data.get("data") or {}
        setl = self.settlements.get(str(d.get("setl_id")))
        if setl is None or setl.refund or setl.mdtrt_id != str(d.get("mdtrt_id")) or setl.psn_no != str(d.get("psn_no")):
            raise SimError(f"结算ID[{d.get('setl_id')}]不存在")
        if self.visits[setl.mdtrt_id].kind != kind:
            raise SimError(f"结算ID[{setl.setl_id}]不是{'门诊' if kind == 'outpatient' else '住院'}结算")
        rev = self._reverse(setl, env)
        return self._setl_output(rev, spec_spelling=True)

    def _setl_output(self: InsuranceCentre, s: SimSettlement, spec_spelling: bool = False) -> dict[str, Any]:
        person = self.persons[s.psn_no]
        b = s.buckets
        info: dict[str, Any] = {
            "mdtrt_id": s.mdtrt_id, "psn_no": s.psn_no, "psn_name": person.name, "psn_cert_type": "01",
            "certno": person.certno, "gend": person.gender, "naty": "01", "brdy": person.birthday.isoformat(),
            "insutype": s.insutype, "psn_type": person.insurance(s.insutype).psn_type,
            "cvlserv_flag": "1" if person.insurance(s.insutype).civil_servant else "0",
            "setl_time": format_time(s.time), "med_type": s.med_type,
            "medfee_sumamt": fen_to_yuan(b["total"]), "fulamt_ownpay_amt": fen_to_yuan(b["fulamt_ownpay"]),
            "overlmt_selfpay": fen_to_yuan(b["overlmt_selfpay"]), "preselfpay_amt": fen_to_yuan(b["preselfpay"]),
            "inscp_scp_amt": fen_to_yuan(b["inscp_scp"]), "act_pay_dedc": fen_to_yuan(b["deductible"]),
            "pool_prop_selfpay": str(s.pool_prop_selfpay),
            "fund_pay_sumamt": fen_to_yuan(b["fund_total"]), "psn_part_amt": fen_to_yuan(b["psn_part"]),
            "acct_pay": fen_to_yuan(b["acct_pay"]), "acct_mulaid_pay": fen_to_yuan(b["acct_mulaid_pay"]),
            "hosp_part_amt": fen_to_yuan(b["hosp_part"]), "balc": fen_to_yuan(s.balance_after),
            "medins_setl_id": s.msgid, "clr_optins": s.setl_optins, "clr_way": s.clr_way, "clr_type": s.clr_type,
            # the spec's 2208 field list spells the cash field pdn_cash_pay
            ("pdn_cash_pay" if spec_spelling else "psn_cash_pay"): fen_to_yuan(b["cash_pay"]),
        }
        for name in ("hifp_pay", "cvlserv_pay", "hifes_pay", "hifmi_pay", "hifob_pay", "maf_pay", "oth_pay"):
            info[name] = fen_to_yuan(s.funds.get(name, 0))
        if self.profile.wallet_field:
            info[self.profile.wallet_field] = fen_to_yuan(b["wallet_pay"])
        if s.setl_id:
            info["setl_id"] = s.setl_id
        details = [{"fund_pay_type": d["fund_pay_type"], "fund_payamt": fen_to_yuan(int(d["fund_payamt"])),
                    "inscp_scp_amt": fen_to_yuan(int(d["inscp_scp_amt"])), "fund_pay_type_name": d["fund_pay_type_name"],
                    "setl_proc_info": ""} for d in s.details]
        return {"setlinfo": info, "setldetail": details}

    def tx_2206(self: InsuranceCentre, env: dict[str, Any], data: dict[str, Any]) -> Any:
        return self._compute(env, data.get("data") or {}, "outpatient", commit=False)

    def tx_2207(self: InsuranceCentre, env: dict[str, Any], data: dict[str, Any]) -> Any:
        return self._compute(env, data.get("data") or {}, "outpatient", commit=True)

    def tx_2208(self: InsuranceCentre, env: dict[str, Any], data: dict[str, Any]) -> Any:
        return self._reverse_tx(env, data, "outpatient")

    def tx_2303(self: InsuranceCentre, env: dict[str, Any], data: dict[str, Any]) -> Any:
        return self._compute(env, data.get("data") or {}, "inpatient", commit=False)

    def tx_2304(self: InsuranceCentre, env: dict[str, Any], data: dict[str, Any]) -> Any:
        return self._compute(env, data.get("data") or {}, "inpatient", commit=True)

    def tx_2305(self: InsuranceCentre, env: dict[str, Any], data: dict[str, Any]) -> Any:
        return self._reverse_tx(env, data, "inpatient")

    # --- 2601 ---------------------------------------------------------------------------------
    def tx_2601(self: InsuranceCentre, env: dict[str, Any], data: dict[str, Any]) -> Any:
        d = data.get("data") or {}
        omsgid, oinfno = str(d.get("omsgid", "")), str(d.get("oinfno", ""))
        entry = self.journal.get(omsgid)
        if entry is None:
            # never reached the centre, or refused: nothing to undo
            return {"data": {"omsgid": omsgid, "oinfno": oinfno, "rvs_rslt": "0", "memo": "原交易不存在，无需冲正"}}
        if entry.infno != oinfno:
            raise SimError(f"原交易编号[{oinfno}]与原报文[{omsgid}]不符")
        if entry.psn_no and entry.psn_no != str(d.get("psn_no")):
            raise SimError("人员编号与原交易不符")
        if oinfno not in REVERSIBLE:
            raise SimError(f"交易[{oinfno}]不支持冲正")
        if not entry.undone:
            entry.undo()
            entry.undone = True
        return {"data": {"omsgid": omsgid, "oinfno": oinfno, "rvs_rslt": "1", "memo": "冲正成功"}}


