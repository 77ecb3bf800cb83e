"""`stablerail bench store`: durable appends through the store, against raw sqlite3, same run.

Three measurements, alternating within each repeat, reported as medians:

  store       `concurrency` appenders, each appending the events of its own transfers one append
              at a time and awaiting each commit, as an actor does: TransferCreated,
              QuoteCaptured, FundsLocked, OnChainSubmitted, OnChainConfirmed, Reconciled. Every
              append goes through the whole store: group commit, the version check, the
              transition table, the balance check, the hash chain and every projection (transfer
              row, ledger lines, balance cache, timers, outbox), WAL with synchronous=FULL.
  raw         stdlib sqlite3 inserting the same number of journal-shaped rows, with the same
              payloads, in transactions of `concurrency` rows (the largest group the store can
              form), same durability: the issue's reference, the ceiling for the journal alone.
  same_writes stdlib sqlite3 replaying exactly the statements the store's writer executed (its
              journal rows and every projection write, grouped in the same transactions),
              recorded in an untimed pass: the ceiling for the same durable work, which isolates
              what the store's own machinery costs.

The events are decided before any clock starts: deciding is the actors' work, not the store's.
"""

from __future__ import annotations

import asyncio
import functools
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path

import msgspec

from engine import commands as c
from engine import events as ev
from engine import ledger
from engine.destinations import WalletDestination
from engine.hashing import request_hash
from engine.records import Append, Committed, Outcome, WriteRequest
from engine.states import Status
from sim.clock import ManualClock, SeededIds
from sim.scripted import ScriptedWorld, deposit
from store.bench import RawReference, Replay
from store.executor import Executor, ExecutorKind, ForwardingExecutor, Params
from store.store import Store, open_executor
from store.writer import Writer

CLIENT = "bench"
Submit = Callable[[WriteRequest], Awaitable[Outcome]]


class BenchReport(msgspec.Struct, kw_only=True):
    appends: int
    concurrency: int
    repeats: int
    executor: str
    store_rows_per_s: float
    raw_rows_per_s: float
    ratio: float
    same_writes_rows_per_s: float
    ratio_same_writes: float
    store_runs: list[float]
    raw_runs: list[float]
    same_writes_runs: list[float]
    mean_batch: float
    rows_per_append: float


async def _lifecycles(transfers: int, seed: int) -> list[tuple[ev.TransferEvent, ...]]:
    """Every transfer's events, decided by the engine with the scripted world answering."""
    clock = ManualClock(tick_us=1_000)
    ids = SeededIds(seed, clock)
    collected: dict[str, list[ev.TransferEvent]] = {}

    async def collect(stream: str, version: int, events: tuple[ev.TransferEvent, ...]) -> Outcome:
        collected.setdefault(stream, []).extend(events)
        return Committed(first_seq=0, last_seq=0, versions={stream: version + len(events)})

    world = ScriptedWorld(collect, clock, ids)
    for n in range(transfers):
        create = c.CreateTransfer(
            transfer_id=ids.new("tr"),
            client_id=CLIENT,
            initiator="bench",
            idempotency_key=f"bench-{n}",
            request_hash=request_hash(n),
            source_currency="USD",
            target_currency="USDC",
            amount="10.00",
            destination=WalletDestination(chain="ethereum", address="0x" + "b0" * 20),
        )
        state, _ = await world.run(None, create)
        assert state is not None and state.status is Status.RECONCILED, state
    return [tuple(events) for events in collected.values()]


def _funding(clock: ManualClock) -> WriteRequest:
    credit = deposit("dp_" + "0" * 26, CLIENT, "100000000.00", clock.now_us())
    return WriteRequest(
        appends=(Append(stream_id=credit.deposit_id, expected_version=0, events=(credit,)),)
    )


async def _drive(
    submit: Submit, lifecycles: list[tuple[ev.TransferEvent, ...]], concurrency: int
) -> None:
    """`concurrency` appenders, each appending its transfers' events, one awaited append at a
    time."""

    async def appender(lane: Iterable[tuple[ev.TransferEvent, ...]]) -> None:
        for events in lane:
            stream = events[0].transfer_id  # type: ignore[union-attr]
            for version, event in enumerate(events):
                outcome = await submit(
                    WriteRequest(
                        appends=(
                            Append(stream_id=stream, expected_version=version, events=(event,)),
                        )
                    )
                )
                assert isinstance(outcome, Committed), outcome

    async with asyncio.TaskGroup() as tasks:
        for lane in range(concurrency):
            tasks.create_task(appender(lifecycles[lane::concurrency]))


class RecordingExecutor(ForwardingExecutor):
    """Keeps every write statement the writer executes, grouped by transaction."""

    def __init__(self, inner: Executor) -> None:
        super().__init__(inner)
        self.transactions: list[list[tuple[str, list[Params]]]] = []
        self._current: list[tuple[str, list[Params]]] | None = None

    def executed(self, sql: str, rows: Sequence[Params]) -> None:
        if sql.startswith("BEGIN"):
            self._current = []
        elif sql == "COMMIT":
            assert self._current is not None
            self.transactions.append(self._current)
            self._current = None
        elif sql == "ROLLBACK":
            self._current = None
        elif self._current is not None:
            self._current.append((sql, list(rows)))


async def _record(
    directory: Path, lifecycles: list[tuple[ev.TransferEvent, ...]], concurrency: int
) -> list[list[tuple[str, list[Params]]]]:
    """An untimed pass through the store's writer that keeps the statements it executes."""
    clock = ManualClock(tick_us=1)
    ex, _ = await open_executor(directory, ExecutorKind.INLINE, clock=clock, migrate=True)
    recorder = RecordingExecutor(ex)
    writer = Writer(recorder, clock)
    try:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(writer.run())
            try:
                assert isinstance(await writer.submit(_funding(clock)), Committed)
                recorder.transactions.clear()
                await _drive(writer.submit, lifecycles, concurrency)
            finally:
                await writer.stop()
    finally:
        await recorder.close()
    return recorder.transactions


async def _store_run(
    directory: Path,
    lifecycles: list[tuple[ev.TransferEvent, ...]],
    concurrency: int,
    kind: ExecutorKind,
) -> tuple[float, float]:
    clock = ManualClock(tick_us=1)
    async with Store.open(directory, clock=clock, executor=kind, migrate=True) as store:
        assert isinstance(await store.write(_funding(clock)), Committed)
        batches, requests = store.writer.batches, store.writer.batched_requests
        started = time.perf_counter()
        await _drive(store.write, lifecycles, concurrency)
        elapsed = time.perf_counter() - started
        appended = store.writer.batched_requests - requests
        mean_batch = appended / max(1, store.writer.batches - batches)
        held = await store.balance(ledger.client_held(CLIENT), "USD")
        assert held.credit_balance == 0, "every benchmark transfer ends reconciled"
    return appended / elapsed, mean_batch


def _timed(run: Callable[[], None], rows: int) -> float:
    started = time.perf_counter()
    run()
    return rows / (time.perf_counter() - started)


def _journal_rows(lifecycles: list[tuple[ev.TransferEvent, ...]]) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for events in lifecycles:
        stream = events[0].transfer_id  # type: ignore[union-attr]
        for version, event in enumerate(events, start=1):
            seq = len(rows) + 1
            rows.append(
                (
                    seq,
                    stream,
                    version,
                    ev.event_type(event),
                    ev.encode(event).decode(),
                    "2026-11-25T00:00:00.000000Z",
                    None,
                    bytes(32),
                    seq.to_bytes(32, "big"),
                )
            )
    return rows


async def bench_store(
    *,
    transfers: int = 2000,
    concurrency: int = 256,
    repeats: int = 5,
    executor: ExecutorKind = ExecutorKind.AIOSQLITE,
    seed: int = 1,
) -> BenchReport:
    assert transfers > 0 and concurrency > 0 and repeats > 0
    lifecycles = await _lifecycles(transfers, seed)
    rows = _journal_rows(lifecycles)
    with tempfile.TemporaryDirectory(prefix="stablerail-bench-") as scratch:
        recorded = await _record(Path(scratch), lifecycles, concurrency)
    store_rates: list[float] = []
    raw_rates: list[float] = []
    same_rates: list[float] = []
    batches: list[float] = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="stablerail-bench-") as scratch:
            raw = RawReference(Path(scratch) / "raw.sqlite3")
            try:
                raw_rates.append(
                    _timed(functools.partial(raw.insert, rows, concurrency), len(rows))
                )
            finally:
                raw.close()
        with tempfile.TemporaryDirectory(prefix="stablerail-bench-") as scratch:
            replay = await Replay.prepare(Path(scratch), ManualClock())
            try:
                same_rates.append(_timed(functools.partial(replay.run, recorded), len(rows)))
            finally:
                replay.close()
        with tempfile.TemporaryDirectory(prefix="stablerail-bench-") as scratch:
            rate, mean_batch = await _store_run(Path(scratch), lifecycles, concurrency, executor)
            store_rates.append(rate)
            batches.append(mean_batch)
    store_median = statistics.median(store_rates)
    raw_median = statistics.median(raw_rates)
    same_median = statistics.median(same_rates)
    written_rows = sum(len(r) for t in recorded for _, r in t)
    return BenchReport(
        appends=len(rows),
        concurrency=concurrency,
        repeats=repeats,
        executor=executor.value,
        store_rows_per_s=round(store_median, 1),
        raw_rows_per_s=round(raw_median, 1),
        ratio=round(store_median / raw_median, 3),
        same_writes_rows_per_s=round(same_median, 1),
        ratio_same_writes=round(store_median / same_median, 3),
        store_runs=[round(r, 1) for r in store_rates],
        raw_runs=[round(r, 1) for r in raw_rates],
        same_writes_runs=[round(r, 1) for r in same_rates],
        mean_batch=round(statistics.median(batches), 1),
        rows_per_append=round(written_rows / len(rows), 2),
    )
