"""Choosing among providers (Series 7): who may price a request, and which price wins.

A provider is eligible for a request when it serves the corridor, the operator's terms for it
allow it (enabled, its compliance review approved, the corridor listed if the terms list any,
the amount within the corridor's minimum and maximum) and its circuit breaker lets the call
through (actors.pricing asks the breaker). Among the providers that quoted, the best price is
the highest target amount after every fee: the amount the beneficiary receives for the same
debit. Ties go to the lower fee, then to the provider name, so a choice is a function of the
answers alone.
"""

from __future__ import annotations

import enum

import msgspec

from engine import money
from engine.breaker import BreakerSettings, Circuit
from engine.quotes import Answered, ProviderAnswer, Quote, price
from engine.results import Result


class Compliance(enum.StrEnum):
    """Our own review of the provider (due diligence, licences): only APPROVED is asked."""

    APPROVED = "approved"
    UNDER_REVIEW = "under_review"
    SUSPENDED = "suspended"


class CorridorTerms(msgspec.Struct, frozen=True, kw_only=True):
    """The amounts (source currency minor units) the provider takes in one corridor."""

    min_amount: int = 0
    max_amount: int | None = None


class ProviderTerms(msgspec.Struct, frozen=True, kw_only=True):
    """The operator's terms for one provider (`[providers.NAME]` in the config)."""

    enabled: bool = True
    compliance: Compliance = Compliance.APPROVED
    # Corridor id ("USD-MXN") -> its limits. Empty: every corridor the provider serves, with no
    # limits; otherwise only the corridors listed.
    corridors: dict[str, CorridorTerms] = {}
    # The operator's address book: chain -> the provider's deposit address for our prefunding.
    # A rebalancing move pays only an address listed here (engine.rebalance).
    deposit_addresses: dict[str, str] = {}


OPEN_TERMS = ProviderTerms()


class ProviderHealth(msgspec.Struct, frozen=True, kw_only=True):
    """What operators see of one provider (`GET /v1/ops/providers`)."""

    provider: str
    corridors: tuple[str, ...]
    terms: ProviderTerms
    circuit: Circuit
    # Answers by outcome, and breaker changes by the state entered, since the process started.
    answers: dict[str, int]
    changes: dict[str, int] = {}
    # The latest state change journaled, when there is one.
    changed_at: int | None = None


class Desk(msgspec.Struct, frozen=True, kw_only=True):
    """The pricing desk as operators see it: every provider and the settings in force."""

    providers: tuple[ProviderHealth, ...]
    breaker: BreakerSettings
    quote_deadline_s: float


class Requote(enum.StrEnum):
    """What becomes of a transfer whose quote expired before it was used (Series 7)."""

    # Re-quoted at the market, as long as the new price is within the client's tolerance.
    AUTO = "auto"
    # The transfer ends (EXPIRED, or FAILED when the quote it named expired awaiting approval):
    # the client must start again with a new quote.
    REQUIRE_NEW = "require_new"


class RequotePolicy(msgspec.Struct, frozen=True, kw_only=True):
    mode: Requote = Requote.AUTO
    # How far (basis points) the new price may give the beneficiary less than the expired one;
    # None: any new price is taken.
    tolerance_bps: int | None = None


def worse_beyond(before: int, after: int, tolerance_bps: int) -> bool:
    """Whether a target amount of `after` is more than `tolerance_bps` below `before`."""
    return after * 10_000 < before * (10_000 - tolerance_bps)


def ineligible(terms: ProviderTerms, served: frozenset[str], corridor: str, amount: int) -> str:
    """Why the provider may not price `amount` in `corridor` ("" when it may)."""
    if corridor not in served:
        return f"does not serve {corridor}"
    if not terms.enabled:
        return "disabled by the operator"
    if terms.compliance is not Compliance.APPROVED:
        return f"compliance status {terms.compliance.value}"
    if not terms.corridors:
        return ""
    limits = terms.corridors.get(corridor)
    if limits is None:
        return f"{corridor} is not in its terms"
    if amount < limits.min_amount:
        return f"below its minimum of {limits.min_amount} minor units"
    if limits.max_amount is not None and amount > limits.max_amount:
        return f"above its maximum of {limits.max_amount} minor units"
    return ""


def rank(answer: ProviderAnswer) -> tuple[int, bool, int, str]:
    """Best first: quoted, the most for the beneficiary, the lower fee, the name."""
    quoted = answer.answered is Answered.QUOTED
    return (-answer.target_amount if quoted else 0, not quoted, answer.fee, answer.provider)


def best(answers: tuple[ProviderAnswer, ...]) -> ProviderAnswer | None:
    """The quoted answer that gives the beneficiary the most (None: nobody quoted)."""
    quoted = [a for a in answers if a.answered is Answered.QUOTED]
    return min(quoted, key=rank) if quoted else None


def worst(answers: tuple[ProviderAnswer, ...]) -> ProviderAnswer | None:
    """The planted bug `worst_price` chooses this one; the simulator's checker must catch it."""
    quoted = [a for a in answers if a.answered is Answered.QUOTED]
    return max(quoted, key=rank) if quoted else None


def choice_problem(quote: Quote) -> str:
    """Why `quote` is not the best of the answers it carries ("" when it is, or when it carries
    none: a quote made before several providers were asked)."""
    if not quote.alternatives:
        return ""
    for answer in quote.alternatives:
        if answer.answered is Answered.QUOTED and _repriced(quote, answer) != answer.target_amount:
            return f"{answer.provider}'s answer is not priced by the pricing rule"
    winner = best(quote.alternatives)
    if winner is None:
        return "no provider quoted, yet a quote was made"
    if quote.provider != winner.provider or quote.target_amount != winner.target_amount:
        return (
            f"{quote.provider} gives {quote.target_amount}, but {winner.provider} quoted"
            f" {winner.target_amount}"
        )
    return ""


def _repriced(quote: Quote, answer: ProviderAnswer) -> int | None:
    source, target = money.asset(quote.source_currency), money.asset(quote.target_currency)
    rate = money.parse_rate(answer.rate)
    if source is None or target is None or isinstance(rate, Result):
        return None
    priced = price(
        source=source, target=target, amount=quote.source_amount, fee=answer.fee, rate=rate
    )
    return None if isinstance(priced, Result) else priced.target_amount


def summary(answers: tuple[ProviderAnswer, ...]) -> str:
    """Why no price came back, one clause per provider (for the refusal's message)."""
    return "; ".join(
        f"{a.provider}: {a.answered.value}{f' ({a.detail})' if a.detail else ''}" for a in answers
    )
