"""Amounts survive the trip through templates, JSON and mappings exactly (property tests)."""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gateway.mapping import FieldSpec, Mapping
from his_adapters.config_file import load_system_toml
from his_adapters.rest import RestHisConfig
from his_adapters.rest import convert
from his_adapters.rest.client import RestClient

from .test_config import CONFIGS

CONFIG = RestHisConfig.model_validate(load_system_toml(CONFIGS / "rest-sim.toml")["config"])
fen = st.integers(min_value=1, max_value=10**13)


def _wire(value: Any) -> Any:
    # what the adapter does with an answer: JSON text, numbers as Decimal
    return json.loads(json.dumps(value), parse_float=Decimal)


@given(fen)
def test_write_back_amount_round_trip(amount: int) -> None:
    op = CONFIG.write_back
    assert op is not None
    sent = op.mapping.render({"payAmount": "${amount|yuan}", "fen": "${amount|fen}"}, {"amount": amount})
    assert isinstance(sent["payAmount"], str) and sent["fen"] == amount
    reader = Mapping(fields={"amount": FieldSpec(src="payAmount", type="amount")})
    assert reader.read(_wire(sent))["amount"] == amount
    assert reader.read({"payAmount": Decimal(sent["payAmount"])})["amount"] == amount  # as a JSON number


@given(st.lists(st.tuples(fen, st.booleans()), min_size=0, max_size=12))
def test_signed_bill_lines_and_summary(lines: list[tuple[int, bool]]) -> None:
    op = CONFIG.bill
    assert op is not None
    details = [{"hisSerialNo": str(i), "tradeType": "2" if refund else "1",
                "amount": op.mapping.render("${a|yuan}", {"a": -amount if refund else amount}),
                "tradeTime": "2026-11-25 08:00:00", "status": "1", "payChannel": "WX"}
               for i, (amount, refund) in enumerate(lines)]
    net = sum(-a if r else a for a, r in lines)
    root = _wire({"resultCode": "0", "data": {"totalCount": len(details), "details": details,
                                              "totalAmount": op.mapping.render("${n|yuan}", {"n": net})}})
    RestClient.classify("bill", CONFIG.result, root)
    bill = convert.bill(op, CONFIG, root, dt.date(2026, 11, 25), "outpatient_settlement")
    assert [(ln.amount, ln.kind == "refund") for ln in bill.lines] == lines
    assert bill.total_amount == net and bill.total_count == len(lines)


@given(fen)
def test_pending_amount_as_a_json_number(amount: int) -> None:
    op = CONFIG.pending
    assert op is not None
    number = format(Decimal(amount).scaleb(-2), "f")  # a JSON number literal, e.g. 0.01 or 123456.78
    text = ('{"resultCode":"0","data":{"patientId":"1","feeList":[{"feeNo":"CF1","bizType":"MZ",'
            f'"totalAmount":{number},"items":[]}}]}}}}')
    [charge] = convert.pending_charges(op, CONFIG, json.loads(text, parse_float=Decimal))
    assert charge.amount == amount
