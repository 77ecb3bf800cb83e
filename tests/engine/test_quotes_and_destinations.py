"""The pricing rule (API.md: fee first, then the rate, rounded down) and destination checks."""

from __future__ import annotations

import pytest

from engine import money, quotes
from engine.destinations import (
    BankDestination,
    WalletDestination,
    check_destination,
    clabe_valid,
)
from engine.results import Result

USD, MXN, USDC = money.ASSETS["USD"], money.ASSETS["MXN"], money.ASSETS["USDC"]


def rate(text: str) -> money.Rate:
    parsed = money.parse_rate(text)
    assert isinstance(parsed, money.Rate)
    return parsed


def test_fee_comes_out_before_conversion_and_rounds_down() -> None:
    # 1000.00 USD, fee 5.00, at 17.2567 MXN/USD: (995.00 x 17.2567) = 17170.4165 -> 17170.41.
    priced = quotes.price(source=USD, target=MXN, amount=100_000, fee=500, rate=rate("17.2567"))
    assert priced == quotes.Price(
        target_amount=1_717_041, rail_currency="USDC", rail_amount=995_000_000
    )


def test_pricing_refuses_impossible_quotes() -> None:
    assert quotes.price(source=USD, target=MXN, amount=100, fee=100, rate=rate("1")) is (
        Result.quote_mismatch
    )
    assert quotes.price(source=MXN, target=USD, amount=100, fee=0, rate=rate("1")) is (
        Result.currency_pair_unsupported
    )
    # A conversion that rounds down to nothing is not a payout.
    assert quotes.price(source=USD, target=MXN, amount=1, fee=0, rate=rate("0.5")) is (
        Result.quote_mismatch
    )


@pytest.mark.parametrize(
    ("clabe", "valid"),
    [
        ("032180000118359719", True),
        ("002010077777777771", True),
        ("032180000118359718", False),
        ("03218000011835971", False),
        ("03218000011835971a", False),
    ],
)
def test_clabe_check_digit(clabe: str, valid: bool) -> None:
    assert clabe_valid(clabe) is valid


def test_destinations() -> None:
    assert check_destination(WalletDestination(chain="ethereum", address="0x" + "ab" * 20)) is (
        Result.ok
    )
    assert check_destination(WalletDestination(chain="ethereum", address="ab" * 21)) is (
        Result.destination_invalid
    )
    bank = BankDestination(country="MX", clabe="032180000118359719", name="Proveedora")
    assert check_destination(bank) is Result.ok
