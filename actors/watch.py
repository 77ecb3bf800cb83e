"""Waiting for a transfer to reach a state: a future per waiter, resolved by the actor's commit.

A waiter registers before it reads the durable state, so a commit that lands between the read and
the wait still wakes it; every wait has a deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from engine.transfer import TransferState


class StateWatch:
    def __init__(self) -> None:
        self._waiting: dict[str, list[asyncio.Future[TransferState]]] = {}

    def changed(self, state: TransferState) -> None:
        for future in self._waiting.pop(state.transfer_id, ()):
            if not future.done():
                future.set_result(state)

    async def until(
        self,
        transfer_id: str,
        load: Callable[[str], Awaitable[TransferState | None]],
        reached: Callable[[TransferState], bool],
        timeout_s: float,
    ) -> TransferState | None:
        """The transfer's state once `reached` holds, or as it is when `timeout_s` runs out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        state: TransferState | None = None
        while True:
            future: asyncio.Future[TransferState] = loop.create_future()
            self._waiting.setdefault(transfer_id, []).append(future)
            try:
                state = await load(transfer_id)
                if state is not None and reached(state):
                    return state
                left = deadline - loop.time()
                if left <= 0:
                    return state
                try:
                    async with asyncio.timeout(left):
                        state = await future
                except TimeoutError:
                    return state
                if reached(state):
                    return state
            finally:
                waiting = self._waiting.get(transfer_id)
                if waiting is not None and future in waiting:
                    waiting.remove(future)
                    if not waiting:
                        del self._waiting[transfer_id]
