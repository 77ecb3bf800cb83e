"""A clock that moves only when told, and ids drawn from a seeded generator: with both, the same
seed gives the same ids, timestamps and therefore the same journal, byte for byte."""

from __future__ import annotations

import random

from engine.ids import format_id

# 2026-11-25T00:00:00Z, the default start of simulated time.
EPOCH_US = 1_795_564_800_000_000


class ManualClock:
    def __init__(self, start_us: int = EPOCH_US, tick_us: int = 0) -> None:
        self._now = start_us
        # Every read moves time forward by this much, so successive events are ordered.
        self._tick = tick_us

    def now_us(self) -> int:
        self._now += self._tick
        return self._now

    def advance(self, us: int) -> None:
        assert us >= 0
        self._now += us


class SeededIds:
    def __init__(self, seed: int, clock: ManualClock) -> None:
        self._random = random.Random(seed)
        self._clock = clock

    def new(self, prefix: str) -> str:
        return format_id(prefix, self._clock.now_us() // 1_000, self._random.randbytes(10))

    def hex(self, nbytes: int) -> str:
        return "0x" + self._random.randbytes(nbytes).hex()
