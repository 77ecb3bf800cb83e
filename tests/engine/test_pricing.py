"""Choosing among providers (engine.pricing): who is eligible and why not; the best price is the
highest target amount after fees, ties to the lower fee, then the name; a quote that is not the
best of the answers it carries, or carries an answer not priced by the pricing rule, is named."""

from __future__ import annotations

import msgspec

from engine import pricing
from engine.pricing import Compliance, CorridorTerms, ProviderTerms
from engine.quotes import Answered, ProviderAnswer, Quote, priced_quote

SERVED = frozenset({"USD-MXN"})


def test_eligibility_names_the_reason() -> None:
    limited = ProviderTerms(
        corridors={"USD-MXN": CorridorTerms(min_amount=10_000, max_amount=10**7)}
    )
    assert pricing.ineligible(pricing.OPEN_TERMS, SERVED, "USD-MXN", 1) == ""
    assert "does not serve" in pricing.ineligible(pricing.OPEN_TERMS, SERVED, "USD-USDC", 1)
    assert "disabled" in pricing.ineligible(ProviderTerms(enabled=False), SERVED, "USD-MXN", 1)
    suspended = ProviderTerms(compliance=Compliance.SUSPENDED)
    assert "suspended" in pricing.ineligible(suspended, SERVED, "USD-MXN", 1)
    assert "below its minimum" in pricing.ineligible(limited, SERVED, "USD-MXN", 9_999)
    assert pricing.ineligible(limited, SERVED, "USD-MXN", 10_000) == ""
    assert "above its maximum" in pricing.ineligible(limited, SERVED, "USD-MXN", 10**7 + 1)
    other = ProviderTerms(corridors={"USD-USDC": CorridorTerms()})
    assert "not in its terms" in pricing.ineligible(other, SERVED, "USD-MXN", 1)


def quoted(provider: str, target: int, fee: int) -> ProviderAnswer:
    return ProviderAnswer(
        provider=provider, answered=Answered.QUOTED, target_amount=target, fee=fee
    )


def test_best_is_the_most_for_the_beneficiary_then_the_lower_fee_then_the_name() -> None:
    answers = (
        quoted("a", 1_000, 5),
        ProviderAnswer(provider="z", answered=Answered.TIMED_OUT),
        quoted("b", 1_200, 9),
        quoted("c", 1_200, 3),
        quoted("d", 1_200, 3),
    )
    best = pricing.best(answers)
    assert best is not None and best.provider == "c"
    worst = pricing.worst(answers)
    assert worst is not None and worst.provider == "a"
    assert pricing.best((ProviderAnswer(provider="z", answered=Answered.FAILED),)) is None


def quote_from(provider: str, fee: int, rate: str) -> tuple[Quote, ProviderAnswer]:
    quote = priced_quote(
        quote_id="qt_1", provider=provider, source_currency="USD", target_currency="MXN",
        amount=100_000, fee=fee, rate=rate, payout_address=None, issued_at=1, ttl_us=30,
    )  # fmt: skip
    assert isinstance(quote, Quote)
    answer = ProviderAnswer(
        provider=provider, answered=Answered.QUOTED, target_amount=quote.target_amount,
        fee=fee, rate=quote.rate,
    )  # fmt: skip
    return quote, answer


def test_choice_problem_catches_a_worse_pick_and_an_answer_off_the_pricing_rule() -> None:
    cheap, cheap_answer = quote_from("bitso-sim", 500, "17.20000000")
    dear, dear_answer = quote_from("rampa-sim", 350, "17.21000000")
    both = (cheap_answer, dear_answer)
    assert dear.target_amount > cheap.target_amount
    assert pricing.choice_problem(msgspec.structs.replace(dear, alternatives=both)) == ""
    wrong = pricing.choice_problem(msgspec.structs.replace(cheap, alternatives=both))
    assert "rampa-sim quoted" in wrong
    lying = msgspec.structs.replace(dear_answer, target_amount=dear_answer.target_amount + 1)
    problem = pricing.choice_problem(
        msgspec.structs.replace(dear, alternatives=(cheap_answer, lying))
    )
    assert "not priced by the pricing rule" in problem
    assert pricing.choice_problem(cheap) == "", "a quote from before the desk carries no answers"
