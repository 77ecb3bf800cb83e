"""The actor runtime against the simulated rails, in virtual time.

- a client's cancel queued while the quote is in flight lands before the lock: the transfer ends
  CANCELLED with nothing held and nothing signed;
- an actor that crashes on every attempt is restarted within its budget, then flagged: an alert
  is journaled, its callers hear `transfer_flagged`, and the transfer stays where it was (never
  dropped);
- a runtime stopped mid-flight and started again over the same store and world recovers every
  transfer and finishes it, with at most one payment per transfer on the chain;
- a create whose transfer was decided but whose answer a crash kept from its key has that answer
  stored before the restarted runtime serves: a retry right after the restart hears it, not
  "in progress";
- a transfer stopped while CONFIRMED, whose payment a reorg took away (and the mempool dropped)
  while the process was down, is sent back on chain after the restart and paid exactly once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import pytest

from actors.context import Context, Tuning
from actors.system import System
from actors.transfer_actor import TransferActor
from engine import commands as c
from engine.chain import SignedTx
from engine.destinations import WalletDestination
from engine.events import AlertRaised, ChainReorged, decode
from engine.hashing import request_hash
from engine.nonces import NonceBook
from engine.rails import ProviderQuote, QuoteProvider, QuoteRequest, SignRequest
from engine.records import IdempotencyStatus
from engine.results import Result
from engine.states import Status
from engine.transfer import TransferState, approval_state
from sim.clock import SeededIds, VirtualClock, run_virtual
from sim.faults import FaultLog, FaultPlan
from sim.world import SimRails, deposit_command
from store.executor import ExecutorKind
from store.store import Store

CLIENT = "acme"


class World:
    def __init__(self, store: Store, rails: SimRails, clock: VirtualClock, ids: SeededIds) -> None:
        self.store, self.rails, self.clock, self.ids = store, rails, clock, ids
        # Every pricing provider answers only after this long (the desk waits for them).
        self.quote_delay_s = 0.0

    def context(self) -> Context:
        ports, tuning = self.rails.ports(), Tuning()
        if self.quote_delay_s:
            slow = tuple(SlowQuotes(p, self.quote_delay_s) for p in ports.quotes)
            ports = dataclasses.replace(ports, quotes=slow)
            tuning = Tuning(quote_deadline_s=self.quote_delay_s + 5)
        return Context(
            journal=self.store,
            clock=self.clock,
            ids=self.ids,
            rails=ports,
            nonces=NonceBook(),
            tuning=tuning,
        )

    def create(self, amount: str = "100.00", key: str = "k-1") -> c.CreateTransfer:
        return c.CreateTransfer(
            transfer_id=self.ids.new("tr"),
            client_id=CLIENT,
            initiator="alice",
            idempotency_key=key,
            request_hash=request_hash("POST /v1/transfers", {"key": key, "amount": amount}),
            source_currency="USD",
            target_currency="USDC",
            amount=amount,
            destination=WalletDestination(chain="ethereum", address="0x" + "b0" * 20),
        )


def in_world(tmp_path: Path, body: Callable[[World], Awaitable[None]]) -> None:
    clock = VirtualClock()

    async def main() -> None:
        ids = SeededIds(1, clock)
        faults = FaultLog(FaultPlan.none(), random.Random(1))
        async with Store.open(
            tmp_path / "data", clock=clock, executor=ExecutorKind.INLINE, migrate=True
        ) as store:
            rails = SimRails.build(1, faults, clock, ids)
            await rails.fund_treasury(store, ids, clock)
            world = World(store, rails, clock, ids)
            async with anyio.create_task_group() as tasks:
                rails.offramp.tasks = tasks
                tasks.start_soon(rails.chain.run, 2.0)
                await body(world)
                tasks.cancel_scope.cancel()

    run_virtual(main, clock)


async def fund(system: System, world: World, cents: int = 100_000) -> None:
    _, reference, booked = world.rails.bank.book_deposit(CLIENT, cents)
    credit = deposit_command(booked, reference, CLIENT, cents)
    assert await system.credit_deposit(credit) is Result.ok


async def settle(world: World, transfer_id: str, status: Status, within_s: float = 600) -> None:
    with anyio.fail_after(within_s):
        while True:
            state = await world.store.transfer(transfer_id)
            if state is not None and state.status is status:
                return
            await anyio.sleep(1)


class SlowQuotes:
    """A pricing provider that answers only after `delay_s`."""

    def __init__(self, inner: QuoteProvider, delay_s: float) -> None:
        self.inner, self.delay_s = inner, delay_s

    @property
    def name(self) -> str:
        return self.inner.name

    async def quote(self, request: QuoteRequest) -> ProviderQuote:
        await asyncio.sleep(self.delay_s)
        return await self.inner.quote(request)

    def corridors(self) -> frozenset[str]:
        return self.inner.corridors()


def test_a_cancel_queued_during_the_quote_lands_before_the_lock(tmp_path: Path) -> None:
    """A transfer over the approval threshold is approved; its quote, taken after the approval,
    takes 5 s; the client's cancel, sent meanwhile, is handled before the funds lock."""

    async def body(world: World) -> None:
        world.quote_delay_s = 5.0
        system = System(world.context())
        async with anyio.create_task_group() as tasks:
            await tasks.start(system.run)
            await fund(system, world, 20_000_00)
            create = world.create("12000.00")
            result, holder = await system.create_transfer(create)
            assert (result, holder) == (Result.ok, create.transfer_id)
            assert holder is not None
            waiting = await world.store.transfer(holder)
            assert waiting is not None and approval_state(waiting) == "pending"
            approved = await system.registry.ask(holder, c.ApproveTransfer(by="carol"))
            assert approved is Result.ok
            await anyio.sleep(1)  # quoting
            cancelled = await system.registry.ask(holder, c.CancelTransfer(by="alice"))
            assert cancelled is Result.ok
            await anyio.sleep(30)
            state = await world.store.transfer(holder)
            assert state is not None and state.status is Status.CANCELLED
            assert state.quote is not None and state.locked_at is None and not state.txs
            assert world.rails.custody.signed == 0
            tasks.cancel_scope.cancel()

    in_world(tmp_path, body)


class BrokenCustody:
    """Signs nothing: every call is a bug (not a RailError), which crashes the actor."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.calls = 0

    def address(self, chain: str) -> str:
        return self.inner.address(chain)  # type: ignore[attr-defined, no-any-return]

    async def sign(self, request: SignRequest) -> SignedTx:
        self.calls += 1
        raise RuntimeError("custody adapter bug")


def test_an_actor_crashing_past_its_budget_is_flagged_not_dropped(tmp_path: Path) -> None:
    async def body(world: World) -> None:
        broken = BrokenCustody(world.rails.custody)
        world.rails.custody = broken  # type: ignore[assignment]
        system = System(world.context())
        async with anyio.create_task_group() as tasks:
            await tasks.start(system.run)
            await fund(system, world)
            create = world.create()
            assert (await system.create_transfer(create))[0] is Result.ok
            await anyio.sleep(120)
            tid = create.transfer_id
            assert tid in system.registry.flagged
            assert broken.calls == 6  # the first run and five restarts
            state = await world.store.transfer(tid)
            assert state is not None and state.status is Status.FUNDS_LOCKED
            answer = await system.registry.ask(tid, c.CancelTransfer(by="alice"))
            assert answer is Result.transfer_flagged
            alerts = await world.store.reader.fetchall(
                "SELECT payload FROM journal WHERE event_type = 'AlertRaised'"
            )
            assert len(alerts) == 1
            alert = decode(alerts[0][0])
            assert isinstance(alert, AlertRaised) and alert.transfer_id == tid
            assert (
                alert.kind == "actor_restart_budget_exhausted"
                and "custody adapter bug" in alert.detail
            )
            tasks.cancel_scope.cancel()

    in_world(tmp_path, body)


def test_a_restarted_runtime_recovers_and_finishes_every_transfer(tmp_path: Path) -> None:
    async def body(world: World) -> None:
        ids = []
        first = System(world.context())
        async with anyio.create_task_group() as tasks:
            await tasks.start(first.run)
            await fund(first, world)
            for n in range(6):
                create = world.create(amount=f"{10 + n}.00", key=f"k-{n}")
                assert (await first.create_transfer(create))[0] is Result.ok
                ids.append(create.transfer_id)
            await anyio.sleep(3)  # some are on chain, none confirmed yet
            tasks.cancel_scope.cancel()
        states = [await world.store.transfer(t) for t in ids]
        assert any(s is not None and s.status is Status.SENT_ON_CHAIN for s in states)

        second = System(world.context())
        async with anyio.create_task_group() as tasks:
            await tasks.start(second.run)
            assert second.recovered == 6
            for tid in ids:
                await settle(world, tid, Status.RECONCILED)
            tasks.cancel_scope.cancel()
        payments = [
            t for t in world.rails.chain.mined_transfers() if t.sender == world.rails.treasury
        ]
        assert len(payments) == 6

    in_world(tmp_path, body)


def test_a_decided_create_whose_answer_was_lost_is_answered_before_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A create's answer is stored in its own commit when its steps are decided there; when they
    are not (a step refused, run again after the commit) it is stored once they are. A process
    that dies in between leaves the key IN_PROGRESS: the next start answers it first."""

    async def lost(client_id: str, key: str, transfer_id: str) -> None:
        return None  # the process dies between the create's commit and its answer

    def not_in_the_commit(*_: object) -> tuple[None, tuple[()]]:
        return None, ()

    def answer(state: TransferState) -> tuple[int, bytes]:
        return 201, f'{{"id": "{state.transfer_id}", "status": "{state.status}"}}'.encode()

    async def body(world: World) -> None:
        first = System(world.context(), answer=answer)
        first._answer = lost  # type: ignore[method-assign]
        monkeypatch.setattr(TransferActor, "answer", not_in_the_commit)
        async with anyio.create_task_group() as tasks:
            await tasks.start(first.run)
            await fund(first, world)
            create = world.create()
            assert (await first.create_transfer(create))[0] is Result.ok
            await anyio.sleep(1)
            tasks.cancel_scope.cancel()
        monkeypatch.undo()
        record = await world.store.idempotency_record(CLIENT, create.idempotency_key)
        assert record is not None and record.status is IdempotencyStatus.IN_PROGRESS

        second = System(world.context(), answer=answer)
        async with anyio.create_task_group() as tasks:
            await tasks.start(second.run)
            # Nothing else has run since the start: the answer was stored before it.
            record = await world.store.idempotency_record(CLIENT, create.idempotency_key)
            assert record is not None and record.status is IdempotencyStatus.COMPLETED
            assert record.response_status == 201
            assert f'"id": "{create.transfer_id}"' in (record.response_body or b"").decode()
            tasks.cancel_scope.cancel()

    in_world(tmp_path, body)


def test_a_reorg_while_down_takes_a_confirmed_payment_and_the_restart_sees_it(
    tmp_path: Path,
) -> None:
    async def body(world: World) -> None:
        chain = world.rails.chain
        # The first runtime never reconciles (its supervisors do not poll), so it stops with the
        # transfer CONFIRMED.
        first = System(dataclasses.replace(world.context(), tuning=Tuning(supervisor_poll_s=1e6)))
        async with anyio.create_task_group() as tasks:
            await tasks.start(first.run)
            await fund(first, world)
            create = world.create()
            assert (await first.create_transfer(create))[0] is Result.ok
            tid = create.transfer_id
            await settle(world, tid, Status.CONFIRMED)
            tasks.cancel_scope.cancel()
        confirmed = await world.store.transfer(tid)
        assert confirmed is not None and confirmed.mined is not None
        # While down: a reorg deeper than the confirmations removes the payment's block, and the
        # transaction is dropped from the mempool instead of coming back.
        normal = chain.faults
        chain.faults = FaultLog(FaultPlan(rates={"tx_dropped": 1.0}), random.Random(0))
        chain.reorg(chain.head - confirmed.mined.block_number + 1)
        chain.faults = normal
        assert await chain.receipt(chain.chain, confirmed.mined.tx_hash) is None

        second = System(world.context())
        async with anyio.create_task_group() as tasks:
            await tasks.start(second.run)
            await settle(world, tid, Status.RECONCILED)
            tasks.cancel_scope.cancel()
        events = [r.event for r in await world.store.load_stream(tid)]
        assert any(isinstance(e, ChainReorged) for e in events)
        final = await world.store.transfer(tid)
        assert final is not None and final.mined is not None
        now = await chain.receipt(chain.chain, final.mined.tx_hash)
        assert now is not None and now.block_hash == final.mined.block_hash
        payments = [t for t in chain.mined_transfers() if t.sender == world.rails.treasury]
        assert [p.tx_hash for p in payments] == [final.mined.tx_hash]

    in_world(tmp_path, body)
