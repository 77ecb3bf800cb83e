"""Rebalancing moves (Series 7: "auto-rebalance when thresholds breached", with a person in the
loop): our stablecoin moved from a treasury wallet to an off-ramp provider's prefunding, to bring
a balance back inside its band (engine.liquidity's plan suggests the moves).

Maker-checker, as with overrides: one operator proposes a move with a reason, a second approves
or rejects it; the same person cannot do both (compared by user, not by key). The destination is
fixed when the move is proposed, from the operator's address book (`[providers.NAME]
deposit_addresses`, never from a provider's answer), so what the approver sees is what is paid.

An approved move is paid like a transfer's payment and by the same machinery: custody signs a
token transfer from the treasury wallet with a nonce from the one nonce book; the signed
transaction is journaled (RebalanceSubmitted) before it is broadcast; the confirmation watcher
re-sends the same bytes when the node drops them, has them replaced (same nonce, higher fees,
RebalanceReplaced) when they sit unmined, and reports a reorg that takes the confirmed payment
away (RebalanceReorged reverses the booking; the same bytes go again). It is booked when it has
its confirmations (RebalanceConfirmed: Dr provider / Cr treasury wallet), as a transfer's is.

A move out of a provider's prefunding (to a treasury wallet, or to another provider's deposit
address from the address book) is a **withdrawal**: once approved it is asked of the provider
(OffRamp.withdraw, idempotent by the move's id; RebalanceRequested), the provider sends it from
its own address and reports the transaction (RebalanceSent), and the same confirmation watcher
follows that transaction to its confirmations, when it is booked as a payment is. Only a move
between two treasury wallets is refused (`rebalance_route_unsupported`): we hold one per chain.

Pure: the caller reads the store and the clock, journals what these functions return, and runs
the effects `pending` names.
"""

from __future__ import annotations

import enum

import msgspec

from engine import chain, ledger, limits
from engine import events as ev
from engine.chain import Mined, SignedTx
from engine.destinations import CHAINS, is_address
from engine.ledger import AccountKind, account_kind
from engine.results import Result

REASON_LENGTH_MAX = 400


class Kind(enum.StrEnum):
    # From a treasury wallet: we sign and send it.
    PAYMENT = "payment"
    # Out of a provider's prefunding: the provider sends it.
    WITHDRAWAL = "withdrawal"


class State(enum.StrEnum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    REJECTED = "rejected"
    # A withdrawal the provider accepted and has not sent yet.
    REQUESTED = "requested"
    SUBMITTED = "submitted"
    CONFIRMED = "confirmed"
    FAILED = "failed"


# Nothing more happens to a move in these states (a confirmed one is watched until its block is
# final, but its booking is done unless a reorg undoes it).
ENDED = frozenset({State.REJECTED, State.FAILED})


class Rebalance(msgspec.Struct, frozen=True, kw_only=True):
    rebalance_id: str
    from_account: str
    to_account: str
    currency: str
    amount: int
    chain: str
    to_address: str
    reason: str
    proposed_by: str
    proposed_at: int
    kind: Kind = Kind.PAYMENT
    state: State = State.PROPOSED
    decided_by: str | None = None
    decided_at: int | None = None
    decision_reason: str = ""
    # The signed payment and its replacements (same nonce), oldest first.
    txs: tuple[SignedTx, ...] = ()
    mined: Mined | None = None
    confirmed_at: int | None = None
    failure: str | None = None
    # A withdrawal: the provider's id for it, and the transaction it sent.
    withdrawal_id: str | None = None
    withdrawal_tx: str | None = None
    version: int = 0

    @property
    def provider(self) -> str:
        """The provider that sends a withdrawal (the one a payment goes to)."""
        account = self.from_account if self.kind is Kind.WITHDRAWAL else self.to_account
        return account.split(":", 1)[1]


class Route(msgspec.Struct, frozen=True, kw_only=True):
    chain: str
    to_address: str
    kind: Kind = Kind.PAYMENT


def route(
    from_account: str,
    to_account: str,
    wallets: dict[str, str],
    address_book: dict[str, dict[str, str]],
) -> Route | Result:
    """How a move is paid: from one of our treasury wallets (`wallets`: chain -> the custody
    address) to a provider's deposit address from the address book (provider -> chain ->
    address); or withdrawn from a provider in the book to a treasury wallet or to another
    provider's deposit address."""
    source, target = account_kind(from_account), account_kind(to_account)
    if from_account == to_account or (
        source is AccountKind.TREASURY and target is not AccountKind.PROVIDER
    ):
        return Result.rebalance_route_unsupported
    if source not in (AccountKind.TREASURY, AccountKind.PROVIDER) or target not in (
        AccountKind.TREASURY,
        AccountKind.PROVIDER,
    ):
        return Result.rebalance_route_unsupported
    if source is AccountKind.TREASURY:
        chain_name = _our_wallet(from_account, wallets)
        if chain_name is None:
            return Result.rebalance_account_unknown
        deposit = _deposit(to_account, chain_name, address_book)
        if deposit is None:
            return Result.rebalance_account_unknown
        return Route(chain=chain_name, to_address=deposit)
    if from_account.split(":", 1)[1] not in address_book:
        return Result.rebalance_account_unknown  # not a provider we hold prefunding with
    if target is AccountKind.TREASURY:
        chain_name = _our_wallet(to_account, wallets)
        if chain_name is None:
            return Result.rebalance_account_unknown
        return Route(chain=chain_name, to_address=wallets[chain_name].lower(), kind=Kind.WITHDRAWAL)
    for chain_name in sorted(CHAINS):
        deposit = _deposit(to_account, chain_name, address_book)
        if deposit is not None:
            return Route(chain=chain_name, to_address=deposit, kind=Kind.WITHDRAWAL)
    return Result.rebalance_account_unknown


def _our_wallet(account: str, wallets: dict[str, str]) -> str | None:
    """The chain of a treasury account that is our custody wallet there (None: not ours)."""
    _, chain_name, address = account.split(":")
    if chain_name not in CHAINS or wallets.get(chain_name, "").lower() != address.lower():
        return None
    return chain_name


def _deposit(account: str, chain_name: str, address_book: dict[str, dict[str, str]]) -> str | None:
    deposit = address_book.get(account.split(":", 1)[1], {}).get(chain_name)
    return deposit.lower() if deposit is not None and is_address(deposit) else None


def _reason_ok(reason: str) -> bool:
    return 0 < len(reason.strip()) <= REASON_LENGTH_MAX and reason.isprintable()


def propose(
    rebalance_id: str,
    *,
    from_account: str,
    to_account: str,
    currency: str,
    amount: int,
    reason: str,
    by: str,
    now: int,
    wallets: dict[str, str],
    address_book: dict[str, dict[str, str]],
) -> ev.RebalanceProposed | Result:
    if amount <= 0:
        return Result.amount_must_be_positive
    if not _reason_ok(reason):
        return Result.command_malformed
    found = route(from_account, to_account, wallets, address_book)
    if isinstance(found, Result):
        return found
    return ev.RebalanceProposed(
        at=now, rebalance_id=rebalance_id, from_account=_normal(from_account),
        to_account=_normal(to_account), currency=currency, amount=amount, chain=found.chain,
        to_address=found.to_address, reason=reason, by=by, kind=found.kind.value,
    )  # fmt: skip


def _normal(account: str) -> str:
    """A treasury account as the ledger names it (its address in lower case)."""
    return account.lower() if account_kind(account) is AccountKind.TREASURY else account


def decide(
    move: Rebalance, by: str, approved: bool, reason: str, now: int, available: int
) -> ev.RebalanceDecided | Result:
    """The second operator's decision: never the proposer's own. An approval needs the source
    wallet to hold the amount by the ledger (`available`) now."""
    if move.state is not State.PROPOSED:
        return Result.rebalance_not_pending
    if by == move.proposed_by:
        return Result.maker_cannot_approve
    if not approved and not _reason_ok(reason):
        return Result.command_malformed
    if approved and available < move.amount:
        return Result.insufficient_funds
    return ev.RebalanceDecided(
        at=now, rebalance_id=move.rebalance_id, by=by, approved=approved, reason=reason
    )


def tx_hashes(move: Rebalance) -> tuple[str, ...]:
    """The transactions that may carry the move: ours (a payment and its replacements), or the
    provider's (a withdrawal)."""
    if move.kind is Kind.WITHDRAWAL:
        return (move.withdrawal_tx,) if move.withdrawal_tx is not None else ()
    return tuple(t.tx_hash for t in move.txs)


def requested(
    move: Rebalance, withdrawal_id: str, now: int
) -> ev.RebalanceRequested | Result | None:
    """The provider accepted the withdrawal, under its id (None: recorded already)."""
    if move.withdrawal_id == withdrawal_id:
        return None
    if move.kind is not Kind.WITHDRAWAL or move.state is not State.APPROVED:
        return Result.command_invalid_for_status
    if not 0 < len(withdrawal_id) <= 128 or not withdrawal_id.isprintable():
        return Result.command_malformed
    return ev.RebalanceRequested(
        at=now, rebalance_id=move.rebalance_id, withdrawal_id=withdrawal_id
    )


def sent(move: Rebalance, tx_hash: str, now: int) -> ev.RebalanceSent | Result | None:
    """The provider reports the transaction it sent the withdrawal in."""
    if move.withdrawal_tx == tx_hash:
        return None
    if move.kind is not Kind.WITHDRAWAL or move.state is not State.REQUESTED:
        return Result.command_invalid_for_status
    if not chain.is_tx_hash(tx_hash):
        return Result.command_malformed
    return ev.RebalanceSent(at=now, rebalance_id=move.rebalance_id, tx_hash=tx_hash)


def _pays_as_approved(move: Rebalance, tx: chain.SignedTx) -> bool:
    _, _, wallet = move.from_account.split(":")
    return (
        chain.well_formed(tx)
        and tx.chain == move.chain
        and tx.from_address.lower() == wallet
        and tx.to_address.lower() == move.to_address
        and (tx.currency, tx.amount) == (move.currency, move.amount)
    )


def submit(move: Rebalance, tx: chain.SignedTx, now: int) -> ev.RebalanceSubmitted | Result | None:
    """The signed payment, to be journaled before it is broadcast (None: it already is)."""
    if tx.tx_hash in tx_hashes(move):
        return None
    if move.kind is not Kind.PAYMENT or move.state is not State.APPROVED:
        return Result.command_invalid_for_status
    if not _pays_as_approved(move, tx):
        return Result.transaction_mismatch
    return ev.RebalanceSubmitted(at=now, rebalance_id=move.rebalance_id, tx=tx)


def replace(move: Rebalance, tx: chain.SignedTx, now: int) -> ev.RebalanceReplaced | Result | None:
    if tx.tx_hash in tx_hashes(move):
        return None
    if move.kind is not Kind.PAYMENT or move.state is not State.SUBMITTED:
        return Result.command_invalid_for_status
    latest = move.txs[-1]
    if not _pays_as_approved(move, tx) or not chain.same_payment(latest, tx):
        return Result.transaction_mismatch
    if not chain.outbids(latest, tx):
        return Result.transaction_mismatch
    if len(move.txs) > limits.transaction_replacements_max:
        return Result.transaction_replacements_exceeded
    return ev.RebalanceReplaced(
        at=now, rebalance_id=move.rebalance_id, tx=tx, replaces=latest.tx_hash
    )


def entries(move: Rebalance) -> ledger.Entries:
    return ledger.rebalance(move.from_account, move.to_account, move.currency, move.amount)


def confirm(
    move: Rebalance, mined: chain.Mined, confirmations: int, now: int
) -> ev.RebalanceConfirmed | Result | None:
    if move.mined is not None and move.mined.tx_hash == mined.tx_hash:
        return None
    if move.state is not State.SUBMITTED:
        return Result.command_invalid_for_status
    if mined.tx_hash not in tx_hashes(move):
        return Result.transaction_unknown
    if confirmations < limits.confirmations_required:
        return None  # keep watching
    return ev.RebalanceConfirmed(
        at=now, rebalance_id=move.rebalance_id, tx_hash=mined.tx_hash,
        block_number=mined.block_number, block_hash=mined.block_hash,
        entries=entries(move),
    )  # fmt: skip


def reorg(
    move: Rebalance, tx_hash: str, block_hash: str, now: int
) -> ev.RebalanceReorged | Result | None:
    if move.state is State.SUBMITTED and tx_hash in tx_hashes(move):
        return None  # already back to waiting
    if move.state is not State.CONFIRMED or move.mined is None or move.mined.tx_hash != tx_hash:
        return Result.command_invalid_for_status
    return ev.RebalanceReorged(
        at=now, rebalance_id=move.rebalance_id, tx_hash=tx_hash, block_hash=block_hash,
        entries=ledger.reverse(entries(move)),
    )  # fmt: skip


def fail(
    move: Rebalance, reason: str, now: int, tx_hash: str | None = None
) -> ev.RebalanceFailed | None:
    """The payment reverted (`tx_hash`: nothing moved but gas), or nothing was sent: custody
    refused to sign it for good, or the provider refused the withdrawal."""
    if move.state is State.FAILED:
        return None
    if tx_hash is None and move.state not in (State.APPROVED, State.REQUESTED):
        return None
    if tx_hash is not None and (
        move.state is not State.SUBMITTED or tx_hash not in tx_hashes(move)
    ):
        return None
    return ev.RebalanceFailed(
        at=now, rebalance_id=move.rebalance_id, reason=reason[:REASON_LENGTH_MAX], tx_hash=tx_hash
    )


def evolve(move: Rebalance | None, event: ev.RebalanceEvent) -> Rebalance:
    if isinstance(event, ev.RebalanceProposed):
        assert move is None
        return Rebalance(
            rebalance_id=event.rebalance_id, from_account=event.from_account,
            to_account=event.to_account, currency=event.currency, amount=event.amount,
            chain=event.chain, to_address=event.to_address, reason=event.reason,
            proposed_by=event.by, proposed_at=event.at, kind=Kind(event.kind), version=1,
        )  # fmt: skip
    assert move is not None
    changes: dict[str, object]
    match event:
        case ev.RebalanceDecided():
            changes = {
                "state": State.APPROVED if event.approved else State.REJECTED,
                "decided_by": event.by,
                "decided_at": event.at,
                "decision_reason": event.reason,
            }
        case ev.RebalanceSubmitted() | ev.RebalanceReplaced():
            changes = {"state": State.SUBMITTED, "txs": (*move.txs, event.tx)}
        case ev.RebalanceRequested():
            changes = {"state": State.REQUESTED, "withdrawal_id": event.withdrawal_id}
        case ev.RebalanceSent():
            changes = {"state": State.SUBMITTED, "withdrawal_tx": event.tx_hash}
        case ev.RebalanceConfirmed():
            mined = chain.Mined(
                tx_hash=event.tx_hash, block_number=event.block_number, block_hash=event.block_hash
            )
            changes = {"state": State.CONFIRMED, "mined": mined, "confirmed_at": event.at}
        case ev.RebalanceReorged():
            changes = {"state": State.SUBMITTED, "mined": None, "confirmed_at": None}
        case ev.RebalanceFailed():
            changes = {"state": State.FAILED, "failure": event.reason}
        case _:
            raise AssertionError(event)
    return msgspec.structs.replace(move, version=move.version + 1, **changes)


def fold(events: list[ev.RebalanceEvent]) -> Rebalance | None:
    move: Rebalance | None = None
    for event in events:
        move = evolve(move, event)
    return move


def in_flight(account: str, currency: str, moves: list[Rebalance]) -> tuple[int, int]:
    """How far the holders may be from the ledger because of moves sent and not yet booked:
    where it came from lower, where it went higher (as engine.balances.in_flight for
    transfers). A withdrawal counts from when it was asked for: the provider may send it
    before it tells us."""
    low = high = 0
    for move in moves:
        sending = move.state is State.SUBMITTED or (
            move.kind is Kind.WITHDRAWAL and move.state is State.REQUESTED
        )
        if not sending or move.currency != currency:
            continue
        if account == move.from_account:
            low -= move.amount
        elif account == move.to_account:
            high += move.amount
    return low, high
