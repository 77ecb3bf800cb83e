"""The rails: the outside world a transfer moves through, as ports the actors call.

A quote source prices transfers, a custody service signs (private keys never enter the engine),
a chain node broadcasts and reports what it mined, an off-ramp provider turns stablecoin into a
fiat payout and a bank reports that payout from the receiving side. Real implementations live in
adapters/, simulated ones in sim/; both raise `RailError` with `transient` set, so whether a retry
can help travels with the error.

The methods return awaitables (the engine itself never awaits); everything they exchange is a
frozen msgspec Struct in integer minor units.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable
from typing import Protocol

import msgspec

from engine.chain import SignedTx
from engine.destinations import Destination
from engine.results import Result


class RailError(Exception):
    """A rail could not do what was asked. `transient`: the same call may succeed later."""

    def __init__(self, result: Result, message: str, *, transient: bool) -> None:
        super().__init__(f"{result.code}: {message}")
        self.result = result
        self.message = message
        self.transient = transient


class QuoteRequest(msgspec.Struct, frozen=True, kw_only=True):
    transfer_id: str
    client_id: str
    source_currency: str
    target_currency: str
    amount: int
    bank: bool


class SignRequest(msgspec.Struct, frozen=True, kw_only=True):
    chain: str
    to_address: str
    currency: str
    amount: int
    nonce: int
    max_fee_per_gas: int
    # EIP-1559 tip in wei; 0: the custody service's own default.
    max_priority_fee_per_gas: int = 0


class Receipt(msgspec.Struct, frozen=True, kw_only=True):
    """A mined transaction as the node reports it: in the canonical chain at `block_number`."""

    tx_hash: str
    block_number: int
    block_hash: str
    succeeded: bool
    confirmations: int
    # The token Transfer the transaction emitted (none when it reverted).
    currency: str | None = None
    from_address: str | None = None
    to_address: str | None = None
    amount: int = 0


class TxPresence(enum.StrEnum):
    MINED = "mined"
    PENDING = "pending"
    # Neither in a canonical block nor in the mempool: dropped, or reorged out and not re-added.
    UNKNOWN = "unknown"


class TransferLog(msgspec.Struct, frozen=True, kw_only=True):
    """One token Transfer log as a chain indexer delivers it (Series 5's chain_indexer_events).
    `event_id` is the indexer's own id for the delivery: the same log delivered twice under two
    ids is the indexer's duplicate, which the matcher sees and counts."""

    event_id: str
    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str
    currency: str
    from_address: str
    to_address: str
    amount: int


class IndexedBlocks(msgspec.Struct, frozen=True, kw_only=True):
    """The indexer's answer for a range of blocks: the blocks it covered (number, hash and parent
    hash, in order; empty when none is deep enough yet) and the logs in them that touch the
    addresses asked about."""

    blocks: tuple[tuple[int, str, str], ...]
    logs: tuple[TransferLog, ...]


class ChainView(msgspec.Struct, frozen=True, kw_only=True):
    head: int
    # The highest block no reorg can undo: the node's `finalized` block, or the head less a
    # configured depth. A payment is reconciled, and stops being watched, only once final.
    final: int
    # The fee cap a new transaction needs to be mined soon, and the tip within it (wei per gas;
    # a tip of 0: the node suggests none, custody uses its default).
    suggested_max_fee_per_gas: int
    suggested_priority_fee_per_gas: int = 0


class PayoutRequest(msgspec.Struct, frozen=True, kw_only=True):
    # Our transfer id is the provider's idempotency key: a retried call returns the same trade.
    transfer_id: str
    provider: str
    quote_id: str
    rail_currency: str
    rail_amount: int
    target_currency: str
    target_amount: int
    destination: Destination
    # The on-chain transaction that funded the payout.
    tx_hash: str
    # The quoted rate (target per rail unit) the provider committed to.
    rate: str = ""
    # Paid out of the stablecoin the provider holds for us (a payout rerouted to it), not out
    # of the deposit `tx_hash` (which went to the provider that refused it).
    prefunded: bool = False


class PayoutState(enum.StrEnum):
    PENDING = "pending"
    PAID = "paid"
    # The provider could not pay (a rejected beneficiary account) and sent the funds back.
    RETURNED = "returned"


class PayoutStatus(msgspec.Struct, frozen=True, kw_only=True):
    provider: str
    provider_trade_id: str
    state: PayoutState
    currency: str
    amount: int
    bank_reference: str | None = None
    reason: str | None = None
    # A paid trade's report: the fee the provider kept (target minor units) and the rate it
    # filled at, when it states them (reconciliation compares both with the quote).
    fee: int | None = None
    rate: str | None = None
    # A returned trade's stablecoin transaction back to the treasury (the chain indexer sees it
    # come in; this names whose it is).
    return_tx_hash: str | None = None
    # A paid trade's cost: the stablecoin the provider took from our funds for it (rail minor
    # units), when it states it. The quote's rail amount when the fill was at the quoted rate;
    # more or less when it slipped (engine.transfer books the difference).
    debited: int | None = None


class BankCredit(msgspec.Struct, frozen=True, kw_only=True):
    """The receiving bank's record of a fiat payment (a SPEI CEP): the second witness."""

    bank: str
    bank_reference: str
    currency: str
    amount: int
    account: str


class ProviderQuote(msgspec.Struct, frozen=True, kw_only=True):
    """A provider's price as it answered: its rate and fee for the amount asked, how long it
    holds, where its deposit address is (off-ramps), its own quote id and its response body as
    it came. The engine prices the quote from these by its one rule (engine.quotes.price)."""

    provider: str
    rate: str
    # In the source currency's minor units, taken out of the amount before conversion.
    fee: int
    ttl_us: int
    provider_quote_id: str
    raw: str
    payout_address: str | None = None


class QuoteProvider(Protocol):
    """One pricing provider (an exchange, an off-ramp, a market maker)."""

    @property
    def name(self) -> str: ...

    def quote(self, request: QuoteRequest) -> Awaitable[ProviderQuote]: ...

    def corridors(self) -> frozenset[str]:
        """The corridors ("USD-MXN", engine.policy.corridor_id) the provider prices."""
        ...


class Custody(Protocol):
    def address(self, chain: str) -> str: ...

    def sign(self, request: SignRequest) -> Awaitable[SignedTx]: ...


class ChainNode(Protocol):
    def broadcast(self, chain: str, raw: str) -> Awaitable[str]: ...

    def view(self, chain: str) -> Awaitable[ChainView]: ...

    def receipt(self, chain: str, tx_hash: str) -> Awaitable[Receipt | None]: ...

    def presence(self, chain: str, tx_hash: str) -> Awaitable[TxPresence]: ...

    def nonce(self, chain: str, address: str) -> Awaitable[int]:
        """The account's next nonce counting only mined transactions."""
        ...


class ChainIndexer(Protocol):
    """A feed of token Transfer logs, independent of the node the confirmation watcher asks (a
    third-party indexer, or the node's own log index)."""

    def transfers(
        self,
        chain: str,
        first_block: int,
        addresses: frozenset[str],
        *,
        confirmations: int,
        blocks_max: int,
    ) -> Awaitable[IndexedBlocks]:
        """Blocks from `first_block` on that have at least `confirmations` (at most
        `blocks_max` of them), with every Transfer log from or to one of `addresses`."""
        ...

    def token_balance(self, chain: str, currency: str, address: str) -> Awaitable[int]:
        """The token balance the chain holds for `address` now, in minor units."""
        ...


class OffRamp(Protocol):
    def start_payout(self, request: PayoutRequest) -> Awaitable[str]:
        """The provider's trade id for the payout (the same one for the same transfer id).

        A non-transient RailError is a promise: the provider refused and holds no payout for
        the transfer, so the engine may route the payout to another provider (failover). An
        adapter that cannot be sure (a timeout, an answer it does not understand, "already
        exists with other terms") raises a transient one instead."""
        ...

    def payout_status(self, provider: str, provider_trade_id: str) -> Awaitable[PayoutStatus]: ...

    def prefunded(self, provider: str, currency: str) -> Awaitable[int]:
        """The stablecoin the provider reports holding for us (received, not yet paid out or
        sent back), in minor units."""
        ...

    def withdraw(self, request: WithdrawalRequest) -> Awaitable[str]:
        """The provider's withdrawal id (the same one for the same rebalancing move). A
        non-transient RailError: the provider refused and will send nothing."""
        ...

    def withdrawal_status(
        self, provider: str, withdrawal_id: str
    ) -> Awaitable[WithdrawalStatus]: ...


class WithdrawalRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Our stablecoin sent out of a provider's prefunding to `to_address` (a treasury wallet or
    another provider's deposit address). The rebalancing move's id is the idempotency key."""

    rebalance_id: str
    provider: str
    currency: str
    amount: int
    chain: str
    to_address: str


class WithdrawalState(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    REFUSED = "refused"


class WithdrawalStatus(msgspec.Struct, frozen=True, kw_only=True):
    provider: str
    withdrawal_id: str
    state: WithdrawalState
    # The provider's transaction, once it sent it.
    tx_hash: str | None = None
    reason: str | None = None


class BankReports(Protocol):
    def credit(self, bank_reference: str) -> Awaitable[BankCredit | None]: ...

    def closing_balance(self, bank: str, currency: str) -> Awaitable[int]:
        """Our account's balance at `bank` as its latest statement closes it, in minor units."""
        ...
