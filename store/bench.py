"""The references the benchmarks measure themselves against: raw stdlib sqlite3 inserting rows
shaped like the journal's (or a run's own journal and ledger rows), in batched transactions,
with the same durability (WAL, synchronous=FULL). No hashing, no projections, no checks, no event
loop: the ceiling for durable appends on this disk. Timing is the caller's (sim/bench.py,
sim/bench_lifecycle.py): nothing here reads the clock."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
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
    statements a store run executed, in the same transactions, through plain sqlite3. Without
    `foreign_keys`, rows may be written without the rows they refer to (the journal and ledger
    alone)."""

    def __init__(self, path: Path, *, foreign_keys: bool = True) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None)
        self._conn.execute("PRAGMA synchronous = FULL")
        self._conn.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")

    @classmethod
    async def prepare(cls, directory: Path, clock: Clock, *, foreign_keys: bool = True) -> Replay:
        await migrate_data_dir(directory, clock)
        return cls(db_path(directory), foreign_keys=foreign_keys)

    def run(self, transactions: Sequence[Sequence[tuple[str, Sequence[Sequence[Any]]]]]) -> None:
        for statements in transactions:
            self._conn.execute("BEGIN IMMEDIATE")
            for sql, rows in statements:
                self._conn.executemany(sql, rows)
            self._conn.execute("COMMIT")

    def close(self) -> None:
        self._conn.close()


Statement = tuple[str, Sequence[Sequence[Any]]]


class RawRows:
    """A run's journal rows after `after_seq` and their ledger lines, read back from its database
    file, to be written again by plain sqlite3 (Replay without foreign keys)."""

    def __init__(
        self,
        columns: dict[str, list[str]],
        journal: list[tuple[Any, ...]],
        ledger: dict[int, list[tuple[Any, ...]]],
    ) -> None:
        self.columns = columns
        self.journal = journal
        self.ledger = ledger

    @classmethod
    def read(cls, path: Path, *, after_seq: int) -> RawRows:
        conn = sqlite3.connect(path)
        try:
            found = conn.execute("SELECT * FROM journal WHERE seq > ? ORDER BY seq", (after_seq,))
            columns = {"journal": [d[0] for d in found.description]}
            journal = found.fetchall()
            found = conn.execute(
                "SELECT * FROM ledger_entries WHERE journal_seq > ? ORDER BY journal_seq, leg",
                (after_seq,),
            )
            columns["ledger_entries"] = [d[0] for d in found.description]
            seq = columns["ledger_entries"].index("journal_seq")
            ledger: dict[int, list[tuple[Any, ...]]] = {}
            for row in found.fetchall():
                ledger.setdefault(row[seq], []).append(row)
        finally:
            conn.close()
        return cls(columns, journal, ledger)

    @property
    def count(self) -> int:
        return len(self.journal) + sum(len(lines) for lines in self.ledger.values())

    def _insert(self, table: str) -> str:
        names = self.columns[table]
        return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"

    def batches(self, per_batch: int) -> list[list[Statement]]:
        """Transactions of `per_batch` journal rows each, with their ledger lines."""
        insert_journal, insert_ledger = self._insert("journal"), self._insert("ledger_entries")
        seq = self.columns["journal"].index("seq")
        out: list[list[Statement]] = []
        for start in range(0, len(self.journal), per_batch):
            rows = self.journal[start : start + per_batch]
            lines = [line for row in rows for line in self.ledger.get(row[seq], ())]
            out.append([(insert_journal, rows), (insert_ledger, lines)])
        return out

    def streams_and_payloads(self) -> Iterator[tuple[str, str]]:
        names = self.columns["journal"]
        stream, payload = names.index("stream_id"), names.index("payload")
        for row in self.journal:
            yield row[stream], row[payload]
