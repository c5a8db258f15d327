"""The declarative mapping every configurable business-system adapter reads and writes with."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.errors import HisProtocolError
from gateway.mapping import MISSING, Mapping, dig
from gateway.money import fen_to_yuan


def test_reads_nested_paths_amounts_times_and_codes() -> None:
    m = Mapping(fields={"amount": {"src": "fee.total", "type": "amount"},
                        "at": {"src": "time", "type": "datetime"},
                        "status": {"src": "st", "values": {"1": "normal", "2": "cancelled"}},
                        "channel": {"src": "pay", "values": {"WX": "wechatpay"}, "strict": False},
                        "items": {"src": "ids", "type": "list"},
                        "note": {"src": "memo", "required": False}})
    out = m.read({"fee": {"total": "12.30"}, "time": "2026-11-25 08:00:00", "st": 2, "pay": "CASH", "ids": "a,b"})
    assert out == {"amount": 1230, "at": dt.datetime(2026, 11, 25, 0, 0, tzinfo=dt.UTC), "status": "cancelled",
                   "channel": "CASH", "items": ["a", "b"], "note": None}


@pytest.mark.parametrize("raw", [12.3, Decimal("12.30"), "12.3", "12.30"])
def test_yuan_in_every_form_is_exact(raw: object) -> None:
    assert Mapping(fields={"a": {"src": "a", "type": "amount"}}).read({"a": raw})["a"] == 1230


@pytest.mark.parametrize("record, field", [
    ({}, "a"),  # missing
    ({"a": "1.234"}, "a"),  # more than two places
    ({"a": "abc"}, "a"),
    ({"a": "1.00", "s": "9"}, "s"),  # a status code nobody configured
])
def test_malformed_values_name_the_field(record: dict, field: str) -> None:
    m = Mapping(fields={"a": {"src": "a", "type": "amount"}, "s": {"src": "s", "values": {"1": "ok"}, "default": None,
                                                                  "required": False}})
    with pytest.raises(HisProtocolError) as err:
        m.read(record)
    assert err.value.extra["field"] == field


def test_fen_unit_refuses_fractions() -> None:
    m = Mapping(amount_unit="fen", fields={"a": {"src": "a", "type": "amount"}})
    assert m.read({"a": "1230"})["a"] == 1230
    with pytest.raises(HisProtocolError):
        m.read({"a": 12.5})


def test_render_keeps_types_and_formats_local_time() -> None:
    m = Mapping(utc_offset="+08:00")
    at = dt.datetime(2026, 11, 24, 16, 30, tzinfo=dt.UTC)
    out = m.render({"fee": "${amount|amount}", "fen": "${amount|fen}", "when": "${at|datetime}",
                    "day": "${at|date}", "ids": "${ids|join}", "text": "付款 ${amount|yuan} 元"},
                   {"amount": 1230, "at": at, "ids": ["a", "b"]})
    assert out == {"fee": "12.30", "fen": 1230, "when": "2026-11-25 00:30:00", "day": "2026-11-25",
                   "ids": "a,b", "text": "付款 12.30 元"}


def test_render_escapes_text_templates_and_refuses_unknown_names() -> None:
    m = Mapping()
    assert m.render("<Name>${n}</Name>", {"n": "<&>"}, escape=lambda s: s.replace("&", "&amp;")
                    .replace("<", "&lt;").replace(">", "&gt;")) == "<Name>&lt;&amp;&gt;</Name>"
    with pytest.raises(ValueError):
        m.render("${nope}", {})


def test_dig() -> None:
    assert dig({"a": [{"b": 1}]}, "a.0.b") == 1
    assert dig({"a": []}, "a.3") is MISSING
    assert dig({"a": 1}, "b") is MISSING


@given(st.integers(min_value=-10**13, max_value=10**13))
def test_amount_round_trip_through_the_wire(fen: int) -> None:
    m = Mapping(fields={"a": {"src": "a", "type": "amount"}})
    wire = m.render({"a": "${v|amount}"}, {"v": fen})
    assert wire["a"] == fen_to_yuan(fen)
    assert m.read(wire)["a"] == fen
    assert m.read({"a": Decimal(wire["a"])})["a"] == fen
