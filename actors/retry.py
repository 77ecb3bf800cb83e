"""Calling a rail: every attempt has a deadline, attempts are bounded, waits between them grow.

Only errors the rail marks transient (and deadlines) are retried; the last error is raised when the
attempts run out, so the caller decides what a persistent failure means for the transfer. tenacity
runs the attempts; the jitter is deterministic (engine.backoff), so a simulated run stays a
function of its seed, and the waits are the event loop's (virtual time in the simulator).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from engine import limits
from engine.backoff import delay_us
from engine.rails import RailError
from engine.results import Result

T = TypeVar("T")


def _transient(error: BaseException) -> bool:
    return isinstance(error, RailError) and error.transient


async def call_rail(
    call: Callable[[], Awaitable[T]],
    *,
    key: str,
    unavailable: Result = Result.provider_unavailable,
    attempts_max: int = limits.rail_attempts_max,
    attempt_timeout_s: float = limits.rail_call_timeout_s,
) -> T:
    def wait_s(retry: RetryCallState) -> float:
        attempt = retry.attempt_number - 1  # the retry after the first attempt waits delay 0
        return (
            delay_us(
                attempt,
                base_us=limits.rail_retry_base_us,
                cap_us=limits.rail_retry_cap_us,
                key=key,
            )
            / 1_000_000
        )

    retrying = AsyncRetrying(
        stop=stop_after_attempt(attempts_max),
        wait=wait_s,
        retry=retry_if_exception(_transient),
        sleep=asyncio.sleep,
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            try:
                async with asyncio.timeout(attempt_timeout_s):
                    return await call()
            except TimeoutError:
                raise RailError(
                    unavailable, "no answer before the deadline", transient=True
                ) from None
    raise AssertionError("tenacity ends with a result or the last error")
