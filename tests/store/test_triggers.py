"""Append-only tables refuse UPDATE and DELETE, whoever asks (triggers in the schema)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from store.schema import db_path
from store.store import Store
from tests.builders import walk_to
from tests.store.helpers import fund, persist, record_evidence

pytestmark = pytest.mark.anyio

STATEMENTS = [
    ("journal", "UPDATE journal SET payload = '{}' WHERE seq = 1"),
    ("journal", "DELETE FROM journal WHERE seq = 1"),
    ("ledger_entries", "UPDATE ledger_entries SET credit_amount = 1 WHERE journal_seq = 1"),
    ("ledger_entries", "DELETE FROM ledger_entries"),
    ("external_events", "UPDATE external_events SET raw_payload = x'00'"),
    ("external_events", "DELETE FROM external_events"),
]


@pytest.mark.parametrize(("table", "sql"), STATEMENTS)
async def test_append_only_tables_refuse_edits(
    store: Store, data_dir: Path, table: str, sql: str
) -> None:
    await fund(store)
    await persist(store, walk_to("RECONCILED"))
    await record_evidence(store, 1)
    conn = sqlite3.connect(db_path(data_dir))
    try:
        # A statement that matches no row fires no trigger: the table must not be empty.
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] > 0
        with pytest.raises(sqlite3.IntegrityError, match=f"{table} is append-only"):
            conn.execute(sql)
    finally:
        conn.close()
