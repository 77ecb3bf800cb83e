"""The transfer state machine: one table, read top to bottom.

`TRANSITIONS[(from_status, event_type)] -> to_status` is the only place that says which move is
legal. Everything else (decide, evolve, the store's projections, the API) asks `next_status`. A
route may skip a step: a wallet payout has no fiat leg, so it goes CONFIRMED -> RECONCILED and
never FIAT_SETTLED; an off-ramp payout must pass FIAT_SETTLED.

Approval is metadata on CREATED (ApprovalGranted keeps the transfer in CREATED). A dropped chain
transaction is replaced in SENT_ON_CHAIN; a reorg that removes a confirmed transaction sends the
transfer from CONFIRMED back to SENT_ON_CHAIN (with a reversal of the settlement entries). In a
pre-funded corridor the off-ramp payout is asked for (and may be rerouted) already in
SENT_ON_CHAIN, paid from the provider's prefunding while the deposit that refills it confirms.
"""

from __future__ import annotations

import enum


class Status(enum.StrEnum):
    CREATED = "CREATED"
    QUOTED = "QUOTED"
    FUNDS_LOCKED = "FUNDS_LOCKED"
    SENT_ON_CHAIN = "SENT_ON_CHAIN"
    CONFIRMED = "CONFIRMED"
    FIAT_SETTLED = "FIAT_SETTLED"
    RECONCILED = "RECONCILED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"


TERMINAL = frozenset({Status.RECONCILED, Status.FAILED, Status.CANCELLED, Status.EXPIRED})


class Route(enum.StrEnum):
    # Stablecoin to an external wallet: no fiat leg.
    WALLET = "wallet"
    # Stablecoin on-chain to an off-ramp provider, fiat paid out to a bank account.
    BANK = "bank"


S = Status
TRANSITIONS: dict[tuple[Status | None, str], Status] = {
    (None, "TransferCreated"): S.CREATED,
    (S.CREATED, "ApprovalGranted"): S.CREATED,
    (S.CREATED, "ApprovalRejected"): S.FAILED,
    (S.CREATED, "QuoteCaptured"): S.QUOTED,
    (S.CREATED, "TransferCancelled"): S.CANCELLED,
    (S.CREATED, "TransferFailed"): S.FAILED,
    (S.CREATED, "TransferExpired"): S.EXPIRED,
    (S.QUOTED, "QuoteCaptured"): S.QUOTED,
    (S.QUOTED, "FundsLocked"): S.FUNDS_LOCKED,
    (S.QUOTED, "TransferCancelled"): S.CANCELLED,
    (S.QUOTED, "TransferFailed"): S.FAILED,
    (S.QUOTED, "TransferExpired"): S.EXPIRED,
    (S.FUNDS_LOCKED, "OnChainSubmitted"): S.SENT_ON_CHAIN,
    (S.FUNDS_LOCKED, "TransferCancelled"): S.CANCELLED,
    (S.FUNDS_LOCKED, "TransferFailed"): S.FAILED,
    (S.SENT_ON_CHAIN, "OnChainReplaced"): S.SENT_ON_CHAIN,
    (S.SENT_ON_CHAIN, "OnChainConfirmed"): S.CONFIRMED,
    (S.SENT_ON_CHAIN, "OnChainReverted"): S.FAILED,
    # A pre-funded payout is asked for as soon as its deposit is broadcast.
    (S.SENT_ON_CHAIN, "OffRampInitiated"): S.SENT_ON_CHAIN,
    (S.SENT_ON_CHAIN, "OffRampRerouted"): S.SENT_ON_CHAIN,
    (S.CONFIRMED, "ChainReorged"): S.SENT_ON_CHAIN,
    (S.CONFIRMED, "OffRampInitiated"): S.CONFIRMED,
    (S.CONFIRMED, "OffRampRerouted"): S.CONFIRMED,
    (S.CONFIRMED, "FiatSettled"): S.FIAT_SETTLED,
    (S.CONFIRMED, "FundsReturned"): S.FAILED,
    (S.CONFIRMED, "Reconciled"): S.RECONCILED,
    (S.FIAT_SETTLED, "Reconciled"): S.RECONCILED,
}

# Pairs of the table a route may not use.
ROUTE_EXCLUDED: dict[Route, frozenset[tuple[Status, str]]] = {
    Route.WALLET: frozenset(
        {
            (S.SENT_ON_CHAIN, "OffRampInitiated"),
            (S.SENT_ON_CHAIN, "OffRampRerouted"),
            (S.CONFIRMED, "OffRampInitiated"),
            (S.CONFIRMED, "OffRampRerouted"),
            (S.CONFIRMED, "FiatSettled"),
            (S.CONFIRMED, "FundsReturned"),
        }
    ),
    Route.BANK: frozenset({(S.CONFIRMED, "Reconciled")}),
}

# The happy path of each route, for documentation, tests and "what comes next" in the API.
ROUTE_PATHS: dict[Route, tuple[Status, ...]] = {
    Route.WALLET: (
        S.CREATED,
        S.QUOTED,
        S.FUNDS_LOCKED,
        S.SENT_ON_CHAIN,
        S.CONFIRMED,
        S.RECONCILED,
    ),
    Route.BANK: (
        S.CREATED,
        S.QUOTED,
        S.FUNDS_LOCKED,
        S.SENT_ON_CHAIN,
        S.CONFIRMED,
        S.FIAT_SETTLED,
        S.RECONCILED,
    ),
}

# Where a hold on the client's funds exists: locked and not yet settled on-chain.
HOLDING = frozenset({S.FUNDS_LOCKED, S.SENT_ON_CHAIN})
# Where a client may still cancel: nothing has left the platform.
CANCELLABLE = frozenset({S.CREATED, S.QUOTED, S.FUNDS_LOCKED})
# Funds held or paid out (not released): what a rolling policy limit counts.
SPENDING = HOLDING | frozenset({S.CONFIRMED, S.FIAT_SETTLED, S.RECONCILED})


def next_status(route: Route, status: Status | None, event_type: str) -> Status | None:
    """The status after `event_type` in `status` on `route`, or None if the move is illegal."""
    if status is not None and (status, event_type) in ROUTE_EXCLUDED[route]:
        return None
    return TRANSITIONS.get((status, event_type))
