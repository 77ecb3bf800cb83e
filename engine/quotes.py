"""Quotes: a provider's price commitment with a TTL, and the pricing rule every quote must obey.

API.md's rule: the client's balance is debited exactly `amount` in the source currency; the fee is
taken out of it before conversion; target_amount = (amount - fee) x rate, rounded down to the
target currency's scale. The stablecoin actually sent on-chain (the rail amount) is amount - fee
at par in the source currency's stablecoin (USD -> USDC), which must be exact.

A quote is the answer of the provider whose price won (engine.pricing chooses it) and carries
every answer the pricing desk got for the same request, each with the provider's raw response:
what the client was offered, what else was on the table and why a provider was not asked, kept
as asked and never recomputed (Series 7).
"""

from __future__ import annotations

import enum

import msgspec

from engine import money
from engine.destinations import is_address
from engine.results import Result
from engine.states import Route


class Answered(enum.StrEnum):
    """What became of one provider when a quote was asked for."""

    QUOTED = "quoted"
    # The provider answered with an error, or its answer could not be priced.
    FAILED = "failed"
    # No answer before the desk's deadline.
    TIMED_OUT = "timed_out"
    # Not asked: its circuit breaker is open.
    CIRCUIT_OPEN = "circuit_open"
    # Not asked: the eligibility rules exclude it for this request.
    INELIGIBLE = "ineligible"


class ProviderAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """One provider's answer to one quote request, as received: a price (target amount after
    fees, by the pricing rule), or why there is none."""

    provider: str
    answered: Answered
    detail: str = ""
    target_amount: int = 0
    fee: int = 0
    rate: str = ""
    provider_quote_id: str | None = None
    # The provider's response body as it came (text), for audit and disputes.
    raw: str = ""
    latency_us: int = 0


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
    # The winning provider's own id for this price.
    provider_quote_id: str | None = None
    # Every provider's answer to the same request, each with its response as it came, the
    # winner's included (empty for quotes made before the desk asked several providers).
    alternatives: tuple[ProviderAnswer, ...] = ()
    # A bank payout in a pre-funded corridor (`[pricing] prefunded_corridors`): the provider pays
    # it from our prefunding as soon as its deposit is broadcast, and the deposit refills it.
    # Otherwise just-in-time: the payout is asked for once the deposit is confirmed.
    prefunded: bool = False


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
