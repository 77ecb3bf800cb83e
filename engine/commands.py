"""Commands: intent, which may be retried. Series 2's list plus cancel, expire, fail, approve,
reject, replace-dropped-transaction, reorg, revert and funds-returned.

Commands from clients carry what the client sent (amounts as decimal strings, currency codes as
given), so the engine's validation ladder is the one place that judges them. Commands that report
the outside world (a quote, a signed transaction, a confirmation) carry the world's values; decide
checks they match what the transfer promised.
"""

from __future__ import annotations

import msgspec

from engine import limits
from engine.chain import SignedTx
from engine.destinations import Destination
from engine.policy import PolicyDecision
from engine.quotes import Quote
from engine.sanctions import Screening


class _Command(msgspec.Struct, frozen=True, kw_only=True, tag_field="command"):
    pass


class CreateTransfer(_Command, tag="CreateTransfer", frozen=True, kw_only=True):
    transfer_id: str
    client_id: str
    initiator: str
    idempotency_key: str
    request_hash: str
    source_currency: str
    target_currency: str
    amount: str
    destination: Destination
    reference: str | None = None
    metadata: dict[str, str] = {}
    # Decided by the control plane (engine.policy.evaluate) before the command reaches the
    # transfer; a create without one is refused (policy_missing): nothing bypasses policy.
    policy: PolicyDecision | None = None
    # The client's available balance in the source currency when the create arrived (read by the
    # runtime; None: not read). A transfer it cannot cover is refused at once, before policy and
    # before any approver spends time on it; the funds lock stays the check that decides.
    available: int | None = None
    # The sanctions screening of sender and beneficiary at creation (engine.sanctions).
    screening: Screening | None = None
    quote_id: str | None = None
    request_id: str | None = None


class QuoteTransfer(_Command, tag="QuoteTransfer", frozen=True, kw_only=True):
    quote: Quote
    # Set when the quote the client named expired while the transfer awaited approval: when it
    # expired. A fresh quote then replaces it (the approval took the time, not the client).
    requested_expired_at: int | None = None
    # A re-quote (the quote it replaces expired): the client's tolerance in basis points, and
    # the replaced quote's target amount when the transfer does not hold it (a named quote).
    # The engine refuses a new price worse than that by more (requote_beyond_tolerance).
    requote_tolerance_bps: int | None = None
    replaced_target_amount: int | None = None


class LockFunds(_Command, tag="LockFunds", frozen=True, kw_only=True):
    pass


class SubmitOnChain(_Command, tag="SubmitOnChain", frozen=True, kw_only=True):
    tx: SignedTx
    # The screening done before the payment was signed for broadcast (stored with it).
    screening: Screening | None = None


class ReplaceDroppedTx(_Command, tag="ReplaceDroppedTx", frozen=True, kw_only=True):
    tx: SignedTx


class ObserveConfirmation(_Command, tag="ObserveConfirmation", frozen=True, kw_only=True):
    tx_hash: str
    block_number: int
    block_hash: str
    confirmations: int


class ObserveReorg(_Command, tag="ObserveReorg", frozen=True, kw_only=True):
    tx_hash: str
    block_hash: str


class ObserveRevert(_Command, tag="ObserveRevert", frozen=True, kw_only=True):
    tx_hash: str
    block_number: int


class InitiateOffRamp(_Command, tag="InitiateOffRamp", frozen=True, kw_only=True):
    provider_trade_id: str


class RerouteOffRamp(_Command, tag="RerouteOffRamp", frozen=True, kw_only=True):
    """Route the payout to `provider`: the provider it was meant for refused it before
    accepting it (actors.pricing finds the next one)."""

    provider: str
    # The provider that refused (a reroute decided against an older state is refused).
    previous: str
    reason: str


class MarkFiatSettled(_Command, tag="MarkFiatSettled", frozen=True, kw_only=True):
    bank_reference: str
    amount: int
    # What the provider says the fill cost (PayoutStatus.debited, rail minor units) and the
    # rate it filled at; the corridor's slippage tolerance the difference is judged by.
    debited: int | None = None
    fill_rate: str | None = None
    slippage_tolerance_bps: int = limits.slippage_tolerance_bps


class RecordFundsReturned(_Command, tag="RecordFundsReturned", frozen=True, kw_only=True):
    reference: str


class Reconcile(_Command, tag="Reconcile", frozen=True, kw_only=True):
    evidence: tuple[str, ...]


class CancelTransfer(_Command, tag="CancelTransfer", frozen=True, kw_only=True):
    by: str
    reason: str = ""


class FailTransfer(_Command, tag="FailTransfer", frozen=True, kw_only=True):
    code: str
    message: str = ""
    # For sanctions_hit: the screening that hit (stored with the failure).
    screening: Screening | None = None


class ExpireTransfer(_Command, tag="ExpireTransfer", frozen=True, kw_only=True):
    # Why, when more than the lapse of time says it (a re-quote beyond the client's tolerance).
    reason: str = ""


class ApproveTransfer(_Command, tag="ApproveTransfer", frozen=True, kw_only=True):
    by: str
    # The hash of the terms the approver saw (transfer.terms_hash); refused if they changed.
    terms_hash: str | None = None


class RejectTransfer(_Command, tag="RejectTransfer", frozen=True, kw_only=True):
    by: str
    reason: str = ""


TransferCommand = (
    CreateTransfer
    | QuoteTransfer
    | LockFunds
    | SubmitOnChain
    | ReplaceDroppedTx
    | ObserveConfirmation
    | ObserveReorg
    | ObserveRevert
    | InitiateOffRamp
    | RerouteOffRamp
    | MarkFiatSettled
    | RecordFundsReturned
    | Reconcile
    | CancelTransfer
    | FailTransfer
    | ExpireTransfer
    | ApproveTransfer
    | RejectTransfer
)


class CreditDeposit(_Command, tag="CreditDeposit", frozen=True, kw_only=True):
    """A bank credit to a client's account (from a statement, a bank webhook or the simulator)."""

    deposit_id: str
    client_id: str
    currency: str
    amount: str
    bank: str
    bank_reference: str


COMMAND_TYPES: frozenset[str] = frozenset(t.__struct_config__.tag for t in TransferCommand.__args__)


def command_type(command: _Command) -> str:
    return command.__struct_config__.tag  # type: ignore[return-value]
