"""Calling a rail: every attempt has a deadline (its own, the whole call's, or, for a call that
bounds its own waits, those), attempts are bounded, waits between them grow.

Only errors the rail marks transient (and deadlines) are retried; the last error is raised when the
attempts run out, so the caller decides what a persistent failure means for the transfer. tenacity
runs the attempts; the jitter is deterministic (engine.backoff), so a simulated run stays a
function of its seed, and the waits are the event loop's (virtual time in the simulator).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

from engine import limits
from engine.backoff import delay_us
from engine.rails import RailError
from engine.results import Result

T = TypeVar("T")


def _transient(error: BaseException) -> bool:
    return isinstance(error, RailError) and error.transient


async def _attempt(
    call: Callable[[], Awaitable[T]], unavailable: Result, timeout_s: float | None
) -> T:
    """One attempt within `timeout_s` (None: no deadline of its own, a deadline around the whole
    call comes first): past it, a transient `unavailable` error."""
    if timeout_s is None:
        return await call()
    try:
        async with asyncio.timeout(timeout_s):
            return await call()
    except TimeoutError:
        raise RailError(unavailable, "no answer before the deadline", transient=True) from None


async def call_rail(
    call: Callable[[], Awaitable[T]],
    *,
    key: str,
    unavailable: Result = Result.provider_unavailable,
    attempts_max: int = limits.rail_attempts_max,
    attempt_timeout_s: float | None = limits.rail_call_timeout_s,
    deadline_s: float | None = None,
) -> T:
    """`call`, retried as above. `attempt_timeout_s` None: `call` bounds every wait of its own
    (the quote desk: each provider within its deadline, each append within the writer's), so an
    attempt needs no timer. `deadline_s`: the whole call, its attempts and the waits between
    them, ends within this many seconds, raising TimeoutError when it does (as an
    `asyncio.timeout` around it would). An attempt that could not outlast that deadline gets no
    timer of its own: one timer per call, not two."""
    if deadline_s is None:
        return await _attempts(call, key, unavailable, attempts_max, attempt_timeout_s)
    async with asyncio.timeout(deadline_s):
        outlasts = attempt_timeout_s is not None and attempt_timeout_s < deadline_s
        timeout_s = attempt_timeout_s if outlasts else None
        return await _attempts(call, key, unavailable, attempts_max, timeout_s)


async def _attempts(
    call: Callable[[], Awaitable[T]],
    key: str,
    unavailable: Result,
    attempts_max: int,
    timeout_s: float | None,
) -> T:
    def wait_s(retry: int) -> float:
        """The wait after failed attempt `retry` (0-based)."""
        base, cap = limits.rail_retry_base_us, limits.rail_retry_cap_us
        return delay_us(retry, base_us=base, cap_us=cap, key=key) / 1_000_000

    # The first attempt runs without tenacity: most calls succeed at once, and this is every
    # rail call's hot path (tenacity's bookkeeping costs about 25 us a call).
    try:
        return await _attempt(call, unavailable, timeout_s)
    except RailError as e:
        if not e.transient or attempts_max <= 1:
            raise
    await asyncio.sleep(wait_s(0))
    retrying = AsyncRetrying(
        stop=stop_after_attempt(attempts_max - 1),
        # tenacity's attempt n is the call's attempt n + 1: the wait after it is wait_s(n).
        wait=lambda retry: wait_s(retry.attempt_number),
        retry=retry_if_exception(_transient),
        sleep=asyncio.sleep,
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await _attempt(call, unavailable, timeout_s)
    raise AssertionError("tenacity ends with a result or the last error")
