"""Opaque, prefixed, time-sortable identifiers ("tr_01JD3Z...").

The body is a ULID: 48 bits of milliseconds since the epoch then 80 bits of entropy, in Crockford
base32, so ids sort by creation time. This module only formats; the time and the entropy come
through the `Ids` port (adapters/ reads the real clock and os.urandom, sim/ a virtual clock and a
seeded generator), which keeps the engine deterministic.
"""

from __future__ import annotations

import re

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Two base32 digits per 10 bits: 13 table lookups per id (ids are minted on the writer's path).
_PAIRS = tuple(a + b for a in _CROCKFORD for b in _CROCKFORD)
_SHIFTS = tuple(range(120, -10, -10))
_BODY_LENGTH = 26
_ID = re.compile(r"([a-z]{2,4})_([0-9A-HJKMNP-TV-Z]{26})")

# Every prefix the product issues (API.md lists the public ones).
PREFIXES = frozenset(
    {"tr", "qt", "we", "ev", "dc", "ak", "cl", "dp", "ex", "rq", "tf", "al", "ov", "rb"}
)


def format_id(prefix: str, millis: int, entropy: bytes) -> str:
    assert prefix in PREFIXES, prefix
    assert 0 <= millis < 2**48
    assert len(entropy) == 10
    value = (millis << 80) | int.from_bytes(entropy, "big")
    # 26 digits carry 130 bits: two zero bits, then the 128-bit value.
    return prefix + "_" + "".join([_PAIRS[(value >> shift) & 1023] for shift in _SHIFTS])


def parse_id(text: str) -> tuple[str, str] | None:
    """(prefix, body) of a well-formed id, else None."""
    if not isinstance(text, str):
        return None
    match = _ID.fullmatch(text)
    if match is None or match.group(1) not in PREFIXES:
        return None
    return match.group(1), match.group(2)


def is_id(text: str, prefix: str) -> bool:
    parsed = parse_id(text)
    return parsed is not None and parsed[0] == prefix
