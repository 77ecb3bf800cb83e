"""Durable timers as a function of a transfer's state.

A timer is not scheduled and forgotten: the store projects `timers_for(state)` into the timers
table in the same transaction as every transition, replacing the transfer's previous rows. A timer
therefore exists exactly while its condition does (no orphaned timers by construction), survives
a restart with the table, and rebuilds from the journal like any projection.
"""

from __future__ import annotations

import enum

import msgspec

from engine import limits
from engine.states import TERMINAL, Route, Status
from engine.transfer import TransferState, approval_deadline, approval_state


class TimerKind(enum.StrEnum):
    # QUOTED past the quote's TTL: expire or re-quote (ExpireTransfer / a new QuoteTransfer).
    QUOTE_EXPIRY = "quote_expiry"
    # CREATED awaiting approval past the approval TTL: ExpireTransfer.
    APPROVAL_EXPIRY = "approval_expiry"
    # Any non-terminal status past its time-in-state threshold (Series 9): alert ops.
    STUCK = "stuck"
    # CONFIRMED bank payout no provider accepted yet: ask again (a refused payout may find a
    # provider to move to by now).
    PAYOUT = "payout"


class Timer(msgspec.Struct, frozen=True, kw_only=True):
    kind: TimerKind
    due_at: int


class DueTimer(msgspec.Struct, frozen=True, kw_only=True):
    """A timer row that has come due, as the store reports it to the timer supervisor."""

    transfer_id: str
    kind: TimerKind
    due_at: int


def timers_for(state: TransferState) -> tuple[Timer, ...]:
    if state.status in TERMINAL:
        return ()
    timers = []
    if state.status is Status.QUOTED:
        assert state.quote is not None
        timers.append(Timer(kind=TimerKind.QUOTE_EXPIRY, due_at=state.quote.expires_at))
    if state.status is Status.CREATED and approval_state(state) == "pending":
        timers.append(Timer(kind=TimerKind.APPROVAL_EXPIRY, due_at=approval_deadline(state)))
    if (
        state.status is Status.CONFIRMED
        and state.route is Route.BANK
        and state.provider_trade_id is None
    ):
        timers.append(
            Timer(kind=TimerKind.PAYOUT, due_at=state.status_since + limits.payout_redrive_us)
        )
    threshold = limits.stuck_after_us.get(state.status.value)
    if threshold is not None:
        timers.append(Timer(kind=TimerKind.STUCK, due_at=state.status_since + threshold))
    return tuple(timers)
