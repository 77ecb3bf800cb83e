"""Opening a data dir: migrations in order, once each, and the durability settings asserted."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from store import schema
from store.errors import StoreOpenError
from store.executor import ExecutorKind, connect
from store.store import migrate_data_dir

pytestmark = pytest.mark.anyio


def test_migrations_are_numbered_from_one() -> None:
    found = schema.migrations()
    assert [m.version for m in found] == list(range(1, len(found) + 1))
    assert schema.latest_version() == len(found) >= 1


async def test_migrate_creates_then_is_a_no_op(tmp_path: Path, clock) -> None:  # type: ignore[no-untyped-def]
    data_dir = tmp_path / "d"
    assert await migrate_data_dir(data_dir, clock) == (0, schema.latest_version())
    assert await migrate_data_dir(data_dir, clock) == (
        schema.latest_version(),
        schema.latest_version(),
    )
    conn = sqlite3.connect(schema.db_path(data_dir))
    assert conn.execute("PRAGMA application_id").fetchone() == (schema.APPLICATION_ID,)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    rows = conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()
    assert rows == [(m.version, m.checksum) for m in schema.migrations()]
    conn.close()


@pytest.mark.parametrize("kind", list(ExecutorKind))
async def test_configure_asserts_wal_full_and_foreign_keys(
    tmp_path: Path, kind: ExecutorKind
) -> None:
    ex = await connect(tmp_path / "x.sqlite3", kind)
    try:
        await schema.configure(ex)
        assert await ex.fetchone("PRAGMA journal_mode") == ("wal",)
        assert await ex.fetchone("PRAGMA synchronous") == (2,)
        assert await ex.fetchone("PRAGMA foreign_keys") == (1,)
    finally:
        await ex.close()


async def test_only_a_simulation_asks_for_no_flush_and_gets_exactly_that(tmp_path: Path) -> None:
    ex = await connect(tmp_path / "x.sqlite3", ExecutorKind.INLINE)
    try:
        await schema.configure(ex, durable=False)
        assert await ex.fetchone("PRAGMA synchronous") == (0,)
        assert await ex.fetchone("PRAGMA journal_mode") == ("wal",)
        await schema.configure(ex)
        assert await ex.fetchone("PRAGMA synchronous") == (2,)
    finally:
        await ex.close()


async def test_a_database_that_cannot_do_wal_is_refused() -> None:
    ex = await connect(":memory:", ExecutorKind.INLINE)
    try:
        with pytest.raises(StoreOpenError, match="WAL"):
            await schema.configure(ex)
    finally:
        await ex.close()


async def test_money_columns_refuse_floats(tmp_path: Path, clock) -> None:  # type: ignore[no-untyped-def]
    data_dir = tmp_path / "d"
    await migrate_data_dir(data_dir, clock)
    conn = sqlite3.connect(schema.db_path(data_dir))
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO account_balances VALUES ('suspense', 'USD', 1.5, 0)")
    conn.close()
