"""Discrepancy cases (Series 5): every difference the reconciliation pipeline finds becomes a case
an operator can see, own and close, journaled in its own stream (dc_...).

Life of a case: OPEN (the pipeline opened it, with a severity, a confidence and an SLA deadline)
-> INVESTIGATING (an operator took it: owner) -> RESOLVED | FALSE_POSITIVE | WRITTEN_OFF. Notes
can be added at any time before it closes. A resolution that moves money (an adjustment, a
write-off to suspense, a reversal) is a correcting ledger posting: one operator proposes it with
the entries, another approves it (maker != checker, compared by user), and only then is it posted,
in the same event that closes the case. A written-off case always carries a correction that
touches suspense. The pipeline itself closes a case when the difference went away (the late
report arrived) or needs no decision (the same event reported twice); it never moves money.

Nothing is deleted: a closed case stays, and a difference that comes back after its case closed
as a false positive is not reopened (the operator's decision stands).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

import msgspec

from engine import events as ev
from engine import invariants, ledger, limits
from engine.ledger import AccountKind, Entries, Entry, EntryType
from engine.reconciliation import Finding, Kind
from engine.records import Recorded
from engine.results import Result

SYSTEM_ACTOR = "system:reconciler"
HOUR_US = 3_600 * 1_000_000


class Status(enum.StrEnum):
    OPEN = "OPEN"
    INVESTIGATING = "INVESTIGATING"
    RESOLVED = "RESOLVED"
    FALSE_POSITIVE = "FALSE_POSITIVE"
    WRITTEN_OFF = "WRITTEN_OFF"


CLOSED = frozenset({Status.RESOLVED, Status.FALSE_POSITIVE, Status.WRITTEN_OFF})


class Resolution(enum.StrEnum):
    """What an operator says when closing a case (the API's `resolution`)."""

    RESOLVED = "resolved"
    FALSE_POSITIVE = "false_positive"
    WRITTEN_OFF = "written_off"

    @property
    def status(self) -> Status:
        return Status(self.value.upper())


# Accounts a correction may post to: not a client's held funds (those belong to a transfer's
# state and move only with it).
CORRECTABLE = frozenset(AccountKind) - {AccountKind.CLIENT_HELD}


class Proposal(msgspec.Struct, frozen=True, kw_only=True):
    resolution: Resolution
    notes: str
    correction: Entries
    by: str
    at: int


class Note(msgspec.Struct, frozen=True, kw_only=True):
    at: int
    by: str
    text: str


class Discrepancy(msgspec.Struct, frozen=True, kw_only=True):
    discrepancy_id: str
    case_key: str
    kind: Kind
    severity: str
    confidence: int
    source: str
    transfer_id: str | None
    evidence_ids: tuple[str, ...]
    expected: dict[str, str]
    actual: dict[str, str]
    sla_deadline: int
    created_at: int
    status: Status = Status.OPEN
    owner: str | None = None
    notes: tuple[Note, ...] = ()
    proposal: Proposal | None = None
    resolution: Resolution | None = None
    resolution_notes: str = ""
    resolved_by: str | None = None
    approved_by: str | None = None
    correction: Entries = ()
    resolved_at: int | None = None
    updated_at: int = 0
    version: int = 1

    @property
    def closed(self) -> bool:
        return self.status in CLOSED


DiscrepancyEvent = (
    ev.DiscrepancyOpened
    | ev.DiscrepancyAssigned
    | ev.DiscrepancyNoted
    | ev.DiscrepancyResolutionProposed
    | ev.DiscrepancyProposalRejected
    | ev.DiscrepancyResolved
)


def evolve(case: Discrepancy | None, event: DiscrepancyEvent) -> Discrepancy:
    """One event applied (the projection and every reader fold with this)."""
    if isinstance(event, ev.DiscrepancyOpened):
        assert case is None, "opened twice"
        return Discrepancy(
            discrepancy_id=event.discrepancy_id,
            case_key=event.case_key,
            kind=Kind(event.kind),
            severity=event.severity,
            confidence=event.confidence,
            source=event.source,
            transfer_id=event.transfer_id,
            evidence_ids=event.evidence_ids,
            expected=event.expected,
            actual=event.actual,
            sla_deadline=event.sla_deadline,
            created_at=event.at,
            updated_at=event.at,
        )
    assert case is not None and not case.closed, "event on a closed or missing case"
    bump = {"version": case.version + 1, "updated_at": event.at}
    match event:
        case ev.DiscrepancyAssigned():
            return msgspec.structs.replace(
                case, status=Status.INVESTIGATING, owner=event.owner, **bump
            )
        case ev.DiscrepancyNoted():
            note = Note(at=event.at, by=event.by, text=event.note)
            return msgspec.structs.replace(case, notes=(*case.notes, note), **bump)
        case ev.DiscrepancyResolutionProposed():
            proposal = Proposal(
                resolution=Resolution(event.resolution),
                notes=event.notes,
                correction=event.correction,
                by=event.by,
                at=event.at,
            )
            return msgspec.structs.replace(case, proposal=proposal, **bump)
        case ev.DiscrepancyProposalRejected():
            note = Note(at=event.at, by=event.by, text=f"proposal rejected: {event.reason}")
            return msgspec.structs.replace(case, proposal=None, notes=(*case.notes, note), **bump)
        case ev.DiscrepancyResolved():
            resolution = Resolution(event.resolution)
            return msgspec.structs.replace(
                case,
                status=resolution.status,
                resolution=resolution,
                resolution_notes=event.notes,
                resolved_by=event.by,
                approved_by=event.approved_by,
                correction=event.entries,
                resolved_at=event.at,
                proposal=None,
                **bump,
            )
    raise AssertionError(event)


def fold(events: list[DiscrepancyEvent]) -> Discrepancy | None:
    case: Discrepancy | None = None
    for event in events:
        case = evolve(case, event)
    return case


def from_records(records: Sequence[Recorded]) -> Discrepancy | None:
    """The case a stream's records hold, or None when the stream is not a case's."""
    events = [r.event for r in records if isinstance(r.event, ev.DISCREPANCY_EVENTS)]
    if not events or len(events) != len(records):
        return None
    return fold(events)


# --- Deciding: the pipeline's and the operators' commands, checked against the case ----------


def open_case(discrepancy_id: str, finding: Finding, now: int) -> ev.DiscrepancyOpened:
    return ev.DiscrepancyOpened(
        at=now,
        discrepancy_id=discrepancy_id,
        case_key=finding.case_key,
        kind=finding.kind.value,
        severity=finding.severity.value,
        confidence=finding.confidence,
        source=finding.source.value,
        transfer_id=finding.transfer_id,
        evidence_ids=finding.evidence_ids,
        expected=finding.expected,
        actual=finding.actual,
        sla_deadline=now + limits.discrepancy_sla_us[finding.severity.value],
        by=SYSTEM_ACTOR,
    )


def _text_ok(text: str, length_max: int = limits.discrepancy_note_length_max) -> bool:
    return 0 < len(text.strip()) <= length_max and text.isprintable()


def assign(case: Discrepancy, owner: str, by: str, now: int) -> ev.DiscrepancyAssigned | Result:
    if case.closed:
        return Result.discrepancy_closed
    if not _text_ok(owner, limits.user_name_length_max):
        return Result.command_malformed
    return ev.DiscrepancyAssigned(at=now, discrepancy_id=case.discrepancy_id, owner=owner, by=by)


def note(case: Discrepancy, text: str, by: str, now: int) -> ev.DiscrepancyNoted | Result:
    if case.closed:
        return Result.discrepancy_closed
    if not _text_ok(text):
        return Result.command_malformed
    if len(case.notes) >= limits.discrepancy_notes_max:
        return Result.limit_exceeded
    return ev.DiscrepancyNoted(at=now, discrepancy_id=case.discrepancy_id, note=text, by=by)


def correction_problem(resolution: Resolution, entries: Entries) -> str | None:
    """Why these correcting entries cannot close a case this way, or None."""
    if resolution is Resolution.FALSE_POSITIVE and entries:
        return "a false positive moves no money"
    if resolution is Resolution.WRITTEN_OFF and not any(
        ledger.account_kind(e.account) is AccountKind.SUSPENSE for e in entries
    ):
        return "a write-off posts the difference to suspense"
    if len(entries) > limits.entries_per_event_max:
        return f"at most {limits.entries_per_event_max} entries"
    for entry in entries:
        if ledger.account_kind(entry.account) not in CORRECTABLE:
            return f"{entry.account} cannot be corrected by hand"
        if entry.type is not EntryType.ADJUSTMENT:
            return "correcting entries are ADJUSTMENT entries"
    return invariants.entries_problem(entries) if entries else None


def resolve(
    case: Discrepancy,
    resolution: Resolution,
    notes: str,
    correction: Entries,
    by: str,
    now: int,
) -> ev.DiscrepancyResolved | ev.DiscrepancyResolutionProposed | Result:
    """Close the case, or (when it moves money) propose the closing for a second operator."""
    if case.closed:
        return Result.discrepancy_closed
    if not _text_ok(notes):
        return Result.command_malformed
    if correction_problem(resolution, correction) is not None:
        return Result.correction_invalid
    if case.proposal is not None:
        return Result.discrepancy_proposal_pending
    if correction:
        return ev.DiscrepancyResolutionProposed(
            at=now,
            discrepancy_id=case.discrepancy_id,
            resolution=resolution.value,
            notes=notes,
            correction=correction,
            by=by,
        )
    return ev.DiscrepancyResolved(
        at=now, discrepancy_id=case.discrepancy_id, resolution=resolution.value, notes=notes,
        by=by,
    )  # fmt: skip


def decide_proposal(
    case: Discrepancy, approved: bool, reason: str, by: str, now: int
) -> ev.DiscrepancyResolved | ev.DiscrepancyProposalRejected | Result:
    """The second operator's decision on a correcting resolution: never the proposer's own."""
    proposal = case.proposal
    if case.closed:
        return Result.discrepancy_closed
    if proposal is None:
        return Result.discrepancy_no_proposal
    if by == proposal.by:
        return Result.maker_cannot_approve
    if not approved:
        if not _text_ok(reason):
            return Result.command_malformed
        return ev.DiscrepancyProposalRejected(
            at=now, discrepancy_id=case.discrepancy_id, reason=reason, by=by
        )
    return ev.DiscrepancyResolved(
        at=now,
        discrepancy_id=case.discrepancy_id,
        resolution=proposal.resolution.value,
        notes=proposal.notes,
        by=proposal.by,
        approved_by=by,
        entries=proposal.correction,
        transfer_id=case.transfer_id,
    )


def close_by_pipeline(case: Discrepancy, notes: str, now: int) -> ev.DiscrepancyResolved:
    """The pipeline closes a case whose difference went away (or needs no decision)."""
    assert not case.closed
    return ev.DiscrepancyResolved(
        at=now,
        discrepancy_id=case.discrepancy_id,
        resolution=Resolution.RESOLVED.value,
        notes=notes,
        by=SYSTEM_ACTOR,
    )


# --- Reading: aging and SLAs ----------------------------------------------------------------


class Bucket(enum.StrEnum):
    """Series 2's aging buckets."""

    UNDER_24H = "0-24h"
    UNDER_72H = "24-72h"
    OVER_72H = "72h+"


def bucket(age_us: int) -> Bucket:
    if age_us < 24 * HOUR_US:
        return Bucket.UNDER_24H
    if age_us < 72 * HOUR_US:
        return Bucket.UNDER_72H
    return Bucket.OVER_72H


def breached(case: Discrepancy, now: int) -> bool:
    """Open past its SLA deadline."""
    return not case.closed and now >= case.sla_deadline


def correction_entry(account: str, currency: str, debit: int, credit: int) -> Entry:
    return Entry(
        account=account, currency=currency, debit=debit, credit=credit, type=EntryType.ADJUSTMENT
    )
