"""The store: one data dir, one writer connection owned by the group-commit writer task, one
read-only connection for queries.

    async with Store.open(data_dir, clock=clock) as store:
        outcome = await store.append("tr_...", 0, decision.events)

`open` recognises the data dir (refusing a foreign, corrupt or newer one with a clear message),
applies migrations when asked, asserts WAL + synchronous=FULL + foreign keys, and starts the writer
in a task group it owns; leaving the block drains the writer and closes both connections.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import cast

from engine import limits
from engine.audit import AuditRecord
from engine.chain import SignedTx
from engine.discrepancies import Discrepancy
from engine.events import Event, EvidenceRecorded
from engine.ports import Clock
from engine.quotes import Quote
from engine.records import (
    Append,
    ClaimKey,
    CompleteKey,
    IdempotencyRecord,
    IdempotencyStatus,
    Outcome,
    Recorded,
    WriteRequest,
)
from engine.timefmt import rfc3339_us
from engine.timers import DueTimer
from engine.transfer import TransferState
from store import queries, schema
from store.errors import StoreOpenError
from store.executor import Executor, ExecutorKind, connect
from store.states import StateCache
from store.writer import Writer


async def open_executor(
    data_dir: Path, kind: ExecutorKind, *, clock: Clock, migrate: bool, durable: bool = True
) -> tuple[Executor, Path]:
    """A configured write connection to the data dir's database, migrated if asked (durable:
    see schema.configure)."""
    path = schema.check_data_dir(data_dir, create=migrate)
    ex = await connect(path, kind)
    try:
        if migrate:
            await schema.migrate(ex, path, clock)
        version = await schema.identify(ex, path)
        await schema.check_applied(ex, version, path)
        if version < schema.latest_version():
            raise StoreOpenError(
                f"{path} is at schema version {version}, this stablerail needs"
                f" {schema.latest_version()}: run stablerail migrate --data-dir {data_dir}"
            )
        await schema.configure(ex, durable=durable)
    except BaseException:
        await ex.close()
        raise
    return ex, path


async def migrate_data_dir(
    data_dir: Path, clock: Clock, kind: ExecutorKind = ExecutorKind.INLINE
) -> tuple[int, int]:
    """Create or upgrade a data dir; returns (schema version before, after)."""
    path = schema.check_data_dir(data_dir, create=True)
    ex = await connect(path, kind)
    try:
        before, after = await schema.migrate(ex, path, clock)
        await schema.configure(ex)
    finally:
        await ex.close()
    return before, after


class Store:
    def __init__(
        self, path: Path, reader: Executor, writer: Writer, clock: Clock, states: StateCache
    ) -> None:
        self.path = path
        self.reader = reader
        self.writer = writer
        self.clock = clock
        # Transfer states as this process last read or wrote them, one cache with the writer
        # (store/states.py): a read fetches only the rows appended after, by anyone.
        self._states = states

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        data_dir: Path | str,
        *,
        clock: Clock,
        executor: ExecutorKind = ExecutorKind.AIOSQLITE,
        migrate: bool = False,
        durable: bool = True,
    ) -> AsyncIterator[Store]:
        write_ex, path = await open_executor(
            Path(data_dir), executor, clock=clock, migrate=migrate, durable=durable
        )
        try:
            read_ex = await connect(path, executor, read_only=True)
            try:
                states = StateCache(limits.transfer_cache_max)
                writer = Writer(write_ex, clock, states=states)
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(writer.run(), name="store-writer")
                    try:
                        yield cls(path, read_ex, writer, clock, states)
                    finally:
                        await writer.stop()
            finally:
                await read_ex.close()
        finally:
            await write_ex.close()

    # --- writes ---------------------------------------------------------------------------------

    async def write(self, request: WriteRequest) -> Outcome:
        return await self.writer.submit(request)

    async def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[Event],
        *,
        request_id: str | None = None,
        claim: ClaimKey | None = None,
        complete: CompleteKey | None = None,
        audit: Sequence[AuditRecord] = (),
        evidence_raw: dict[str, bytes] | None = None,
    ) -> Outcome:
        return await self.writer.submit(
            WriteRequest(
                appends=(
                    Append(
                        stream_id=stream_id,
                        expected_version=expected_version,
                        events=tuple(events),
                    ),
                ),
                claim=claim,
                complete=complete,
                evidence_raw=evidence_raw or {},
                request_id=request_id,
                audit=tuple(audit),
            )
        )

    async def audit(self, records: Sequence[AuditRecord]) -> Outcome:
        """Chain `records` onto the audit log (durable when this returns)."""
        return await self.writer.submit(WriteRequest(audit=tuple(records)))

    async def complete_key(
        self,
        client_id: str,
        key: str,
        status: IdempotencyStatus,
        response_status: int,
        response_body: bytes,
    ) -> Outcome:
        return await self.writer.submit(
            WriteRequest(
                complete=CompleteKey(
                    client_id=client_id,
                    key=key,
                    status=status,
                    response_status=response_status,
                    response_body=response_body,
                )
            )
        )

    async def expire_idempotency_keys(self, now_us: int) -> int:
        """Delete answered idempotency records past their expiry; returns how many. A key still
        IN_PROGRESS is kept (its request has not been answered yet)."""
        cutoff = rfc3339_us(now_us)

        async def work(ex: Executor) -> int:
            row = await ex.fetchone(
                "SELECT count(*) FROM idempotency_keys WHERE expires_at < ? AND status != ?",
                (cutoff, IdempotencyStatus.IN_PROGRESS.value),
            )
            await ex.execute(
                "DELETE FROM idempotency_keys WHERE expires_at < ? AND status != ?",
                (cutoff, IdempotencyStatus.IN_PROGRESS.value),
            )
            assert row is not None
            return int(row[0])

        return cast(int, await self.writer.exclusive(work))

    # --- reads ----------------------------------------------------------------------------------

    async def load_stream(self, stream_id: str, after_version: int = 0) -> list[Recorded]:
        return await queries.load_stream(self.reader, stream_id, after_version)

    async def transfer(self, transfer_id: str) -> TransferState | None:
        return (await self._states.latest(self.reader, [transfer_id])).get(transfer_id)

    async def transfer_states(self, transfer_ids: Iterable[str]) -> dict[str, TransferState]:
        return await self._states.latest(self.reader, transfer_ids)

    async def balance(self, account: str, currency: str) -> queries.Balance:
        return await queries.balance(self.reader, account, currency)

    async def client_balances(self, client_id: str) -> list[queries.ClientBalance]:
        return await queries.client_balances(self.reader, client_id)

    async def idempotency_record(self, client_id: str, key: str) -> IdempotencyRecord | None:
        return await queries.idempotency_record(self.reader, client_id, key)

    async def unanswered_keys(self, after: tuple[str, str], limit: int) -> list[IdempotencyRecord]:
        return await queries.unanswered_keys(self.reader, after, limit)

    async def due_timers(self, now_us: int, limit: int) -> list[DueTimer]:
        return await queries.due_timers(self.reader, now_us, limit)

    async def next_timer_due(self, after_us: int) -> int | None:
        return await queries.next_timer_due(self.reader, after_us)

    async def active_transfers(self, after: str, limit: int) -> list[str]:
        return await queries.active_transfers(self.reader, after, limit)

    async def evidence_for(self, transfer_id: str) -> list[EvidenceRecorded]:
        return (await queries.evidence_of(self.reader, [transfer_id])).get(transfer_id, [])

    async def evidence_of(self, transfer_ids: Iterable[str]) -> dict[str, list[EvidenceRecorded]]:
        return await queries.evidence_of(self.reader, transfer_ids)

    async def evidence_since(
        self, after_seq: int, limit: int
    ) -> list[tuple[int, EvidenceRecorded, bool]]:
        return await queries.evidence_since(self.reader, after_seq, limit)

    async def awaiting_reconciliation(self, after: str, limit: int) -> list[str]:
        return await queries.awaiting_reconciliation(self.reader, after, limit)

    async def discrepancies(self, open_only: bool) -> list[Discrepancy]:
        return await queries.discrepancies(self.reader, open_only)

    async def held_balances(self) -> list[tuple[str, str, int]]:
        return await queries.held_balances(self.reader)

    async def balance_at(self, account: str, currency: str, until_us: int) -> int:
        return await queries.balance_at(self.reader, account, currency, until_us)

    async def first_told(self, provider: str, event_type: str, external_ref: str) -> int | None:
        return await queries.first_told(self.reader, provider, event_type, external_ref)

    async def in_flight(self, limit: int) -> list[TransferState]:
        ids = await queries.in_flight(self.reader, limit)
        found = await self.transfer_states(ids)
        return [found[tid] for tid in ids if tid in found]

    async def transfer_paid_by(self, tx_hash: str) -> str | None:
        return (await self.transfers_paid_by([tx_hash])).get(tx_hash)

    async def transfers_paid_by(self, tx_hashes: Iterable[str]) -> dict[str, str]:
        return await queries.transfers_paid_by(self.reader, tx_hashes)

    async def transfer_for_trade(self, provider_trade_id: str) -> str | None:
        return await queries.transfer_for_trade(self.reader, provider_trade_id)

    async def last_indexed_block(self, provider: str) -> int | None:
        return await queries.last_indexed_block(self.reader, provider)

    async def quote(self, quote_id: str) -> tuple[str | None, Quote] | None:
        return await queries.quote(self.reader, quote_id)

    async def any_quote(self, quote_id: str) -> tuple[str | None, Quote] | None:
        return await queries.any_quote(self.reader, quote_id)

    async def rebalance_paid_by(self, tx_hash: str) -> str | None:
        return await queries.rebalance_paid_by(self.reader, tx_hash)

    async def rebalance_ids(self, limit: int) -> list[str]:
        return await queries.rebalance_ids(self.reader, limit)

    async def signed_transactions(
        self, chain: str, address: str, from_nonce: int = 0
    ) -> list[SignedTx]:
        return await queries.signed_transactions(self.reader, chain, address, from_nonce)

    async def stream(self, stream_id: str) -> list[Recorded]:
        return await queries.load_stream(self.reader, stream_id)

    async def before_chain(
        self, client_id: str | None, corridor: tuple[str, str] | None, after: str, limit: int
    ) -> list[str]:
        return await queries.before_chain(self.reader, client_id, corridor, after, limit)

    async def available(self, client_id: str, currency: str) -> int:
        return await queries.available(self.reader, client_id, currency)

    async def beneficiary_first_seen(self, client_id: str, beneficiary: str) -> int | None:
        return await queries.beneficiary_first_seen(self.reader, client_id, beneficiary)

    async def head(self) -> tuple[int, bytes]:
        return await queries.journal_head(self.reader)
