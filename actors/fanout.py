"""A supervisor's round over many transfers, a bounded number at a time.

Taken one after another, each transfer's journal append (evidence of a confirmation, a payout, an
alert) would wait for its own commit, and a round over a thousand transfers would take a thousand
fsyncs. Run side by side, the appends share group commits. `limit` workers take the items in
order, so a run under the virtual clock stays deterministic.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import anyio

T = TypeVar("T")


async def for_each(items: Sequence[T], run: Callable[[T], Awaitable[None]], *, limit: int) -> None:
    """`run` every item, at most `limit` at a time; returns when all are done. An exception
    from one cancels the others and propagates (in an exception group, unless it was the only
    item) to the supervisor's owner, as it would from a plain loop."""
    assert limit > 0
    if len(items) <= 1:
        # Nothing to run beside it, or nothing at all (most rounds): no task group to make.
        for item in items:
            await run(item)
        return
    pending = iter(items)

    async def worker() -> None:
        for item in pending:
            await run(item)

    async with anyio.create_task_group() as workers:
        for _ in range(min(limit, len(items))):
            workers.start_soon(worker)
