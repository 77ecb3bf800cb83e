"""Two ways to run the same SQL: aiosqlite (production) and in-loop sqlite3 (deterministic
simulation).

Every store module talks to an `Executor`, never to a driver, so the journal, the group-commit
writer, projections and queries are one implementation under both. aiosqlite runs each call on the
connection's own thread, which keeps the event loop free but makes scheduling nondeterministic;
the in-loop executor runs each call synchronously inside the coroutine, so a simulation with the
same seed produces a byte-identical journal. Both connections run in autocommit mode
(isolation_level=None): the store issues BEGIN IMMEDIATE / COMMIT itself.

`transaction` runs a whole write transaction (BEGIN IMMEDIATE, the caller's synchronous reads,
checks and writes, COMMIT) in one call on the connection's thread: one round trip to it instead
of one per statement, each of which waits for the event loop to come round when it is busy. The
group-commit writer uses it for every batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import aiosqlite

Row = tuple[Any, ...]
Params = Sequence[Any]
T = TypeVar("T")


def chunks(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    """`items` in runs of at most `size`: one statement each, within SQLite's bound parameters
    (`limits.sql_params_per_statement_max`)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


BUSY_TIMEOUT_MS = 5_000


class ExecutorKind(enum.StrEnum):
    AIOSQLITE = "aiosqlite"
    INLINE = "inline"


Statements = Sequence[tuple[str, Sequence[Params]]]


class Sync(Protocol):
    """A connection's calls made synchronously, on the thread that owns it (see `transaction`)."""

    def execute(self, sql: str, params: Params = ()) -> None: ...
    def run_all(self, statements: Statements) -> None: ...
    def fetch_each(self, queries: Sequence[tuple[str, Params]]) -> list[list[Row]]: ...
    def fetchone(self, sql: str, params: Params = ()) -> Row | None: ...


class Direct:
    """The Sync calls on a sqlite3 connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Params = ()) -> None:
        self._conn.execute(sql, params)

    def run_all(self, statements: Statements) -> None:
        for sql, rows in statements:
            self._conn.executemany(sql, rows)

    def fetch_each(self, queries: Sequence[tuple[str, Params]]) -> list[list[Row]]:
        return [self._conn.execute(sql, params).fetchall() for sql, params in queries]

    def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        return cast(Row | None, self._conn.execute(sql, params).fetchone())


def _transact(db: Sync, work: Callable[[Sync], T]) -> T:
    db.execute("BEGIN IMMEDIATE")
    try:
        result = work(db)
        db.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise
    return result


async def transaction(ex: Executor, work: Callable[[Sync], T]) -> T:
    """`work` in one write transaction, in one call on the connection's thread: BEGIN IMMEDIATE,
    `work`, COMMIT; ROLLBACK if anything raises (re-raised). `work` must not touch the event loop:
    it may run on another thread. If the caller is cancelled meanwhile, the transaction still
    runs to its end (committed or rolled back): its outcome is unknown to the caller."""
    return await ex.call(lambda db: _transact(db, work))


class Executor(Protocol):
    async def call(self, fn: Callable[[Sync], T]) -> T:
        """`fn` with the connection's synchronous calls, on the connection's thread: one round
        trip for all the statements it runs."""
        ...

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
        self._db = Direct(conn)

    async def call(self, fn: Callable[[Sync], T]) -> T:
        return fn(self._db)

    async def execute(self, sql: str, params: Params = ()) -> None:
        self._db.execute(sql, params)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        self._conn.executemany(sql, rows)

    async def run_all(self, statements: Statements) -> None:
        self._db.run_all(statements)

    async def fetch_each(self, queries: Sequence[tuple[str, Params]]) -> list[list[Row]]:
        return self._db.fetch_each(queries)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return self._conn.execute(sql, params).fetchall()

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        return self._db.fetchone(sql, params)

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

    async def call(self, fn: Callable[[Sync], T]) -> T:
        # aiosqlite runs every call of its own API through Connection._execute, which queues a
        # function for the connection's thread; it has no public name for running one of ours
        # (the version is pinned in constraints.txt; tests/store cover this path).
        conn = self._conn
        return cast(T, await conn._execute(lambda: fn(Direct(conn._conn))))  # type: ignore[no-untyped-call]

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
    (the benchmark records the writer's statements, tests inject I/O errors). `executed` sees
    every statement a `call` (a transaction) makes, on the connection's thread, before it runs:
    raising there fails it."""

    def __init__(self, inner: Executor) -> None:
        self.inner = inner

    def executed(self, sql: str, rows: Sequence[Params]) -> None:
        """Called before each statement of a `call`; the default does nothing."""

    async def call(self, fn: Callable[[Sync], T]) -> T:
        return await self.inner.call(lambda db: fn(_Observed(db, self)))

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


class _Observed:
    """A Sync that shows each statement to a ForwardingExecutor before running it."""

    def __init__(self, db: Sync, owner: ForwardingExecutor) -> None:
        self._db = db
        self._owner = owner

    def execute(self, sql: str, params: Params = ()) -> None:
        self._owner.executed(sql, [params])
        self._db.execute(sql, params)

    def run_all(self, statements: Statements) -> None:
        for sql, rows in statements:
            self._owner.executed(sql, rows)
            self._db.run_all([(sql, rows)])

    def fetch_each(self, queries: Sequence[tuple[str, Params]]) -> list[list[Row]]:
        return self._db.fetch_each(queries)

    def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        return self._db.fetchone(sql, params)
