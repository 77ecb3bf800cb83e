"""The invariant functions report what is wrong, so each check can name its first bad row."""

from __future__ import annotations

from engine import invariants, ledger
from engine.ledger import Entry, EntryType


def test_entry_problems() -> None:
    good = Entry(account="suspense", currency="USD", debit=1, type=EntryType.ADJUSTMENT)
    assert invariants.entry_problem(good) is None
    both = Entry(account="suspense", currency="USD", debit=1, credit=1, type=EntryType.ADJUSTMENT)
    neither = Entry(account="suspense", currency="USD", type=EntryType.ADJUSTMENT)
    negative = Entry(account="suspense", currency="USD", debit=-1, type=EntryType.ADJUSTMENT)
    unknown = Entry(account="nowhere", currency="USD", debit=1, type=EntryType.ADJUSTMENT)
    assert "exactly one" in (invariants.entry_problem(both) or "")
    assert "exactly one" in (invariants.entry_problem(neither) or "")
    assert "negative" in (invariants.entry_problem(negative) or "")
    assert "unknown account" in (invariants.entry_problem(unknown) or "")


def test_balance_per_currency() -> None:
    entries = (
        *ledger.hold("acme", "USD", 5),
        ledger.debit("suspense", "USDC", 3, EntryType.ADJUSTMENT),
    )
    assert invariants.unbalanced(entries) == {"USDC": 3}
    assert "do not balance" in (invariants.entries_problem(entries) or "")


def test_negative_client_balances_are_named() -> None:
    balances = {("client:acme:available", "USD"): 7, ("bank:b", "USD"): -7}
    (violation,) = invariants.negative_accounts(balances)
    assert "client:acme:available USD is -7" in violation.detail
    # Asset accounts may be negative in this convention; they are not guarded.
    assert invariants.negative_accounts({("bank:b", "USD"): 7}) == []


def test_currency_totals() -> None:
    assert invariants.currency_totals({("a", "USD"): 5, ("b", "USD"): -5}) == []
    (violation,) = invariants.currency_totals({("a", "USD"): 5})
    assert violation.detail == "USD sums to 5"


def test_holds() -> None:
    held = invariants.held_by_transfer({"tr_1": ledger.hold("acme", "USD", 9), "tr_2": ()})
    assert held == {"tr_1": 9, "tr_2": 0}
    assert invariants.held_at_terminal(held, ["tr_2"]) == []
    assert invariants.held_at_terminal(held, ["tr_1"])[0].detail == "tr_1 still holds 9"
    assert invariants.held_matches_state(held, {"tr_1": 9, "tr_2": 0}) == []
    assert len(invariants.held_matches_state(held, {"tr_1": 0})) == 1
