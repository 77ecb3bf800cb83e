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

import asyncio
import enum
import sqlite3
from collections.abc import Awaitable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol, cast

import aiosqlite

Row = tuple[Any, ...]
Params = Sequence[Any]

BUSY_TIMEOUT_MS = 5_000


class ExecutorKind(enum.StrEnum):
    AIOSQLITE = "aiosqlite"
    INLINE = "inline"


Statements = Sequence[tuple[str, Sequence[Params]]]


class Executor(Protocol):
    async def execute(self, sql: str, params: Params = ()) -> None: ...
    async def executemany(self, sql: str, rows: Iterable[Params]) -> None: ...
    async def run_all(self, statements: Statements) -> None:
        """Execute each (sql, rows) in order; raise the first error. Meant for the statements
        of one transaction: after an error the caller rolls back (later ones may have run)."""
        ...

    async def fetch_each(self, queries: Sequence[tuple[str, Params]]) -> list[list[Row]]:
        """The rows of each query, run in order; raise the first error."""
        ...

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

    async def run_all(self, statements: Statements) -> None:
        for sql, rows in statements:
            self._conn.executemany(sql, rows)

    async def fetch_each(self, queries: Sequence[tuple[str, Params]]) -> list[list[Row]]:
        return [self._conn.execute(sql, params).fetchall() for sql, params in queries]

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return self._conn.execute(sql, params).fetchall()

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        return cast(Row | None, self._conn.execute(sql, params).fetchone())

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

    async def run_all(self, statements: Statements) -> None:
        # All calls are queued to the connection's thread at once (in order: aiosqlite's queue is
        # FIFO and gather starts them in argument order), so the thread runs them back to back
        # instead of waiting for the event loop between statements.
        await _all_or_first_error(
            self._conn.executemany(sql, list(rows)) for sql, rows in statements
        )

    async def fetch_each(self, queries: Sequence[tuple[str, Params]]) -> list[list[Row]]:
        # Queued at once, like run_all: one round trip to the connection's thread.
        results = await _all_or_first_error(
            self._conn.execute_fetchall(sql, params) for sql, params in queries
        )
        return [list(rows) for rows in results]

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return cast(list[Row], list(await self._conn.execute_fetchall(sql, params)))

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self._conn.execute_fetchall(sql, params)
        return cast(Row | None, next(iter(rows), None))

    async def executescript(self, script: str) -> None:
        await self._conn.executescript(script)

    async def close(self) -> None:
        await self._conn.close()


async def _all_or_first_error(calls: Iterable[Awaitable[Any]]) -> list[Any]:
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


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


class ForwardingExecutor:
    """Forwards every call to another executor; subclasses observe or alter the ones they need
    (the benchmark records the writer's statements, tests inject I/O errors)."""

    def __init__(self, inner: Executor) -> None:
        self.inner = inner

    async def execute(self, sql: str, params: Params = ()) -> None:
        await self.inner.execute(sql, params)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        await self.inner.executemany(sql, rows)

    async def run_all(self, statements: Statements) -> None:
        await self.inner.run_all(statements)

    async def fetch_each(self, queries: Sequence[tuple[str, Params]]) -> list[list[Row]]:
        return await self.inner.fetch_each(queries)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return await self.inner.fetchall(sql, params)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        return await self.inner.fetchone(sql, params)

    async def executescript(self, script: str) -> None:
        await self.inner.executescript(script)

    async def close(self) -> None:
        await self.inner.close()
