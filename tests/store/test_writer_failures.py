"""The writer's recovery paths, forced: a failed commit, a constraint the checks did not foresee,
another process committing in between, and two writers sharing one data dir.

In every case each request gets exactly one answer, an answered Committed is in the journal, a
failed request left nothing behind, and `verify` passes afterwards.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from engine import commands as c
from engine import limits
from engine.records import Append, Committed, Rejected, WriteRequest
from engine.results import Result
from engine.transfer import decide
from sim.clock import ManualClock
from store.errors import InvariantViolation, StoreUnavailable
from store.executor import Executor, ExecutorKind, ForwardingExecutor, Params
from store.schema import db_path
from store.store import Store, open_executor
from store.verify import verify
from store.writer import Writer
from tests.builders import Walk, create_command, walk_to
from tests.store.helpers import fund, persist

pytestmark = pytest.mark.anyio


class Faulty(ForwardingExecutor):
    """An executor that fails chosen COMMITs with an I/O error: the writer's (in a transaction
    call) and any other."""

    def __init__(self, inner: Executor, fail_commits: set[int]) -> None:
        super().__init__(inner)
        self._fail = fail_commits
        self.commits = 0

    def executed(self, sql: str, rows: Sequence[Params]) -> None:
        if sql == "COMMIT":
            self.commits += 1
            if self.commits in self._fail:
                raise sqlite3.OperationalError("disk I/O error (injected)")

    async def execute(self, sql: str, params: Params = ()) -> None:
        self.executed(sql, [params])
        await self.inner.execute(sql, params)


@asynccontextmanager
async def faulty_writer(
    data_dir: Path, kind: ExecutorKind, fail_commits: set[int]
) -> AsyncIterator[tuple[Writer, Faulty]]:
    clock = ManualClock(tick_us=1_000)
    ex, _ = await open_executor(data_dir, kind, clock=clock, migrate=True)
    faulty = Faulty(ex, fail_commits)
    writer = Writer(faulty, clock)
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(writer.run)
            try:
                yield writer, faulty
            finally:
                await writer.stop()
    finally:
        await faulty.close()


def _append(w: Walk, start: int = 0) -> WriteRequest:
    return WriteRequest(
        appends=(
            Append(
                stream_id=w.s.transfer_id, expected_version=start, events=tuple(w.events[start:])
            ),
        )
    )


async def _journal_streams(data_dir: Path) -> set[str]:
    conn = sqlite3.connect(db_path(data_dir))
    try:
        return {r[0] for r in conn.execute("SELECT DISTINCT stream_id FROM journal")}
    finally:
        conn.close()


async def test_a_failed_commit_fails_only_its_batch(data_dir: Path, executor: ExecutorKind) -> None:
    walks = [walk_to("CREATED", n=n) for n in range(1, 41)]
    outcomes: dict[str, object] = {}
    async with faulty_writer(data_dir, executor, fail_commits={3, 5}) as (writer, faulty):

        async def create(w: Walk) -> None:
            try:
                outcomes[w.s.transfer_id] = await writer.submit(_append(w))
            except StoreUnavailable as e:
                outcomes[w.s.transfer_id] = e

        for chunk in range(0, 40, 8):
            async with anyio.create_task_group() as tasks:
                for w in walks[chunk : chunk + 8]:
                    tasks.start_soon(create, w)
        assert faulty.commits >= 5
    failed = {t for t, o in outcomes.items() if isinstance(o, StoreUnavailable)}
    committed = {t for t, o in outcomes.items() if isinstance(o, Committed)}
    assert failed and committed and failed | committed == set(outcomes)
    assert await _journal_streams(data_dir) == committed
    report = await verify(data_dir)
    assert report.ok, report.checks


async def test_an_unforeseen_constraint_fails_only_the_culprit(
    data_dir: Path, clock: ManualClock, executor: ExecutorKind
) -> None:
    async with Store.open(data_dir, clock=clock, executor=executor, migrate=True) as store:
        first = Walk(create_command(1, idempotency_key="dup"))
        await persist(store, first)
        # A second transfer with the same idempotency key but no claim: only the table's
        # UNIQUE (client_id, idempotency_key) can refuse it.
        culprit = Walk(create_command(2, idempotency_key="dup"))
        others = [Walk(create_command(n)) for n in range(3, 13)]
        outcomes: dict[str, object] = {}

        async def create(w: Walk) -> None:
            try:
                outcomes[w.s.transfer_id] = await store.write(_append(w))
            except InvariantViolation as e:
                outcomes[w.s.transfer_id] = e

        async with anyio.create_task_group() as tasks:
            for w in (*others[:5], culprit, *others[5:]):
                tasks.start_soon(create, w)
        assert isinstance(outcomes.pop(culprit.s.transfer_id), InvariantViolation)
        assert all(isinstance(o, Committed) for o in outcomes.values()), outcomes
        assert await store.transfer(culprit.s.transfer_id) is None
    assert (await verify(data_dir)).ok


async def test_another_process_committing_is_noticed(
    data_dir: Path, clock: ManualClock, executor: ExecutorKind
) -> None:
    async with Store.open(data_dir, clock=clock, executor=executor, migrate=True) as store:
        await fund(store, amount="100.00")
        w = walk_to("QUOTED", amount="60.00", n=1)
        await persist(store, w)
        # Another process spends the client's money behind the writer's back.
        other = sqlite3.connect(db_path(data_dir), isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        other.execute(
            "UPDATE account_balances SET debits = debits + 5000"
            " WHERE account_id = 'client:acme:available'"
        )
        other.execute("COMMIT")
        other.close()
        lock = decide(w.s, c.LockFunds(), w.now)
        outcome = await store.append(w.s.transfer_id, w.s.version, lock.events)
        # The writer's cached balance (100.00) would allow it; the fresh one (50.00) does not.
        assert isinstance(outcome, Rejected) and outcome.result is Result.insufficient_funds


async def test_two_writers_on_one_data_dir_never_overdraw(data_dir: Path) -> None:
    """Two stores, as two processes would have, lock funds for the same client in turn: each
    must see the other's postings before judging its own, or the third round would overdraw.
    (The writer reads what it judges against under the write lock.)"""
    clock = ManualClock(tick_us=1_000)
    walks = [walk_to("QUOTED", n=n, amount="1.00") for n in range(40)]
    outcomes: list[object] = []

    async def lock_all(store: Store, batch: list[Walk]) -> None:
        async def lock(w: Walk) -> None:
            decision = decide(w.s, c.LockFunds(), w.now)
            outcomes.append(await store.append(w.s.transfer_id, w.s.version, decision.events))

        async with anyio.create_task_group() as tasks:
            for w in batch:
                tasks.start_soon(lock, w)

    kind = ExecutorKind.AIOSQLITE
    async with Store.open(data_dir, clock=clock, executor=kind, migrate=True) as a:
        await fund(a, amount="30.00")
        for w in walks:
            await persist(a, w, one_by_one=False)
        async with Store.open(data_dir, clock=clock, executor=kind) as b:
            await lock_all(a, walks[:10])  # a: 10 of 30.00 held
            await lock_all(b, walks[10:20])  # b: 10 more
            await lock_all(a, walks[20:])  # a again: only 10 can still be covered
        committed = sum(isinstance(o, Committed) for o in outcomes)
        assert committed == 30, [type(o).__name__ for o in outcomes]
        (usd,) = await a.client_balances("acme")
        assert (usd.available, usd.held) == (0, 3_000)
    assert (await verify(data_dir)).ok


async def test_a_wait_past_its_deadline_is_unknown_not_silent(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An appender gets StoreUnavailable when the writer does not answer in time; a request the
    writer had not taken yet is then never written."""
    monkeypatch.setattr(limits, "write_wait_s", 0.2)
    monkeypatch.setattr(limits, "write_watch_tick_s", 0.05)
    release = anyio.Event()

    async def hold_the_writer(ex: Executor) -> None:
        await release.wait()

    async def hold() -> None:
        # The maintenance work itself outlives its caller's deadline too.
        with pytest.raises(StoreUnavailable, match="outcome is unknown"):
            await store.writer.exclusive(hold_the_writer)

    w = walk_to("CREATED")
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(hold)
        await anyio.sleep(0.01)
        try:
            with pytest.raises(StoreUnavailable, match="outcome is unknown"):
                await store.append(w.s.transfer_id, 0, w.events)
        finally:
            release.set()
    assert await store.transfer(w.s.transfer_id) is None
    assert isinstance(await store.append(w.s.transfer_id, 0, w.events), Committed)
