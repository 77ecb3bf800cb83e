"""Two ways to run the same SQL: aiosqlite (production) and in-loop sqlite3 (deterministic
simulation).

Every store module talks to an `Executor`, never to a driver, so the journal, the group-commit
writer, projections and queries are one implementation under both. aiosqlite runs each call on the
connection's own thread, which keeps the event loop free but makes scheduling nondeterministic;
the in-loop executor runs each call synchronously inside the coroutine, so a simulation with the
same seed produces a byte-identical journal. Both connections run in autocommit mode
(isolation_level=None): the store issues BEGIN IMMEDIATE / COMMIT itself.
"""

from __future__ import annotations

import enum
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import aiosqlite

Row = tuple[Any, ...]
Params = Sequence[Any]

BUSY_TIMEOUT_MS = 5_000


class ExecutorKind(enum.StrEnum):
    AIOSQLITE = "aiosqlite"
    INLINE = "inline"


class Executor(Protocol):
    async def execute(self, sql: str, params: Params = ()) -> None: ...
    async def executemany(self, sql: str, rows: Iterable[Params]) -> None: ...
    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]: ...
    async def fetchone(self, sql: str, params: Params = ()) -> Row | None: ...
    async def executescript(self, script: str) -> None: ...
    async def close(self) -> None: ...


def _configure(conn: sqlite3.Connection) -> None:
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")


class InlineExecutor:
    """sqlite3 called directly from the coroutine: no thread, deterministic order."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> None:
        self._conn.execute(sql, params)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        self._conn.executemany(sql, rows)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return self._conn.execute(sql, params).fetchall()

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        return self._conn.execute(sql, params).fetchone()

    async def executescript(self, script: str) -> None:
        self._conn.executescript(script)

    async def close(self) -> None:
        self._conn.close()


class AiosqliteExecutor:
    """sqlite3 on aiosqlite's per-connection thread."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    # One thread hop per call: results are consumed on the worker thread and cursors are not
    # closed separately (a closed-over statement without rows holds no lock).

    async def execute(self, sql: str, params: Params = ()) -> None:
        await self._conn.execute_fetchall(sql, params)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        await self._conn.executemany(sql, list(rows))

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return list(await self._conn.execute_fetchall(sql, params))

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self._conn.execute_fetchall(sql, params)
        return next(iter(rows), None)

    async def executescript(self, script: str) -> None:
        await self._conn.executescript(script)

    async def close(self) -> None:
        await self._conn.close()


async def connect(path: Path | str, kind: ExecutorKind, *, read_only: bool = False) -> Executor:
    """Open one connection. `read_only` connections can never write, whatever the code asks."""
    if read_only:
        target, uri = f"file:{Path(path).as_posix()}?mode=ro", True
    else:
        target, uri = str(path), False
    if kind is ExecutorKind.INLINE:
        conn = sqlite3.connect(target, uri=uri, isolation_level=None, check_same_thread=False)
        _configure(conn)
        return InlineExecutor(conn)
    aconn = await aiosqlite.connect(target, uri=uri, isolation_level=None)
    await aconn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return AiosqliteExecutor(aconn)
