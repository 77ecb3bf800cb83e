"""Money as integers: minor units with a named scale per asset, decimal strings at the edges.

No floats anywhere. Parsing is strict and total: it returns an amount or a named Result, never
raises on client input. Formatting always writes exactly the asset's scale ("1000.00" for USD,
"1000.000000" for USDC). Conversions name their rounding direction.
"""

from __future__ import annotations

import enum
import re

import msgspec

from engine import limits
from engine.results import Result

# Powers of ten as ints (an int ** int is typed as possibly float).
POW10: tuple[int, ...] = tuple(10**n for n in range(40))


class AssetKind(enum.StrEnum):
    FIAT = "fiat"
    STABLECOIN = "stablecoin"


class Asset(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    scale: int
    kind: AssetKind
    # The fiat currency a stablecoin is pegged to, or the stablecoin that carries a fiat currency
    # on-chain (its settlement rail).
    peg: str


ASSETS: dict[str, Asset] = {
    a.code: a
    for a in (
        Asset(code="USD", scale=2, kind=AssetKind.FIAT, peg="USDC"),
        Asset(code="EUR", scale=2, kind=AssetKind.FIAT, peg="EURC"),
        Asset(code="MXN", scale=2, kind=AssetKind.FIAT, peg=""),
        Asset(code="USDC", scale=6, kind=AssetKind.STABLECOIN, peg="USD"),
        Asset(code="EURC", scale=6, kind=AssetKind.STABLECOIN, peg="EUR"),
    )
}


def asset(code: str) -> Asset | None:
    return ASSETS.get(code)


def rail_asset(source: Asset) -> Asset | None:
    """The stablecoin that carries `source` on-chain: itself if it is one, else its peg."""
    if source.kind is AssetKind.STABLECOIN:
        return source
    return ASSETS.get(source.peg)


def units_max_minor(a: Asset) -> int:
    return limits.amount_units_max * POW10[a.scale]


# Digits, an optional fraction; no sign, no exponent, no spaces, no leading zeros ("0.5" is fine).
_AMOUNT = re.compile(r"(0|[1-9][0-9]*)(?:\.([0-9]+))?")
_NUMBER_LIKE = re.compile(r"[+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?")


def parse_amount(text: str, a: Asset) -> int | Result:
    """Decimal string -> minor units of `a`, or the Result naming what is wrong with it.

    "0" parses (to 0); whether zero is allowed is the caller's rule (a transfer needs a positive
    amount). More fractional digits than the asset's scale is refused even when they are zeros:
    the API promises requests may use fewer decimals, never more.
    """
    if not isinstance(text, str) or len(text) > limits.amount_text_length_max:
        return Result.amount_malformed
    match = _AMOUNT.fullmatch(text)
    if match is None:
        if text.startswith("-") and _NUMBER_LIKE.fullmatch(text):
            return Result.amount_negative
        return Result.amount_malformed
    whole, fraction = match.group(1), match.group(2) or ""
    if len(fraction) > a.scale:
        return Result.amount_scale_exceeded
    minor = int(whole) * POW10[a.scale] + int(fraction.ljust(a.scale, "0") or "0")
    if minor > units_max_minor(a):
        return Result.amount_exceeds_maximum
    return minor


def format_amount(minor: int, a: Asset) -> str:
    """Minor units -> decimal string with exactly the asset's scale. Negative amounts keep a sign
    (balances in reports may be negative; client-facing amounts never are)."""
    assert isinstance(minor, int)
    sign = "-" if minor < 0 else ""
    whole, fraction = divmod(abs(minor), POW10[a.scale])
    if a.scale == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{fraction:0{a.scale}d}"


class Rate(msgspec.Struct, frozen=True):
    """A positive FX rate as a fixed-point integer with `limits.rate_decimals` fractional digits."""

    units: int


RATE_ONE = Rate(POW10[limits.rate_decimals])
_RATE = re.compile(r"(0|[1-9][0-9]*)(?:\.([0-9]+))?")


def parse_rate(text: str) -> Rate | Result:
    if not isinstance(text, str) or len(text) > limits.rate_text_length_max:
        return Result.rate_malformed
    match = _RATE.fullmatch(text)
    if match is None:
        return Result.rate_malformed
    whole, fraction = match.group(1), match.group(2) or ""
    if len(fraction) > limits.rate_decimals:
        return Result.rate_malformed
    units = int(whole) * POW10[limits.rate_decimals] + int(
        fraction.ljust(limits.rate_decimals, "0") or "0"
    )
    if units <= 0 or units > limits.rate_units_max:
        return Result.rate_malformed
    return Rate(units)


def format_rate(rate: Rate) -> str:
    whole, fraction = divmod(rate.units, POW10[limits.rate_decimals])
    return f"{whole}.{fraction:0{limits.rate_decimals}d}"


def beyond_bps(expected: int, observed: int, bps: int) -> bool:
    """Whether `observed` is further from `expected` than `bps` basis points of it."""
    return abs(observed - expected) * 10_000 > abs(expected) * bps


def convert_down(minor: int, source: Asset, target: Asset, rate: Rate) -> int:
    """minor units of `source` x rate -> minor units of `target`, rounded down (toward zero).

    Rounding down is the client-protective direction for a payout computed from a debit: the
    platform never promises more than the rate covers.
    """
    assert minor >= 0
    numerator = minor * rate.units * POW10[target.scale]
    denominator = POW10[source.scale] * POW10[limits.rate_decimals]
    return numerator // denominator


def convert_exact(minor: int, source: Asset, target: Asset) -> int | None:
    """Re-express an amount at another scale at par (USD cents -> USDC micro-units), or None when
    that would lose precision (1 micro-USDC has no USD cent equivalent)."""
    if target.scale >= source.scale:
        return minor * POW10[target.scale - source.scale]
    factor = POW10[source.scale - target.scale]
    if minor % factor:
        return None
    return minor // factor
