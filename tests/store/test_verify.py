"""`verify` recomputes everything a data dir claims; a hand edit of any append-only row, or of a
projection, makes it fail and name the first bad row; a data dir that is not ours is refused with
a clear message."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from engine.states import Route
from store.errors import StoreOpenError
from store.schema import APPLICATION_ID, db_path
from store.store import Store, migrate_data_dir
from store.verify import verify
from tests.builders import walk_to
from tests.store.helpers import fund, persist, record_evidence

pytestmark = pytest.mark.anyio


async def _populate(store: Store) -> None:
    await fund(store, amount="5000.00")
    await persist(store, walk_to("RECONCILED", n=1))
    await persist(store, walk_to("RECONCILED", n=2, route=Route.BANK))
    await persist(store, walk_to("FUNDS_LOCKED", n=3))
    await persist(store, walk_to("CANCELLED", n=4))
    await persist(store, walk_to("CREATED_PENDING", n=5))
    await record_evidence(store, 1)


async def test_a_healthy_data_dir_verifies(store: Store, data_dir: Path) -> None:
    await _populate(store)
    report = await verify(data_dir)
    assert report.ok, report.checks
    assert [c.name for c in report.checks] == [
        "schema",
        "hash_chain",
        "ledger",
        "evidence",
        "projections",
        "audit",
    ]
    assert report.head_seq == report.journal_rows > 0


def _edit(data_dir: Path, *statements: str) -> None:
    conn = sqlite3.connect(db_path(data_dir), isolation_level=None)
    try:
        for trigger in ("journal", "ledger_entries", "external_events"):
            conn.execute(f"DROP TRIGGER IF EXISTS {trigger}_no_update")
            conn.execute(f"DROP TRIGGER IF EXISTS {trigger}_no_delete")
        for sql in statements:
            conn.execute(sql)
    finally:
        conn.close()


TAMPERING: list[tuple[str, tuple[str, ...], str, str]] = [
    (
        "journal payload",
        ("UPDATE journal SET payload = replace(payload, '10000', '10001') WHERE seq = 3",),
        "hash_chain",
        "journal seq 3",
    ),
    (
        "journal row removed",
        ("DELETE FROM journal WHERE seq = 4",),
        "hash_chain",
        "expected seq 4",
    ),
    (
        "journal timestamp",
        ("UPDATE journal SET recorded_at = '2020-01-01T00:00:00.000000Z' WHERE seq = 2",),
        "hash_chain",
        "journal seq 2",
    ),
    (
        "ledger amount",
        (
            "UPDATE ledger_entries SET credit_amount = credit_amount + 1"
            " WHERE journal_seq = 1 AND credit_amount > 0",
        ),
        "ledger",
        "journal seq 1",
    ),
    (
        "ledger both sides moved together",
        (
            "UPDATE ledger_entries SET credit_amount = credit_amount + 7"
            " WHERE journal_seq = 1 AND credit_amount > 0",
            "UPDATE ledger_entries SET debit_amount = debit_amount + 7"
            " WHERE journal_seq = 1 AND debit_amount > 0",
            "UPDATE account_balances SET credits = credits + 7"
            " WHERE account_id = 'client:acme:available'",
            "UPDATE account_balances SET debits = debits + 7 WHERE account_id = 'bank:bank-sim'",
        ),
        "projections",
        "ledger_entries",
    ),
    (
        "ledger line removed",
        ("DELETE FROM ledger_entries WHERE journal_seq = 1 AND leg = 0",),
        "ledger",
        "journal seq 1",
    ),
    (
        "external event raw payload",
        ("UPDATE external_events SET raw_payload = x'7b7d'",),
        "evidence",
        "raw payload does not match",
    ),
    (
        "external event normalized data",
        ("UPDATE external_events SET external_ref = '0xdef'",),
        "projections",
        "external_events",
    ),
    (
        "transfer status",
        ("UPDATE transactions SET status = 'RECONCILED' WHERE status = 'FUNDS_LOCKED'",),
        "ledger",
        "holds",
    ),
    (
        "timer removed",
        ("DELETE FROM timers",),
        "projections",
        "timers",
    ),
    (
        "balance cache",
        ("UPDATE account_balances SET credits = credits + 1 WHERE account_id = 'revenue:fees'",),
        "ledger",
        "balance cache",
    ),
]


@pytest.mark.parametrize(
    ("what", "statements", "check", "names"), TAMPERING, ids=[t[0] for t in TAMPERING]
)
async def test_tampering_is_caught(
    store: Store, data_dir: Path, what: str, statements: tuple[str, ...], check: str, names: str
) -> None:
    await _populate(store)
    assert (await verify(data_dir)).ok
    _edit(data_dir, *statements)
    report = await verify(data_dir)
    failed = {c.name: c.detail for c in report.checks if not c.ok}
    assert not report.ok, what
    assert check in failed, (what, failed)
    assert names in failed[check], (what, failed)


async def test_a_missing_data_dir_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreOpenError, match="holds no stablerail database"):
        await verify(tmp_path / "nowhere")


async def test_a_file_where_the_dir_should_be_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(StoreOpenError, match="is not a directory"):
        await verify(path)


async def test_a_corrupt_database_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "corrupt"
    data_dir.mkdir()
    db_path(data_dir).write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreOpenError, match="is not a SQLite database"):
        await verify(data_dir)


async def test_a_foreign_database_is_refused(tmp_path: Path, clock) -> None:  # type: ignore[no-untyped-def]
    data_dir = tmp_path / "foreign"
    data_dir.mkdir()
    conn = sqlite3.connect(db_path(data_dir))
    conn.execute("CREATE TABLE payroll (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreOpenError, match="not a stablerail one"):
        await verify(data_dir)
    with pytest.raises(StoreOpenError, match="not a stablerail one"):
        async with Store.open(data_dir, clock=clock, migrate=True):
            pass


async def test_a_newer_schema_is_refused(tmp_path: Path, clock) -> None:  # type: ignore[no-untyped-def]
    data_dir = tmp_path / "newer"
    await migrate_data_dir(data_dir, clock)
    conn = sqlite3.connect(db_path(data_dir))
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(StoreOpenError, match="newer than this stablerail"):
        async with Store.open(data_dir, clock=clock):
            pass


async def test_an_edited_migration_is_refused(tmp_path: Path, clock) -> None:  # type: ignore[no-untyped-def]
    data_dir = tmp_path / "edited"
    await migrate_data_dir(data_dir, clock)
    conn = sqlite3.connect(db_path(data_dir))
    conn.execute("UPDATE schema_migrations SET checksum = 'x' WHERE version = 1")
    conn.commit()
    conn.close()
    with pytest.raises(StoreOpenError, match="has changed since it was applied"):
        async with Store.open(data_dir, clock=clock):
            pass


async def test_opening_without_migrating_names_the_command(tmp_path: Path, clock) -> None:  # type: ignore[no-untyped-def]
    data_dir = tmp_path / "fresh"
    with pytest.raises(StoreOpenError, match="stablerail migrate"):
        async with Store.open(data_dir, clock=clock):
            pass


def test_application_id_stamps_the_file() -> None:
    assert APPLICATION_ID.to_bytes(4, "big") == b"SRL1"
