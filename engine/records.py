"""What goes into the store and what comes back: write requests, their outcomes, journal records.

They live in the engine because they are the journal port's vocabulary: the actors, the API and
the simulator speak them without importing the store that implements the port.

A `WriteRequest` is atomic: its appends (to one or more streams), its idempotency operation and its
evidence payloads commit together or not at all. Many requests share one SQLite transaction
(group commit) without sharing fate: a request that is refused does not touch the others.
"""

from __future__ import annotations

import enum

import msgspec

from engine.audit import AuditRecord
from engine.events import Event
from engine.results import Result


class Append(msgspec.Struct, frozen=True, kw_only=True):
    stream_id: str
    # The stream's version the events were decided against: 0 for a new stream.
    expected_version: int
    events: tuple[Event, ...]


class IdempotencyStatus(enum.StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class ClaimKey(msgspec.Struct, frozen=True, kw_only=True):
    """Acquire (client_id, key) for this request before anything leaves CREATED (Series 4)."""

    client_id: str
    key: str
    request_hash: str
    transaction_id: str | None
    expires_at: int


class CompleteKey(msgspec.Struct, frozen=True, kw_only=True):
    """Store the answer for (client_id, key), so a retry gets exactly this response."""

    client_id: str
    key: str
    status: IdempotencyStatus
    response_status: int
    response_body: bytes


class WriteRequest(msgspec.Struct, frozen=True, kw_only=True):
    appends: tuple[Append, ...] = ()
    claim: ClaimKey | None = None
    complete: CompleteKey | None = None
    # Raw payloads of EvidenceRecorded events in `appends`, by evidence_id.
    evidence_raw: dict[str, bytes] = {}
    request_id: str | None = None
    # Audit records to chain onto the audit log in the same commit.
    audit: tuple[AuditRecord, ...] = ()


class IdempotencyRecord(msgspec.Struct, frozen=True, kw_only=True):
    client_id: str
    key: str
    request_hash: str
    transaction_id: str | None
    status: IdempotencyStatus
    response_status: int | None
    response_body: bytes | None
    expires_at: str


class Committed(msgspec.Struct, frozen=True, kw_only=True):
    first_seq: int
    last_seq: int
    # Each appended stream's version after this request.
    versions: dict[str, int]


class Rejected(msgspec.Struct, frozen=True, kw_only=True):
    result: Result
    detail: str = ""
    # For idempotency_request_in_progress: whose request holds the key.
    record: IdempotencyRecord | None = None


class Duplicate(msgspec.Struct, frozen=True, kw_only=True):
    """Nothing was written because this exact request (or evidence) was seen before.

    `record` is the stored idempotency outcome to replay. It is None when the key's record has
    expired but the transfer it created still exists (`transaction_id`), and for duplicated
    evidence, which names the evidence already stored (`evidence_id`)."""

    record: IdempotencyRecord | None = None
    transaction_id: str | None = None
    evidence_id: str | None = None


Outcome = Committed | Rejected | Duplicate


class Recorded(msgspec.Struct, frozen=True, kw_only=True):
    """A journal row: the event and its envelope."""

    seq: int
    stream_id: str
    version: int
    event_type: str
    event: Event
    recorded_at: str
    request_id: str | None
    prev_hash: bytes
    hash: bytes
