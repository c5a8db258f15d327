"""State of the simulated insurance centre: persons, visits, fees, settlements."""
from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


class SimError(Exception):
    """The centre refuses: becomes ``infcode = -1`` with this ``err_msg``."""

    def __init__(self, err_msg: str) -> None:
        super().__init__(err_msg)
        self.err_msg = err_msg


@dataclass
class CatalogueItem:
    """A national catalogue entry (医保目录): its self-pay class and price limit."""

    code: str
    name: str
    chrgitm_lv: str  # 01 class A (甲), 02 class B (乙), 03 wholly self-paid (丙)
    selfpay_prop: Decimal  # share the patient pays first
    med_chrgitm_type: str = "09"
    price_limit: Decimal | None = None  # yuan per unit

    def as_sim(self) -> dict[str, Any]:
        """What ``GET /_sim`` lists: the fee codes (med_list_codg) the simulated centre accepts."""
        return {"code": self.code, "name": self.name, "chrgitm_lv": self.chrgitm_lv,
                "level_zh": {"01": "甲类", "02": "乙类", "03": "丙类(自费)"}.get(self.chrgitm_lv, self.chrgitm_lv),
                "selfpay_prop": str(self.selfpay_prop), "med_chrgitm_type": self.med_chrgitm_type,
                "price_limit": str(self.price_limit) if self.price_limit is not None else None}


DEFAULT_CATALOGUE = [
    CatalogueItem("XJ01AAA001", "青霉素注射剂", "01", Decimal("0")),
    CatalogueItem("XJ01DDA002", "头孢克肟片", "02", Decimal("0.1")),
    CatalogueItem("ZA03BAA003", "中成药颗粒", "02", Decimal("0.2")),
    CatalogueItem("001102000010000", "普通门诊诊查费", "01", Decimal("0"), "05"),
    CatalogueItem("250101001", "血常规", "01", Decimal("0"), "04", Decimal("20.00")),
    CatalogueItem("330100001", "手术费", "01", Decimal("0"), "07"),
    CatalogueItem("120100001", "床位费", "01", Decimal("0"), "02", Decimal("60.00")),
    CatalogueItem("ZZ9999001", "营养品(自费)", "03", Decimal("1")),
]


@dataclass
class SimInsurance:
    insutype: str
    psn_type: str = "11"  # 11 employed, 21 retired, 1501 resident …
    insuplc_admdvs: str = "430100"
    civil_servant: bool = False
    employer: str | None = None


@dataclass
class SimPerson:
    psn_no: str
    name: str
    certno: str
    gender: str = "1"
    birthday: dt.date = dt.date(1980, 1, 1)
    insuplc_admdvs: str = "430100"
    insurances: list[SimInsurance] = field(default_factory=list)
    acct_balance: int = 0  # fen
    wallet_balance: int = 0
    mulaid_balance: int = 0  # a family member's account usable by mutual aid
    card_no: str | None = None
    card_sn: str | None = None
    password: str | None = None
    qr_code: str | None = None
    medical_aid: bool = False  # receives medical aid (医疗救助)

    def insurance(self, insutype: str) -> SimInsurance:
        for ins in self.insurances:
            if ins.insutype == insutype:
                return ins
        raise SimError(f"参保人员[{self.psn_no}]未参加险种[{insutype}]")

    def as_sim(self) -> dict[str, Any]:
        return {"psn_no": self.psn_no, "name": self.name, "certno": self.certno, "insuplc_admdvs": self.insuplc_admdvs,
                "insutypes": [i.insutype for i in self.insurances], "acct_balance": self.acct_balance,
                "wallet_balance": self.wallet_balance, "mulaid_balance": self.mulaid_balance,
                "card_no": self.card_no, "card_sn": self.card_sn, "has_password": self.password is not None,
                "qr_code": self.qr_code, "medical_aid": self.medical_aid}


@dataclass
class SimFee:
    feedetl_sn: str
    chrg_bchno: str | None
    med_list_codg: str
    amount: int
    cnt: Decimal
    pric: Decimal
    fulamt_ownpay: int
    overlmt: int
    preselfpay: int
    inscp_scp: int
    item: CatalogueItem
    msgid: str
    init_feedetl_sn: str | None = None
    revoked: bool = False
    setl_id: str | None = None  # the settlement that covers it


@dataclass
class SimVisit:
    mdtrt_id: str
    psn_no: str
    insutype: str
    kind: str  # outpatient | inpatient
    status: str  # registered | cancelled | admitted | discharged
    med_type: str | None
    begin: dt.datetime
    ipt_otp_no: str | None = None
    end: dt.datetime | None = None
    diagnoses: list[dict[str, Any]] = field(default_factory=list)
    fees: dict[str, SimFee] = field(default_factory=dict)

    def open_fees(self, chrg_bchno: str | None = None) -> list[SimFee]:
        return [f for f in self.fees.values() if not f.revoked and f.setl_id is None
                and (not chrg_bchno or chrg_bchno == "0000" or f.chrg_bchno == chrg_bchno)]

    def settled(self) -> bool:
        return any(f.setl_id for f in self.fees.values() if not f.revoked)


@dataclass
class SimSettlement:
    setl_id: str
    mdtrt_id: str
    psn_no: str
    insutype: str
    med_type: str
    clr_type: str
    clr_way: str
    setl_optins: str
    infno: str
    msgid: str
    time: dt.datetime
    buckets: dict[str, int]  # total, fund_total, psn_part, acct, mulaid, wallet, cash, hosp, scope fields, funds…
    funds: dict[str, int]
    details: list[dict[str, Any]]
    balance_after: int
    pool_prop_selfpay: Decimal
    category: str
    reversal_of: str | None = None  # set on a reversal record
    reversed_by: str | None = None  # set on a settlement that was reversed
    fee_sns: list[str] = field(default_factory=list)

    @property
    def refund(self) -> bool:
        return self.reversal_of is not None

    def as_sim(self) -> dict[str, Any]:
        return {"setl_id": self.setl_id, "mdtrt_id": self.mdtrt_id, "psn_no": self.psn_no, "insutype": self.insutype,
                "med_type": self.med_type, "clr_type": self.clr_type, "setl_optins": self.setl_optins,
                "infno": self.infno, "msgid": self.msgid, "time": self.time.isoformat(), "buckets": self.buckets,
                "funds": self.funds, "reversal_of": self.reversal_of, "reversed_by": self.reversed_by}


@dataclass
class JournalEntry:
    """What one call changed, so that 2601 can undo it by msgid."""

    msgid: str
    infno: str
    psn_no: str | None
    undo: Any  # Callable[[], None] | None
    undone: bool = False


def new_id(prefix: str, counter: int) -> str:
    return f"{prefix}{dt.datetime.now(dt.UTC).strftime('%Y%m%d')}{counter:08d}{secrets.randbelow(100):02d}"
