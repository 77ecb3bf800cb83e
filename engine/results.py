"""Result codes: one enum, ordered by precedence, each with a stable snake_case name.

Expected failures are values, not exceptions. A command that fails several checks reports the one
that comes first here, which is also the order the validation ladders check them in: the shape of
the request, then identity and idempotency, then the state machine, then control-plane refusals,
then funds. The name is the stable contract (it is what the journal, the API and webhooks carry);
the integer is only the precedence and may change when a code is inserted.

`transient` follows TigerBeetle's meaning: a retry of the same request could get another answer,
because the outcome depends on state that can change (a balance, a lock, a concurrent writer). A
request that failed with a non-transient code fails the same way however often it is retried.
"""

from __future__ import annotations

import enum


class Result(enum.IntEnum):
    ok = 0

    # The request itself: cheap, local checks.
    command_malformed = enum.auto()
    client_id_invalid = enum.auto()
    user_invalid = enum.auto()
    idempotency_key_missing = enum.auto()
    idempotency_key_invalid = enum.auto()
    amount_malformed = enum.auto()
    amount_negative = enum.auto()
    amount_scale_exceeded = enum.auto()
    amount_exceeds_maximum = enum.auto()
    amount_must_be_positive = enum.auto()
    currency_unknown = enum.auto()
    currency_pair_unsupported = enum.auto()
    destination_invalid = enum.auto()
    destination_currency_mismatch = enum.auto()
    reference_invalid = enum.auto()
    metadata_invalid = enum.auto()
    rate_malformed = enum.auto()
    failure_code_invalid = enum.auto()
    # A create reached the transfer without a policy decision (a bug upstream: nothing may
    # bypass policy).
    policy_missing = enum.auto()

    # Identity, idempotency and optimistic concurrency.
    transfer_not_found = enum.auto()
    transfer_exists = enum.auto()
    stream_exists = enum.auto()
    idempotency_key_reused = enum.auto()
    idempotency_request_in_progress = enum.auto()
    version_conflict = enum.auto()
    # The runtime lost track of a command's outcome (its actor crashed mid-way): it may or may not
    # have been applied; a retry with the same idempotency key is safe.
    outcome_unknown = enum.auto()
    # The transfer's actor is behind: its mailbox stayed full (retry later).
    transfer_busy = enum.auto()
    # The transfer's actor crashed past its restart budget; an operator has been alerted.
    transfer_flagged = enum.auto()

    # The state machine.
    command_invalid_for_status = enum.auto()
    transfer_not_cancellable = enum.auto()
    transfer_not_awaiting_approval = enum.auto()
    approval_pending = enum.auto()
    maker_cannot_approve = enum.auto()
    approval_duplicate = enum.auto()
    approval_terms_mismatch = enum.auto()
    override_not_pending = enum.auto()
    # Reconciliation cases (engine.discrepancies).
    discrepancy_not_found = enum.auto()
    discrepancy_closed = enum.auto()
    discrepancy_proposal_pending = enum.auto()
    discrepancy_no_proposal = enum.auto()
    correction_invalid = enum.auto()

    # Quotes.
    quote_mismatch = enum.auto()
    quote_expired = enum.auto()
    quote_not_expired = enum.auto()
    approval_not_expired = enum.auto()

    # The chain and the fiat leg.
    transaction_mismatch = enum.auto()
    transaction_unknown = enum.auto()
    transaction_already_submitted = enum.auto()
    transaction_replacements_exceeded = enum.auto()
    offramp_not_initiated = enum.auto()
    offramp_already_initiated = enum.auto()
    settlement_mismatch = enum.auto()

    # Control plane (policy, sanctions, freezes, halts).
    system_halted = enum.auto()
    corridor_halted = enum.auto()
    client_frozen = enum.auto()
    sanctions_hit = enum.auto()
    corridor_unsupported = enum.auto()
    policy_blocked = enum.auto()
    limit_exceeded = enum.auto()

    # Funds.
    insufficient_funds = enum.auto()

    # Outcomes reported by the outside world, recorded as a transfer's failure.
    approval_rejected = enum.auto()
    approval_expired = enum.auto()
    transaction_reverted = enum.auto()
    payout_rejected = enum.auto()
    funds_returned = enum.auto()
    provider_unavailable = enum.auto()
    chain_unavailable = enum.auto()
    operator_failed = enum.auto()
    # No provider's terms take this request (amount outside every provider's limits, every
    # provider of the corridor disabled or suspended): asking again changes nothing.
    no_eligible_provider = enum.auto()
    # A re-quote's price is further below the expired quote's than the client's tolerance.
    requote_beyond_tolerance = enum.auto()
    # A payout cannot go back to a provider that refused it.
    payout_provider_refused = enum.auto()
    # Rebalancing (engine.rebalance): no such move; it was decided already; it names an account
    # we do not hold or a provider without a deposit address in the address book; it is not a
    # move from a treasury wallet to a provider (a withdrawal from a provider is not offered).
    rebalance_not_found = enum.auto()
    rebalance_not_pending = enum.auto()
    rebalance_account_unknown = enum.auto()
    rebalance_route_unsupported = enum.auto()

    @property
    def code(self) -> str:
        """The stable snake_case name the journal, the API and webhooks carry."""
        return self.name

    @property
    def transient(self) -> bool:
        """Whether retrying the same request could change the outcome."""
        return self in TRANSIENT

    @classmethod
    def from_code(cls, code: str) -> Result | None:
        return cls.__members__.get(code)


TRANSIENT = frozenset(
    {
        Result.idempotency_request_in_progress,
        Result.version_conflict,
        Result.outcome_unknown,
        Result.transfer_busy,
        Result.insufficient_funds,
        Result.limit_exceeded,
        Result.system_halted,
        Result.corridor_halted,
        Result.client_frozen,
        Result.provider_unavailable,
        Result.chain_unavailable,
    }
)

# Codes a transfer may carry as its failure (TransferFailed.code and friends). A client-shape error
# never reaches a transfer: a malformed request creates nothing.
FAILURE_CODES = frozenset(
    {
        Result.quote_expired,
        Result.system_halted,
        Result.corridor_halted,
        Result.client_frozen,
        Result.corridor_unsupported,
        Result.sanctions_hit,
        Result.policy_blocked,
        Result.limit_exceeded,
        Result.insufficient_funds,
        Result.approval_rejected,
        Result.approval_expired,
        Result.transaction_reverted,
        Result.payout_rejected,
        Result.funds_returned,
        Result.provider_unavailable,
        Result.chain_unavailable,
        Result.operator_failed,
        Result.no_eligible_provider,
    }
)


def as_failure(result: Result) -> Result:
    """The failure code a transfer ends with when a rail refuses it for `result`: the result
    itself if it is one, a corridor no provider serves as `corridor_unsupported`, and anything
    else a provider says as `provider_unavailable` (the message keeps the original)."""
    if result in FAILURE_CODES:
        return result
    if result in (Result.currency_pair_unsupported, Result.currency_unknown):
        return Result.corridor_unsupported
    return Result.provider_unavailable


def first(*results: Result) -> Result:
    """The result with the highest precedence among several failed checks (ok if none failed)."""
    failed = [r for r in results if r is not Result.ok]
    return min(failed) if failed else Result.ok
