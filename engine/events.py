"""Events: immutable facts, journaled before anything acts on them.

This module is a public schema. Tags are never renamed or reused; a new field gets a default; a
retired event stays here and stays decodable. Every event carries `at`, the instant it was decided
(from the clock port), and money-moving events carry their ledger entries, computed by
engine.ledger when the event was decided, so the journal says exactly what was posted.
"""

from __future__ import annotations

from typing import TypeGuard, cast

import msgspec

from engine.chain import SignedTx
from engine.destinations import Destination
from engine.ledger import Entries
from engine.policy import LimitCheck, PolicyDecision
from engine.quotes import Quote
from engine.sanctions import Screening
from engine.states import Route


class _Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    at: int


# --- Transfer stream (tr_...) -------------------------------------------------------------------


class TransferCreated(_Event, tag="TransferCreated", frozen=True, kw_only=True):
    transfer_id: str
    client_id: str
    initiator: str
    idempotency_key: str
    request_hash: str
    source_currency: str
    target_currency: str
    amount: int
    destination: Destination
    route: Route
    reference: str | None = None
    metadata: dict[str, str] = {}
    approvals_required: int = 0
    requested_quote_id: str | None = None
    request_id: str | None = None
    # The policy decision: which rule of which rule set version decided (None before policy).
    policy: PolicyDecision | None = None
    # The sanctions screening at creation (None before screening existed).
    screening: Screening | None = None


class ApprovalGranted(_Event, tag="ApprovalGranted", frozen=True, kw_only=True):
    by: str
    # The terms the approval is bound to (an approval of other terms does not count).
    terms_hash: str | None = None


class ApprovalRejected(_Event, tag="ApprovalRejected", frozen=True, kw_only=True):
    by: str
    reason: str


class QuoteCaptured(_Event, tag="QuoteCaptured", frozen=True, kw_only=True):
    quote: Quote


class FundsLocked(_Event, tag="FundsLocked", frozen=True, kw_only=True):
    entries: Entries
    # The rolling limits this hold had to fit (the store checks them in the hold's commit), with
    # the USD-equivalent amount and the beneficiary they count.
    limits: tuple[LimitCheck, ...] = ()
    usd_amount: int = 0
    beneficiary: str = ""


class OnChainSubmitted(_Event, tag="OnChainSubmitted", frozen=True, kw_only=True):
    tx: SignedTx
    screening: Screening | None = None


class OnChainReplaced(_Event, tag="OnChainReplaced", frozen=True, kw_only=True):
    tx: SignedTx
    replaces: str


class OnChainConfirmed(_Event, tag="OnChainConfirmed", frozen=True, kw_only=True):
    tx_hash: str
    block_number: int
    block_hash: str
    confirmations: int
    entries: Entries


class ChainReorged(_Event, tag="ChainReorged", frozen=True, kw_only=True):
    tx_hash: str
    block_hash: str
    entries: Entries


class OnChainReverted(_Event, tag="OnChainReverted", frozen=True, kw_only=True):
    tx_hash: str
    block_number: int
    entries: Entries


class OffRampInitiated(_Event, tag="OffRampInitiated", frozen=True, kw_only=True):
    provider: str
    provider_trade_id: str


class OffRampRerouted(_Event, tag="OffRampRerouted", frozen=True, kw_only=True):
    """The payout moved to another provider before any provider accepted it: `previous`
    refused it for good (it keeps the deposit, as prefunding); `provider` pays out of the
    stablecoin it holds for us. No money moves here; FiatSettled books the payout against the
    provider that made it."""

    provider: str
    previous: str
    reason: str


class FiatSettled(_Event, tag="FiatSettled", frozen=True, kw_only=True):
    bank_reference: str
    amount: int
    entries: Entries
    # The fill's slippage (what the provider debited less the rail amount, rail minor units;
    # booked with the entries) and the tolerance it was judged by (reconciliation checks the
    # fill rate by the same one).
    slippage: int = 0
    slippage_tolerance_bps: int | None = None


class FundsReturned(_Event, tag="FundsReturned", frozen=True, kw_only=True):
    reference: str
    entries: Entries


class Reconciled(_Event, tag="Reconciled", frozen=True, kw_only=True):
    evidence: tuple[str, ...]


class TransferCancelled(_Event, tag="TransferCancelled", frozen=True, kw_only=True):
    by: str
    reason: str
    entries: Entries = ()


class TransferFailed(_Event, tag="TransferFailed", frozen=True, kw_only=True):
    code: str
    message: str
    entries: Entries = ()
    screening: Screening | None = None


class TransferExpired(_Event, tag="TransferExpired", frozen=True, kw_only=True):
    code: str
    entries: Entries = ()
    message: str = ""


TransferEvent = (
    TransferCreated
    | ApprovalGranted
    | ApprovalRejected
    | QuoteCaptured
    | FundsLocked
    | OnChainSubmitted
    | OnChainReplaced
    | OnChainConfirmed
    | ChainReorged
    | OnChainReverted
    | OffRampInitiated
    | OffRampRerouted
    | FiatSettled
    | FundsReturned
    | Reconciled
    | TransferCancelled
    | TransferFailed
    | TransferExpired
)

# --- Deposit stream (dp_...) --------------------------------------------------------------------


class DepositCredited(_Event, tag="DepositCredited", frozen=True, kw_only=True):
    deposit_id: str
    client_id: str
    currency: str
    amount: int
    bank: str
    bank_reference: str
    entries: Entries


# --- Treasury funding stream (tf_...) ------------------------------------------------------------


class TreasuryFunded(_Event, tag="TreasuryFunded", frozen=True, kw_only=True):
    """Stablecoin inventory arrived in a treasury wallet from the operator's capital."""

    funding_id: str
    chain: str
    address: str
    currency: str
    amount: int
    reference: str
    entries: Entries


class ProviderFunded(_Event, tag="ProviderFunded", frozen=True, kw_only=True):
    """Stablecoin the operator placed with an off-ramp provider from its capital (prefunding:
    what a payout rerouted to the provider is paid from). Journaled in a funding stream, with
    the treasury's inventory when both are booked at once."""

    funding_id: str
    provider: str
    currency: str
    amount: int
    reference: str
    entries: Entries


# --- Alert stream (al_...): what an operator must look at ---------------------------------------


class AlertRaised(_Event, tag="AlertRaised", frozen=True, kw_only=True):
    """A transfer needs a person: stuck past its time-in-state threshold, or its actor crashed
    past the restart budget. Raised once per cause (the stream id is derived from it)."""

    alert_id: str
    kind: str
    transfer_id: str | None = None
    status: str | None = None
    detail: str = ""


# --- Quote stream (qt_...) ----------------------------------------------------------------------


class QuoteIssued(_Event, tag="QuoteIssued", frozen=True, kw_only=True):
    client_id: str
    quote: Quote


# --- Evidence stream (ex_...): what an external system told us, anchored in the journal ----------


class EvidenceRecorded(_Event, tag="EvidenceRecorded", frozen=True, kw_only=True):
    evidence_id: str
    provider: str
    event_type: str
    external_ref: str
    occurred_at: int
    transfer_id: str | None = None
    normalized: dict[str, str] = {}
    # sha256 hex of the raw payload kept in external_events; verify checks it.
    raw_sha256: str


# --- The policy stream ("policy"): every rule set in force, whole, in order ---------------------


class RuleSetLoaded(_Event, tag="RuleSetLoaded", frozen=True, kw_only=True):
    """A rule set came into force. `document` is its canonical JSON (engine.policy.canonical),
    so the journal alone says which rules decided any transfer; `version` is the stream version."""

    version: int
    digest: str
    document: str
    by: str
    reason: str = ""


POLICY_STREAM = "policy"


# --- The controls stream ("controls"): freezes and halts, switched on and off ------------------


class ControlChanged(_Event, tag="ControlChanged", frozen=True, kw_only=True):
    """An operator froze or unfroze a client, halted or resumed a corridor or the system."""

    scope: str
    target: str
    on: bool
    by: str
    reason: str


CONTROLS_STREAM = "controls"


# --- The providers stream ("providers"): each provider's circuit breaker, as it changed -----------


class ProviderCircuitChanged(_Event, tag="ProviderCircuitChanged", frozen=True, kw_only=True):
    """A provider's circuit breaker changed state (engine.breaker): opened after failures in a
    row, half-open to probe, closed again after successes."""

    provider: str
    state: str
    previous: str
    failures: int = 0
    reason: str = ""


PROVIDERS_STREAM = "providers"


# --- The liquidity stream ("liquidity"): balances outside their thresholds, episode by episode ---


class LiquidityBreached(_Event, tag="LiquidityBreached", frozen=True, kw_only=True):
    """A held balance (a treasury wallet, a provider's prefunding) was seen past one of its
    thresholds (engine.liquidity): an episode opens, and one operator alert with it."""

    account: str
    currency: str
    bound: str
    limit: int
    balance: int


class LiquidityRestored(_Event, tag="LiquidityRestored", frozen=True, kw_only=True):
    """The balance was seen back within that bound: the episode closes."""

    account: str
    currency: str
    bound: str
    balance: int


LIQUIDITY_STREAM = "liquidity"


# --- Override streams (ov_...): an admin override, requested, decided by a second operator, done -


class OverrideRequested(_Event, tag="OverrideRequested", frozen=True, kw_only=True):
    override_id: str
    kind: str
    transfer_id: str
    reason: str
    by: str


class OverrideDecided(_Event, tag="OverrideDecided", frozen=True, kw_only=True):
    override_id: str
    by: str
    approved: bool
    reason: str = ""


class OverrideExecuted(_Event, tag="OverrideExecuted", frozen=True, kw_only=True):
    override_id: str
    # The transfer's answer to the forced command: "ok" or its result code.
    outcome: str


# --- Rebalance streams (rb_...): a move between held balances, proposed, decided by a second
# operator, then paid on chain from a treasury wallet like a transfer's payment (engine.rebalance)


class RebalanceProposed(_Event, tag="RebalanceProposed", frozen=True, kw_only=True):
    """An operator proposes moving `amount` of `currency` between held accounts: `to_address`
    is where it goes on `chain` (a provider's deposit address from the operator's address book,
    or our wallet), fixed when proposed (what the approver sees is what is paid)."""

    rebalance_id: str
    from_account: str
    to_account: str
    currency: str
    amount: int
    chain: str
    to_address: str
    reason: str
    by: str
    # "payment" (from a treasury wallet, we send it) or "withdrawal" (a provider sends it).
    kind: str = "payment"


class RebalanceDecided(_Event, tag="RebalanceDecided", frozen=True, kw_only=True):
    rebalance_id: str
    by: str
    approved: bool
    reason: str = ""


class RebalanceSubmitted(_Event, tag="RebalanceSubmitted", frozen=True, kw_only=True):
    """The signed payment, journaled before it is broadcast (its nonce is used from here)."""

    rebalance_id: str
    tx: SignedTx


class RebalanceReplaced(_Event, tag="RebalanceReplaced", frozen=True, kw_only=True):
    """A replacement of a payment that sat unmined: same nonce and payment, higher fees."""

    rebalance_id: str
    tx: SignedTx
    replaces: str


class RebalanceRequested(_Event, tag="RebalanceRequested", frozen=True, kw_only=True):
    """A withdrawal the provider accepted, under its own id (it sends it from its address)."""

    rebalance_id: str
    withdrawal_id: str


class RebalanceSent(_Event, tag="RebalanceSent", frozen=True, kw_only=True):
    """The transaction the provider reports it sent the withdrawal in (watched like ours)."""

    rebalance_id: str
    tx_hash: str


class RebalanceConfirmed(_Event, tag="RebalanceConfirmed", frozen=True, kw_only=True):
    """The move's transaction has its confirmations: booked, Dr where it went / Cr where it
    came from."""

    rebalance_id: str
    tx_hash: str
    block_number: int
    block_hash: str
    entries: Entries


class RebalanceReorged(_Event, tag="RebalanceReorged", frozen=True, kw_only=True):
    """A reorg took the confirmed payment away: its booking is reversed, the same bytes go
    again."""

    rebalance_id: str
    tx_hash: str
    block_hash: str
    entries: Entries


class RebalanceFailed(_Event, tag="RebalanceFailed", frozen=True, kw_only=True):
    """Nothing moved: the payment reverted, or custody refused to sign it for good."""

    rebalance_id: str
    reason: str
    tx_hash: str | None = None


RebalanceEvent = (
    RebalanceProposed
    | RebalanceDecided
    | RebalanceSubmitted
    | RebalanceReplaced
    | RebalanceRequested
    | RebalanceSent
    | RebalanceConfirmed
    | RebalanceReorged
    | RebalanceFailed
)


# --- Discrepancy streams (dc_...): a reconciliation case, opened, worked and closed (Series 5) --


class DiscrepancyOpened(_Event, tag="DiscrepancyOpened", frozen=True, kw_only=True):
    """The pipeline found a difference between the ledger and a source. `case_key` names the
    difference (kind, source, subject) so a later round finds the open case instead of opening
    another; amounts in `expected`/`actual` are minor units as text."""

    discrepancy_id: str
    case_key: str
    kind: str
    severity: str
    confidence: int
    source: str
    transfer_id: str | None = None
    evidence_ids: tuple[str, ...] = ()
    expected: dict[str, str] = {}
    actual: dict[str, str] = {}
    sla_deadline: int
    by: str


class DiscrepancyAssigned(_Event, tag="DiscrepancyAssigned", frozen=True, kw_only=True):
    """An operator took the case (it is INVESTIGATING): `owner` answers for it."""

    discrepancy_id: str
    owner: str
    by: str


class DiscrepancyNoted(_Event, tag="DiscrepancyNoted", frozen=True, kw_only=True):
    discrepancy_id: str
    note: str
    by: str


class DiscrepancyResolutionProposed(
    _Event, tag="DiscrepancyResolutionProposed", frozen=True, kw_only=True
):
    """A resolution that moves money waits for a second operator: the correcting entries are
    stated here, whole, and posted only by DiscrepancyResolved."""

    discrepancy_id: str
    resolution: str
    notes: str
    correction: Entries
    by: str


class DiscrepancyProposalRejected(
    _Event, tag="DiscrepancyProposalRejected", frozen=True, kw_only=True
):
    discrepancy_id: str
    reason: str
    by: str


class DiscrepancyResolved(_Event, tag="DiscrepancyResolved", frozen=True, kw_only=True):
    """The case is closed (RESOLVED, FALSE_POSITIVE or WRITTEN_OFF). `entries` is the correcting
    posting, if any (then `approved_by`, a second operator, agreed to it); history is never
    edited, the correction is a new posting."""

    discrepancy_id: str
    resolution: str
    notes: str
    by: str
    approved_by: str | None = None
    entries: Entries = ()
    # The transfer the case names: the correcting lines name it in the ledger too.
    transfer_id: str | None = None


DISCREPANCY_EVENTS = (
    DiscrepancyOpened,
    DiscrepancyAssigned,
    DiscrepancyNoted,
    DiscrepancyResolutionProposed,
    DiscrepancyProposalRejected,
    DiscrepancyResolved,
)


Event = (
    TransferEvent
    | DepositCredited
    | TreasuryFunded
    | ProviderFunded
    | AlertRaised
    | QuoteIssued
    | EvidenceRecorded
    | RuleSetLoaded
    | ControlChanged
    | ProviderCircuitChanged
    | LiquidityBreached
    | LiquidityRestored
    | OverrideRequested
    | OverrideDecided
    | OverrideExecuted
    | RebalanceEvent
    | DiscrepancyOpened
    | DiscrepancyAssigned
    | DiscrepancyNoted
    | DiscrepancyResolutionProposed
    | DiscrepancyProposalRejected
    | DiscrepancyResolved
)

_TAGS: dict[type, str] = {t: t.__struct_config__.tag for t in Event.__args__}
_TRANSFER_CLASSES = frozenset(TransferEvent.__args__)
TRANSFER_EVENT_TYPES: frozenset[str] = frozenset(_TAGS[t] for t in _TRANSFER_CLASSES)
EVENT_TYPES: frozenset[str] = frozenset(_TAGS.values())

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Event)


def event_type(event: Event) -> str:
    return _TAGS[type(event)]


def is_transfer_event(event: Event) -> TypeGuard[TransferEvent]:
    """Whether `event` belongs to a transfer's stream (a dict lookup: isinstance against the
    17-member union walks it)."""
    return type(event) in _TRANSFER_CLASSES


def encode(event: Event) -> bytes:
    return _encoder.encode(event)


def decode(payload: bytes | str) -> Event:
    return cast(Event, _decoder.decode(payload))


def entries_of(event: Event) -> Entries:
    return getattr(event, "entries", ())
