"""Timestamps: integer microseconds since the Unix epoch inside, RFC 3339 UTC at the edges.

Pure arithmetic on values handed in; nothing here reads the clock.
"""

from __future__ import annotations

import datetime as dt
import functools

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
US_PER_S = 1_000_000


@functools.lru_cache(maxsize=4096)
def _second(seconds: int) -> str:
    return (_EPOCH + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")


@functools.lru_cache(maxsize=16_384)
def rfc3339_us(us: int) -> str:
    """Fixed-width, lexicographically sortable: 2026-11-25T10:00:00.000000Z (stored form).

    On the writer's hot path, where a transfer's row repeats the same instants event after event:
    results are cached, and the date part is formatted once per second."""
    seconds, micros = divmod(us, US_PER_S)
    return f"{_second(seconds)}.{micros:06d}Z"


def rfc3339(us: int) -> str:
    """Second precision, as the API writes timestamps: 2026-11-25T10:00:00Z."""
    moment = _EPOCH + dt.timedelta(microseconds=us)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> int | None:
    """RFC 3339 with an explicit offset -> microseconds since the epoch, or None if malformed."""
    if not isinstance(text, str) or len(text) > 40:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return micros(moment)


def micros(moment: dt.datetime) -> int:
    """An aware datetime as microseconds since the epoch, in integers (no float timestamp)."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * US_PER_S + delta.microseconds
