"""The contract's types and errors, wire parsing edge cases, configuration, registration."""
from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from gateway.errors import (
    ALL_ERRORS,
    InsuranceAlreadyReversed,
    InsuranceProtocolError,
    InsuranceRejected,
    InsuranceUnknown,
    UpstreamError,
    YinyiError,
)
from gateway.insurance import InsuranceAdapter, SettlementSplit, SplitInvariantError
from gateway.registry import Registrar, Registry
from insurance.nhsa import NhsaAdapter, NhsaConfig, plugin
from insurance.nhsa.convert import settlement_from_wire
from insurance.nhsa.msg_settle import SettleOutput
from insurance.nhsa.profiles import NATIONAL, SM_OAUTH, RegionProfile, resolve_profile
from insurance.nhsa.wire import WireFormatError, loads, parse_time

BASE = {"base_url": "http://127.0.0.1:1", "fixmedins_code": "H43010000001", "fixmedins_name": "医院",
        "mdtrtarea_admvs": "430100", "opter": "K1", "opter_name": "自助机"}

SETLINFO = ('{"setlinfo":{"setl_id":"S1","mdtrt_id":"M1","psn_no":"P1","insutype":310,"medfee_sumamt":100.00,'
            '"fund_pay_sumamt":"40.00","hifp_pay":"40","psn_part_amt":"60.00","acct_pay":"10.00",'
            '"acct_mulaid_pay":"5.00","wltpay_amt":"20.00","pdn_cash_pay":"25.00","hosp_part_amt":"0",'
            '"setl_time":"2025-03-01 08:00:00","brand_new_field":{"x":1}},"setldetail":[]}')


def test_split_invariants() -> None:
    split = SettlementSplit(total=10000, fund_total=4000, funds={"hifp_pay": 4000}, psn_part=6000, acct_pay=1000,
                            acct_mulaid_pay=500, wallet_pay=2000, cash_pay=2500)
    assert split.check() is split and split.insurance_paid == 7500
    with pytest.raises(SplitInvariantError, match="personal"):
        split.model_copy(update={"wallet_pay": None}).check()  # the wallet's 20 yuan lost
    with pytest.raises(SplitInvariantError, match="total"):
        split.model_copy(update={"hosp_part": 1}).check()
    with pytest.raises(SplitInvariantError, match="sub-funds"):
        split.model_copy(update={"funds": {"hifp_pay": 3999}}).check()
    split.model_copy(update={"hosp_part": 1}).check(tolerance_fen=1)


def test_settlement_output_parsing_keeps_the_wallet_apart() -> None:
    out = SettleOutput.model_validate(loads(SETLINFO))
    s = settlement_from_wire(out, SM_OAUTH, infno="2207", msgid="m" * 30, warn=None, pre=False)
    assert (s.split.acct_pay, s.split.acct_mulaid_pay, s.split.wallet_pay, s.split.cash_pay) == (1000, 500, 2000, 2500)
    assert s.setl_time and s.setl_time.utcoffset().total_seconds() == 0 and s.setl_time.hour == 0
    assert s.insutype == "310" and out.setlinfo.model_extra["brand_new_field"] == {"x": 1}
    # a region without the wallet field does not see 20.00 yuan vanish: the split no longer adds up
    with pytest.raises(InsuranceProtocolError) as err:
        settlement_from_wire(out, NATIONAL, infno="2207", msgid="m" * 30, warn=None, pre=False)
    assert err.value.extra["msgid"] == "m" * 30 and err.value.extra["setl_id"] == "S1"


def test_float_amounts_and_naive_times_are_refused() -> None:
    with pytest.raises(ValidationError):
        SettleOutput.model_validate({"setlinfo": {"mdtrt_id": "1", "psn_no": "p", "insutype": "310",
                                                  "medfee_sumamt": 0.1, "fund_pay_sumamt": "0", "psn_part_amt": "0",
                                                  "psn_cash_pay": "0"}})
    with pytest.raises(ValidationError):
        SettleOutput.model_validate(loads(SETLINFO.replace("100.00,", '"100.001",')))
    with pytest.raises(WireFormatError):
        parse_time(dt.datetime(2025, 1, 1))
    assert parse_time("20250301080000") == parse_time("2025-03-01 08:00:00")


def test_errors_follow_the_pattern() -> None:
    for cls in (InsuranceRejected, InsuranceAlreadyReversed, InsuranceUnknown, InsuranceProtocolError):
        assert cls in ALL_ERRORS and cls.message_zh and cls.message_en
    assert issubclass(InsuranceUnknown, UpstreamError) and not issubclass(InsuranceRejected, UpstreamError)
    assert issubclass(InsuranceAlreadyReversed, InsuranceRejected) and issubclass(InsuranceRejected, YinyiError)
    problem = InsuranceRejected("该人员处于暂停参保状态", infno="2207", msgid="x").to_problem("en")
    assert problem["code"] == "INSURANCE_REJECTED" and problem["detail"] == "该人员处于暂停参保状态"
    assert problem["infno"] == "2207"


def test_config_validation_names_missing_credentials() -> None:
    NhsaConfig.model_validate(BASE)
    with pytest.raises(ValidationError, match="sm2_private_key"):
        NhsaConfig.model_validate({**BASE, "profile": "sm_oauth"})
    with pytest.raises(ValidationError, match="unknown region profile"):
        NhsaConfig.model_validate({**BASE, "profile": "atlantis"})
    with pytest.raises(ValidationError, match="fixmedins_code"):
        NhsaConfig.model_validate({**BASE, "fixmedins_code": "short"})
    cfg = NhsaConfig.model_validate({**BASE, "profile": "tif_gateway", "tif_paasid": "p", "tif_token": "s3cret"})
    assert "s3cret" not in repr(cfg) and cfg.profile.wallet_field == "wltpay_amt"


def test_inline_regional_profile() -> None:
    region = {"name": "demo_region", "path": "/api/{infno}", "wallet_field": "wallet_amt",
              "recer_sys_codes": {"340": "LXXT", "410": "CQXT"}, "errors": {"balance": "余额不够"}}
    cfg = NhsaConfig.model_validate({**BASE, "profile": region})
    assert cfg.profile.call_path("2207") == "/api/2207" and cfg.profile.per_code_paths
    assert cfg.profile.recer_sys_code("410", "YBXT") == "CQXT"
    assert cfg.profile.errors.matches("balance", "账户余额不够") and isinstance(resolve_profile(region), RegionProfile)


def test_plugin_registers_adapter_and_simulator() -> None:
    registry = Registry()
    registrar = Registrar(registry, "nhsa")
    plugin.yinyi_register_insurance_adapters(register=registrar)
    plugin.yinyi_register_simulators(register=registrar)
    assert registry.insurance_adapters["nhsa"] is NhsaAdapter
    assert "nhsa" in registry.insurance_simulators
    assert issubclass(NhsaAdapter, InsuranceAdapter) and not NhsaAdapter.__abstractmethods__
    assert NhsaAdapter.describe()["id"] == "nhsa"
