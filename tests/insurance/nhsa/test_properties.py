"""Property tests: every simulated split satisfies the invariants; yuan↔fen is exact."""
from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.insurance import SettlementSplit
from gateway.money import fen_to_yuan, yuan_to_fen
from insurance.nhsa.msg_settle import SetlInfo
from insurance.nhsa.sim_model import DEFAULT_CATALOGUE
from insurance.nhsa.sim_policy import Wallets, compute_split, split_line
from insurance.nhsa.wire import dumps, loads

MED_TYPES = ["11", "12", "13", "14", "15", "16", "21", "22", "26", "28", "41", "51", "52"]
INSUTYPES = ["310", "320", "340", "390", "391"]

line_st = st.tuples(st.sampled_from(DEFAULT_CATALOGUE), st.integers(1, 2_000_000),
                    st.integers(1, 30), st.booleans())


@settings(max_examples=400, deadline=None)
@given(lines=st.lists(line_st, min_size=1, max_size=8), insutype=st.sampled_from(INSUTYPES),
       med_type=st.sampled_from(MED_TYPES), civil=st.booleans(), aid=st.booleans(),
       dedc_used=st.integers(0, 50_000), fund_used=st.integers(0, 12_000_000),
       acct=st.integers(0, 500_000), mulaid=st.integers(0, 100_000), wallet=st.none() | st.integers(0, 100_000),
       use=st.booleans())
def test_every_simulated_split_satisfies_the_invariants(lines, insutype, med_type, civil, aid, dedc_used, fund_used,
                                                        acct, mulaid, wallet, use) -> None:
    parts = []
    for item, amount, cnt, is_return in lines:
        price = (Decimal(amount) / 100 / cnt).quantize(Decimal("0.0001"))
        parts.append(split_line(item, -amount if is_return and parts else amount,
                                Decimal(-cnt if is_return and parts else cnt), price))
    split = compute_split(lines=parts, insutype=insutype, med_type=med_type, civil_servant=civil, medical_aid=aid,
                          deductible_used=dedc_used, fund_used=fund_used,
                          wallets=Wallets(acct, mulaid, wallet, use))
    b = split.buckets
    core = SettlementSplit(total=b["total"], fulamt_ownpay=b["fulamt_ownpay"], overlmt_selfpay=b["overlmt_selfpay"],
                           preselfpay=b["preselfpay"], inscp_scp=b["inscp_scp"], deductible=b["deductible"],
                           fund_total=b["fund_total"], funds=split.funds, psn_part=b["psn_part"],
                           acct_pay=b["acct_pay"], acct_mulaid_pay=b["acct_mulaid_pay"],
                           wallet_pay=b["wallet_pay"] if wallet is not None else None, cash_pay=b["cash_pay"],
                           hosp_part=b["hosp_part"])
    core.check()
    assert b["total"] == b["fulamt_ownpay"] + b["overlmt_selfpay"] + b["preselfpay"] + b["inscp_scp"]
    assert all(v >= 0 for v in split.funds.values())
    assert 0 <= b["acct_pay"] <= acct and 0 <= b["acct_mulaid_pay"] <= mulaid
    assert b["wallet_pay"] <= (wallet or 0) and b["hosp_part"] >= 0
    if not use:
        assert b["acct_pay"] == b["acct_mulaid_pay"] == b["wallet_pay"] == 0
    if b["total"] >= 0:
        assert b["cash_pay"] >= 0 or b["psn_part"] < 0


@given(st.integers(-10**16, 10**16))
def test_fen_yuan_round_trip_is_exact(fen: int) -> None:
    text = fen_to_yuan(fen)
    assert yuan_to_fen(text) == fen
    assert yuan_to_fen(loads(f"[{text}]")[0]) == fen  # as a JSON number, parsed as Decimal
    info = SetlInfo.model_validate(loads(dumps({"mdtrt_id": "1", "psn_no": "p", "insutype": "310",
                                                 "medfee_sumamt": text, "fund_pay_sumamt": Decimal(text),
                                                 "psn_part_amt": "0", "psn_cash_pay": 0})))
    assert info.medfee_sumamt == fen and info.fund_pay_sumamt == fen
    assert info.wire()["medfee_sumamt"] == text


@given(st.integers(0, 10**9), st.integers(0, 10**9))
def test_sums_in_yuan_equal_sums_in_fen(a: int, b: int) -> None:
    assert yuan_to_fen(str(Decimal(fen_to_yuan(a)) + Decimal(fen_to_yuan(b)))) == a + b
