"""The timer supervisor (actors.timers) reads the timers table only when a timer it knows of
falls due, or every `timers_reread_us` for one another process wrote; a timer a commit here
makes is learned from the commit (`changed`) and fires on the first tick at or after its time;
one whose actor could not take it is tried again on the next tick."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from actors.context import Context
from actors.messages import Message, Requote
from actors.timers import TimerSupervisor
from engine import limits
from engine.nonces import NonceBook
from engine.timers import DueTimer
from sim.clock import ManualClock, SeededIds
from sim.faults import FaultLog, FaultPlan
from sim.world import SimRails
from store.executor import ExecutorKind
from store.store import Store
from tests.builders import walk_to
from tests.store.helpers import fund, persist

pytestmark = pytest.mark.anyio

TICK_US = 1_000_000


class Counting:
    """The store, counting reads of the timers table."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.reads = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    async def due_timers(self, now_us: int, limit: int) -> list[DueTimer]:
        self.reads += 1
        return await self.store.due_timers(now_us, limit)


class Told:
    """A registry that records what it is told, and takes it or not."""

    def __init__(self) -> None:
        self.told: list[tuple[str, Message]] = []
        self.takes = True

    def tell(self, transfer_id: str, message: Message) -> bool:
        self.told.append((transfer_id, message))
        return self.takes


Body = Callable[[TimerSupervisor, Counting, Told, ManualClock, Store], Awaitable[None]]


async def with_supervisor(tmp_path: Path, body: Body) -> None:
    clock = ManualClock(tick_us=0)
    ids = SeededIds(1, clock)
    rails = SimRails.build(1, FaultLog(FaultPlan.none(), random.Random(1)), clock, ids).ports()
    async with Store.open(
        tmp_path / "data", clock=clock, executor=ExecutorKind.INLINE, migrate=True
    ) as store:
        journal = Counting(store)
        ctx = Context(journal=journal, clock=clock, ids=ids, rails=rails, nonces=NonceBook())  # type: ignore[arg-type]
        told = Told()
        supervisor = TimerSupervisor(ctx, told)  # type: ignore[arg-type]
        await body(supervisor, journal, told, clock, store)


async def test_idle_ticks_do_not_read_the_table_and_a_committed_timer_fires_at_its_time(
    tmp_path: Path,
) -> None:
    """Ticks of one second: the table is read on the first, then only every
    `timers_reread_us`. A quote expiry committed here, due before the next of those reads, is
    learned from the commit: the table is read on the tick it falls due, and the timer fires."""

    async def body(
        timers: TimerSupervisor, journal: Counting, told: Told, clock: ManualClock, store: Store
    ) -> None:
        clock.advance(3 * TICK_US)
        last_read = clock.now_us()
        await timers.poll()
        assert journal.reads == 1  # nothing known yet: read
        for _ in range(23):
            clock.advance(TICK_US)
            await timers.poll()
        assert journal.reads == 1 + 23 * TICK_US // limits.timers_reread_us
        last_read += 20 * TICK_US
        await fund(store)
        walk = walk_to("QUOTED")
        await persist(store, walk)
        timers.changed(walk.s)  # as the transfer's actor does after its commit
        assert walk.s.quote is not None
        expires = walk.s.quote.expires_at
        assert clock.now_us() < expires < last_read + limits.timers_reread_us
        while clock.now_us() + TICK_US < expires:
            clock.advance(TICK_US)
            await timers.poll()
        assert journal.reads == 3 and told.told == []
        clock.advance(expires - clock.now_us())
        await timers.poll()
        assert journal.reads == 4
        assert told.told == [(walk.s.transfer_id, Requote())]

    await with_supervisor(tmp_path, body)


async def test_a_timer_its_actor_could_not_take_is_tried_on_the_next_tick(tmp_path: Path) -> None:
    async def body(
        timers: TimerSupervisor, journal: Counting, told: Told, clock: ManualClock, store: Store
    ) -> None:
        await fund(store)
        walk = walk_to("QUOTED")
        await persist(store, walk)
        assert walk.s.quote is not None
        clock.advance(walk.s.quote.expires_at - clock.now_us())
        told.takes = False
        await timers.poll()
        clock.advance(TICK_US)
        told.takes = True
        await timers.poll()
        assert journal.reads == 2
        assert [tid for tid, _ in told.told] == [walk.s.transfer_id] * 2

    await with_supervisor(tmp_path, body)


async def test_a_timer_another_process_wrote_fires_within_the_reread_interval(
    tmp_path: Path,
) -> None:
    """This supervisor never saw the commit (another process made it): the table's periodic
    read, `timers_reread_us` after the last, finds the timer, and it fires at its time."""

    async def body(
        timers: TimerSupervisor, journal: Counting, told: Told, clock: ManualClock, store: Store
    ) -> None:
        started = clock.now_us()
        await timers.poll()
        await fund(store)
        walk = walk_to("QUOTED")
        await persist(store, walk)  # not told to the supervisor
        assert walk.s.quote is not None
        expires = walk.s.quote.expires_at
        assert expires > started + limits.timers_reread_us
        clock.advance(started + limits.timers_reread_us - TICK_US - clock.now_us())
        await timers.poll()
        assert journal.reads == 1
        clock.advance(TICK_US)
        await timers.poll()
        assert journal.reads == 2 and told.told == []  # read: it now knows the expiry
        clock.advance(expires - clock.now_us())
        await timers.poll()
        assert journal.reads == 3
        assert told.told == [(walk.s.transfer_id, Requote())]

    await with_supervisor(tmp_path, body)
