"""A create in the running system (virtual time) is one journal commit: the transfer, its quote
(fetched before the commit), its funds lock, its idempotency claim, its stored answer and the
request's audit record. When the store refuses the hold (the balance moved since the create read
it), the transfer is created, quoted and FAILED in a second commit, and answered so. A quote
that outlasts the create's wait leaves the transfer committed as it stands (CREATED, answered
so) with its quote running on after the commit."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import anyio
import msgspec
import pytest

from actors.system import System
from engine import events as ev
from engine import limits
from engine.audit import ActorType, AuditRecord
from engine.ports import Journal
from engine.records import IdempotencyStatus, Outcome
from engine.results import Result
from engine.states import Status
from engine.transfer import TransferState
from tests.actors.test_runtime import CLIENT, World, fund, in_world, settle


class CountingJournal:
    """The store, with every append recorded: (stream, event types, whether it stored an
    answer, how many audit records it carried)."""

    def __init__(self, inner: Journal) -> None:
        self.inner = inner
        self.appends: list[tuple[str, list[str], bool, int]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def append(
        self, stream_id: str, expected_version: int, events: Sequence[ev.Event], **kw: Any
    ) -> Outcome:
        kinds = [ev.event_type(e) for e in events]
        answered, audit = kw.get("complete") is not None, len(kw.get("audit", ()))
        self.appends.append((stream_id, kinds, answered, audit))
        return await self.inner.append(stream_id, expected_version, events, **kw)

    def of(self, stream_id: str) -> list[tuple[list[str], bool, int]]:
        return [(kinds, done, audit) for s, kinds, done, audit in self.appends if s == stream_id]


def answer(state: TransferState) -> tuple[int, bytes]:
    status = 422 if state.status is Status.FAILED else 201
    return status, f'{{"id": "{state.transfer_id}", "status": "{state.status}"}}'.encode()


def audit_of(request_id: str) -> Any:
    def record(status: int, body: bytes) -> AuditRecord:
        return AuditRecord(
            at=0,
            actor_id="alice",
            actor_type=ActorType.USER,
            action_type="create_transfer",
            resource_type="transfers",
            resource_id=None,
            request_id=request_id,
            outcome="ok" if status < 400 else "refused",
            diff_summary={"http_status": str(status)},
            metadata={},
        )

    return record


def counted(world: World) -> tuple[System, CountingJournal]:
    journal = CountingJournal(world.store)
    context = dataclasses.replace(world.context(), journal=cast(Journal, journal))
    return System(context, answer=answer), journal


def test_a_create_is_one_commit_with_its_quote_lock_claim_answer_and_audit_record(
    tmp_path: Path,
) -> None:
    async def body(world: World) -> None:
        system, journal = counted(world)
        async with anyio.create_task_group() as tasks:
            await tasks.start(system.run)
            await fund(system, world)
            create = msgspec.structs.replace(world.create(), request_id="req-1")
            result, holder, state, audited = await system.create_and_answer(
                create, audit_of("req-1")
            )
            tid = create.transfer_id
            assert (result, holder, audited) == (Result.ok, tid, True)
            assert state is not None and state.status is Status.FUNDS_LOCKED
            assert journal.of(tid) == [
                (["TransferCreated", "QuoteCaptured", "FundsLocked"], True, 1)
            ]
            record = await world.store.idempotency_record(CLIENT, create.idempotency_key)
            assert record is not None and record.status is IdempotencyStatus.COMPLETED
            assert (record.response_status, record.response_body) == answer(state)
            rows = await world.store.reader.fetchall(
                "SELECT request_id, outcome FROM audit_log WHERE request_id = 'req-1'"
            )
            assert rows == [("req-1", "ok")]
            # Every event of the three is journaled under the create's request.
            history = await world.store.load_stream(tid)
            assert [r.request_id for r in history[:3]] == ["req-1"] * 3
            await settle(world, tid, Status.RECONCILED)
            tasks.cancel_scope.cancel()

    in_world(tmp_path, body)


def test_a_hold_the_store_refuses_fails_the_create_in_a_second_commit(tmp_path: Path) -> None:
    """Two creates of 600.00 against 1,000.00 read the same available balance while both are
    being quoted: the first hold commits; the store refuses the second, which is then created,
    quoted and FAILED with insufficient_funds, answered 422, and holds nothing."""

    async def body(world: World) -> None:
        world.quote_delay_s = 2.0
        system, journal = counted(world)
        async with anyio.create_task_group() as tasks:
            await tasks.start(system.run)
            await fund(system, world)
            first, second = world.create("600.00", key="k-a"), world.create("600.00", key="k-b")
            answers: dict[str, tuple[Result, str | None, TransferState | None, bool]] = {}

            async def send(key: str, command: Any) -> None:
                answers[key] = await system.create_and_answer(command)

            tasks.start_soon(send, "a", first)
            await anyio.sleep(0.5)
            tasks.start_soon(send, "b", second)
            with anyio.fail_after(60):
                while len(answers) < 2:  # noqa: ASYNC110
                    await anyio.sleep(0.1)
            locked, refused = answers["a"][2], answers["b"][2]
            assert locked is not None and locked.status is Status.FUNDS_LOCKED
            assert refused is not None and refused.status is Status.FAILED
            assert refused.failure_code == Result.insufficient_funds.code
            created_quoted = ["TransferCreated", "QuoteCaptured"]
            assert journal.of(second.transfer_id) == [
                ([*created_quoted, "FundsLocked"], True, 0),
                ([*created_quoted, "TransferFailed"], True, 0),
            ]
            record = await world.store.idempotency_record(CLIENT, "k-b")
            assert record is not None and record.status is IdempotencyStatus.FAILED
            assert record.response_status == 422
            (usd,) = await world.store.client_balances(CLIENT)
            assert (usd.available, usd.held) == (400_00, 600_00)
            tasks.cancel_scope.cancel()

    in_world(tmp_path, body)


def test_a_quote_outlasting_the_creates_wait_is_committed_created_and_taken_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The create waits for its quote at most `create_decided_wait_s` (here 2 s, the quote taking
    5 s): the transfer is then committed CREATED and answered so, and its quote is taken again
    by its own step after the commit."""
    monkeypatch.setattr(limits, "create_decided_wait_s", 2.0)

    async def body(world: World) -> None:
        world.quote_delay_s = 5.0
        system, journal = counted(world)
        async with anyio.create_task_group() as tasks:
            await tasks.start(system.run)
            await fund(system, world)
            create = world.create()
            started = world.clock.now_us()
            result, _, state, _ = await system.create_and_answer(create)
            waited_s = (world.clock.now_us() - started) / 1_000_000
            assert result is Result.ok and state is not None and state.status is Status.CREATED
            assert limits.create_decided_wait_s <= waited_s < limits.create_decided_wait_s + 1
            record = await world.store.idempotency_record(CLIENT, create.idempotency_key)
            assert record is not None and record.status is IdempotencyStatus.COMPLETED
            assert (record.response_status, record.response_body) == answer(state)
            await settle(world, create.transfer_id, Status.RECONCILED)
            appends = journal.of(create.transfer_id)
            assert appends[0] == (["TransferCreated"], True, 0)
            assert appends[1] == (["QuoteCaptured"], False, 0)
            tasks.cancel_scope.cancel()

    in_world(tmp_path, body)


def test_a_create_naming_a_stored_transfer_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    """A create's actor loads nothing (its id was just minted); one that names a transfer id
    already stored, under another key, is refused by its commit: transfer_exists."""

    async def body(world: World) -> None:
        system, _ = counted(world)
        async with anyio.create_task_group() as tasks:
            await tasks.start(system.run)
            await fund(system, world)
            first = world.create()
            assert (await system.create_transfer(first))[0] is Result.ok
            await settle(world, first.transfer_id, Status.RECONCILED)
            with anyio.fail_after(30):
                while first.transfer_id in system.registry.actors:  # noqa: ASYNC110
                    await anyio.sleep(0.1)  # passivated
            before = await world.store.load_stream(first.transfer_id)
            again = msgspec.structs.replace(
                world.create(key="k-other"), transfer_id=first.transfer_id
            )
            result, _ = await system.create_transfer(again)
            assert result is Result.transfer_exists
            assert await world.store.load_stream(first.transfer_id) == before
            assert await world.store.idempotency_record(CLIENT, "k-other") is None
            tasks.cancel_scope.cancel()

    in_world(tmp_path, body)
