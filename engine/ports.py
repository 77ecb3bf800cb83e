"""Ports: the engine's view of the outside world, as Protocols.

The engine never reads the clock or entropy and never does I/O; the actors and the store receive
implementations of these (real ones from adapters/, simulated ones from sim/).
"""

from __future__ import annotations

from typing import Protocol


class Clock(Protocol):
    def now_us(self) -> int:
        """Microseconds since the Unix epoch, UTC."""
        ...


class Ids(Protocol):
    def new(self, prefix: str) -> str:
        """A fresh id with the given prefix (see engine.ids)."""
        ...
