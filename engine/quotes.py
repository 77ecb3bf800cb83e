"""Quotes: a provider's price commitment with a TTL, and the pricing rule every quote must obey.

API.md's rule: the client's balance is debited exactly `amount` in the source currency; the fee is
taken out of it before conversion; target_amount = (amount - fee) x rate, rounded down to the
target currency's scale. The stablecoin actually sent on-chain (the rail amount) is amount - fee
at par in the source currency's stablecoin (USD -> USDC), which must be exact.
"""

from __future__ import annotations

import msgspec

from engine import money
from engine.destinations import is_address
from engine.results import Result
from engine.states import Route


class Quote(msgspec.Struct, frozen=True, kw_only=True):
    quote_id: str
    provider: str
    source_currency: str
    target_currency: str
    source_amount: int
    fee: int
    rate: str
    target_amount: int
    rail_currency: str
    rail_amount: int
    # Off-ramp quotes name the provider's deposit address the stablecoin must be sent to.
    payout_address: str | None = None
    issued_at: int
    expires_at: int


class Price(msgspec.Struct, frozen=True, kw_only=True):
    target_amount: int
    rail_currency: str
    rail_amount: int


def price(
    *, source: money.Asset, target: money.Asset, amount: int, fee: int, rate: money.Rate
) -> Price | Result:
    """The target and rail amounts for debiting `amount` of `source` with `fee` at `rate`."""
    rail = money.rail_asset(source)
    if rail is None:
        return Result.currency_pair_unsupported
    if not 0 <= fee < amount:
        return Result.quote_mismatch
    net = amount - fee
    rail_amount = money.convert_exact(net, source, rail)
    if rail_amount is None or rail_amount <= 0:
        return Result.quote_mismatch
    target_amount = money.convert_down(net, source, target, rate)
    if target_amount <= 0:
        return Result.quote_mismatch
    return Price(target_amount=target_amount, rail_currency=rail.code, rail_amount=rail_amount)


def check_quote(
    quote: Quote,
    *,
    route: Route,
    source_currency: str,
    target_currency: str,
    amount: int,
    now: int,
) -> Result:
    """Whether `quote` prices exactly this transfer, by the pricing rule, and is still live."""
    source = money.asset(quote.source_currency)
    target = money.asset(quote.target_currency)
    if source is None or target is None:
        return Result.quote_mismatch
    if (quote.source_currency, quote.target_currency) != (source_currency, target_currency):
        return Result.quote_mismatch
    if quote.source_amount != amount:
        return Result.quote_mismatch
    if quote.expires_at <= now or quote.issued_at > now:
        return Result.quote_expired
    rate = money.parse_rate(quote.rate)
    if isinstance(rate, Result):
        return Result.quote_mismatch
    expected = price(source=source, target=target, amount=amount, fee=quote.fee, rate=rate)
    if isinstance(expected, Result):
        return expected
    if (quote.target_amount, quote.rail_currency, quote.rail_amount) != (
        expected.target_amount,
        expected.rail_currency,
        expected.rail_amount,
    ):
        return Result.quote_mismatch
    if route is Route.WALLET and quote.rail_amount != quote.target_amount:
        # A wallet receives the rail stablecoin itself: what is sent is what is promised.
        return Result.quote_mismatch
    if route is Route.BANK and (
        quote.payout_address is None or not is_address(quote.payout_address)
    ):
        return Result.quote_mismatch
    return Result.ok


def priced_quote(
    *,
    quote_id: str,
    provider: str,
    source_currency: str,
    target_currency: str,
    amount: int,
    fee: int,
    rate: str,
    payout_address: str | None,
    issued_at: int,
    ttl_us: int,
) -> Quote | Result:
    """A quote built by the pricing rule from a provider's rate and fee, as a provider adapter
    (or the simulator) makes one."""
    source, target = money.asset(source_currency), money.asset(target_currency)
    parsed = money.parse_rate(rate)
    if source is None or target is None:
        return Result.currency_unknown
    if isinstance(parsed, Result):
        return parsed
    priced = price(source=source, target=target, amount=amount, fee=fee, rate=parsed)
    if isinstance(priced, Result):
        return priced
    return Quote(
        quote_id=quote_id,
        provider=provider,
        source_currency=source.code,
        target_currency=target.code,
        source_amount=amount,
        fee=fee,
        rate=money.format_rate(parsed),
        target_amount=priced.target_amount,
        rail_currency=priced.rail_currency,
        rail_amount=priced.rail_amount,
        payout_address=payout_address,
        issued_at=issued_at,
        expires_at=issued_at + ttl_us,
    )
