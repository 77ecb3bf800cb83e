"""The audit log (Series 3): who did what to which resource, when, why, with what result, in a
hash chain that detects any edit, deletion or reordering.

Every command that reaches the API (accepted, refused or unauthorized), every admin action from
the command line and every control-plane change the system makes itself is one `AuditRecord`
with Series 3's fields. The store appends them in commit order; row `seq` carries
`hash = sha256(prev_hash || seq || canonical JSON of the record)`, the first row's prev_hash
being 32 zero bytes. `verify_chain` recomputes the chain and stops at the first broken link.
Recomputing the whole chain after a rewrite would make it consistent again, so the head is also
written at intervals to an append-only anchor file outside the database; `verify_chain` checks
every anchor names a row that still has that hash.

Pure: records, hashes and the check; the store and the anchor file hold them.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable

import msgspec

GENESIS_HASH = bytes(32)


class ActorType(enum.StrEnum):
    # A client's person or service account acting through a client key.
    USER = "user"
    # A client admin or a staff key (operator, auditor): administrative power.
    ADMIN = "admin"
    # The engine itself (a rule set loaded at start, a sweep).
    SYSTEM = "system"
    # An external system that authenticates by signature (a provider's webhook).
    SERVICE = "service"
    # No usable credentials: recorded so refused attempts are visible too.
    ANONYMOUS = "anonymous"


class AuditRecord(msgspec.Struct, frozen=True, kw_only=True):
    at: int
    actor_id: str
    actor_type: ActorType
    action_type: str
    resource_type: str
    resource_id: str | None = None
    request_id: str | None = None
    # "ok", or the problem code the command was refused with.
    outcome: str
    # What changed, as key fields (never whole payloads).
    diff_summary: dict[str, str] = {}
    # Context: the key, role and client, the policy decision, the HTTP method and status.
    metadata: dict[str, str] = {}


class AuditRow(msgspec.Struct, frozen=True, kw_only=True):
    seq: int
    record: AuditRecord
    prev_hash: bytes
    hash: bytes


_encoder = msgspec.json.Encoder(order="sorted")


def canonical(record: AuditRecord) -> bytes:
    return _encoder.encode(record)


def chain_hash(prev_hash: bytes, seq: int, record: AuditRecord) -> bytes:
    assert len(prev_hash) == 32 and seq >= 1
    digest = hashlib.sha256(prev_hash)
    digest.update(seq.to_bytes(8, "big"))
    digest.update(canonical(record))
    return digest.digest()


def verify_chain(rows: Iterable[AuditRow], anchors: Iterable[tuple[int, bytes]] = ()) -> str | None:
    """The first broken link, in words (None: the chain and every anchor hold). `rows` in the
    order the store returns them (by seq); `anchors`, (seq, hash) pairs as the file holds them."""
    expected_seq, prev = 1, GENESIS_HASH
    hashes: dict[int, bytes] = {}
    for row in rows:
        if row.seq != expected_seq:
            return f"row {row.seq}: expected row {expected_seq} (a row is missing or moved)"
        if row.prev_hash != prev:
            return f"row {row.seq}: its prev_hash is not row {row.seq - 1}'s hash"
        if chain_hash(prev, row.seq, row.record) != row.hash:
            return f"row {row.seq}: its hash does not match its contents (edited)"
        hashes[row.seq] = row.hash
        prev, expected_seq = row.hash, expected_seq + 1
    last_anchor = 0
    for seq, digest in anchors:
        if seq < last_anchor:
            return f"anchor at row {seq} comes after one at row {last_anchor} (the file was edited)"
        last_anchor = seq
        found = hashes.get(seq)
        if found is None:
            return f"anchor at row {seq}: the log ends at row {expected_seq - 1} (rows removed)"
        if found != digest:
            return f"anchor at row {seq}: the row's hash differs (the chain was rewritten)"
    return None
