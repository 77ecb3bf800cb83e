"""Judging a batch: every request checked in order against the writer's view, accepted whole (its
journal rows, projections and idempotency rows queued in the plan, its effects applied to the
view) or refused whole (a Result, nothing touched). Synchronous: every value it needs was loaded
into the view first.

The checks, in order: the request's shape (a bug in the appender if wrong), stream versions
(optimistic concurrency), the transition table (evolve: the store's half of "check each invariant
in pairs"), client balances never below zero (the check-and-hold, serialized with every posting
judged before it), the rolling policy limits a hold must fit (serialized the same way), duplicated
evidence, the idempotency claim and completion. Audit records are chained onto the audit log last.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import msgspec

from engine import audit, invariants, ledger, limits
from engine import events as ev
from engine.money import format_amount
from engine.policy import USD, Scope
from engine.records import (
    Committed,
    Duplicate,
    IdempotencyRecord,
    IdempotencyStatus,
    Outcome,
    Recorded,
    Rejected,
    WriteRequest,
)
from engine.results import Result
from engine.timefmt import rfc3339_us
from engine.transfer import TransferState, evolve
from store import journal
from store.errors import InvariantViolation
from store.projection import Projection, Statements
from store.view import View

_payload_encoder = msgspec.json.Encoder()

_INSERT_KEY = (
    "INSERT INTO idempotency_keys (client_id, idempotency_key, request_hash, transaction_id,"
    " status, response_status, response_body, created_at, updated_at, expires_at)"
    " VALUES (?, ?, ?, ?, ?, NULL, NULL, ?, ?, ?)"
)
_INSERT_AUDIT = (
    "INSERT INTO audit_log (seq, at, actor_id, actor_type, action_type, resource_type,"
    " resource_id, request_id, outcome, record, prev_hash, hash)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_COMPLETE_KEY = (
    "UPDATE idempotency_keys SET status = ?, response_status = ?, response_body = ?,"
    " updated_at = ? WHERE client_id = ? AND idempotency_key = ?"
)


class Pending(msgspec.Struct):
    request: WriteRequest
    future: asyncio.Future[Outcome]


class Plan:
    """A judged batch: its outcomes, and the statements that make the accepted ones durable."""

    def __init__(self, batch: list[Pending]) -> None:
        self.batch = batch
        self.outcomes: list[Outcome | BaseException] = []
        self.journal_rows: list[tuple[Any, ...]] = []
        self.key_inserts: list[tuple[Any, ...]] = []
        self.key_updates: list[tuple[Any, ...]] = []
        self.audit_rows: list[tuple[Any, ...]] = []
        self.projection = Projection()

    def statements(self) -> Statements:
        """In an order the foreign keys accept: journal rows first, then projections."""
        found: Statements = []
        if self.journal_rows:
            found.append((journal.INSERT_SQL, self.journal_rows))
        found.extend(self.projection.statements())
        if self.key_inserts:
            found.append((_INSERT_KEY, self.key_inserts))
        if self.key_updates:
            found.append((_COMPLETE_KEY, self.key_updates))
        if self.audit_rows:
            found.append((_INSERT_AUDIT, self.audit_rows))
        return found


class _Refused(Exception):
    def __init__(self, outcome: Rejected | Duplicate) -> None:
        self.outcome = outcome


def judge(plan: Plan, view: View, now: int) -> None:
    """Judge every request of the plan's batch, in order, against `view` (loaded for them)."""
    recorded_at = rfc3339_us(now)
    # The projection starts from the transfers' states as the view has them.
    plan.projection = Projection(
        {
            a.stream_id: view.states[a.stream_id]
            for p in plan.batch
            for a in p.request.appends
            if ev.is_transfer_event(a.events[0]) and view.versions[a.stream_id] > 0
        }
    )
    for pending in plan.batch:
        try:
            outcome: Outcome | BaseException = _judge_one(
                pending.request, plan, view, now, recorded_at
            )
        except _Refused as refused:
            outcome = refused.outcome
        except InvariantViolation as bug:
            outcome = bug
        plan.outcomes.append(outcome)


def _judge_one(
    request: WriteRequest, plan: Plan, view: View, now: int, recorded_at: str
) -> Outcome:
    _check_shape(request)
    versions = _check_versions(request, view)
    states = _evolve_transfers(request, plan.projection)
    deltas = _check_funds(request, view)
    spent = _check_limits(request, view, states)
    evidence = _check_evidence(request, view)
    claim_row, claimed = _check_claim(request, view, now, recorded_at)
    update_row, completed = _check_complete(request, view, recorded_at, claimed)
    # After this point the request is accepted: apply it to the plan and the view.
    head_seq, head_hash = view.head
    first_seq = head_seq + 1
    for append in request.appends:
        for offset, event in enumerate(append.events, start=1):
            seq, version = head_seq + 1, append.expected_version + offset
            kind = ev.event_type(event)
            payload = _payload_encoder.encode(event)
            digest = journal.chain_hash(
                head_hash,
                seq=seq,
                stream_id=append.stream_id,
                version=version,
                event_type=kind,
                recorded_at=recorded_at,
                request_id=request.request_id,
                payload=payload,
            )
            plan.journal_rows.append(
                (
                    seq,
                    append.stream_id,
                    version,
                    kind,
                    payload.decode(),
                    recorded_at,
                    request.request_id,
                    head_hash,
                    digest,
                )
            )
            rec = Recorded(
                seq=seq,
                stream_id=append.stream_id,
                version=version,
                event_type=kind,
                event=event,
                recorded_at=recorded_at,
                request_id=request.request_id,
                prev_hash=head_hash,
                hash=digest,
            )
            raw = (
                request.evidence_raw.get(event.evidence_id)
                if isinstance(event, ev.EvidenceRecorded)
                else None
            )
            plan.projection.add(rec, after=states.get((append.stream_id, version)), raw=raw)
            head_seq, head_hash = seq, digest
    view.head = (head_seq, head_hash)
    view.versions.update(versions)
    for account, delta in deltas.items():
        view.balances[account] = view.balances.get(account, 0) + delta
    for client, beneficiary, usd in spent:
        for (c, b, _), usage in view.usage.items():
            if c == client and b in (None, beneficiary):
                usage[0] += 1
                usage[1] += usd
    view.evidence.update(evidence)
    if claim_row is not None and claimed is not None:
        plan.key_inserts.append(claim_row)
        view.keys[(claimed.client_id, claimed.key)] = claimed
    if update_row is not None and completed is not None:
        plan.key_updates.append(update_row)
        view.keys[(completed.client_id, completed.key)] = completed
    for record in request.audit:
        seq, prev = view.audit_head[0] + 1, view.audit_head[1]
        digest = audit.chain_hash(prev, seq, record)
        plan.audit_rows.append(
            (
                seq,
                rfc3339_us(record.at),
                record.actor_id,
                record.actor_type.value,
                record.action_type,
                record.resource_type,
                record.resource_id,
                record.request_id,
                record.outcome,
                audit.canonical(record).decode(),
                prev,
                digest,
            )
        )
        view.audit_head = (seq, digest)
    return Committed(first_seq=first_seq, last_seq=head_seq, versions=versions)


def _check_shape(request: WriteRequest) -> None:
    streams = [a.stream_id for a in request.appends]
    if len(set(streams)) != len(streams):
        raise InvariantViolation("one request appends to a stream twice")
    for append in request.appends:
        if not append.events or len(append.events) > limits.events_per_append_max:
            raise InvariantViolation(
                f"{append.stream_id}: 1..{limits.events_per_append_max} events"
            )
        if append.expected_version < 0:
            raise InvariantViolation(f"{append.stream_id}: negative expected version")
        if len({ev.is_transfer_event(e) for e in append.events}) > 1:
            raise InvariantViolation(f"{append.stream_id}: transfer and other events mixed")
        for event in append.events:
            owner = _stream_of(event)
            if owner is not None and owner != append.stream_id:
                raise InvariantViolation(
                    f"{ev.event_type(event)} for {owner} in {append.stream_id}"
                )
            entries = ev.entries_of(event)
            if len(entries) > limits.entries_per_event_max:
                raise InvariantViolation(f"{ev.event_type(event)}: too many entries")
            # Transfer events are checked by evolve (_evolve_transfers); the others here.
            problem = None if ev.is_transfer_event(event) else invariants.entries_problem(entries)
            if problem is not None:
                raise InvariantViolation(f"{ev.event_type(event)}: {problem}")
            if (
                isinstance(event, ev.EvidenceRecorded)
                and event.evidence_id not in request.evidence_raw
            ):
                raise InvariantViolation(f"{event.evidence_id}: raw payload missing")
    claim, complete = request.claim, request.complete
    if claim and complete and (claim.client_id, claim.key) != (complete.client_id, complete.key):
        raise InvariantViolation("claim and completion name different keys")
    for append in request.appends:
        created = append.events[0]
        if claim and isinstance(created, ev.TransferCreated):
            terms = (created.client_id, created.idempotency_key, created.request_hash)
            if terms != (claim.client_id, claim.key, claim.request_hash) or (
                claim.transaction_id != created.transfer_id
            ):
                raise InvariantViolation("the claimed key is not the created transfer's")


# The field naming the stream each kind of event opens or belongs to (its owner). A kind not
# here goes wherever its stream says: a transfer's later events, a provider's breaker changes.
_OWNER_FIELDS: dict[type, str] = {
    ev.TransferCreated: "transfer_id",
    ev.DepositCredited: "deposit_id",
    ev.TreasuryFunded: "funding_id",
    ev.ProviderFunded: "funding_id",
    ev.AlertRaised: "alert_id",
    ev.EvidenceRecorded: "evidence_id",
    ev.OverrideRequested: "override_id",
    ev.OverrideDecided: "override_id",
    ev.OverrideExecuted: "override_id",
    **dict.fromkeys(
        (
            ev.RebalanceProposed,
            ev.RebalanceDecided,
            ev.RebalanceSubmitted,
            ev.RebalanceReplaced,
            ev.RebalanceRequested,
            ev.RebalanceSent,
            ev.RebalanceConfirmed,
            ev.RebalanceReorged,
            ev.RebalanceFailed,
        ),
        "rebalance_id",
    ),
    **dict.fromkeys(
        (
            ev.DiscrepancyOpened,
            ev.DiscrepancyAssigned,
            ev.DiscrepancyNoted,
            ev.DiscrepancyResolutionProposed,
            ev.DiscrepancyProposalRejected,
            ev.DiscrepancyResolved,
        ),
        "discrepancy_id",
    ),
}


def _stream_of(event: ev.Event) -> str | None:
    """The stream `event` must be appended to, or None if its kind names none. A table lookup:
    a match over the kinds cost a dozen isinstance checks per event on the writer's path."""
    if type(event) is ev.QuoteIssued:
        return event.quote.quote_id
    field = _OWNER_FIELDS.get(type(event))
    return None if field is None else cast(str, getattr(event, field))


def _check_versions(request: WriteRequest, view: View) -> dict[str, int]:
    versions = {}
    for append in request.appends:
        current = view.versions[append.stream_id]
        if append.expected_version == 0 and current > 0:
            raise _Refused(
                Rejected(result=Result.stream_exists, detail=f"{append.stream_id} exists")
            )
        if append.expected_version != current:
            raise _Refused(
                Rejected(
                    result=Result.version_conflict,
                    detail=f"{append.stream_id} is at version {current},"
                    f" not {append.expected_version}",
                )
            )
        versions[append.stream_id] = current + len(append.events)
    return versions


def _evolve_transfers(
    request: WriteRequest, projection: Projection
) -> dict[tuple[str, int], TransferState]:
    """Each transfer event applied to its transfer's current state: evolve asserts the move is in
    the transition table (the second check of the pair; decide made the first)."""
    states: dict[tuple[str, int], TransferState] = {}
    for append in request.appends:
        if not ev.is_transfer_event(append.events[0]):
            continue
        state = projection.transfer(append.stream_id)
        if state is not None and state.version != append.expected_version:
            raise InvariantViolation(
                f"{append.stream_id}: state at version {state.version}, journal at"
                f" {append.expected_version}"
            )
        for offset, event in enumerate(append.events, start=1):
            assert ev.is_transfer_event(event)  # _check_shape refused mixed appends
            try:
                state = evolve(state, event)
            except AssertionError as e:
                raise InvariantViolation(f"{append.stream_id}: {e}") from e
            states[(append.stream_id, append.expected_version + offset)] = state
    return states


def _check_funds(request: WriteRequest, view: View) -> dict[tuple[str, str], int]:
    """Client accounts may not go below zero: the check-and-hold, serialized by the single writer
    with every other posting judged before it."""
    deltas: dict[tuple[str, str], int] = {}
    for append in request.appends:
        for event in append.events:
            for entry in ev.entries_of(event):
                if ledger.account_kind(entry.account) in ledger.NON_NEGATIVE:
                    key = (entry.account, entry.currency)
                    deltas[key] = deltas.get(key, 0) + entry.credit - entry.debit
    for key, delta in deltas.items():
        balance = view.balances.get(key, 0)
        if delta < 0 and balance + delta < 0:
            raise _Refused(
                Rejected(
                    result=Result.insufficient_funds,
                    detail=f"{key[0]} has {balance} {key[1]}, needs {-delta}",
                )
            )
    return deltas


def _check_limits(
    request: WriteRequest, view: View, states: dict[tuple[str, int], TransferState]
) -> list[tuple[str, str, int]]:
    """A hold must fit every rolling limit its policy decision carries: the count and USD volume
    of the client's (or the beneficiary's) holds in the window, as of this commit, plus this one.
    Returns the holds taken, (client, beneficiary, USD amount), to count for the next request.
    `states`: each transfer's state after each of the request's events (_evolve_transfers)."""
    spent: list[tuple[str, str, int]] = []
    for append in request.appends:
        for offset, event in enumerate(append.events, start=1):
            if not isinstance(event, ev.FundsLocked):
                continue
            state = states[(append.stream_id, append.expected_version + offset)]
            for check in event.limits:
                beneficiary = event.beneficiary if check.scope is Scope.BENEFICIARY else None
                window_start = view.now - check.window_us
                count, volume = view.usage[(state.client_id, beneficiary, window_start)]
                over_count = check.count_max is not None and count + 1 > check.count_max
                over_volume = (
                    check.volume_max is not None and volume + event.usd_amount > check.volume_max
                )
                if over_count or over_volume:
                    raise _Refused(
                        Rejected(
                            result=Result.limit_exceeded,
                            detail=f"rolling limit {check.limit_id}: {count} transfers of"
                            f" {format_amount(volume, USD)} USD already in its window",
                        )
                    )
            spent.append((state.client_id, event.beneficiary, event.usd_amount))
    return spent


def _check_evidence(request: WriteRequest, view: View) -> dict[tuple[str, str, str], str]:
    found: dict[tuple[str, str, str], str] = {}
    for append in request.appends:
        for event in append.events:
            if isinstance(event, ev.EvidenceRecorded):
                key = (event.provider, event.external_ref, event.event_type)
                existing = view.evidence.get(key) or found.get(key)
                if existing is not None:
                    raise _Refused(Duplicate(evidence_id=existing))
                found[key] = event.evidence_id
    return found


def _check_claim(
    request: WriteRequest, view: View, now: int, recorded_at: str
) -> tuple[tuple[Any, ...] | None, IdempotencyRecord | None]:
    claim = request.claim
    if claim is None:
        return None, None
    record = view.keys.get((claim.client_id, claim.key))
    if record is not None:
        if record.request_hash != claim.request_hash:
            raise _Refused(Rejected(result=Result.idempotency_key_reused))
        if record.status is IdempotencyStatus.IN_PROGRESS:
            raise _Refused(Rejected(result=Result.idempotency_request_in_progress, record=record))
        raise _Refused(Duplicate(record=record, transaction_id=record.transaction_id))
    keyed = view.keyed.get((claim.client_id, claim.key))
    if keyed is not None:
        transaction_id, request_hash = keyed
        if request_hash != claim.request_hash:
            raise _Refused(Rejected(result=Result.idempotency_key_reused))
        raise _Refused(Duplicate(transaction_id=transaction_id))
    expires_at = rfc3339_us(max(claim.expires_at, now))
    record = IdempotencyRecord(
        client_id=claim.client_id,
        key=claim.key,
        request_hash=claim.request_hash,
        transaction_id=claim.transaction_id,
        status=IdempotencyStatus.IN_PROGRESS,
        response_status=None,
        response_body=None,
        expires_at=expires_at,
    )
    row = (
        claim.client_id,
        claim.key,
        claim.request_hash,
        claim.transaction_id,
        IdempotencyStatus.IN_PROGRESS.value,
        recorded_at,
        recorded_at,
        expires_at,
    )
    return row, record


def _check_complete(
    request: WriteRequest,
    view: View,
    recorded_at: str,
    claimed: IdempotencyRecord | None,
) -> tuple[tuple[Any, ...] | None, IdempotencyRecord | None]:
    done = request.complete
    if done is None:
        return None, None
    assert done.status is not IdempotencyStatus.IN_PROGRESS
    record = claimed if claimed is not None else view.keys.get((done.client_id, done.key))
    if record is None:
        raise _Refused(Rejected(result=Result.command_malformed, detail="no such idempotency key"))
    if record.status is not IdempotencyStatus.IN_PROGRESS:
        if (record.status, record.response_status, record.response_body) == (
            done.status,
            done.response_status,
            done.response_body,
        ):
            raise _Refused(Duplicate(record=record, transaction_id=record.transaction_id))
        raise _Refused(
            Rejected(result=Result.idempotency_key_reused, detail="already answered differently")
        )
    completed = msgspec.structs.replace(
        record,
        status=done.status,
        response_status=done.response_status,
        response_body=done.response_body,
    )
    row = (
        done.status.value,
        done.response_status,
        done.response_body,
        recorded_at,
        done.client_id,
        done.key,
    )
    return row, completed
