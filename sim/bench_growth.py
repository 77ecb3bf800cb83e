"""`stablerail bench growth`: engine lifecycles per second, start-up time and resident memory when
the store already holds many transfers.

For each size in turn, one store growing from one size to the next (the first size is the
reference: an empty store unless told otherwise):

  fill      the store is filled up to the size with reconciled wallet transfers decided by the
            engine (sim.scripted: the same decide and evolve as the actors), as they stood a
            month before the measurement (outside every rolling window, their idempotency keys
            expired), spread over FILL_CLIENTS funded clients. Each is appended whole, its six
            events in one request, through the store's own writer: every check, projection and
            index, WAL, synchronous=FULL.
  measure   a child process (so that nothing the fill allocated counts) opens the store with the
            whole runtime (sim.bench_lifecycle.Engine: System, actors, supervisors, the
            production aiosqlite store), records how long it took to start serving, runs `rounds`
            rounds of `transfers` lifecycles from create to RECONCILED, and reports the median
            rate and its resident set after the rounds.

The report gives each size's median rate, its ratio to the reference size's, start-up seconds,
resident MB and database MB. The machine's speed drifts over a long run, so a ratio far from 1
means something; a few percent does not.

    python -m sim.bench_growth --data-dir DIR --transfers N --rounds R --concurrency C --seed S
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

import msgspec

from engine import commands as c
from engine import events as ev
from engine.destinations import WalletDestination
from engine.hashing import request_hash
from engine.records import Append, Committed, Outcome, WriteRequest
from engine.states import Status
from sim.bench_lifecycle import Engine, _rss_bytes, run_child
from sim.clock import EPOCH_US, ManualClock, SeededIds
from sim.scripted import ScriptedWorld, deposit
from store.executor import ExecutorKind
from store.schema import db_path
from store.store import Store

FILL_CLIENTS = 1_000
# A month before the measurement: outside every rolling limit's window and every key's TTL.
FILL_BEFORE_US = 30 * 24 * 3600 * 1_000_000
FILL_CHUNK = 2_000  # transfers decided, then appended, at a time (bounded memory)
FILL_IN_FLIGHT = 256  # appends awaiting the writer at once (its batches)


class Size(msgspec.Struct, kw_only=True):
    stored: int
    lifecycles_per_s: float
    runs: list[float]
    vs_reference: float
    start_s: float
    rss_mb: float
    database_mb: float
    fill_per_s: float  # transfers appended per second while filling up to this size


class GrowthReport(msgspec.Struct, kw_only=True):
    transfers: int
    rounds: int
    concurrency: int
    sizes: list[Size]


class _Measured(msgspec.Struct, kw_only=True):
    runs: list[float]
    start_s: float
    rss_mb: float


class _Decider:
    """Filler transfers decided by the engine in a scripted world, collected, not stored. The
    world's treasury nonce goes on from the number already stored (one nonce per transfer), so
    every filler transaction is a different one."""

    def __init__(self, clock: ManualClock, ids: SeededIds, stored: int) -> None:
        self.decided: dict[str, list[ev.TransferEvent]] = {}
        self.world = ScriptedWorld(self.collect, clock, ids, first_nonce=stored)
        self.ids = ids

    async def collect(
        self, stream: str, version: int, events: tuple[ev.TransferEvent, ...]
    ) -> Outcome:
        self.decided.setdefault(stream, []).extend(events)
        return Committed(first_seq=0, last_seq=0, versions={stream: version + len(events)})

    async def requests(self, first: int, count: int) -> list[WriteRequest]:
        """Transfers first .. first + count - 1, each decided to RECONCILED, one append each."""
        self.decided.clear()
        for n in range(first, first + count):
            await self.one(n)
        return [
            WriteRequest(appends=(Append(stream_id=s, expected_version=0, events=tuple(e)),))
            for s, e in self.decided.items()
        ]

    async def one(self, n: int) -> None:
        ids = self.ids
        client = f"fill-{n % FILL_CLIENTS:04d}"
        create = c.CreateTransfer(
            transfer_id=ids.new("tr"),
            client_id=client,
            initiator="fill",
            idempotency_key=f"fill-{n}",
            request_hash=request_hash("fill", n),
            source_currency="USD",
            target_currency="USDC",
            amount="10.00",
            destination=WalletDestination(chain="ethereum", address="0x" + "b0" * 20),
        )
        state, _ = await self.world.run(None, create)
        assert state is not None and state.status is Status.RECONCILED, state


async def _append_all(store: Store, requests: list[WriteRequest]) -> None:
    pending = iter(requests)

    async def lane() -> None:
        for request in pending:
            outcome = await store.write(request)
            assert isinstance(outcome, Committed), outcome

    async with asyncio.TaskGroup() as tasks:
        for _ in range(FILL_IN_FLIGHT):
            tasks.create_task(lane())


async def fill(directory: Path, stored: int, target: int, seed: int) -> float:
    """Grow the store from `stored` to `target` filler transfers; appended per second."""
    clock = ManualClock(start_us=EPOCH_US - FILL_BEFORE_US + stored * 1_000, tick_us=1)
    ids = SeededIds(seed * 1_000_003 + stored, clock)
    async with Store.open(
        directory, clock=clock, executor=ExecutorKind.AIOSQLITE, migrate=True
    ) as store:
        if stored == 0:
            funding = [
                deposit(ids.new("dp"), f"fill-{k:04d}", "100000000.00", clock.now_us(), n=k)
                for k in range(FILL_CLIENTS)
            ]
            await _append_all(
                store,
                [
                    WriteRequest(
                        appends=(Append(stream_id=d.deposit_id, expected_version=0, events=(d,)),)
                    )
                    for d in funding
                ],
            )
        appending = 0.0
        decider = _Decider(clock, ids, stored)
        for first in range(stored, target, FILL_CHUNK):
            requests = await decider.requests(first, min(FILL_CHUNK, target - first))
            started = time.perf_counter()
            await _append_all(store, requests)
            appending += time.perf_counter() - started
    return (target - stored) / appending if target > stored else 0.0


def _measure(
    directory: Path, transfers: int, rounds: int, concurrency: int, seed: int
) -> _Measured:
    options = {
        "data-dir": directory,
        "transfers": transfers,
        "rounds": rounds,
        "concurrency": concurrency,
        "seed": seed,
    }
    return run_child("sim.bench_growth", options, _Measured, timeout_s=7200)


async def _child(directory: Path, transfers: int, rounds: int, concurrency: int, seed: int) -> None:
    started = time.perf_counter()
    async with Engine.open(directory, seed=seed) as engine:
        start_s = time.perf_counter() - started
        runs = []
        for _ in range(rounds):
            elapsed = await engine.lifecycles(transfers, concurrency)
            runs.append(transfers / elapsed)
        gc.collect()
        rss = _rss_bytes()
    print(
        msgspec.json.encode(
            _Measured(runs=runs, start_s=round(start_s, 2), rss_mb=round(rss / 2**20, 1))
        ).decode()
    )


def bench_growth(
    *,
    sizes: list[int],
    transfers: int = 1_000,
    rounds: int = 3,
    concurrency: int = 256,
    seed: int = 1,
    data_dir: Path | None = None,
    progress: bool = False,
) -> GrowthReport:
    assert sizes == sorted(sizes) and sizes[0] >= 0 and transfers > 0 and rounds > 0
    measured: list[Size] = []
    with tempfile.TemporaryDirectory(prefix="stablerail-bench-growth-") as scratch:
        directory = data_dir or Path(scratch) / "data"
        stored = 0
        for number, size in enumerate(sizes):
            fill_rate = asyncio.run(fill(directory, stored, size, seed)) if size > stored else 0.0
            stored = size
            # Each measurement runs with its own seed: its ids, funding and transfers are new.
            result = _measure(directory, transfers, rounds, concurrency, seed + 1 + number)
            rate = statistics.median(result.runs)
            reference = measured[0].lifecycles_per_s if measured else rate
            measured.append(
                Size(
                    stored=size,
                    lifecycles_per_s=round(rate, 1),
                    runs=[round(r, 1) for r in result.runs],
                    vs_reference=round(rate / reference, 2),
                    start_s=result.start_s,
                    rss_mb=result.rss_mb,
                    database_mb=round(db_path(directory).stat().st_size / 2**20, 1),
                    fill_per_s=round(fill_rate, 1),
                )
            )
            if progress:
                print(msgspec.json.encode(measured[-1]).decode(), file=sys.stderr, flush=True)
    return GrowthReport(transfers=transfers, rounds=rounds, concurrency=concurrency, sizes=measured)


def _child_main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--transfers", type=int, required=True)
    parser.add_argument("--rounds", type=int, required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(_child(args.data_dir, args.transfers, args.rounds, args.concurrency, args.seed))


if __name__ == "__main__":
    _child_main()
