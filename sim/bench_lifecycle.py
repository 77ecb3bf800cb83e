"""`stablerail bench lifecycle`: whole transfer lifecycles per second, against two references in
the same run.

  engine         The whole runtime (System: registry, transfer actors, mailboxes, supervisors)
                 on the production store (aiosqlite executor, WAL, synchronous=FULL), driving
                 USD -> USDC wallet transfers from create to RECONCILED against the simulated
                 chain, custody and quote provider answering at once (custody signs with a
                 digest, sim.instant). `concurrency` clients create transfers; the clock stops
                 when every one is RECONCILED. A lifecycle is eight journal rows:
                 TransferCreated, QuoteCaptured, FundsLocked, OnChainSubmitted, the
                 confirmation's EvidenceRecorded, OnChainConfirmed, the chain indexer's
                 EvidenceRecorded, Reconciled; plus their ledger lines and projections.
  eventsourcing  The `eventsourcing` library (sim.reference_eventsourcing) persisting the same
                 eight events, with the same payloads, to SQLite: one aggregate per transfer,
                 saved after each step as a command handler would.
  raw            Plain sqlite3 writing the engine round's own journal and ledger rows again, in
                 transactions of `concurrency` lifecycles (no checks, no projections): the ceiling
                 for the durable rows alone.
  engine signed  The engine round again with the simulated custody signing with eth-account and
                 the simulated node recovering each sender: about a millisecond of this process's
                 CPU per payment that production spends in an HSM and on the node
                 (sim.instant explains the swap).

The machine's CPU speed jumps between two levels every few seconds, so they run in short
interleaved rounds (the order rotating) and the report gives medians and ratios.

Resident memory is measured in a child process (so nothing the rounds allocated counts): it runs
`passivated` lifecycles through one engine and store, in chunks, and reports the resident set
after the first chunk, at half way and at the end, how many actors are still live and what the
supervisors still hold. The simulated node forgets final receipts between chunks.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import anyio
import msgspec

from actors.context import Context, Tuning
from actors.system import System
from engine import commands as c
from engine import matching
from engine.destinations import WalletDestination
from engine.hashing import request_hash
from engine.nonces import NonceBook
from engine.results import Result
from engine.states import TERMINAL, Status
from sim.clock import ManualClock, SeededIds
from sim.faults import FaultLog, FaultPlan
from sim.instant import DigestCustody, decode_digest
from sim.reference_eventsourcing import EventsourcingReference
from sim.world import SimRails, deposit_command
from store.bench import RawRows, Replay
from store.executor import ExecutorKind
from store.schema import db_path
from store.store import Store

CLIENT = "bench"
T = TypeVar("T")
EVENTS_PER_LIFECYCLE = 8
# The simulated chain makes a block every BLOCK_S and the supervisors look for work every
# POLL_S: a lifecycle waits ~24 blocks for its block to be final, so these bound its latency, not
# the throughput, which `concurrency` transfers in flight keep up.
BLOCK_S = 0.002
POLL_S = 0.005
MEMORY_CHUNK = 2_000
# Both search the status index for the states they name, so a store of a million transfers costs
# no more to ask than an empty one (`status NOT IN (...)` walked the whole index: 30 ms a poll
# at 100k transfers stored, every POLL_S, in bench growth).
_LIVE = ", ".join(f"'{s.value}'" for s in sorted(set(Status) - TERMINAL))
_OTHER_ENDS = ", ".join(f"'{s.value}'" for s in sorted(TERMINAL - {Status.RECONCILED}))
ACTIVE = f"SELECT count(*) FROM transactions WHERE status IN ({_LIVE})"
ENDED_OTHERWISE = f"SELECT count(*) FROM transactions WHERE status IN ({_OTHER_ENDS})"
# A round that has not finished after this long per transfer (and a minute) is stuck, not slow.
ROUND_DEADLINE_PER_TRANSFER_S = 0.1
# Ten billion dollars: enough for every transfer any run makes.
FUNDING_MINOR = 10**12


class MemoryReport(msgspec.Struct, kw_only=True):
    passivated: int
    rss_mb: float
    rss_mb_after_first_chunk: float
    rss_mb_at_half: float
    # Over the second half: what each further transfer costs once every cache is full.
    growth_bytes_per_transfer: float
    live_actors: int
    watched_transactions: int
    reconciliations_pending: int
    database_mb: float


class LifecycleReport(msgspec.Struct, kw_only=True):
    transfers: int
    eventsourcing_transfers: int
    concurrency: int
    rounds: int
    events_per_lifecycle: int
    raw_rows_per_lifecycle: float
    engine_lifecycles_per_s: float
    # The same with the custody signing with eth-account and the node recovering signatures, in
    # this process.
    engine_signed_lifecycles_per_s: float
    eventsourcing_lifecycles_per_s: float
    raw_lifecycles_per_s: float
    vs_eventsourcing: float
    vs_raw: float
    engine_runs: list[float]
    engine_signed_runs: list[float]
    eventsourcing_runs: list[float]
    raw_runs: list[float]
    memory: MemoryReport | None


class Engine:
    """One engine on one store, with zero-latency simulated rails, ready to run lifecycles."""

    def __init__(
        self, store: Store, system: System, rails: SimRails, ids: SeededIds, seed: int
    ) -> None:
        self.store = store
        self.system = system
        self.rails = rails
        self.ids = ids
        self.seed = seed  # in the idempotency keys: engines of other seeds may share the store
        self.created = 0

    @classmethod
    @asynccontextmanager
    async def open(
        cls, directory: Path, *, seed: int = 1, signatures: bool = False
    ) -> AsyncIterator[Engine]:
        """`signatures`: the custody signs with eth-account and the node recovers the sender
        (this process's CPU); otherwise sim.instant's digest custody."""
        clock = ManualClock(tick_us=1)
        ids = SeededIds(seed, clock)
        async with Store.open(
            directory, clock=clock, executor=ExecutorKind.AIOSQLITE, migrate=True
        ) as store:
            rails = SimRails.build(
                seed, FaultLog(FaultPlan.none(), random.Random(seed)), clock, ids
            )
            rails.answer_at_once()
            # A store an earlier engine wrote (bench growth): the chain goes on from there.
            indexed = await store.last_indexed_block(matching.chain_provider(rails.chain.chain))
            if indexed is not None:
                rails.chain.start_at(indexed + 1)
            ports = rails.ports()
            if not signatures:
                rails.chain.decode = decode_digest
                ports = dataclasses.replace(ports, custody=DigestCustody(seed))
            await rails.fund_treasury(store, ids, clock)
            ctx = Context(
                journal=store,
                clock=clock,
                ids=ids,
                rails=ports,
                nonces=NonceBook(),
                tuning=Tuning(chain_poll_s=POLL_S, supervisor_poll_s=POLL_S),
            )
            system = System(ctx)
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(rails.chain.run, BLOCK_S)
                await tasks.start(system.run)
                _, reference, booked = rails.bank.book_deposit(CLIENT, FUNDING_MINOR)
                funded = await system.credit_deposit(
                    deposit_command(booked, reference, CLIENT, FUNDING_MINOR)
                )
                assert funded is Result.ok, funded
                yield cls(store, system, rails, ids, seed)
                tasks.cancel_scope.cancel()

    def create(self) -> c.CreateTransfer:
        self.created += 1
        n = self.created
        return c.CreateTransfer(
            transfer_id=self.ids.new("tr"),
            client_id=CLIENT,
            initiator="bench",
            idempotency_key=f"bench-{self.seed}-{n}",
            request_hash=request_hash("POST /v1/transfers", {"seed": self.seed, "n": n}),
            source_currency="USD",
            target_currency="USDC",
            amount="10.00",
            destination=WalletDestination(chain="ethereum", address="0x" + "b0" * 20),
        )

    async def lifecycles(self, transfers: int, concurrency: int) -> float:
        """Seconds until `transfers` new transfers, created by `concurrency` clients, are all
        RECONCILED."""
        creates = iter([self.create() for _ in range(transfers)])

        async def client() -> None:
            for create in creates:
                result, holder = await self.system.create_transfer(create)
                assert result is Result.ok and holder == create.transfer_id, (result, holder)

        started = time.perf_counter()
        async with anyio.create_task_group() as clients:
            for _ in range(concurrency):
                clients.start_soon(client)
        with anyio.fail_after(60 + transfers * ROUND_DEADLINE_PER_TRANSFER_S):
            while await self._count(ACTIVE):  # noqa: ASYNC110 (the store is the one to ask)
                await anyio.sleep(POLL_S)
        elapsed = time.perf_counter() - started
        ended_otherwise = await self._count(ENDED_OTHERWISE)
        assert ended_otherwise == 0, f"{ended_otherwise} transfers did not end RECONCILED"
        return elapsed

    async def _count(self, sql: str) -> int:
        row = await self.store.reader.fetchone(sql)
        assert row is not None
        return int(row[0])


async def _engine_round(
    directory: Path, transfers: int, concurrency: int, seed: int, signatures: bool = False
) -> tuple[float, int]:
    """Lifecycles per second, and the journal head before the first transfer."""
    async with Engine.open(directory, seed=seed, signatures=signatures) as engine:
        first, _ = await engine.store.head()
        elapsed = await engine.lifecycles(transfers, concurrency)
    return transfers / elapsed, first


async def _raw_round(directory: Path, rows: RawRows, lifecycles: int, concurrency: int) -> float:
    replay = await Replay.prepare(directory, ManualClock(), foreign_keys=False)
    batches = rows.batches(per_batch=concurrency * EVENTS_PER_LIFECYCLE)
    try:
        started = time.perf_counter()
        replay.run(batches)
        return lifecycles / (time.perf_counter() - started)
    finally:
        replay.close()


def _eventsourcing_round(directory: Path, payloads: list[list[str]]) -> float:
    reference = EventsourcingReference(directory / "eventsourcing.sqlite3")
    try:
        started = time.perf_counter()
        for lifecycle in payloads:
            reference.lifecycle(lifecycle)
        return len(payloads) / (time.perf_counter() - started)
    finally:
        reference.close()


def _lifecycle_payloads(rows: RawRows) -> list[list[str]]:
    """Each transfer's eight journal payloads, in order (the evidence names its transfer)."""
    by_transfer: dict[str, list[str]] = {}
    for stream, payload in rows.streams_and_payloads():
        owner = stream if stream.startswith("tr_") else msgspec.json.decode(payload)["transfer_id"]
        by_transfer.setdefault(owner, []).append(payload)
    lifecycles = list(by_transfer.values())
    assert all(len(p) == EVENTS_PER_LIFECYCLE for p in lifecycles), "not an eight-event lifecycle"
    return lifecycles


async def bench_lifecycle(
    *,
    transfers: int = 1_000,
    eventsourcing_transfers: int = 100,
    concurrency: int = 256,
    rounds: int = 5,
    passivated: int = 100_000,
    seed: int = 1,
) -> LifecycleReport:
    assert transfers > 0 and eventsourcing_transfers > 0 and concurrency > 0 and rounds > 0
    runs: dict[str, list[float]] = {name: [] for name in ("engine", "signed", "raw", "es")}
    rows_per_lifecycle = 0.0
    for number in range(rounds):
        with tempfile.TemporaryDirectory(prefix="stablerail-bench-") as scratch:
            here = Path(scratch)
            engine_dir = here / "engine"
            rate, first = await _engine_round(engine_dir, transfers, concurrency, seed)
            runs["engine"].append(rate)
            rows = RawRows.read(db_path(engine_dir), after_seq=first)
            rows_per_lifecycle = rows.count / transfers
            payloads = _lifecycle_payloads(rows)[:eventsourcing_transfers]

            # The others take turns going first, right after the engine.
            order = ("signed", "raw", "es")
            for kind in order[number % 3 :] + order[: number % 3]:
                if kind == "signed":
                    rate, _ = await _engine_round(
                        here / "signed", transfers, concurrency, seed, signatures=True
                    )
                elif kind == "raw":
                    rate = await _raw_round(here / "raw", rows, transfers, concurrency)
                else:
                    rate = _eventsourcing_round(here, payloads)
                runs[kind].append(rate)
    memory = _measure_memory(passivated, concurrency, seed) if passivated > 0 else None
    engine, signed_rate, raw_rate, es = (statistics.median(runs[k]) for k in runs)
    return LifecycleReport(
        transfers=transfers,
        eventsourcing_transfers=min(transfers, eventsourcing_transfers),
        concurrency=concurrency,
        rounds=rounds,
        events_per_lifecycle=EVENTS_PER_LIFECYCLE,
        raw_rows_per_lifecycle=round(rows_per_lifecycle, 2),
        engine_lifecycles_per_s=round(engine, 1),
        engine_signed_lifecycles_per_s=round(signed_rate, 1),
        eventsourcing_lifecycles_per_s=round(es, 1),
        raw_lifecycles_per_s=round(raw_rate, 1),
        vs_eventsourcing=round(engine / es, 2),
        vs_raw=round(engine / raw_rate, 3),
        engine_runs=[round(r, 1) for r in runs["engine"]],
        engine_signed_runs=[round(r, 1) for r in runs["signed"]],
        eventsourcing_runs=[round(r, 1) for r in runs["es"]],
        raw_runs=[round(r, 1) for r in runs["raw"]],
        memory=memory,
    )


# --- resident memory, in a child process -------------------------------------------------------


def _measure_memory(passivated: int, concurrency: int, seed: int) -> MemoryReport:
    with tempfile.TemporaryDirectory(prefix="stablerail-bench-") as scratch:
        options = {
            "data-dir": Path(scratch) / "data",
            "passivated": passivated,
            "concurrency": concurrency,
            "seed": seed,
        }
        return run_child("sim.bench_lifecycle", options, MemoryReport, timeout_s=3600)


def run_child(module: str, options: dict[str, object], report: type[T], *, timeout_s: float) -> T:
    """Run `python -m module --option value ...` (a measurement in a fresh process, so nothing
    this one allocated counts) and decode the JSON report it prints."""
    argv = [sys.executable, "-m", module]
    for name, value in options.items():
        argv += [f"--{name}", str(value)]
    done = subprocess.run(argv, capture_output=True, check=False, timeout=timeout_s)
    if done.returncode != 0:
        raise RuntimeError(f"{module} failed: {done.stderr.decode()[-2000:]}")
    return msgspec.json.decode(done.stdout, type=report)


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


async def _memory_child(directory: Path, passivated: int, concurrency: int, seed: int) -> None:
    """Run `passivated` lifecycles through one engine, in chunks, reading the resident set after
    the first chunk, at half way and at the end. Between chunks the simulated node forgets the
    receipts of final transactions (nothing asks for them again): its memory is not the
    engine's."""
    half = passivated // 2
    rss_first = rss_half = 0
    count_half = 0
    async with Engine.open(directory, seed=seed) as engine:
        while engine.created < passivated:
            before = engine.created
            await engine.lifecycles(min(MEMORY_CHUNK, passivated - before), concurrency)
            await _passivate(engine)
            engine.rails.chain.forget_final()
            gc.collect()
            if before == 0:
                rss_first = rss_half = _rss_bytes()
            if before < half <= engine.created:
                rss_half, count_half = _rss_bytes(), engine.created
        rss = _rss_bytes()
        supervisors = engine.system.supervisors
        report = MemoryReport(
            passivated=engine.created,
            rss_mb=round(rss / 2**20, 1),
            rss_mb_after_first_chunk=round(rss_first / 2**20, 1),
            rss_mb_at_half=round(rss_half / 2**20, 1),
            growth_bytes_per_transfer=round(
                (rss - rss_half) / max(1, engine.created - count_half), 1
            ),
            live_actors=len(engine.system.registry.actors),
            watched_transactions=len(supervisors.confirmations.watches),
            reconciliations_pending=len(supervisors.reconciler.dirty),
            database_mb=round(db_path(directory).stat().st_size / 2**20, 1),
        )
    print(msgspec.json.encode(report).decode())


async def _passivate(engine: Engine) -> None:
    """Let every terminal actor return and the watcher drop transactions past finality."""
    with anyio.fail_after(30):
        while engine.system.registry.actors or engine.system.supervisors.confirmations.watches:  # noqa: ASYNC110
            await anyio.sleep(POLL_S)


def _child_main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--passivated", type=int, required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(_memory_child(args.data_dir, args.passivated, args.concurrency, args.seed))


if __name__ == "__main__":
    _child_main()
