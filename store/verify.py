"""`stablerail verify`: everything the data dir claims, recomputed from the journal.

Checks, in order (each names the first bad row it finds):
  schema           ours, not newer than this code, migrations unchanged, SQLite quick_check ok
  hash_chain       seq 1..n without gaps, each prev_hash the previous row's hash, each hash
                   recomputed, each payload a decodable event of its event_type
  ledger           each event's entries balance per currency; every currency sums to zero; no
                   client balance ever below zero, replayed in journal order; each transfer holds
                   exactly what its state says (nothing once it has ended); the balance cache
                   equals the sums of the entries
  evidence         each raw payload's sha256 equals the hash its journal event anchored
  projections      every projection table rebuilt from the journal into a scratch database
                   through the same projection code, compared row by row with the live one

Editing any row of journal, ledger_entries or external_events by hand (after dropping the
triggers that refuse it) makes one of these fail.
"""

from __future__ import annotations

import hashlib
import sqlite3
import tempfile
from collections import defaultdict
from pathlib import Path

import msgspec

from engine import events as ev
from engine import invariants, ledger
from engine.states import Status
from engine.transfer import TransferState, evolve, held_for
from store import anchor, journal, queries, schema
from store.errors import StoreOpenError
from store.executor import Executor, ExecutorKind, connect
from store.projection import Projection
from store.states import StateCache

PROJECTION_TABLES = (
    "transactions",
    "ledger_entries",
    "account_balances",
    "limit_usage",
    "quotes",
    "timers",
    "outbox",
    "external_events",
    "evidence_matches",
    "discrepancies",
    "signed_transactions",
)
_REBUILD_CHUNK = 2000


class Check(msgspec.Struct, kw_only=True):
    name: str
    ok: bool
    detail: str = ""


class Report(msgspec.Struct, kw_only=True):
    ok: bool
    data_dir: str
    schema_version: int
    journal_rows: int
    head_seq: int
    head_hash: str
    checks: list[Check]


class _Fixed:
    def now_us(self) -> int:
        return 0


async def verify_audit(data_dir: Path) -> tuple[int, str | None]:
    """The audit log's chain and anchors alone: (rows checked, the first broken link or None)."""
    path = schema.check_data_dir(data_dir, create=False)
    ex = await connect(path, ExecutorKind.INLINE, read_only=True)
    try:
        return await anchor.verify(ex, Path(data_dir))
    finally:
        await ex.close()


async def _audit(ex: Executor, data_dir: Path) -> Check:
    rows, problem = await anchor.verify(ex, data_dir)
    anchors = anchor.read_anchors(data_dir)
    count = len(anchors) if isinstance(anchors, list) else 0
    detail = problem or f"{rows} audit rows chained, {count} anchors agree"
    return Check(name="audit", ok=problem is None, detail=detail)


async def verify(data_dir: Path) -> Report:
    path = schema.check_data_dir(data_dir, create=False)
    ex = await connect(path, ExecutorKind.INLINE, read_only=True)
    try:
        return await _verify(ex, Path(data_dir), path)
    finally:
        await ex.close()


async def _verify(ex: Executor, data_dir: Path, path: Path) -> Report:
    version = await schema.identify(ex, path)
    await schema.check_applied(ex, version, path)
    if version < schema.latest_version():
        raise StoreOpenError(
            f"{path} is at schema version {version}; run stablerail migrate --data-dir {data_dir}"
        )
    checks = [await _schema(ex)]
    chain = await _hash_chain(ex)
    checks.append(chain)
    checks.append(await _ledger(ex))
    checks.append(await _evidence(ex))
    checks.append(await _projections(ex))
    checks.append(await _audit(ex, data_dir))
    seq, head = await queries.journal_head(ex)
    return Report(
        ok=all(c.ok for c in checks),
        data_dir=str(data_dir),
        schema_version=version,
        journal_rows=seq,
        head_seq=seq,
        head_hash=head.hex(),
        checks=checks,
    )


async def _schema(ex: Executor) -> Check:
    rows = await ex.fetchall("PRAGMA quick_check")
    problems = [r[0] for r in rows if r[0] != "ok"]
    if problems:
        return Check(name="schema", ok=False, detail=f"quick_check: {problems[0]}")
    return Check(name="schema", ok=True)


async def _hash_chain(ex: Executor) -> Check:
    expected_seq, prev = 1, journal.GENESIS_HASH
    async for row in queries.iterate_journal(ex):
        seq, stream_id, version, event_type, payload, recorded_at, request_id, prev_hash, digest = (
            row
        )
        where = f"journal seq {seq} ({stream_id} v{version})"
        if seq != expected_seq:
            return Check(
                name="hash_chain", ok=False, detail=f"expected seq {expected_seq}, found {seq}"
            )
        if prev_hash != prev:
            return Check(name="hash_chain", ok=False, detail=f"{where}: prev_hash does not link")
        recomputed = journal.chain_hash(
            prev,
            seq=seq,
            stream_id=stream_id,
            version=version,
            event_type=event_type,
            recorded_at=recorded_at,
            request_id=request_id,
            payload=str(payload).encode(),
        )
        if recomputed != digest:
            return Check(name="hash_chain", ok=False, detail=f"{where}: hash mismatch")
        try:
            event = ev.decode(payload)
        except msgspec.DecodeError as e:
            return Check(name="hash_chain", ok=False, detail=f"{where}: undecodable payload ({e})")
        if ev.event_type(event) != event_type:
            return Check(name="hash_chain", ok=False, detail=f"{where}: event_type mismatch")
        expected_seq, prev = expected_seq + 1, digest
    return Check(name="hash_chain", ok=True, detail=f"{expected_seq - 1} rows")


async def _ledger(ex: Executor) -> Check:
    unbalanced = await ex.fetchone(
        "SELECT journal_seq, currency, sum(debit_amount) - sum(credit_amount) FROM ledger_entries"
        " GROUP BY journal_seq, currency HAVING sum(debit_amount) != sum(credit_amount)"
        " ORDER BY journal_seq LIMIT 1"
    )
    if unbalanced:
        seq, currency, net = unbalanced
        return _bad("ledger", f"journal seq {seq}: {currency} entries off by {net}")
    totals = await ex.fetchall(
        "SELECT account_id, currency, sum(debit_amount) - sum(credit_amount) FROM ledger_entries"
        " GROUP BY account_id, currency"
    )
    balances = {(a, c): n for a, c, n in totals}
    unknown = [a for a, _ in balances if ledger.account_kind(a) is None]
    if unknown:
        return _bad("ledger", f"unknown account {sorted(unknown)[0]!r}")
    if violations := invariants.currency_totals(balances):
        return _bad("ledger", violations[0].detail)
    if went_negative := await _negative_in_history(ex):
        return _bad("ledger", went_negative)
    if violations := await _holds(ex):
        return _bad("ledger", violations[0].detail)
    cached = await ex.fetchone(
        "SELECT b.account_id, b.currency FROM account_balances b LEFT JOIN ("
        " SELECT account_id, currency, sum(debit_amount) AS d, sum(credit_amount) AS c"
        " FROM ledger_entries GROUP BY account_id, currency) e"
        " ON e.account_id = b.account_id AND e.currency = b.currency"
        " WHERE e.d IS NULL OR e.d != b.debits OR e.c != b.credits LIMIT 1"
    )
    if cached:
        return _bad("ledger", f"balance cache for {cached[0]} {cached[1]} differs from its entries")
    return Check(name="ledger", ok=True, detail=f"{len(balances)} account balances")


async def _negative_in_history(ex: Executor) -> str:
    """Replays client account postings in journal order; the first moment one went negative."""
    client_accounts = "account_id LIKE 'client:%:available' OR account_id LIKE 'client:%:held'"
    row = await ex.fetchone(
        "SELECT journal_seq, account_id, currency, running FROM ("
        " SELECT journal_seq, account_id, currency, sum(net) OVER ("
        "  PARTITION BY account_id, currency ORDER BY journal_seq) AS running FROM ("
        "  SELECT journal_seq, account_id, currency, sum(credit_amount - debit_amount) AS net"
        f"  FROM ledger_entries WHERE {client_accounts}"
        "  GROUP BY journal_seq, account_id, currency))"
        " WHERE running < 0 ORDER BY journal_seq LIMIT 1"
    )
    if row:
        seq, account, currency, running = row
        return f"journal seq {seq}: {account} {currency} went to {running}"
    return ""


async def _holds(ex: Executor) -> list[invariants.Violation]:
    held_rows = await ex.fetchall(
        "SELECT transaction_id, sum(credit_amount - debit_amount) FROM ledger_entries"
        " WHERE transaction_id IS NOT NULL AND account_id LIKE 'client:%:held'"
        " GROUP BY transaction_id"
    )
    held = {t: h for t, h in held_rows}
    expected: dict[str, int] = {}
    after = ""
    while True:
        rows = await ex.fetchall(
            "SELECT transaction_id, status, source_amount FROM transactions"
            " WHERE transaction_id > ? ORDER BY transaction_id LIMIT ?",
            (after, _REBUILD_CHUNK),
        )
        if not rows:
            break
        for tid, status, amount in rows:
            expected[tid] = held_for(Status(status), amount)
        after = rows[-1][0]
    return invariants.held_matches_state(held, expected)


async def _evidence(ex: Executor) -> Check:
    rows = await ex.fetchall(
        "SELECT e.event_id, e.raw_payload, j.payload FROM external_events e"
        " LEFT JOIN journal j ON j.seq = e.journal_seq ORDER BY e.journal_seq"
    )
    for event_id, raw, payload in rows:
        if payload is None:
            return _bad("evidence", f"{event_id}: no journal row anchors it")
        event = ev.decode(payload)
        if not isinstance(event, ev.EvidenceRecorded) or event.evidence_id != event_id:
            return _bad("evidence", f"{event_id}: its journal row records something else")
        if hashlib.sha256(raw).hexdigest() != event.raw_sha256:
            return _bad("evidence", f"{event_id}: raw payload does not match its anchored sha256")
    return Check(name="evidence", ok=True, detail=f"{len(rows)} external events")


async def _projections(ex: Executor) -> Check:
    with tempfile.TemporaryDirectory(prefix="stablerail-verify-") as scratch_dir:
        scratch_path = Path(scratch_dir) / schema.DB_FILENAME
        scratch = await connect(scratch_path, ExecutorKind.INLINE)
        try:
            await schema.migrate(scratch, scratch_path, _Fixed())
            await scratch.execute("PRAGMA foreign_keys = ON")
            problem = await rebuild(ex, scratch)
        finally:
            await scratch.close()
        if problem:
            return _bad("projections", problem)
        await ex.execute("ATTACH DATABASE ? AS rebuilt", (str(scratch_path),))
        try:
            for table in PROJECTION_TABLES:
                for left, right, label in (
                    ("main", "rebuilt", "live"),
                    ("rebuilt", "main", "rebuilt"),
                ):
                    row = await ex.fetchone(
                        f"SELECT * FROM {left}.{table} EXCEPT SELECT * FROM {right}.{table} LIMIT 1"
                    )
                    if row is not None:
                        return _bad(
                            "projections",
                            f"{table}: {label} row not in the other: {_short(row)}",
                        )
        finally:
            await ex.execute("DETACH DATABASE rebuilt")
    return Check(name="projections", ok=True, detail=f"{len(PROJECTION_TABLES)} tables rebuilt")


async def rebuild(source: Executor, target: Executor) -> str:
    """Replay `source`'s journal into the empty database `target` through the live projection
    code. Returns the first problem met (an event the transition table refuses), or ""."""
    after = 0
    cache = StateCache()
    while True:
        rows = await queries.journal_rows(source, after, _REBUILD_CHUNK)
        if not rows:
            return ""
        records = [queries.recorded(r) for r in rows]
        # Transfers this chunk continues, at the version the rebuilt journal has for them.
        first_seen: dict[str, int] = {}
        for r in records:
            if ev.is_transfer_event(r.event) and r.stream_id not in first_seen:
                first_seen[r.stream_id] = r.version - 1
        loaded = await cache.load(target, {t: v for t, v in first_seen.items() if v > 0})
        evidence_ids = [
            r.event.evidence_id for r in records if isinstance(r.event, ev.EvidenceRecorded)
        ]
        raw: dict[str, bytes] = defaultdict(bytes)
        for eid in evidence_ids:
            found = await source.fetchone(
                "SELECT raw_payload FROM external_events WHERE event_id = ?", (eid,)
            )
            if found is not None:
                raw[eid] = found[0]
        projection = Projection(loaded)
        for rec in records:
            after_state: TransferState | None = None
            if ev.is_transfer_event(rec.event):
                try:
                    after_state = evolve(projection.transfer(rec.stream_id), rec.event)
                except AssertionError as e:
                    return f"journal seq {rec.seq}: {e}"
            raw_payload = (
                raw[rec.event.evidence_id] if isinstance(rec.event, ev.EvidenceRecorded) else None
            )
            projection.add(rec, after=after_state, raw=raw_payload)
        await target.execute("BEGIN IMMEDIATE")
        try:
            await target.executemany(journal.INSERT_SQL, rows)
            await target.run_all(projection.statements())
        except sqlite3.IntegrityError as e:
            await target.execute("ROLLBACK")
            return f"journal seq {rows[0][0]}..{rows[-1][0]}: rebuilt rows break a constraint ({e})"
        await target.execute("COMMIT")
        cache.remember(projection.transfers.values())
        after = rows[-1][0]


def _bad(name: str, detail: str) -> Check:
    return Check(name=name, ok=False, detail=detail)


def _short(row: tuple[object, ...]) -> str:
    text = repr(row)
    return text if len(text) <= 300 else text[:297] + "..."
