"""Ports: the engine's view of the outside world, as Protocols.

The engine never reads the clock or entropy and never does I/O; the actors and the store receive
implementations of these (real ones from adapters/, simulated ones from sim/). Methods that do I/O
return awaitables: the engine declares them, the actors await them. The rails (quotes, custody,
chain, off-ramp, bank) have their own module, engine.rails.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Sequence
from typing import Protocol

from engine.audit import AuditRecord
from engine.chain import SignedTx
from engine.discrepancies import Discrepancy
from engine.events import Event, EvidenceRecorded
from engine.quotes import Quote
from engine.records import (
    ClaimKey,
    CompleteKey,
    IdempotencyRecord,
    IdempotencyStatus,
    Outcome,
    Recorded,
)
from engine.timers import DueTimer
from engine.transfer import TransferState


class Clock(Protocol):
    def now_us(self) -> int:
        """Microseconds since the Unix epoch, UTC."""
        ...


class Ids(Protocol):
    def new(self, prefix: str) -> str:
        """A fresh id with the given prefix (see engine.ids)."""
        ...


class Journal(Protocol):
    """The durable truth as the runtime sees it (implemented by store.Store).

    `append` answers only after the events are durable; a Committed outcome is a promise that a
    restart will find them. Reads see every commit that was answered before they started."""

    def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[Event],
        *,
        request_id: str | None = None,
        claim: ClaimKey | None = None,
        complete: CompleteKey | None = None,
        audit: Sequence[AuditRecord] = (),
        evidence_raw: dict[str, bytes] | None = None,
    ) -> Awaitable[Outcome]:
        """`claim` acquires an idempotency key and `complete` stores its answer; `audit` chains
        records onto the audit log. All of them in the events' commit, or none of them."""
        ...

    def complete_key(
        self,
        client_id: str,
        key: str,
        status: IdempotencyStatus,
        response_status: int,
        response_body: bytes,
    ) -> Awaitable[Outcome]: ...

    def idempotency_record(
        self, client_id: str, key: str
    ) -> Awaitable[IdempotencyRecord | None]: ...

    def unanswered_keys(
        self, after: tuple[str, str], limit: int
    ) -> Awaitable[list[IdempotencyRecord]]:
        """Idempotency keys still IN_PROGRESS, in (client, key) order after `after`."""
        ...

    def transfer(self, transfer_id: str) -> Awaitable[TransferState | None]: ...

    def transfer_states(self, transfer_ids: Iterable[str]) -> Awaitable[dict[str, TransferState]]:
        """The state of each of these transfers that exists, in one read."""
        ...

    def active_transfers(self, after: str, limit: int) -> Awaitable[list[str]]: ...

    def due_timers(self, now_us: int, limit: int) -> Awaitable[list[DueTimer]]: ...

    def next_timer_due(self, after_us: int) -> Awaitable[int | None]:
        """When the earliest timer due after `after_us` falls due (None: there is none)."""
        ...

    def evidence_for(self, transfer_id: str) -> Awaitable[list[EvidenceRecorded]]: ...

    def evidence_of(
        self, transfer_ids: Iterable[str]
    ) -> Awaitable[dict[str, list[EvidenceRecorded]]]:
        """`evidence_for` each of these transfers, in one read (a transfer with none: absent)."""
        ...

    def evidence_since(
        self, after_seq: int, limit: int
    ) -> Awaitable[list[tuple[int, EvidenceRecorded, bool]]]:
        """Evidence recorded after journal seq `after_seq`, in journal order: (seq, event,
        whether a reconciled transfer names it)."""
        ...

    def awaiting_reconciliation(self, after: str, limit: int) -> Awaitable[list[str]]:
        """Transfers confirmed on chain, not yet reconciled: a page in id order."""
        ...

    def transfer_paid_by(self, tx_hash: str) -> Awaitable[str | None]:
        """The transfer a chain transaction belongs to: its payment (mined, or its latest
        broadcast), or the provider's return of it."""
        ...

    def transfers_paid_by(self, tx_hashes: Iterable[str]) -> Awaitable[dict[str, str]]:
        """`transfer_paid_by` each of these transactions, in one read (none: absent)."""
        ...

    def rebalance_paid_by(self, tx_hash: str) -> Awaitable[str | None]:
        """The rebalancing move a chain transaction pays (engine.rebalance), if any."""
        ...

    def rebalance_ids(self, limit: int) -> Awaitable[list[str]]:
        """Rebalancing moves, newest first."""
        ...

    def transfer_for_trade(self, provider_trade_id: str) -> Awaitable[str | None]:
        """The transfer an off-ramp trade pays out."""
        ...

    def last_indexed_block(self, provider: str) -> Awaitable[int | None]:
        """The highest block number among the chain indexer's logs kept from `provider`."""
        ...

    def held_balances(self) -> Awaitable[list[tuple[str, str, int]]]:
        """(account, currency, debits - credits) of every account that stands for value held
        outside: treasury wallets, providers, banks."""
        ...

    def balance_at(self, account: str, currency: str, until_us: int) -> Awaitable[int]:
        """The ledger's view of an account as of `until_us`: debits - credits over the entries
        effective by then."""
        ...

    def first_told(
        self, provider: str, event_type: str, external_ref: str
    ) -> Awaitable[int | None]:
        """When a stored report says its fact happened (the report as first told), or None
        when no such report is stored."""
        ...

    def in_flight(self, limit: int) -> Awaitable[list[TransferState]]:
        """Transfers whose payment is on chain and not yet settled in the books (SENT_ON_CHAIN,
        CONFIRMED), at most `limit`."""
        ...

    def discrepancies(self, open_only: bool) -> Awaitable[list[Discrepancy]]:
        """Reconciliation cases (open ones only, or all), oldest first."""
        ...

    def quote(self, quote_id: str) -> Awaitable[tuple[str | None, Quote] | None]: ...

    def signed_transactions(
        self, chain: str, address: str, from_nonce: int = 0
    ) -> Awaitable[list[SignedTx]]:
        """Wallet (chain, address)'s journaled transactions with a nonce of `from_nonce` or more,
        in journal order."""
        ...

    def audit(self, records: Sequence[AuditRecord]) -> Awaitable[Outcome]:
        """Chain records onto the audit log (durable when this returns)."""
        ...

    def stream(self, stream_id: str) -> Awaitable[list[Recorded]]:
        """Every record of a stream, in version order."""
        ...

    def before_chain(
        self, client_id: str | None, corridor: tuple[str, str] | None, after: str, limit: int
    ) -> Awaitable[list[str]]:
        """Transfers not yet on chain, of a client, a corridor (source, target) or all: a page."""
        ...

    def available(self, client_id: str, currency: str) -> Awaitable[int]:
        """The client's available balance in `currency` (advisory: the lock decides)."""
        ...

    def beneficiary_first_seen(self, client_id: str, beneficiary: str) -> Awaitable[int | None]:
        """When the client first sent a transfer to this beneficiary key (None: never)."""
        ...

    def expire_idempotency_keys(self, now_us: int) -> Awaitable[int]: ...
