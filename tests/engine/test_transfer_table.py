"""Every (status, command) pair, on both routes, against a table of expected answers.

For each status a transfer can be in (plus CREATED awaiting approval), built through the engine
with valid commands, every command type is decided with a canonical instance. The answer must be
exactly the table's: "ok" (events that move the transfer to the status the transition table
names), "noop" (ok, nothing to do: a retried or duplicated command), or a named Result. A new
status or command without a row here fails `test_table_covers_every_pair`.
"""

from __future__ import annotations

import pytest

from engine import commands as c
from engine import events as ev
from engine import limits
from engine.results import Result
from engine.states import Route, next_status
from engine.transfer import TransferState, decide, evolve_all, pending_effects
from tests.builders import (
    STATUSES_BY_ROUTE,
    block_hash,
    create_command,
    quote_for,
    signed_tx,
    walk_to,
)

OK, NOOP = "ok", "noop"
R = Result
HOURS_48 = 48 * 3600 * 1_000_000


def canonical(command: str, state: TransferState) -> c.TransferCommand:
    latest = state.txs[-1].tx_hash if state.txs else block_hash(999)
    match command:
        case "QuoteTransfer":
            return c.QuoteTransfer(quote=quote_for(state, state.updated_at + 1_000, n=77))
        case "LockFunds":
            return c.LockFunds()
        case "SubmitOnChain":
            return c.SubmitOnChain(tx=signed_tx(state, salt=5))
        case "ReplaceDroppedTx":
            fee = (state.txs[-1].max_fee_per_gas if state.txs else 1) * 2
            return c.ReplaceDroppedTx(tx=signed_tx(state, fee=fee, salt=6))
        case "ObserveConfirmation":
            return c.ObserveConfirmation(
                tx_hash=latest,
                block_number=200,
                block_hash=block_hash(200),
                confirmations=limits.confirmations_required,
            )
        case "ObserveReorg":
            mined = state.mined.tx_hash if state.mined else latest
            return c.ObserveReorg(tx_hash=mined, block_hash=block_hash(100))
        case "ObserveRevert":
            return c.ObserveRevert(tx_hash=latest, block_number=200)
        case "InitiateOffRamp":
            return c.InitiateOffRamp(provider_trade_id="trade-1")
        case "RerouteOffRamp":
            return c.RerouteOffRamp(
                provider="conduit-sim", previous="bitso-sim", reason="bitso-sim refused it"
            )
        case "MarkFiatSettled":
            amount = state.quote.target_amount if state.quote else 1
            return c.MarkFiatSettled(bank_reference="SPEI-1", amount=amount)
        case "RecordFundsReturned":
            return c.RecordFundsReturned(reference="RET-1")
        case "Reconcile":
            return c.Reconcile(evidence=("evidence-1",))
        case "CancelTransfer":
            return c.CancelTransfer(by="alice", reason="changed my mind")
        case "FailTransfer":
            return c.FailTransfer(code="provider_unavailable", message="test")
        case "ExpireTransfer":
            return c.ExpireTransfer()
        case "ApproveTransfer":
            return c.ApproveTransfer(by="bob")
        case "RejectTransfer":
            return c.RejectTransfer(by="bob", reason="no")
    raise AssertionError(command)


ALL = (
    "CREATED", "CREATED_PENDING", "QUOTED", "FUNDS_LOCKED", "SENT_ON_CHAIN", "CONFIRMED",
    "FIAT_SETTLED", "RECONCILED", "FAILED", "CANCELLED", "EXPIRED",
)  # fmt: skip


def row(default: object, **cells: object) -> dict[str, object]:
    """Expected answers for one command: `default` everywhere but the named statuses."""
    return {status: cells.get(status, default) for status in ALL}


INVALID = R.command_invalid_for_status
# command -> status -> expected, for the wallet route; BANK_OVERRIDES below.
EXPECTED: dict[str, dict[str, object]] = {
    "QuoteTransfer": row(
        INVALID, CREATED=OK, CREATED_PENDING=R.approval_pending, QUOTED=R.quote_not_expired
    ),
    "LockFunds": row(
        INVALID,
        QUOTED=OK,
        FUNDS_LOCKED=NOOP,
        SENT_ON_CHAIN=NOOP,
        CONFIRMED=NOOP,
        FIAT_SETTLED=NOOP,
        RECONCILED=NOOP,
    ),
    "SubmitOnChain": row(
        INVALID,
        FUNDS_LOCKED=OK,
        SENT_ON_CHAIN=R.transaction_already_submitted,
        CONFIRMED=R.transaction_already_submitted,
        FIAT_SETTLED=R.transaction_already_submitted,
    ),
    "ReplaceDroppedTx": row(INVALID, SENT_ON_CHAIN=OK),
    "ObserveConfirmation": row(
        INVALID, SENT_ON_CHAIN=OK, CONFIRMED=NOOP, FIAT_SETTLED=NOOP, RECONCILED=NOOP
    ),
    "ObserveReorg": row(INVALID, SENT_ON_CHAIN=NOOP, CONFIRMED=OK),
    "ObserveRevert": row(INVALID, SENT_ON_CHAIN=OK),
    "InitiateOffRamp": row(INVALID),
    "RerouteOffRamp": row(INVALID),
    "MarkFiatSettled": row(INVALID),
    "RecordFundsReturned": row(INVALID),
    "Reconcile": row(INVALID, CONFIRMED=OK, RECONCILED=NOOP),
    "CancelTransfer": row(
        R.transfer_not_cancellable,
        CREATED=OK,
        CREATED_PENDING=OK,
        QUOTED=OK,
        FUNDS_LOCKED=OK,
        CANCELLED=NOOP,
    ),
    "FailTransfer": row(
        INVALID, CREATED=OK, CREATED_PENDING=OK, QUOTED=OK, FUNDS_LOCKED=OK, FAILED=NOOP
    ),
    "ExpireTransfer": row(INVALID, CREATED_PENDING=OK, QUOTED=OK, EXPIRED=NOOP),
    "ApproveTransfer": row(R.transfer_not_awaiting_approval, CREATED_PENDING=OK),
    "RejectTransfer": row(R.transfer_not_awaiting_approval, CREATED_PENDING=OK),
}
BANK_OVERRIDES: dict[str, dict[str, object]] = {
    "InitiateOffRamp": {"CONFIRMED": OK, "FIAT_SETTLED": NOOP, "RECONCILED": NOOP},
    "RerouteOffRamp": {
        "CONFIRMED": OK,
        "FIAT_SETTLED": R.offramp_already_initiated,
        "RECONCILED": R.offramp_already_initiated,
    },
    "MarkFiatSettled": {
        "CONFIRMED": R.offramp_not_initiated,
        "FIAT_SETTLED": NOOP,
        "RECONCILED": NOOP,
    },
    "RecordFundsReturned": {"CONFIRMED": OK},
    "Reconcile": {"CONFIRMED": INVALID, "FIAT_SETTLED": OK},
}


def expected(route: Route, status: str, command: str) -> object:
    if route is Route.BANK and status in BANK_OVERRIDES.get(command, {}):
        return BANK_OVERRIDES[command][status]
    return EXPECTED[command][status]


def _now_for(command: str, state: TransferState) -> int:
    # Expiry is decided long after every deadline; everything else a moment after the last event.
    return state.updated_at + (HOURS_48 if command == "ExpireTransfer" else 1_000)


CASES = [
    (route, status, command)
    for route in Route
    for status in STATUSES_BY_ROUTE[route]
    for command in sorted(EXPECTED)
]


def test_table_covers_every_pair() -> None:
    assert set(EXPECTED) == set(c.COMMAND_TYPES) - {"CreateTransfer"}
    for command, cells in EXPECTED.items():
        assert set(cells) == set(ALL), command


@pytest.mark.parametrize(("route", "status", "command"), CASES)
def test_pair(route: Route, status: str, command: str) -> None:
    state = walk_to(status, route=route).s
    decision = decide(state, canonical(command, state), _now_for(command, state))
    want = expected(route, status, command)
    if want == NOOP:
        assert (decision.result, decision.events) == (Result.ok, ()), decision
    elif want == OK:
        assert decision.result is Result.ok and decision.events, decision
        after = evolve_all(state, decision.events)
        for event in decision.events:
            assert next_status(route, state.status, ev.event_type(event)) is not None
        assert after.version == state.version + len(decision.events)
        assert decision.effects == pending_effects(after)
    else:
        assert decision.result is want, (decision.result, want)
        assert decision.events == () and decision.effects == ()


@pytest.mark.parametrize(("route", "status"), [(r, s) for r in Route for s in STATUSES_BY_ROUTE[r]])
def test_create_on_an_existing_transfer_is_refused(route: Route, status: str) -> None:
    state = walk_to(status, route=route).s
    decision = decide(state, create_command(1, route=route), state.updated_at + 1)
    assert decision.result is Result.transfer_exists


@pytest.mark.parametrize("command", sorted(EXPECTED))
def test_commands_on_a_missing_transfer_are_refused(command: str) -> None:
    state = walk_to("CONFIRMED").s
    decision = decide(None, canonical(command, state), state.updated_at + 1)
    assert decision.result is Result.transfer_not_found
