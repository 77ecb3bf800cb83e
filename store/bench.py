"""The reference the store benchmark measures itself against: raw stdlib sqlite3 inserting rows
shaped like the journal's, in batched transactions, with the same durability (WAL,
synchronous=FULL). No hashing, no projections, no checks, no event loop: the ceiling for durable
appends on this disk. Timing is the caller's (sim/bench.py): nothing here reads the clock."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.ports import Clock
from store import journal
from store.schema import db_path
from store.store import migrate_data_dir

_DDL = """
CREATE TABLE journal (
    seq INTEGER PRIMARY KEY, stream_id TEXT NOT NULL, version INTEGER NOT NULL,
    event_type TEXT NOT NULL, payload TEXT NOT NULL, recorded_at TEXT NOT NULL, request_id TEXT,
    prev_hash BLOB NOT NULL, hash BLOB NOT NULL, UNIQUE (stream_id, version)
) STRICT;
"""


class RawReference:
    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None)
        mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        assert mode == "wal"
        self._conn.execute("PRAGMA synchronous = FULL")
        self._conn.executescript(_DDL)

    def insert(self, rows: Sequence[tuple[Any, ...]], batch: int) -> None:
        for start in range(0, len(rows), batch):
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany(journal.INSERT_SQL, rows[start : start + batch])
            self._conn.execute("COMMIT")

    def close(self) -> None:
        self._conn.close()


class Replay:
    """The same durable work without the store: a migrated database receiving exactly the write
    statements a store run executed, in the same transactions, through plain sqlite3."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None)
        self._conn.execute("PRAGMA synchronous = FULL")
        self._conn.execute("PRAGMA foreign_keys = ON")

    @classmethod
    async def prepare(cls, directory: Path, clock: Clock) -> Replay:
        await migrate_data_dir(directory, clock)
        return cls(db_path(directory))

    def run(self, transactions: Sequence[Sequence[tuple[str, Sequence[Sequence[Any]]]]]) -> None:
        for statements in transactions:
            self._conn.execute("BEGIN IMMEDIATE")
            for sql, rows in statements:
                self._conn.executemany(sql, rows)
            self._conn.execute("COMMIT")

    def close(self) -> None:
        self._conn.close()
