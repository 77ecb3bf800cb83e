"""The journal's hash chain: each row carries the hash of the previous one.

hash(n) = sha256(hash(n-1) || header(n) || payload(n)), where the header is the canonical JSON of
[seq, stream_id, version, event_type, recorded_at, request_id, len(payload)]. Changing any column of
any row, removing a row or reordering rows breaks the chain from that row on, which is what
`stablerail verify` recomputes. (Cutting rows off the end leaves a valid shorter chain: verify
prints the head so operators can anchor it elsewhere.)
"""

from __future__ import annotations

import hashlib

import msgspec

GENESIS_HASH = bytes(32)

_header = msgspec.json.Encoder()


def chain_hash(
    prev_hash: bytes,
    *,
    seq: int,
    stream_id: str,
    version: int,
    event_type: str,
    recorded_at: str,
    request_id: str | None,
    payload: bytes,
) -> bytes:
    header = _header.encode(
        [seq, stream_id, version, event_type, recorded_at, request_id, len(payload)]
    )
    digest = hashlib.sha256(prev_hash)
    digest.update(header)
    digest.update(payload)
    return digest.digest()


INSERT_SQL = (
    "INSERT INTO journal (seq, stream_id, version, event_type, payload, recorded_at, request_id,"
    " prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
SELECT_COLUMNS = (
    "seq, stream_id, version, event_type, payload, recorded_at, request_id, prev_hash, hash"
)
