"""The real clock and real entropy: the only place (with sim/) that reads either."""

from __future__ import annotations

import os
import time

from engine.ids import format_id


class SystemClock:
    def now_us(self) -> int:
        return time.time_ns() // 1_000


class SystemIds:
    """ULID-style ids from the wall clock and os.urandom."""

    def __init__(self, clock: SystemClock | None = None) -> None:
        self._clock = clock or SystemClock()

    def new(self, prefix: str) -> str:
        return format_id(prefix, self._clock.now_us() // 1_000, os.urandom(10))
