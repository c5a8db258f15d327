from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.money import MoneyFormatError, fen_to_yuan, yuan_to_fen


@pytest.mark.parametrize("text,fen", [("0.01", 1), ("0.1", 10), ("1", 100), ("12.30", 1230), ("-0.01", -1),
                                      ("99999999.99", 9999999999), ("1,234.50", 123450), (" 3.5 ", 350)])
def test_yuan_to_fen(text: str, fen: int) -> None:
    assert yuan_to_fen(text) == fen


def test_point_one_plus_point_two_is_exact() -> None:
    assert yuan_to_fen("0.1") + yuan_to_fen("0.2") == yuan_to_fen("0.3") == 30
    assert fen_to_yuan(yuan_to_fen("0.1") + yuan_to_fen("0.2")) == "0.30"


@pytest.mark.parametrize("bad", ["1.234", "abc", "", "1.", ".5", "1e3", "--1"])
def test_rejects_malformed(bad: str) -> None:
    with pytest.raises(MoneyFormatError):
        yuan_to_fen(bad)


def test_rejects_float() -> None:
    with pytest.raises(MoneyFormatError):
        yuan_to_fen(0.1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        fen_to_yuan(1.0)  # type: ignore[arg-type]


def test_decimal_and_int() -> None:
    assert yuan_to_fen(Decimal("2.50")) == 250
    assert yuan_to_fen(3) == 300
    with pytest.raises(MoneyFormatError):
        yuan_to_fen(Decimal("2.505"))


@pytest.mark.parametrize("fen,text", [(0, "0.00"), (1, "0.01"), (10, "0.10"), (-1, "-0.01"), (-1230, "-12.30"),
                                      (10**12 + 5, "10000000000.05")])
def test_fen_to_yuan(fen: int, text: str) -> None:
    assert fen_to_yuan(fen) == text


@given(st.integers(min_value=-10**14, max_value=10**14))
def test_round_trip(fen: int) -> None:
    assert yuan_to_fen(fen_to_yuan(fen)) == fen
