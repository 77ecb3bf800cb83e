"""Effects: what the runtime must do in the world after the events that ask for it are durable.

Actors run effects through ports and feed the outcomes back as commands. Effects are never stored
separately: they follow from the journaled state (`transfer.pending_effects`), which is how a
restart re-drives every requested-but-unfinished effect (Series 4, safe retries by state).
Timers and webhook notifications are not effects: they are projections of the state and the
events (engine.timers, the store's outbox), so they cannot be forgotten between a commit and a
crash.
"""

from __future__ import annotations

import msgspec

from engine.chain import Mined


class _Effect(msgspec.Struct, frozen=True, kw_only=True, tag_field="effect"):
    transfer_id: str


class RequestQuote(_Effect, tag="RequestQuote", frozen=True, kw_only=True):
    # A client-chosen quote to fetch and apply instead of asking for a fresh one.
    quote_id: str | None = None


class ReserveFunds(_Effect, tag="ReserveFunds", frozen=True, kw_only=True):
    """Send LockFunds to the transfer: the hold is a conditional posting decided in the store."""


class SignTransaction(_Effect, tag="SignTransaction", frozen=True, kw_only=True):
    chain: str
    to_address: str
    currency: str
    amount: int
    # Set for a replacement: same nonce, both fees raised above these (engine.chain.outbids).
    nonce: int | None = None
    min_max_fee_per_gas: int | None = None
    min_priority_fee_per_gas: int | None = None


class BroadcastTransaction(_Effect, tag="BroadcastTransaction", frozen=True, kw_only=True):
    tx_hash: str
    raw: str


class WatchTransaction(_Effect, tag="WatchTransaction", frozen=True, kw_only=True):
    tx_hashes: tuple[str, ...]
    # The confirmation the journal holds, for a transfer already CONFIRMED: watching resumes from
    # it (after a restart too), so a reorg that takes the payment away is still seen.
    confirmed: Mined | None = None


class StartOffRamp(_Effect, tag="StartOffRamp", frozen=True, kw_only=True):
    provider: str
    quote_id: str
    # The provider pays out of the stablecoin it holds for us (the payout was rerouted to it),
    # not out of a deposit for this payout.
    prefunded: bool = False


class WatchSettlement(_Effect, tag="WatchSettlement", frozen=True, kw_only=True):
    provider: str
    provider_trade_id: str


class RequestReconciliation(_Effect, tag="RequestReconciliation", frozen=True, kw_only=True):
    pass


Effect = (
    RequestQuote
    | ReserveFunds
    | SignTransaction
    | BroadcastTransaction
    | WatchTransaction
    | StartOffRamp
    | WatchSettlement
    | RequestReconciliation
)
