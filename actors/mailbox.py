"""A bounded mailbox: one per actor, read by that actor alone.

A plain asyncio.Queue (measured 4-5x faster than anyio memory streams for this use). The sync twin
`try_send` holds the logic and says whether the message was taken; `send` only waits, with a
deadline, for room.
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

T = TypeVar("T")


class MailboxFull(Exception):
    """The actor is behind: its mailbox stayed full for the whole wait."""


class Mailbox(Generic[T]):
    def __init__(self, depth_max: int) -> None:
        assert depth_max > 0
        self._queue: asyncio.Queue[T] = asyncio.Queue(depth_max)

    def __len__(self) -> int:
        return self._queue.qsize()

    def empty(self) -> bool:
        return self._queue.empty()

    def try_send(self, message: T) -> bool:
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            return False
        return True

    async def send(self, message: T, wait_s: float) -> None:
        if self.try_send(message):
            return
        try:
            async with asyncio.timeout(wait_s):
                await self._queue.put(message)
        except TimeoutError:
            raise MailboxFull(f"mailbox full for {wait_s} s") from None

    async def receive(self, idle_s: float) -> T | None:
        """The next message, or None after `idle_s` with none."""
        if not self._queue.empty():
            return self._queue.get_nowait()
        try:
            async with asyncio.timeout(idle_s):
                return await self._queue.get()
        except TimeoutError:
            return None

    def drain(self) -> list[T]:
        taken = []
        while not self._queue.empty():
            taken.append(self._queue.get_nowait())
        return taken
