"""The group-commit writer: many concurrent appends, one SQLite transaction, every waiter woken
after the commit.

One task owns the write connection. Appenders put a request on a bounded queue and wait on a
future; the writer takes everything waiting (up to `write_batch_max`) and, in one
BEGIN IMMEDIATE ... COMMIT, run whole in one call on the connection's thread (one round trip;
store.executor.transaction):

1. reads what the batch's checks need (store/view.py), under the write lock, so nothing can
   change it before the commit, whoever else writes to the data dir;
2. judges each request in order (store/judge.py) against that view plus the requests accepted
   before it: a hold is checked against the balance after every posting judged before it, so the
   check-and-hold is serialized with every other posting on the account. Each request is accepted
   whole or refused whole with a Result, without touching the others;
3. writes the accepted requests' journal rows and projections, one statement per table;
4. commits (synchronous=FULL), and only then answers every waiter (persist, then answer).

A constraint the checks did not foresee (a bug) rolls the batch back and retries each request
alone, so only the culprit fails, with InvariantViolation. An I/O error fails the batch with
StoreUnavailable: nothing of it was committed, and the caller may retry.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec

from engine import limits
from engine.ports import Clock
from engine.records import Outcome, WriteRequest
from store.errors import InvariantViolation, StoreUnavailable
from store.executor import Executor, Sync, transaction
from store.judge import Pending, Plan, judge
from store.states import StateCache
from store.view import View

T = TypeVar("T")


class _Exclusive(msgspec.Struct):
    """Maintenance work that runs alone in its own write transaction, between batches."""

    work: Callable[[Executor], Awaitable[Any]]
    future: asyncio.Future[Any]


_STOP = object()


class Writer:
    def __init__(self, ex: Executor, clock: Clock, *, states: StateCache | None = None) -> None:
        self._ex = ex
        self._clock = clock
        self._queue: asyncio.Queue[Any] = asyncio.Queue(limits.write_queue_depth_max)
        self._accepting = True
        # The store's one cache, its readers' too (store/states.py): every state a batch reads
        # or commits is remembered there, so neither the next batch nor a reader fetches a row
        # this process wrote.
        self._states = states if states is not None else StateCache()
        # Every wait, oldest first, with the watchdog tick it started at.
        self._waiting: collections.deque[tuple[int, asyncio.Future[Any]]] = collections.deque()
        self._ticks = 0
        self._finished = asyncio.Event()
        # Figures for the benchmark and metrics: batches committed and requests in them.
        self.batches = 0
        self.batched_requests = 0

    async def submit(self, request: WriteRequest) -> Outcome:
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        return await self._wait(Pending(request, future), future)

    async def exclusive(self, work: Callable[[Executor], Awaitable[Any]]) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        return await self._wait(_Exclusive(work, future), future)

    async def _wait(self, item: object, future: asyncio.Future[T]) -> T:
        """Queue `item` and wait for its answer, within the deadline the watchdog keeps."""
        if not self._accepting:
            raise StoreUnavailable("the store is closing")
        self._waiting.append((self._ticks, future))
        await self._queue.put(item)
        return await future

    async def _watch(self) -> None:
        """The deadline on every wait: once a tick (`write_watch_tick_s`), fail the waits older
        than `write_wait_s` with StoreUnavailable. A request still queued then is never written
        (the writer skips answered ones); one already taken may commit, so the outcome is
        unknown. One task for all waits: a timer per append would cost more than the append's
        own bookkeeping. Ends when the writer's loop does."""
        while not self._finished.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._finished.wait(), limits.write_watch_tick_s)
            self._ticks += 1
            ticks_max = max(1, math.ceil(limits.write_wait_s / limits.write_watch_tick_s))
            while self._waiting:
                since, future = self._waiting[0]
                if not future.done() and self._ticks - since < ticks_max:
                    break
                self._waiting.popleft()
                if not future.done():
                    future.set_exception(
                        StoreUnavailable(
                            f"no answer from the writer within {limits.write_wait_s} s: the"
                            " outcome is unknown, reload the stream before deciding again"
                        )
                    )

    async def stop(self) -> None:
        """Refuse new requests; the writer finishes what is queued, then returns."""
        self._accepting = False
        await self._queue.put(_STOP)

    async def run(self) -> None:
        """The writer's loop, and the watchdog that keeps every wait's deadline beside it."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._watch(), name="store-writer-deadlines")
            try:
                await self._loop()
            finally:
                self._finished.set()

    async def _loop(self) -> None:
        stopping = False
        while not stopping:
            item = await self._queue.get()
            batch: list[Pending] = []
            while True:
                if item is _STOP:
                    stopping = True
                    break
                if isinstance(item, _Exclusive):
                    await self._commit(batch)
                    batch = []
                    await self._run_exclusive(item)
                elif not item.future.done():
                    batch.append(item)
                if len(batch) >= limits.write_batch_max:
                    break
                try:
                    item = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
            await self._commit(batch)

    async def _commit(self, batch: list[Pending]) -> None:
        if not batch:
            return
        plan = Plan(batch)
        requests = [p.request for p in batch]
        now = self._clock.now_us()

        def work(db: Sync) -> View:
            view = View.read(db, requests, self._states, now)
            judge(plan, view, now)
            db.run_all(plan.statements())
            return view

        try:
            # Rolled back on any error before it is re-raised here.
            view = await transaction(self._ex, work)
        except sqlite3.IntegrityError:
            if len(batch) == 1:
                _fail(plan, InvariantViolation("a constraint refused the append"))
                return
            for pending in batch:
                await self._commit([pending])
            return
        except sqlite3.Error as e:
            _fail(plan, StoreUnavailable(f"write failed: {e}"))
            return
        except BaseException:
            # Cancelled while the transaction ran, or a bug: its outcome is unknown.
            _fail(plan, StoreUnavailable("the writer stopped"))
            raise
        # Back on the loop's thread, the only one that changes the cache: each state as the
        # batch left it (as it read it, for a transfer whose request was refused).
        self._states.remember((view.states | plan.projection.transfers).values())
        self.batches += 1
        self.batched_requests += len(batch)
        for pending, outcome in zip(batch, plan.outcomes, strict=True):
            if pending.future.done():
                continue
            if isinstance(outcome, BaseException):
                pending.future.set_exception(outcome)
            else:
                pending.future.set_result(outcome)

    async def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            await self._ex.execute("ROLLBACK")

    async def _run_exclusive(self, item: _Exclusive) -> None:
        if item.future.done():
            return  # its caller stopped waiting before it ran
        try:
            await self._ex.execute("BEGIN IMMEDIATE")
            result = await item.work(self._ex)
            await self._ex.execute("COMMIT")
        except sqlite3.Error as e:
            await self._rollback()
            if not item.future.done():
                item.future.set_exception(StoreUnavailable(str(e)))
            return
        except BaseException as e:
            await self._rollback()
            if not item.future.done():
                item.future.set_exception(e)
            if not isinstance(e, Exception):
                raise
            return
        if not item.future.done():
            item.future.set_result(result)


def _fail(plan: Plan, error: Exception) -> None:
    for pending in plan.batch:
        if not pending.future.done():
            pending.future.set_exception(error)
