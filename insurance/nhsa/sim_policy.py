"""How the simulated centre splits a settlement (费用分割), exactly in fen.

Per line: wholly self-paid items (class 丙) go to ``fulamt_ownpay``; the part of a
unit price above the catalogue's limit to ``overlmt``; the self-paid-first share of
class 乙 items to ``preselfpay``; the rest is within scope (``inscp_scp``). Then:
deductible (起付线), the pooled fund by ratio up to its annual cap, the large-amount
fund above the cap, civil-servant subsidy and medical aid on the patient's in-scope
share, and the hospital's share over a single-disease quota. The patient's part is
paid by the personal account, the mutual-aid account and the wallet (when the
profile has one and ``acct_used_flag = 1``), and cash for the rest, so the
invariants hold by construction.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from .sim_model import CatalogueItem

RESIDENT_TYPES = ("380", "390", "391", "392")
SINGLE_DISEASE_QUOTA = 800_000  # fen, med_type 26


def category(med_type: str) -> str:
    if med_type in ("14", "15"):
        return "chronic"
    if med_type in ("51", "52"):
        return "maternity"
    if med_type == "41":
        return "pharmacy"
    if med_type.startswith("2"):
        return "inpatient"
    return "outpatient"


def scheme(insutype: str) -> str:
    return "resident" if insutype in RESIDENT_TYPES else "employee"


@dataclass(frozen=True)
class Rule:
    deductible: int  # fen; per year for outpatient kinds, per admission for inpatient
    ratio: Decimal
    cap: int | None  # annual pooled-fund cap, fen
    fund_type: str
    over_cap_ratio: Decimal = Decimal(0)  # large-amount / critical-illness fund above the cap


RULES: dict[tuple[str, str], Rule] = {
    ("employee", "outpatient"): Rule(20_000, Decimal("0.5"), 200_000, "310100"),
    ("employee", "chronic"): Rule(0, Decimal("0.8"), 500_000, "310100"),
    ("employee", "inpatient"): Rule(80_000, Decimal("0.85"), 10_000_000, "310100", Decimal("0.9")),
    ("employee", "maternity"): Rule(0, Decimal("1"), None, "510100"),
    ("employee", "pharmacy"): Rule(0, Decimal("0"), None, "310100"),
    ("resident", "outpatient"): Rule(10_000, Decimal("0.5"), 40_000, "390100"),
    ("resident", "chronic"): Rule(0, Decimal("0.6"), 300_000, "390100"),
    ("resident", "inpatient"): Rule(50_000, Decimal("0.7"), 5_000_000, "390100", Decimal("0.6")),
    ("resident", "maternity"): Rule(0, Decimal("1"), None, "510100"),
    ("resident", "pharmacy"): Rule(0, Decimal("0"), None, "390100"),
}


def _share(amount: int, ratio: Decimal, rounding: str = ROUND_DOWN) -> int:
    return int((Decimal(amount) * ratio).to_integral_value(rounding=rounding))


@dataclass(frozen=True)
class LineSplit:
    fulamt_ownpay: int
    overlmt: int
    preselfpay: int
    inscp_scp: int


def split_line(item: CatalogueItem, amount: int, cnt: Decimal, pric: Decimal) -> LineSplit:
    """Classify one fee line (negative amounts, i.e. returns, classify the same way)."""
    if item.chrgitm_lv == "03":
        return LineSplit(amount, 0, 0, 0)
    over = 0
    if item.price_limit is not None and pric > item.price_limit:
        over = int(((pric - item.price_limit) * cnt * 100).to_integral_value(rounding=ROUND_HALF_UP))
        over = max(over, amount) if amount < 0 else min(over, amount)
    pre = _share(amount - over, item.selfpay_prop, ROUND_HALF_UP)
    return LineSplit(0, over, pre, amount - over - pre)


@dataclass
class Wallets:
    """What the patient's accounts may pay, and whether they may be used."""

    acct: int
    mulaid: int
    wallet: int | None  # None: the region has no wallet
    use: bool


@dataclass
class Split:
    buckets: dict[str, int]
    funds: dict[str, int]
    details: list[dict[str, object]] = field(default_factory=list)
    pool_prop_selfpay: Decimal = Decimal(0)


def compute_split(*, lines: list[LineSplit], insutype: str, med_type: str, civil_servant: bool, medical_aid: bool,
                  deductible_used: int, fund_used: int, wallets: Wallets) -> Split:
    cat = category(med_type)
    rule = RULES[(scheme(insutype), cat)]
    total = sum(l.fulamt_ownpay + l.overlmt + l.preselfpay + l.inscp_scp for l in lines)
    fulamt = sum(l.fulamt_ownpay for l in lines)
    overlmt = sum(l.overlmt for l in lines)
    pre = sum(l.preselfpay for l in lines)
    inscp = sum(l.inscp_scp for l in lines)
    scope = max(inscp, 0)
    hosp = min(scope, max(0, total - SINGLE_DISEASE_QUOTA)) if med_type == "26" else 0
    scope -= hosp
    deductible_left = rule.deductible if cat == "inpatient" else max(0, rule.deductible - deductible_used)
    dedc = min(scope, deductible_left)
    base = scope - dedc
    pooled = _share(base, rule.ratio)
    over_cap = 0
    if rule.cap is not None:
        room = max(0, rule.cap - fund_used)
        if pooled > room:
            covered = int((Decimal(room) / rule.ratio).to_integral_value(rounding=ROUND_HALF_UP))
            over_cap = max(0, base - covered)
            pooled = room
    funds: dict[str, int] = {}
    details: list[dict[str, object]] = []

    def pay(name: str, amount: int, fund_type: str, label: str) -> None:
        if amount > 0:
            funds[name] = funds.get(name, 0) + amount
            details.append({"fund_pay_type": fund_type, "fund_payamt": amount, "fund_pay_type_name": label,
                            "inscp_scp_amt": scope})

    pay("hifp_pay", pooled, rule.fund_type, "生育基金" if cat == "maternity" else "基本医疗保险统筹基金")
    big = _share(max(0, over_cap), rule.over_cap_ratio)
    if scheme(insutype) == "employee":
        pay("hifob_pay", big, "330100", "职工大额医疗费用补助基金")
    else:
        pay("hifmi_pay", big, "390200", "城乡居民大病医疗保险资金")
    own_scope = scope - sum(funds.values())
    if civil_servant:
        pay("cvlserv_pay", _share(own_scope, Decimal("0.5")), "320100", "公务员医疗补助资金")
        own_scope = scope - sum(funds.values())
    if medical_aid and cat == "inpatient":
        pay("maf_pay", _share(own_scope, Decimal("0.7")), "610100", "医疗救助基金")
    fund_total = sum(funds.values())
    psn_part = total - fund_total - hosp
    rest = psn_part
    acct = mulaid = wallet = 0
    if wallets.use and rest > 0:
        acct = min(wallets.acct, rest)
        rest -= acct
        mulaid = min(wallets.mulaid, rest)
        rest -= mulaid
        if wallets.wallet is not None:
            wallet = min(wallets.wallet, rest)
            rest -= wallet
    buckets = {"total": total, "fulamt_ownpay": fulamt, "overlmt_selfpay": overlmt, "preselfpay": pre,
               "inscp_scp": inscp, "deductible": dedc, "fund_total": fund_total, "psn_part": psn_part,
               "acct_pay": acct, "acct_mulaid_pay": mulaid, "wallet_pay": wallet, "cash_pay": rest,
               "hosp_part": hosp}
    return Split(buckets, funds, details, Decimal(1) - rule.ratio)
