"""Opening a data dir: migrations in order, once each, and the durability settings asserted."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sim.clock import ManualClock
from store import schema
from store.errors import StoreOpenError
from store.executor import ExecutorKind, connect
from store.store import Store, migrate_data_dir
from store.verify import verify
from tests.builders import walk_to
from tests.store.helpers import fund, persist

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


async def test_0008_and_0009_fill_their_projections_as_a_rebuild_would(tmp_path: Path) -> None:
    """A store with holds taken (and some released) and payments signed before migrations 0008
    and 0009: their backfills of limit_usage and signed_transactions equal what the projection
    code makes of the same journal (verify also rebuilds every projection and compares it row
    by row)."""
    data_dir = tmp_path / "d"
    async with Store.open(data_dir, clock=ManualClock(tick_us=1), migrate=True) as store:
        await fund(store, amount="5000.00")
        for n, target in enumerate(("FUNDS_LOCKED", "RECONCILED", "FAILED", "CANCELLED"), 1):
            await persist(store, walk_to(target, n=n))
    tables = ("limit_usage", "signed_transactions")
    before = sqlite3.connect(schema.db_path(data_dir))
    expected = {t: before.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3").fetchall() for t in tables}
    assert sum(holds for *_, holds, _ in expected["limit_usage"]) == 2 * 2  # client, beneficiary
    assert len(expected["signed_transactions"]) == 1  # the RECONCILED one's payment
    # Back to schema version 7, as a store written before 0008 is.
    before.executescript(
        "DROP TABLE limit_usage; DROP TABLE signed_transactions;"
        " DROP INDEX external_events_payout_return;"
        " DELETE FROM schema_migrations WHERE version > 7; PRAGMA user_version = 7;"
    )
    before.close()
    assert await migrate_data_dir(data_dir, ManualClock()) == (7, schema.latest_version())
    after = sqlite3.connect(schema.db_path(data_dir))
    for table in tables:
        assert (
            after.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3").fetchall() == expected[table]
        )
    after.close()
    report = await verify(data_dir)
    assert report.ok, [c for c in report.checks if not c.ok]
