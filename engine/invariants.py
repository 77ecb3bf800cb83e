"""Ledger invariants as plain functions, shared by the engine (before an append), the store (after
the read-back and in `verify`) and the simulator's checker (after every step).

Each returns what is wrong (empty when all holds), so a caller can report the first bad row rather
than only "false".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping

import msgspec

from engine import ledger
from engine.ledger import Entry


class Violation(msgspec.Struct, frozen=True, kw_only=True):
    check: str
    detail: str


def entry_problem(entry: Entry) -> str | None:
    """Debit XOR credit, positive, in a known account kind."""
    if entry.debit < 0 or entry.credit < 0:
        return "negative amount"
    if (entry.debit > 0) == (entry.credit > 0):
        return "exactly one of debit and credit must be positive"
    if ledger.account_kind(entry.account) is None:
        return f"unknown account {entry.account!r}"
    return None


def unbalanced(entries: Iterable[Entry]) -> dict[str, int]:
    """Currency -> debits minus credits, for every currency that does not balance."""
    net: dict[str, int] = {}
    for e in entries:
        net[e.currency] = net.get(e.currency, 0) + e.debit - e.credit
    return {currency: amount for currency, amount in net.items() if amount}


def entries_problem(entries: Iterable[Entry]) -> str | None:
    """What is wrong with one event's entries as a ledger transaction, or None: every line a
    debit or a credit of a known account, and every currency balanced."""
    entries = tuple(entries)
    if not entries:
        return None  # most events post nothing
    for e in entries:
        if (problem := entry_problem(e)) is not None:
            return f"{e.account} {e.currency}: {problem}"
    if off := unbalanced(entries):
        return f"entries do not balance: {off}"
    return None


Balances = Mapping[tuple[str, str], int]
"""(account, currency) -> debits minus credits."""


def net_balances(entries: Iterable[Entry]) -> dict[tuple[str, str], int]:
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for e in entries:
        totals[(e.account, e.currency)] += e.debit - e.credit
    return dict(totals)


def credit_balance(balances: Balances, account: str, currency: str) -> int:
    """The balance of a credit-normal (client) account: credits minus debits."""
    return -balances.get((account, currency), 0)


def negative_accounts(balances: Balances) -> list[Violation]:
    """Client available and held balances may never be below zero."""
    return [
        Violation(
            check="no_negative_client_balance",
            detail=f"{account} {currency} is {-net} (credits minus debits)",
        )
        for (account, currency), net in sorted(balances.items())
        if ledger.account_kind(account) in ledger.NON_NEGATIVE and -net < 0
    ]


def currency_totals(balances: Balances) -> list[Violation]:
    """Every currency sums to zero over all accounts."""
    totals: dict[str, int] = defaultdict(int)
    for (_, currency), net in balances.items():
        totals[currency] += net
    return [
        Violation(check="currency_sums_to_zero", detail=f"{currency} sums to {total}")
        for currency, total in sorted(totals.items())
        if total
    ]


def held_by_transfer(entries_by_transfer: Mapping[str, Iterable[Entry]]) -> dict[str, int]:
    """Transfer -> the amount it holds on client held accounts (credits minus debits)."""
    held: dict[str, int] = {}
    for transfer_id, entries in entries_by_transfer.items():
        held[transfer_id] = sum(
            e.credit - e.debit
            for e in entries
            if ledger.account_kind(e.account) is ledger.AccountKind.CLIENT_HELD
        )
    return held


def held_at_terminal(held: Mapping[str, int], terminal: Iterable[str]) -> list[Violation]:
    """A transfer that has ended holds nothing."""
    return [
        Violation(check="held_zero_at_terminal", detail=f"{tid} still holds {held[tid]}")
        for tid in sorted(terminal)
        if held.get(tid, 0) != 0
    ]


def held_matches_state(held: Mapping[str, int], expected: Mapping[str, int]) -> list[Violation]:
    """What the ledger holds for each transfer equals what its state says it holds."""
    return [
        Violation(
            check="held_matches_state",
            detail=f"{tid} holds {held.get(tid, 0)} in the ledger, its state says {amount}",
        )
        for tid, amount in sorted(expected.items())
        if held.get(tid, 0) != amount
    ]
