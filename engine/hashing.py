"""Canonical hashing of requests, for idempotency's "same key, same request?" question."""

from __future__ import annotations

import hashlib

import msgspec

_canonical = msgspec.json.Encoder(order="sorted")


def request_hash(*parts: object) -> str:
    """sha256 hex of the canonical JSON (sorted keys, no whitespace) of `parts`: the operation
    and its body, so equal requests hash equally however their fields were ordered."""
    return hashlib.sha256(_canonical.encode(parts)).hexdigest()
