"""Timers follow from state: each exists exactly while its condition does."""

from __future__ import annotations

from engine import commands as c
from engine import limits
from engine.states import Route
from engine.timers import TimerKind, timers_for
from tests.builders import walk_to


def test_quoted_transfers_have_a_quote_expiry_and_a_stuck_alarm() -> None:
    w = walk_to("QUOTED")
    assert w.s.quote is not None
    kinds = {t.kind: t.due_at for t in timers_for(w.s)}
    assert kinds == {
        TimerKind.QUOTE_EXPIRY: w.s.quote.expires_at,
        TimerKind.STUCK: w.s.status_since + limits.stuck_after_us["QUOTED"],
    }


def test_pending_approval_expires() -> None:
    w = walk_to("CREATED_PENDING")
    kinds = {t.kind for t in timers_for(w.s)}
    assert kinds == {TimerKind.APPROVAL_EXPIRY, TimerKind.STUCK}


def test_terminal_transfers_have_no_timers() -> None:
    for status in ("RECONCILED", "FAILED", "CANCELLED", "EXPIRED"):
        assert timers_for(walk_to(status).s) == ()


def test_the_stuck_alarm_restarts_with_each_status() -> None:
    w = walk_to("SENT_ON_CHAIN")
    (stuck,) = timers_for(w.s)
    assert stuck.due_at == w.s.status_since + limits.stuck_after_us["SENT_ON_CHAIN"]


def test_a_bank_payout_no_provider_accepted_is_asked_for_again_until_one_does() -> None:
    w = walk_to("CONFIRMED", route=Route.BANK)
    kinds = {t.kind: t.due_at for t in timers_for(w.s)}
    assert kinds[TimerKind.PAYOUT] == w.s.status_since + limits.payout_redrive_us
    w.apply(c.RerouteOffRamp(provider="conduit-sim", previous="bitso-sim", reason="refused"))
    assert TimerKind.PAYOUT in {t.kind for t in timers_for(w.s)}
    w.apply(c.InitiateOffRamp(provider_trade_id="CND-1"))
    assert TimerKind.PAYOUT not in {t.kind for t in timers_for(w.s)}
    assert TimerKind.PAYOUT not in {t.kind for t in timers_for(walk_to("CONFIRMED").s)}
