"""Opening a data dir: recognise it, refuse what is not ours, apply numbered migrations, and assert
the durability settings the rest of the system relies on.

A data dir holds one SQLite database, `stablerail.sqlite3`, stamped with our application_id and
with PRAGMA user_version = the last migration applied. Migrations are the numbered SQL files in
store/migrations, applied in order, each in one transaction with its name and checksum recorded
in schema_migrations; an applied migration whose file has changed since is refused, as is a
database from a newer stablerail.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import sqlite3
from importlib import resources
from pathlib import Path

import msgspec

from engine.ports import Clock
from engine.timefmt import rfc3339_us
from store.errors import StoreOpenError
from store.executor import Executor

DB_FILENAME = "stablerail.sqlite3"
# "SRL1" as a big-endian int32: stamps the file as ours (`PRAGMA application_id`).
APPLICATION_ID = int.from_bytes(b"SRL1", "big")

_MIGRATION_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")


class Migration(msgspec.Struct, frozen=True):
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations() -> tuple[Migration, ...]:
    found = []
    for item in resources.files("store.migrations").iterdir():
        match = _MIGRATION_NAME.fullmatch(item.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), item.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    assert [m.version for m in found] == list(range(1, len(found) + 1)), "migration numbering"
    return tuple(found)


def latest_version() -> int:
    return len(migrations())


def db_path(data_dir: Path) -> Path:
    return Path(data_dir) / DB_FILENAME


def check_data_dir(data_dir: Path, *, create: bool) -> Path:
    """The database path, or StoreOpenError saying plainly why this is not a usable data dir."""
    data_dir = Path(data_dir)
    if data_dir.exists() and not data_dir.is_dir():
        raise StoreOpenError(f"{data_dir} is not a directory")
    path = db_path(data_dir)
    if not path.exists():
        if not create:
            raise StoreOpenError(
                f"{data_dir} holds no stablerail database ({DB_FILENAME}); "
                f"create it with: stablerail migrate --data-dir {data_dir}"
            )
        data_dir.mkdir(parents=True, exist_ok=True)
    elif not path.is_file():
        raise StoreOpenError(f"{path} is not a file")
    return path


async def _pragma(ex: Executor, name: str) -> object:
    row = await ex.fetchone(f"PRAGMA {name}")
    return row[0] if row else None


async def configure(ex: Executor, *, durable: bool = True) -> None:
    """WAL, synchronous=FULL, foreign keys on, asserted by reading them back: an acknowledged
    append survives power loss, not only a process crash.

    `durable=False` is for a simulated world only (`sim.world`): synchronous=OFF, so a commit
    reaches the operating system but is not flushed to the disk. Nothing in a simulation can
    lose power, a killed process loses nothing the OS already has, and the journal's bytes are
    the same either way; the simulation checks the engine's logic, which never depends on the
    flush, and runs about 30% faster without it. `serve`, the benchmarks and the crash drills
    keep FULL."""
    mode = await ex.fetchone("PRAGMA journal_mode = WAL")
    await ex.execute(f"PRAGMA synchronous = {'FULL' if durable else 'OFF'}")
    await ex.execute("PRAGMA foreign_keys = ON")
    if mode is None or str(mode[0]).lower() != "wal":
        raise StoreOpenError(f"could not switch the journal to WAL mode (got {mode!r})")
    if await _pragma(ex, "synchronous") != (2 if durable else 0):
        raise StoreOpenError(f"could not set synchronous={'FULL' if durable else 'OFF'}")
    if await _pragma(ex, "foreign_keys") != 1:
        raise StoreOpenError("could not enable foreign keys")


async def identify(ex: Executor, path: Path) -> int:
    """The schema version of an existing stablerail database (0 for a new, empty file)."""
    try:
        app_id = await _pragma(ex, "application_id")
        user_version = await _pragma(ex, "user_version")
        row = await ex.fetchone("SELECT count(*) FROM sqlite_schema")
    except sqlite3.DatabaseError as e:
        raise StoreOpenError(f"{path} is not a SQLite database ({e})") from e
    assert isinstance(user_version, int) and row is not None
    if app_id == 0 and user_version == 0 and row[0] == 0:
        return 0
    if app_id != APPLICATION_ID:
        raise StoreOpenError(
            f"{path} is a SQLite database but not a stablerail one (application_id {app_id})"
        )
    if user_version > latest_version():
        raise StoreOpenError(
            f"{path} has schema version {user_version}, newer than this stablerail "
            f"({latest_version()}); upgrade stablerail"
        )
    return user_version


async def check_applied(ex: Executor, version: int, path: Path) -> None:
    """Every applied migration is one of ours, unchanged since it ran."""
    if version == 0:
        return
    rows = await ex.fetchall("SELECT version, checksum FROM schema_migrations ORDER BY version")
    known = {m.version: m.checksum for m in migrations()}
    applied = {v: c for v, c in rows}
    if sorted(applied) != list(range(1, version + 1)):
        raise StoreOpenError(f"{path}: schema_migrations does not match user_version {version}")
    for v, checksum in applied.items():
        if known[v] != checksum:
            raise StoreOpenError(f"{path}: migration {v} has changed since it was applied")


async def migrate(ex: Executor, path: Path, clock: Clock) -> tuple[int, int]:
    """Apply every pending migration; returns (version before, version after)."""
    before = await identify(ex, path)
    await check_applied(ex, before, path)
    for m in migrations()[before:]:
        stamp = rfc3339_us(clock.now_us())
        script = (
            "BEGIN IMMEDIATE;\n"
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL,"
            " applied_at TEXT NOT NULL) STRICT;\n"
            f"{m.sql}\n;"
            f"INSERT INTO schema_migrations VALUES ({m.version}, '{m.name}', '{m.checksum}',"
            f" '{stamp}');\n"
            f"PRAGMA application_id = {APPLICATION_ID};\n"
            f"PRAGMA user_version = {m.version};\n"
            "COMMIT;"
        )
        try:
            await ex.executescript(script)
        except sqlite3.Error as e:
            with contextlib.suppress(sqlite3.Error):
                await ex.execute("ROLLBACK")
            raise StoreOpenError(f"{path}: migration {m.version}_{m.name} failed: {e}") from e
    return before, latest_version()
