"""Posting rules: every transition's entries balance per currency and say what the chart says."""

from __future__ import annotations

import pytest

from engine import commands as c
from engine import events as ev
from engine import invariants, ledger
from engine.ledger import AccountKind, EntryType
from engine.states import Route
from tests.builders import TREASURY, walk_to


@pytest.mark.parametrize(
    ("account", "kind"),
    [
        ("client:acme:available", AccountKind.CLIENT_AVAILABLE),
        ("client:acme:held", AccountKind.CLIENT_HELD),
        ("treasury:ethereum:0xabc", AccountKind.TREASURY),
        ("provider:bitso-sim", AccountKind.PROVIDER),
        ("bank:bank-sim", AccountKind.BANK),
        ("revenue:fees", AccountKind.FEES_REVENUE),
        ("fx:position", AccountKind.FX_POSITION),
        ("suspense", AccountKind.SUSPENSE),
        ("equity:capital", AccountKind.EQUITY),
        ("client:acme", None),
        ("bogus", None),
    ],
)
def test_chart_of_accounts(account: str, kind: AccountKind | None) -> None:
    assert ledger.account_kind(account) is kind


def test_only_client_accounts_are_guarded_against_going_negative() -> None:
    assert {AccountKind.CLIENT_AVAILABLE, AccountKind.CLIENT_HELD} == ledger.NON_NEGATIVE


def test_hold_and_release_are_mirror_images() -> None:
    hold = ledger.hold("acme", "USD", 500)
    mirrored = {
        ledger.Entry(
            account=e.account,
            currency=e.currency,
            debit=e.credit,
            credit=e.debit,
            type=EntryType.RELEASE,
        )
        for e in hold
    }
    assert set(ledger.release("acme", "USD", 500)) == mirrored
    assert invariants.unbalanced(hold) == {}


def test_reversal_cancels_exactly() -> None:
    w = walk_to("CONFIRMED", route=Route.BANK)
    confirmed = w.events[-1]
    assert isinstance(confirmed, ev.OnChainConfirmed)
    both = confirmed.entries + ledger.reverse(confirmed.entries)
    assert all(v == 0 for v in invariants.net_balances(both).values())
    assert {e.type for e in ledger.reverse(confirmed.entries)} == {EntryType.REVERSAL}


def _net(entries: ledger.Entries) -> dict[tuple[str, str], int]:
    return {k: v for k, v in invariants.net_balances(entries).items() if v}


def test_wallet_settlement_converts_at_the_fx_position() -> None:
    w = walk_to("CONFIRMED")
    assert w.s.quote is not None
    q = w.s.quote
    confirmed = w.events[-1]
    assert isinstance(confirmed, ev.OnChainConfirmed)
    assert _net(confirmed.entries) == {
        ("client:acme:held", "USD"): q.source_amount,
        ("revenue:fees", "USD"): -q.fee,
        ("fx:position", "USD"): -(q.source_amount - q.fee),
        ("fx:position", "USDC"): q.rail_amount,
        (f"treasury:ethereum:{TREASURY}", "USDC"): -q.rail_amount,
    }


def test_offramp_settles_through_the_provider() -> None:
    w = walk_to("FIAT_SETTLED", route=Route.BANK)
    assert w.s.quote is not None
    q = w.s.quote
    all_entries = tuple(e for event in w.events for e in ev.entries_of(event))
    # The client paid exactly the amount; the treasury delivered the rail amount; the provider's
    # account is back to zero once the fiat is paid; MXN never enters the books.
    assert _net(all_entries) == {
        ("client:acme:available", "USD"): q.source_amount,
        ("revenue:fees", "USD"): -q.fee,
        ("fx:position", "USD"): -(q.source_amount - q.fee),
        ("fx:position", "USDC"): q.rail_amount,
        (f"treasury:ethereum:{TREASURY}", "USDC"): -q.rail_amount,
    }


@pytest.mark.parametrize("route", list(Route))
@pytest.mark.parametrize("target", ["RECONCILED", "CANCELLED", "FAILED", "EXPIRED"])
def test_every_journey_balances_and_ends_holding_nothing(route: Route, target: str) -> None:
    w = walk_to(target, route=route)
    for event in w.events:
        assert invariants.entries_problem(ev.entries_of(event)) is None, event
    all_entries = tuple(e for event in w.events for e in ev.entries_of(event))
    assert invariants.currency_totals(invariants.net_balances(all_entries)) == []
    held = invariants.held_by_transfer({w.s.transfer_id: all_entries})
    assert held == {w.s.transfer_id: 0}


def test_deposit_credits_the_client_from_the_bank() -> None:
    entries = ledger.deposit("acme", "USD", 10_000, "bank-sim")
    assert _net(entries) == {
        ("bank:bank-sim", "USD"): 10_000,
        ("client:acme:available", "USD"): -10_000,
    }


def test_cancel_after_lock_restores_the_balance() -> None:
    w = walk_to("FUNDS_LOCKED")
    w.apply(c.CancelTransfer(by="alice"))
    entries = tuple(e for event in w.events for e in ev.entries_of(event))
    assert _net(entries) == {}
