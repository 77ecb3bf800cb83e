"""The virtual-time loop: sleeps and deadlines jump straight to their instant, the Clock port
agrees with the loop to the microsecond, and a world in which every task waits forever is
reported instead of hanging."""

from __future__ import annotations

import asyncio
import time

import anyio
import pytest

from sim.clock import EPOCH_US, SimulationStalled, VirtualClock, run_virtual


def test_an_hour_of_virtual_time_takes_no_real_time() -> None:
    clock = VirtualClock()

    async def main() -> int:
        await asyncio.sleep(3600)
        with anyio.move_on_after(2.5):
            await anyio.sleep(10)
        async with asyncio.timeout(1):
            await asyncio.sleep(0.25)
        return clock.now_us()

    started = time.perf_counter()
    assert run_virtual(main, clock) == EPOCH_US + 3_602_750_000
    assert time.perf_counter() - started < 5


def test_a_world_where_everything_waits_forever_is_reported() -> None:
    async def main() -> None:
        await asyncio.Event().wait()

    with pytest.raises(SimulationStalled):
        run_virtual(main, VirtualClock())
