"""Simulated time and entropy: a clock that moves only when told, an event loop whose time jumps to
the next deadline, and ids drawn from a seeded generator. With them the same seed gives the same
ids, timestamps and therefore the same journal, byte for byte."""

from __future__ import annotations

import asyncio
import math
import random
import selectors
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from engine.ids import format_id
from engine.ports import Clock

T = TypeVar("T")

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
    def __init__(self, seed: int, clock: Clock) -> None:
        self._random = random.Random(seed)
        self._clock = clock

    def new(self, prefix: str) -> str:
        return format_id(prefix, self._clock.now_us() // 1_000, self._random.randbytes(10))

    def hex(self, nbytes: int) -> str:
        return "0x" + self._random.randbytes(nbytes).hex()


class SimulationStalled(RuntimeError):
    """Every task waits, no timer is set and no I/O can arrive: the simulated world is stuck."""


class VirtualClock:
    """The simulated world's time in integer microseconds. The event loop below reads it as its
    own clock and moves it forward, so `asyncio.sleep`, `asyncio.timeout` and anyio's deadlines
    all run in virtual time and the Clock port agrees with them to the microsecond."""

    def __init__(self, start_us: int = EPOCH_US) -> None:
        self.start_us = start_us
        self.elapsed_us = 0

    def now_us(self) -> int:
        return self.start_us + self.elapsed_us


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An asyncio loop whose time jumps to the next deadline whenever every task waits.

    asyncio's `_run_once` asks the selector to block for exactly as long as the earliest timer is
    away (0 when callbacks are ready, None when nothing is scheduled). Instead of blocking, the
    virtual selector advances the clock by that much and polls without waiting, so the timer is
    due on the next look. Nothing here reads the wall clock: a run is a function of its inputs.
    """

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__()
        self.clock = clock
        poll = self._selector.select  # type: ignore[attr-defined]

        def select(timeout: float | None) -> list[tuple[selectors.SelectorKey, int]]:
            if timeout is None:
                raise SimulationStalled("every task waits and no timer is set")
            if timeout > 0:
                clock.elapsed_us += math.ceil(timeout * 1_000_000)
            return poll(0)  # type: ignore[no-any-return]

        self._selector.select = select  # type: ignore[attr-defined]

    def time(self) -> float:
        return self.clock.elapsed_us / 1_000_000


def run_virtual(main: Callable[[], Coroutine[Any, Any, T]], clock: VirtualClock) -> T:
    """Run `main()` to completion on a fresh virtual-time loop driven by `clock`."""
    with asyncio.Runner(loop_factory=lambda: VirtualTimeLoop(clock)) as runner:
        return runner.run(main())
