"""Retry delays: exponential, capped, with jitter that needs no entropy.

The jitter of attempt n for a key is drawn from sha256(key, n), which spreads retries of different
transfers apart (no thundering herd after an outage) while keeping a simulated run a function of
its seed. Delays are integers in microseconds.
"""

from __future__ import annotations

import hashlib


def delay_us(attempt: int, *, base_us: int, cap_us: int, key: str) -> int:
    """The wait before retry `attempt` (0-based): uniform in [d/2, d) for d = min(cap, base*2^n)."""
    assert attempt >= 0 and 0 < base_us <= cap_us
    ceiling = min(cap_us, base_us << min(attempt, 62))
    digest = hashlib.sha256(f"{key}|{attempt}".encode()).digest()
    spread = ceiling - ceiling // 2
    return ceiling // 2 + (int.from_bytes(digest[:8], "big") * spread >> 64)
