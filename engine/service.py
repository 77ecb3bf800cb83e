"""The service port: what the HTTP API asks of the running product.

The HTTP adapter speaks only this Protocol (and the engine's vocabulary); the composition root
(adapters.main) implements it over the store, the actor system and the rails. Reads answer from
the durable store; commands go to the transfer's actor, so they are serialized with everything
else that transfer does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

import msgspec

from engine import commands as c
from engine import liquidity
from engine.access import ApiKey, Role
from engine.audit import AuditRecord, AuditRow
from engine.controls import Scope
from engine.discrepancies import Discrepancy, DiscrepancyEvent
from engine.events import ControlChanged, EvidenceRecorded, RuleSetLoaded
from engine.overrides import Kind as OverrideKind
from engine.overrides import Override
from engine.policy import Explained, RuleSet
from engine.pricing import Desk
from engine.quotes import Quote
from engine.rebalance import Rebalance
from engine.records import IdempotencyRecord, IdempotencyStatus, Recorded
from engine.results import Result
from engine.sanctions import ListInForce, Rescreened
from engine.transfer import TransferState
from engine.webhooks import Attempt, Endpoint


class Balance(msgspec.Struct, frozen=True, kw_only=True):
    currency: str
    available: int
    held: int


class LedgerLine(msgspec.Struct, frozen=True, kw_only=True):
    journal_seq: int
    leg: int
    transfer_id: str | None
    account: str
    currency: str
    debit: int
    credit: int
    entry_type: str
    effective_at: int


class FeedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A client-visible event (the webhook outbox), with the transfer as of that event."""

    event_id: str
    event_type: str
    client_id: str
    created_at: int
    journal_seq: int
    transfer: TransferState | None
    # The X-Request-Id of the API request that caused the event, if one did.
    request_id: str | None = None


class ReloadRefused(msgspec.Struct, frozen=True, kw_only=True):
    """Why a sanctions list reload changed nothing: no files are configured
    (`sanctions_not_configured`) or they cannot be read (`sanctions_list_invalid`)."""

    code: str
    detail: str


class TransferQuery(msgspec.Struct, frozen=True, kw_only=True):
    client_id: str | None
    status: str | None = None
    created_after: int | None = None
    created_before: int | None = None
    # Keyset cursor: the (created_at, transfer_id) of the last transfer already seen.
    before: tuple[int, str] | None = None
    # pending: only transfers waiting in CREATED for an approval.
    approval_state: str | None = None
    limit: int


class LedgerQuery(msgspec.Struct, frozen=True, kw_only=True):
    client_id: str | None
    transfer_id: str | None = None
    account: str | None = None
    # Keyset cursor: the (journal_seq, leg) of the last line already seen.
    after: tuple[int, int] | None = None
    limit: int


# What an operator does to a case: its next event, or why not (engine.discrepancies decides).
CaseDecision = Callable[[Discrepancy], DiscrepancyEvent | Result]


class CaseQuery(msgspec.Struct, frozen=True, kw_only=True):
    """A page of reconciliation cases, newest first."""

    status: str | None = None
    kind: str | None = None
    severity: str | None = None
    transfer_id: str | None = None
    # Keyset cursor: the (created_at, discrepancy_id) of the last case already seen.
    before: tuple[int, str] | None = None
    limit: int


class SourceCounts(msgspec.Struct, kw_only=True):
    """Reports of one source: matched (a reconciled transfer names them) or not, with their
    amounts per currency in minor units, and the unmatched ones by age."""

    source: str
    matched: int = 0
    matched_amounts: dict[str, int] = {}
    unmatched: int = 0
    unmatched_amounts: dict[str, int] = {}
    unmatched_by_age: dict[str, int] = {}


class BalanceRow(msgspec.Struct, frozen=True, kw_only=True):
    """The latest reading of one held account against its holder (engine.balances)."""

    source: str
    holder: str
    account: str
    currency: str
    ledger: int
    external: int
    drift: int
    in_flight_low: int
    in_flight_high: int
    read_at: int


class ReconciliationSummary(msgspec.Struct, kw_only=True):
    sources: list[SourceCounts]
    # Each held account's latest balance reading (recorded when its drift last changed).
    balances: list[BalanceRow]
    # Transfers confirmed on chain and not yet reconciled, by age since their confirmation.
    awaiting_by_age: dict[str, int]
    cases_by_status: dict[str, int]
    cases_by_type: dict[str, int]
    open_cases_by_age: dict[str, int]
    open_cases_by_severity: dict[str, int]
    sla_breached: int


class Dashboard(msgspec.Struct, frozen=True, kw_only=True):
    """The console's overview of one client's transfers (or every client's, for staff)."""

    by_status: dict[str, int]
    # (the hour's start, status, count): transfers created in each of the last 24 hours, by the
    # status they are in now.
    created_by_hour: list[tuple[int, str, int]]
    # (status, since when) of each transfer not yet terminal, oldest first (at most
    # `limits.dashboard_open_max`).
    open_since: list[tuple[str, int]]


class Created(msgspec.Struct, frozen=True, kw_only=True):
    """The answer to a create: its result, the transfer that holds the idempotency key (this
    request's or an earlier one's), and, when this request created it, its state once the
    synchronous steps (quote, policy, funds lock) were decided."""

    result: Result
    holder: str | None = None
    state: TransferState | None = None
    # Whether the request's audit record was committed with the create (the caller then writes
    # none).
    audited: bool = False


class Service(Protocol):
    # --- keys and readiness ---------------------------------------------------------------------
    def api_key(self, key_id: str) -> Awaitable[ApiKey | None]: ...

    def create_api_key(
        self, client_id: str, role: Role, user: str
    ) -> Awaitable[tuple[ApiKey, str]]:
        """A new client key: the stored record and the key's text (shown once)."""
        ...

    def api_keys(
        self, client_id: str | None, before: str | None, limit: int
    ) -> Awaitable[list[ApiKey]]: ...

    def revoke_api_key(self, key_id: str) -> Awaitable[None]: ...

    @property
    def ready(self) -> bool: ...

    @property
    def env(self) -> str: ...

    # --- transfers ------------------------------------------------------------------------------
    def issue_quote(
        self, client_id: str, source: str, target: str, amount: int, bank: bool
    ) -> Awaitable[Quote | Result]: ...

    def quote(self, quote_id: str) -> Awaitable[tuple[str | None, Quote] | None]:
        """A quote as it was made (issued to a client, or taken by a transfer) and the client
        it was made for."""
        ...

    def liquidity(self) -> Awaitable[liquidity.View]:
        """Every held balance against its thresholds, with the rebalancing plan."""
        ...

    def providers(self) -> Desk:
        """Every pricing provider: its corridors, the operator's terms, its breaker."""
        ...

    def create_transfer(
        self,
        command: c.CreateTransfer,
        audit: Callable[[int, bytes], AuditRecord] | None = None,
    ) -> Awaitable[Created]:
        """Create a transfer; `audit` makes the request's audit record from its answer (HTTP
        status, body), committed with the create when the answer is."""
        ...

    def command(
        self, transfer_id: str, command: c.TransferCommand, request_id: str | None
    ) -> Awaitable[Result]: ...

    def idempotency_record(
        self, client_id: str, key: str
    ) -> Awaitable[IdempotencyRecord | None]: ...

    def complete_key(
        self,
        client_id: str,
        key: str,
        status: IdempotencyStatus,
        response_status: int,
        response_body: bytes,
    ) -> Awaitable[object]: ...

    def transfer(self, transfer_id: str) -> Awaitable[TransferState | None]: ...

    def transfers(self, query: TransferQuery) -> Awaitable[list[TransferState]]: ...

    def history(self, transfer_id: str) -> Awaitable[list[Recorded]]: ...

    # --- money ----------------------------------------------------------------------------------
    def balances(self, client_id: str) -> Awaitable[list[Balance]]: ...

    def ledger(self, query: LedgerQuery) -> Awaitable[list[LedgerLine]]: ...

    # --- webhooks and the event feed ------------------------------------------------------------
    def create_endpoint(self, endpoint: Endpoint, secret: str) -> Awaitable[None]: ...

    def endpoints(self, client_id: str | None) -> Awaitable[list[Endpoint]]: ...

    def endpoint(self, endpoint_id: str) -> Awaitable[Endpoint | None]: ...

    def delete_endpoint(self, endpoint_id: str) -> Awaitable[None]: ...

    def attempts(
        self, endpoint_id: str, after: tuple[int, str, int] | None, limit: int
    ) -> Awaitable[list[Attempt]]: ...

    def feed(
        self, client_id: str | None, after_event_id: str | None, limit: int
    ) -> Awaitable[list[FeedEvent] | None]:
        """Events after `after_event_id` in commit order; None if that id is not the client's."""
        ...

    # --- operations and the simulated rails -----------------------------------------------------
    def transfer_evidence(self, transfer_id: str) -> Awaitable[list[EvidenceRecorded]]:
        """The external evidence recorded for a transfer (chain logs, provider and bank
        reports), in the order it was recorded."""
        ...

    def transfer_attempts(self, transfer_id: str) -> Awaitable[list[Attempt]]:
        """Every webhook delivery attempt of the transfer's events, oldest first."""
        ...

    def stuck_transfers(self, status: str | None, limit: int) -> Awaitable[list[TransferState]]: ...

    def redrive(self, transfer_id: str) -> Awaitable[bool]:
        """Re-run the transfer's pending effects; False if its actor could not take it now."""
        ...

    def sim_deposit(self, client_id: str, currency: str, amount: int) -> Awaitable[Result]: ...

    def inbound(self, provider: str, raw: bytes) -> Awaitable[Result]:
        """A provider's genuine webhook: `ok` once its evidence (raw payload kept) and what it
        tells are journaled, `command_malformed` if it is not one the provider sends."""
        ...

    def audit_page(
        self,
        *,
        actor: str | None,
        resource: str | None,
        action: str | None,
        from_at: int | None,
        to_at: int | None,
        before_seq: int | None,
        limit: int,
    ) -> Awaitable[list[AuditRow]]:
        """Audit rows newest first."""
        ...

    def record_audit(self, record: AuditRecord) -> Awaitable[None]:
        """Chain one record onto the audit log (durable when this returns)."""
        ...

    def trial_balance(self) -> Awaitable[list[tuple[str, str, int, int]]]:
        """(account, currency, debits, credits) of every ledger account, one snapshot."""
        ...

    def status_counts(self) -> Awaitable[dict[str, int]]: ...

    def dashboard(self, client_id: str | None) -> Awaitable[Dashboard]: ...

    def metrics_snapshot(self) -> dict[str, float]: ...

    def control(
        self, scope: Scope, target: str, on: bool, by: str, reason: str
    ) -> Awaitable[tuple[ControlChanged, int]]:
        """Switch a freeze or halt: the change in force, and how many transfers not yet on chain
        it cancelled."""
        ...

    def control_changes(self) -> Awaitable[list[ControlChanged]]:
        """Every freeze, halt and their reversals, newest first (the journal's controls
        stream)."""
        ...

    def request_override(
        self, kind: OverrideKind, transfer_id: str, reason: str, by: str
    ) -> Awaitable[Override | Result]: ...

    def decide_override(
        self, override_id: str, by: str, approved: bool, reason: str
    ) -> Awaitable[Override | Result]: ...

    def override(self, override_id: str) -> Awaitable[Override | None]: ...

    def propose_rebalance(
        self, *, from_account: str, to_account: str, currency: str, amount: int, reason: str,
        by: str,
    ) -> Awaitable[Rebalance | Result]:  # fmt: skip
        """An operator proposes a rebalancing move; nothing moves until a second one approves."""
        ...

    def decide_rebalance(
        self, rebalance_id: str, by: str, approved: bool, reason: str
    ) -> Awaitable[Rebalance | Result]:
        """A second operator approves (the move is paid on chain) or rejects."""
        ...

    def rebalance(self, rebalance_id: str) -> Awaitable[Rebalance | None]: ...

    def rebalances(self) -> Awaitable[list[Rebalance]]:
        """The latest rebalancing moves, newest first."""
        ...

    # --- reconciliation -------------------------------------------------------------------------
    def discrepancies(self, query: CaseQuery) -> Awaitable[list[Discrepancy]]: ...

    def discrepancy(self, discrepancy_id: str) -> Awaitable[Discrepancy | None]: ...

    def act_on_case(
        self, discrepancy_id: str, decide: CaseDecision
    ) -> Awaitable[Discrepancy | Result]:
        """Fold the case, let `decide` answer with its next event (or a refusal), journal it."""
        ...

    def reconciliation_summary(self, now: int) -> Awaitable[ReconciliationSummary]: ...

    # --- sanctions ------------------------------------------------------------------------------
    def sanctions_in_force(self) -> ListInForce: ...

    def reload_sanctions(
        self, by: str, reason: str
    ) -> Awaitable[tuple[ListInForce, Rescreened] | ReloadRefused]:
        """Read the configured list again and bring it into force, re-screening every transfer
        not yet on chain; why it cannot be (the list in force stays)."""
        ...

    # --- policy ---------------------------------------------------------------------------------
    def rules_in_force(self) -> RuleSetLoaded: ...

    def rules_version(self, version: int) -> RuleSetLoaded | None: ...

    def load_rules(self, document: bytes, by: str, reason: str) -> Awaitable[RuleSet | list[str]]:
        """Bring a rule set document into force (journaled); its problems if it cannot be."""
        ...

    def explain_policy(self, command: c.CreateTransfer) -> Awaitable[Explained]:
        """Which rule a well-formed create would match now (a dry run: nothing stored)."""
        ...
