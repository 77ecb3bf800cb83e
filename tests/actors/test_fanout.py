"""A supervisor's round (actors.fanout.for_each) runs every item, never more than its limit at
once, starts them in order, and lets a failure out instead of swallowing it."""

from __future__ import annotations

import asyncio

import anyio
import anyio.lowlevel
import pytest

from actors.fanout import for_each

pytestmark = pytest.mark.anyio


async def test_every_item_runs_in_order_and_at_most_limit_at_once() -> None:
    started: list[int] = []
    running = 0
    most = 0

    async def run(item: int) -> None:
        nonlocal running, most
        started.append(item)
        running += 1
        most = max(most, running)
        await anyio.sleep(0.001 * (item % 3))
        running -= 1

    await for_each(list(range(50)), run, limit=7)
    assert started == list(range(50))
    assert most == 7


async def test_a_failure_propagates() -> None:
    async def run(item: int) -> None:
        if item == 3:
            raise ValueError("item 3")
        await anyio.lowlevel.checkpoint()

    with pytest.RaisesGroup(ValueError):
        await for_each(list(range(10)), run, limit=4)


async def test_no_items_is_a_no_op() -> None:
    async def run(item: int) -> None:
        raise AssertionError("never called")

    await for_each([], run, limit=4)


async def test_a_single_items_failure_propagates_as_itself() -> None:
    """One item runs in the caller's task (no task is spawned for it); its error is not wrapped."""

    async def run(item: int) -> None:
        raise ValueError(f"item {item}")

    with pytest.raises(ValueError, match="item 0"):
        await for_each([0], run, limit=4)


async def test_a_cancel_scope_around_a_round_cancels_every_worker() -> None:
    """The workers are asyncio tasks under an anyio cancel scope (the create's quote wait is
    one): a deadline cancels them all, the round ends at it, and the caller carries on
    uncancelled afterwards."""
    cancelled: list[int] = []

    async def run(item: int) -> None:
        try:
            await anyio.sleep(60)
        except BaseException:
            cancelled.append(item)
            raise

    with anyio.move_on_after(0.05) as scope:
        await for_each(list(range(6)), run, limit=3)
    assert scope.cancelled_caught
    assert sorted(cancelled) == [0, 1, 2]  # the three running; the rest never started
    await anyio.sleep(0.01)  # not cancelled again: the scope's cancellation is spent
    with anyio.fail_after(1):
        await for_each([1, 2], lambda item: anyio.lowlevel.checkpoint(), limit=2)


async def test_the_caller_is_one_of_the_workers() -> None:
    """`limit` items run at once from `limit - 1` new tasks and the caller's own."""
    tasks: set[object] = set()

    async def run(item: int) -> None:
        tasks.add(asyncio.current_task())
        await anyio.sleep(0.001)

    caller = asyncio.current_task()
    await for_each(list(range(9)), run, limit=3)
    assert caller in tasks and len(tasks) == 3
