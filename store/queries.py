"""Reads. Each takes an executor, so the same query serves the store's reader connection, `verify`
and tests. Balances are derived from ledger entries here, never read from a stored balance."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgspec

from engine import events as ev
from engine import ledger
from engine.timefmt import rfc3339_us
from engine.transfer import TransferState
from store import journal, states
from store.executor import Executor, Row
from store.records import IdempotencyRecord, IdempotencyStatus, Recorded

KEY_COLUMNS = (
    "client_id, idempotency_key, request_hash, transaction_id, status, response_status,"
    " response_body, expires_at"
)


def key_record(row: Sequence[Any]) -> IdempotencyRecord:
    return IdempotencyRecord(
        client_id=row[0],
        key=row[1],
        request_hash=row[2],
        transaction_id=row[3],
        status=IdempotencyStatus(row[4]),
        response_status=row[5],
        response_body=row[6],
        expires_at=row[7],
    )


def recorded(row: Row) -> Recorded:
    seq, stream_id, version, event_type, payload, recorded_at, request_id, prev, digest = row
    return Recorded(
        seq=seq,
        stream_id=stream_id,
        version=version,
        event_type=event_type,
        event=ev.decode(payload),
        recorded_at=recorded_at,
        request_id=request_id,
        prev_hash=prev,
        hash=digest,
    )


async def load_stream(ex: Executor, stream_id: str, after_version: int = 0) -> list[Recorded]:
    rows = await ex.fetchall(
        f"SELECT {journal.SELECT_COLUMNS} FROM journal WHERE stream_id = ? AND version > ?"
        " ORDER BY version",
        (stream_id, after_version),
    )
    return [recorded(r) for r in rows]


async def journal_rows(ex: Executor, after_seq: int, limit: int) -> list[Row]:
    return await ex.fetchall(
        f"SELECT {journal.SELECT_COLUMNS} FROM journal WHERE seq > ? ORDER BY seq LIMIT ?",
        (after_seq, limit),
    )


async def iterate_journal(ex: Executor, chunk: int = 2000) -> AsyncIterator[Row]:
    after = 0
    while True:
        rows = await journal_rows(ex, after, chunk)
        if not rows:
            return
        for row in rows:
            yield row
        after = rows[-1][0]


async def journal_head(ex: Executor) -> tuple[int, bytes]:
    row = await ex.fetchone("SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1")
    return (row[0], row[1]) if row else (0, journal.GENESIS_HASH)


async def transfer(ex: Executor, transfer_id: str) -> TransferState | None:
    """The transfer's state, folded from its journal stream (the source of truth)."""
    return (await states.fold(ex, [transfer_id])).get(transfer_id)


class Balance(msgspec.Struct, frozen=True, kw_only=True):
    account: str
    currency: str
    debits: int
    credits: int

    @property
    def credit_balance(self) -> int:
        return self.credits - self.debits


async def balance(ex: Executor, account: str, currency: str) -> Balance:
    """Derived from the ledger lines, not from the cache table."""
    row = await ex.fetchone(
        "SELECT coalesce(sum(debit_amount), 0), coalesce(sum(credit_amount), 0)"
        " FROM ledger_entries WHERE account_id = ? AND currency = ?",
        (account, currency),
    )
    assert row is not None
    return Balance(account=account, currency=currency, debits=row[0], credits=row[1])


class ClientBalance(msgspec.Struct, frozen=True, kw_only=True):
    currency: str
    available: int
    held: int


async def client_balances(ex: Executor, client_id: str) -> list[ClientBalance]:
    available_account = ledger.client_available(client_id)
    held_account = ledger.client_held(client_id)
    rows = await ex.fetchall(
        "SELECT currency,"
        " coalesce(sum(CASE WHEN account_id = ? THEN credit_amount - debit_amount END), 0),"
        " coalesce(sum(CASE WHEN account_id = ? THEN credit_amount - debit_amount END), 0)"
        " FROM ledger_entries WHERE account_id IN (?, ?) GROUP BY currency ORDER BY currency",
        (available_account, held_account, available_account, held_account),
    )
    return [ClientBalance(currency=c, available=a, held=h) for c, a, h in rows]


async def idempotency_record(ex: Executor, client_id: str, key: str) -> IdempotencyRecord | None:
    row = await ex.fetchone(
        f"SELECT {KEY_COLUMNS} FROM idempotency_keys WHERE client_id = ? AND idempotency_key = ?",
        (client_id, key),
    )
    return key_record(row) if row else None


class DueTimer(msgspec.Struct, frozen=True, kw_only=True):
    transfer_id: str
    kind: str
    due_at: str


async def due_timers(ex: Executor, now_us: int, limit: int) -> list[DueTimer]:
    rows = await ex.fetchall(
        "SELECT transaction_id, kind, due_at FROM timers WHERE due_at <= ?"
        " ORDER BY due_at, transaction_id LIMIT ?",
        (rfc3339_us(now_us), limit),
    )
    return [DueTimer(transfer_id=t, kind=k, due_at=d) for t, k, d in rows]
