"""Money: strict decimal-string parsing to integer minor units, exact formatting, named rounding.

Table-driven cases for every way an amount can be wrong, and hypothesis round trips proving
format and parse are inverses at every asset's scale.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import limits
from engine.money import (
    ASSETS,
    RATE_ONE,
    Rate,
    convert_down,
    convert_exact,
    format_amount,
    format_rate,
    parse_amount,
    parse_rate,
    rail_asset,
    units_max_minor,
)
from engine.results import Result

USD, MXN, USDC, EURC = ASSETS["USD"], ASSETS["MXN"], ASSETS["USDC"], ASSETS["EURC"]


def test_named_scales() -> None:
    assert {code: a.scale for code, a in ASSETS.items()} == {
        "USD": 2,
        "EUR": 2,
        "MXN": 2,
        "USDC": 6,
        "EURC": 6,
    }


@pytest.mark.parametrize(
    ("text", "asset", "minor"),
    [
        ("0", USD, 0),
        ("1", USD, 100),
        ("1.5", USD, 150),
        ("1000.00", USD, 100_000),
        ("0.01", USD, 1),
        ("0.000001", USDC, 1),
        ("12.3", USDC, 12_300_000),
        ("100000000000", USD, 10_000_000_000_000),
    ],
)
def test_parse_valid(text: str, asset: object, minor: int) -> None:
    assert parse_amount(text, asset) == minor  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "result"),
    [
        ("", Result.amount_malformed),
        (" 1", Result.amount_malformed),
        ("1 ", Result.amount_malformed),
        ("+1", Result.amount_malformed),
        ("-1", Result.amount_negative),
        ("-0.50", Result.amount_negative),
        ("1e3", Result.amount_malformed),
        ("1E-2", Result.amount_malformed),
        ("NaN", Result.amount_malformed),
        ("nan", Result.amount_malformed),
        ("Infinity", Result.amount_malformed),
        ("inf", Result.amount_malformed),
        ("1.", Result.amount_malformed),
        (".5", Result.amount_malformed),
        ("01", Result.amount_malformed),
        ("1,000.00", Result.amount_malformed),
        ("1_000", Result.amount_malformed),
        ("0x10", Result.amount_malformed),
        ("١٢", Result.amount_malformed),  # Arabic-Indic digits are not ASCII digits
        ("1.001", Result.amount_scale_exceeded),
        ("1.000", Result.amount_scale_exceeded),  # more decimals than the scale, even zeros
        ("100000000000.01", Result.amount_exceeds_maximum),
        ("100000000001", Result.amount_exceeds_maximum),
        ("9" * 41, Result.amount_malformed),  # longer than any legal amount
    ],
)
def test_parse_refuses_with_a_named_result(text: str, result: Result) -> None:
    assert parse_amount(text, USD) is result


def test_parse_refuses_non_strings() -> None:
    assert parse_amount(1.5, USD) is Result.amount_malformed  # type: ignore[arg-type]
    assert parse_amount(None, USD) is Result.amount_malformed  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("minor", "asset", "text"),
    [
        (0, USD, "0.00"),
        (1, USD, "0.01"),
        (100_000, USD, "1000.00"),
        (1_000_000_000, USDC, "1000.000000"),
        (-150, USD, "-1.50"),
    ],
)
def test_format_writes_exactly_the_scale(minor: int, asset: object, text: str) -> None:
    assert format_amount(minor, asset) == text  # type: ignore[arg-type]


@given(st.sampled_from(sorted(ASSETS)), st.data())
def test_format_then_parse_is_identity(code: str, data: st.DataObject) -> None:
    asset = ASSETS[code]
    minor = data.draw(st.integers(min_value=0, max_value=units_max_minor(asset)))
    assert parse_amount(format_amount(minor, asset), asset) == minor


@given(st.text(max_size=50))
def test_parse_never_raises(text: str) -> None:
    result = parse_amount(text, USD)
    assert isinstance(result, (int, Result))
    if isinstance(result, int):
        assert 0 <= result <= units_max_minor(USD)


@pytest.mark.parametrize(
    ("text", "units"),
    [("1", 10**8), ("1.00000000", 10**8), ("17.25", 1_725_000_000), ("0.00000001", 1)],
)
def test_rates_parse(text: str, units: int) -> None:
    assert parse_rate(text) == Rate(units)


@pytest.mark.parametrize(
    "text", ["0", "0.000000001", "-1", "1e2", "abc", "", "1.", "99999999999999999999999"]
)
def test_rates_refuse(text: str) -> None:
    assert parse_rate(text) is Result.rate_malformed


def test_rate_formats_with_fixed_precision() -> None:
    assert format_rate(Rate(1_725_000_000)) == "17.25000000"
    assert format_rate(RATE_ONE) == "1.00000000"
    assert limits.rate_decimals == 8


def test_convert_down_rounds_toward_zero() -> None:
    # 0.01 USD at 17.25678901 = 0.1725678901 MXN -> 0.17 MXN (down, never up).
    assert convert_down(1, USD, MXN, Rate(1_725_678_901)) == 17
    # 99.75 USD at par -> 99.750000 USDC, exact.
    assert convert_down(9_975, USD, USDC, RATE_ONE) == 99_750_000


def test_convert_exact_refuses_to_lose_precision() -> None:
    assert convert_exact(150, USD, USDC) == 1_500_000
    assert convert_exact(1_500_000, USDC, USD) == 150
    assert convert_exact(1_500_001, USDC, USD) is None


def test_rail_assets() -> None:
    assert rail_asset(USD) is USDC
    assert rail_asset(USDC) is USDC
    assert rail_asset(ASSETS["EUR"]) is EURC
    assert rail_asset(MXN) is None
