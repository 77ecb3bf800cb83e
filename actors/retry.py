"""Calling a rail: every attempt has a deadline, attempts are bounded, waits between them grow.

Only errors the rail marks transient (and deadlines) are retried; the last error is raised when the
attempts run out, so the caller decides what a persistent failure means for the transfer. The
jitter is deterministic (engine.backoff), so a simulated run stays a function of its seed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from engine import limits
from engine.backoff import delay_us
from engine.rails import RailError
from engine.results import Result

T = TypeVar("T")


async def call_rail(
    call: Callable[[], Awaitable[T]],
    *,
    key: str,
    unavailable: Result = Result.provider_unavailable,
    attempts_max: int = limits.rail_attempts_max,
) -> T:
    last: RailError | None = None
    for attempt in range(attempts_max):
        try:
            async with asyncio.timeout(limits.rail_call_timeout_s):
                return await call()
        except RailError as e:
            if not e.transient:
                raise
            last = e
        except TimeoutError:
            last = RailError(unavailable, "no answer before the deadline", transient=True)
        if attempt + 1 < attempts_max:
            wait = delay_us(
                attempt,
                base_us=limits.rail_retry_base_us,
                cap_us=limits.rail_retry_cap_us,
                key=key,
            )
            await asyncio.sleep(wait / 1_000_000)
    assert last is not None
    raise last
