"""Every problem a file has, named at once but bounded: the readers of files from outside
(sanctions lists, bank statements) refuse a file whole and say why, without an unbounded list."""

from __future__ import annotations

PROBLEMS_MAX = 50


class Problems:
    def __init__(self, limit: int = PROBLEMS_MAX) -> None:
        self.found: list[str] = []
        self.more = 0
        self.limit = limit

    def add(self, text: str) -> None:
        if len(self.found) < self.limit:
            self.found.append(text)
        else:
            self.more += 1

    def __bool__(self) -> bool:
        return bool(self.found)

    def listed(self) -> list[str]:
        return self.found + ([f"... and {self.more} more"] if self.more else [])
