"""The store's contract, run against both executors (aiosqlite and in-loop sqlite3).

Appends are versioned per stream and hash-chained globally; a refused append leaves the store
exactly as it was; projections follow every append in the same transaction; idempotency keys
answer exactly as Series 4 says; evidence is deduplicated; the group-commit writer isolates one
request's failure from the others in its batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import anyio
import msgspec
import pytest

from engine import commands as c
from engine import events as ev
from engine import ledger
from engine.hashing import request_hash
from engine.records import (
    ClaimKey,
    Committed,
    Duplicate,
    IdempotencyStatus,
    Rejected,
)
from engine.results import Result
from engine.states import Route, Status
from engine.transfer import approval_state, decide
from sim.clock import ManualClock
from store import journal, states
from store.errors import InvariantViolation, StoreUnavailable
from store.executor import ExecutorKind, Params
from store.store import Store
from tests.builders import T0, Walk, create_command, deposit_event, quote_for, walk_to
from tests.store.helpers import evidence, fund, persist

pytestmark = pytest.mark.anyio


async def _counts(store: Store) -> dict[str, int]:
    tables = ("journal", "transactions", "ledger_entries", "outbox", "timers", "idempotency_keys")
    counts = {}
    for table in tables:
        row = await store.reader.fetchone(f"SELECT count(*) FROM {table}")
        assert row is not None
        counts[table] = row[0]
    return counts


async def test_append_then_read_back(store: Store) -> None:
    w = walk_to("CONFIRMED")
    await fund(store)
    await persist(store, w)
    records = await store.load_stream(w.s.transfer_id)
    assert [r.event for r in records] == w.events
    assert [r.version for r in records] == list(range(1, len(w.events) + 1))
    assert await store.transfer(w.s.transfer_id) == w.s
    assert await store.transfer("tr_" + "0" * 26) is None


def count_rows_read(store: Store) -> list[int]:
    """The rows each of the store's reads fetches from now on."""
    rows_read: list[int] = []
    fetch_each = store.reader.fetch_each

    async def counting(queries):  # type: ignore[no-untyped-def]
        results = await fetch_each(queries)
        rows_read.append(sum(len(rows) for rows in results))
        return results

    store.reader.fetch_each = counting  # type: ignore[method-assign]
    return rows_read


async def test_a_read_state_follows_another_writers_appends_reading_only_them(
    store: Store, data_dir: Path, clock: ManualClock, executor: ExecutorKind
) -> None:
    """A transfer read once is read again as the cached state plus the events appended after
    it, here by a second store on the same data dir (another process): the same state a fold
    of the whole stream gives, from only the new rows."""
    w = walk_to("RECONCILED")
    other = walk_to("QUOTED", n=2)
    await fund(store)
    tid = w.s.transfer_id
    first = 3
    for version, event in enumerate(w.events[:first]):
        assert isinstance(await store.append(tid, version, [event]), Committed)
    await persist(store, other)
    missing = "tr_" + "0" * 26
    read = await store.transfer_states([tid, other.s.transfer_id, missing])
    assert read.keys() == {tid, other.s.transfer_id}
    assert read[tid].version == first and read[other.s.transfer_id] == other.s
    async with Store.open(data_dir, clock=clock, executor=executor) as elsewhere:
        for version, event in enumerate(w.events[first:], start=first):
            assert isinstance(await elsewhere.append(tid, version, [event]), Committed)

    rows_read = count_rows_read(store)
    assert await store.transfer(tid) == w.s
    assert rows_read == [len(w.events) - first]
    assert (await store.transfer_states([other.s.transfer_id]))[other.s.transfer_id] == other.s
    assert rows_read[-1] == 0


async def test_a_state_this_store_committed_is_read_without_fetching_its_events(
    store: Store,
) -> None:
    """The writer remembers every state it commits in the cache it shares with the readers:
    reading it back fetches no row, and gives what a fold of the stream gives."""
    await fund(store)
    w = walk_to("RECONCILED")
    await persist(store, w)
    rows_read = count_rows_read(store)
    assert await store.transfer(w.s.transfer_id) == w.s
    assert rows_read == [0]


async def test_the_writer_folds_no_stream_its_readers_have_read(
    store: Store,
    data_dir: Path,
    clock: ManualClock,
    executor: ExecutorKind,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One cache for the writer and the readers: a transfer another process appended to, once
    read here, is judged by this store's writer without folding its stream again (with a cache
    of its own, the writer folded it whole)."""
    await fund(store)
    w = walk_to("CONFIRMED")
    tid = w.s.transfer_id
    last = len(w.events) - 1
    async with Store.open(data_dir, clock=clock, executor=executor) as elsewhere:
        for version, event in enumerate(w.events[:last]):
            assert isinstance(await elsewhere.append(tid, version, [event]), Committed)
    folded: list[str] = []
    fold_queries = states.fold_queries

    def counting(transfer_ids: Iterable[str]) -> list[tuple[str, Params]]:
        ids = list(transfer_ids)
        folded.extend(ids)
        return fold_queries(ids)

    monkeypatch.setattr(states, "fold_queries", counting)
    read = await store.transfer(tid)
    assert read is not None and read.version == last
    assert isinstance(await store.append(tid, last, [w.events[last]]), Committed)
    assert folded == []
    assert await store.transfer(tid) == w.s


async def test_the_journal_is_hash_chained(store: Store) -> None:
    await fund(store)
    await persist(store, walk_to("RECONCILED"))
    rows = await store.reader.fetchall(f"SELECT {journal.SELECT_COLUMNS} FROM journal ORDER BY seq")
    prev = journal.GENESIS_HASH
    for seq, stream, version, kind, payload, at, request_id, prev_hash, digest in rows:
        assert prev_hash == prev
        assert digest == journal.chain_hash(
            prev,
            seq=seq,
            stream_id=stream,
            version=version,
            event_type=kind,
            recorded_at=at,
            request_id=request_id,
            payload=payload.encode(),
        )
        prev = digest
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1))
    assert await store.head() == (len(rows), prev)


async def test_a_stale_version_is_refused_and_changes_nothing(store: Store) -> None:
    w = walk_to("QUOTED")
    await persist(store, w)
    before = await _counts(store)
    lock = decide(w.s, c.LockFunds(), w.now)
    outcome = await store.append(w.s.transfer_id, 1, lock.events)
    assert isinstance(outcome, Rejected) and outcome.result is Result.version_conflict
    assert outcome.result.transient
    assert await _counts(store) == before


async def test_a_new_stream_that_exists_is_refused(store: Store) -> None:
    w = walk_to("CREATED")
    await persist(store, w)
    outcome = await store.append(w.s.transfer_id, 0, w.events)
    assert isinstance(outcome, Rejected) and outcome.result is Result.stream_exists


async def test_a_duplicated_deposit_is_credited_once(store: Store) -> None:
    deposit = deposit_event(amount="10.00")
    assert isinstance(await store.append(deposit.deposit_id, 0, [deposit]), Committed)
    again = await store.append(deposit.deposit_id, 0, [deposit])
    assert isinstance(again, Rejected) and again.result is Result.stream_exists
    (usd,) = await store.client_balances("acme")
    assert (usd.available, usd.held) == (1_000, 0)


async def test_holds_need_funds(store: Store) -> None:
    await fund(store, amount="50.00")
    w = walk_to("QUOTED", amount="100.00")
    await persist(store, w)
    before = await _counts(store)
    lock = decide(w.s, c.LockFunds(), w.now)
    outcome = await store.append(w.s.transfer_id, w.s.version, lock.events)
    assert isinstance(outcome, Rejected)
    assert outcome.result is Result.insufficient_funds
    assert "needs 10000" in outcome.detail
    assert await _counts(store) == before
    (usd,) = await store.client_balances("acme")
    assert (usd.available, usd.held) == (5_000, 0)


async def test_balances_are_derived_from_the_entries(store: Store) -> None:
    await fund(store, amount="1000.00")
    await persist(store, walk_to("FUNDS_LOCKED", amount="100.00", n=1))
    await persist(store, walk_to("RECONCILED", amount="200.00", n=2))
    (usd,) = await store.client_balances("acme")
    assert (usd.available, usd.held) == (70_000, 10_000)
    held = await store.balance(ledger.client_held("acme"), "USD")
    assert held.credit_balance == 10_000


async def test_the_transfer_row_follows_every_event(store: Store) -> None:
    await fund(store)
    w = walk_to("CREATED")
    await persist(store, w)
    for command in (c.QuoteTransfer(quote=quote_for(w.s, w.now + 1)), c.LockFunds()):
        decision = decide(w.s, command, w.tick())
        outcome = await store.append(w.s.transfer_id, w.s.version, decision.events)
        assert isinstance(outcome, Committed)
        w.apply(command, now=w.now)
        row = await store.reader.fetchone(
            "SELECT status, version, source_amount, target_amount, fee, approval_state"
            " FROM transactions WHERE transaction_id = ?",
            (w.s.transfer_id,),
        )
        assert w.s.quote is not None
        assert row == (
            w.s.status.value,
            w.s.version,
            w.s.amount,
            w.s.quote.target_amount,
            w.s.quote.fee,
            approval_state(w.s),
        )


async def test_timers_and_outbox_are_projected(store: Store) -> None:
    await fund(store)
    w = walk_to("QUOTED")
    await persist(store, w)
    timers = await store.reader.fetchall("SELECT kind FROM timers ORDER BY kind")
    assert timers == [("quote_expiry",), ("stuck",)]
    outbox = await store.reader.fetchall("SELECT event_type FROM outbox ORDER BY journal_seq")
    assert outbox == [("transfer.created",), ("transfer.quoted",)]
    assert w.s.quote is not None
    due = await store.due_timers(w.s.quote.expires_at, 10)
    assert [t.kind for t in due] == ["quote_expiry"]
    w.apply(c.CancelTransfer(by="alice"))
    assert isinstance(await store.append(w.s.transfer_id, 2, w.events[2:]), Committed)
    assert await store.reader.fetchall("SELECT kind FROM timers") == []


async def test_approval_required_is_announced(store: Store) -> None:
    await persist(store, walk_to("CREATED_PENDING"))
    outbox = await store.reader.fetchall("SELECT event_type FROM outbox ORDER BY event_id")
    assert set(outbox) == {("transfer.created",), ("transfer.approval_required",)}


async def test_an_illegal_event_fails_only_its_own_append(store: Store) -> None:
    await fund(store)
    good = [walk_to("QUOTED", n=n) for n in range(1, 6)]
    bad = walk_to("CREATED", n=9)
    for w in (*good, bad):
        await persist(store, w)
    illegal = ev.FundsLocked(at=T0, entries=ledger.hold("acme", "USD", 1))
    outcomes: dict[str, object] = {}

    async def lock(w: Walk) -> None:
        decision = decide(w.s, c.LockFunds(), w.now)
        outcomes[w.s.transfer_id] = await store.append(
            w.s.transfer_id, w.s.version, decision.events
        )

    async def illegal_append() -> None:
        with pytest.raises(InvariantViolation, match="illegal transition"):
            await store.append(bad.s.transfer_id, 1, [illegal])

    async with anyio.create_task_group() as tasks:
        for w in good:
            tasks.start_soon(lock, w)
        tasks.start_soon(illegal_append)
    assert all(isinstance(o, Committed) for o in outcomes.values()), outcomes
    assert (await store.transfer(bad.s.transfer_id)) == bad.s


async def test_malformed_appends_are_invariant_violations(store: Store) -> None:
    w = walk_to("QUOTED")
    deposit = deposit_event()
    cases: list[tuple[str, int, list[ev.Event], str]] = [
        (w.s.transfer_id, 0, [*w.events, deposit], "mixed"),
        (deposit.deposit_id, 0, [w.events[0]], "for tr_"),
        ("dp_" + "1" * 26, 0, [w.events[1]], "before TransferCreated"),
        (w.s.transfer_id, -1, list(w.events), "negative expected version"),
    ]
    for stream, version, events, message in cases:
        with pytest.raises(InvariantViolation, match=message):
            await store.append(stream, version, events)
    assert await store.head() == (0, journal.GENESIS_HASH)


async def test_unbalanced_deposit_is_an_invariant_violation(store: Store) -> None:
    deposit = deposit_event()
    lopsided = ev.DepositCredited(
        **{f: getattr(deposit, f) for f in deposit.__struct_fields__ if f != "entries"},
        entries=deposit.entries[:1],
    )
    with pytest.raises(InvariantViolation, match="do not balance"):
        await store.append(deposit.deposit_id, 0, [lopsided])


def _request(n: int, key: str = "key-1", body: str = "body") -> tuple[Walk, ClaimKey]:
    """A transfer creation and its claim on (acme, key), as the API would make them."""
    digest = request_hash("POST /v1/transfers", body)
    w = Walk(create_command(n, idempotency_key=key, request_hash=digest))
    claim = ClaimKey(
        client_id="acme",
        key=key,
        request_hash=digest,
        transaction_id=w.s.transfer_id,
        expires_at=T0 + 24 * 3600 * 1_000_000,
    )
    return w, claim


async def _submit(store: Store, request: tuple[Walk, ClaimKey]) -> object:
    w, claim = request
    return await store.append(w.s.transfer_id, 0, w.events, claim=claim)


async def test_idempotency_keys_follow_series_4(store: Store) -> None:
    w, claim = _request(1)
    created = await _submit(store, (w, claim))
    assert isinstance(created, Committed)
    record = await store.idempotency_record("acme", "key-1")
    assert record is not None and record.status is IdempotencyStatus.IN_PROGRESS

    # Same key, same request, still in flight: 409 material, naming the transfer.
    other = _request(2)
    busy = await _submit(store, other)
    assert isinstance(busy, Rejected) and busy.result is Result.idempotency_request_in_progress
    assert busy.record is not None and busy.record.transaction_id == w.s.transfer_id

    # Same key, another request: refused whatever the state.
    reused = await _submit(store, _request(2, body="other body"))
    assert isinstance(reused, Rejected) and reused.result is Result.idempotency_key_reused

    answered = await store.complete_key(
        "acme", "key-1", IdempotencyStatus.COMPLETED, 201, b'{"id":"tr"}'
    )
    assert isinstance(answered, Committed)
    replay = await _submit(store, other)
    assert isinstance(replay, Duplicate) and replay.record is not None
    assert (replay.record.response_status, replay.record.response_body) == (201, b'{"id":"tr"}')
    assert replay.transaction_id == w.s.transfer_id
    # Nothing of the refused and replayed requests was written.
    assert await store.transfer(other[0].s.transfer_id) is None


async def test_a_stored_answer_is_never_changed(store: Store) -> None:
    await _submit(store, _request(1))
    await store.complete_key("acme", "key-1", IdempotencyStatus.FAILED, 422, b"no")
    same = await store.complete_key("acme", "key-1", IdempotencyStatus.FAILED, 422, b"no")
    assert isinstance(same, Duplicate)
    changed = await store.complete_key("acme", "key-1", IdempotencyStatus.COMPLETED, 201, b"x")
    assert isinstance(changed, Rejected) and changed.result is Result.idempotency_key_reused
    missing = await store.complete_key("acme", "nope", IdempotencyStatus.COMPLETED, 201, b"x")
    assert isinstance(missing, Rejected)


async def test_expired_keys_are_cleaned_up_but_still_guard_their_transfer(store: Store) -> None:
    first = _request(1)
    await _submit(store, first)
    await _submit(store, _request(3, key="key-3"))
    await store.complete_key("acme", "key-1", IdempotencyStatus.COMPLETED, 201, b"{}")
    removed = await store.expire_idempotency_keys(T0 + 25 * 3600 * 1_000_000)
    assert removed == 1  # the answered key; the one still in progress stays
    assert await store.idempotency_record("acme", "key-1") is None
    assert await store.idempotency_record("acme", "key-3") is not None

    again = await _submit(store, _request(2))
    assert isinstance(again, Duplicate) and again.transaction_id == first[0].s.transfer_id
    reused = await _submit(store, _request(2, body="different"))
    assert isinstance(reused, Rejected) and reused.result is Result.idempotency_key_reused


async def test_fifty_concurrent_identical_requests_create_one_transfer(store: Store) -> None:
    outcomes = []

    async def attempt(n: int) -> None:
        outcomes.append(await _submit(store, _request(n, key="same-key")))

    async with anyio.create_task_group() as tasks:
        for n in range(1, 51):
            tasks.start_soon(attempt, n)
    committed = [o for o in outcomes if isinstance(o, Committed)]
    in_progress = [
        o
        for o in outcomes
        if isinstance(o, Rejected) and o.result is Result.idempotency_request_in_progress
    ]
    assert (len(committed), len(in_progress)) == (1, 49)
    row = await store.reader.fetchone("SELECT count(*) FROM transactions")
    assert row == (1,)


async def test_evidence_is_stored_raw_and_deduplicated(store: Store) -> None:
    first, raw = evidence(1)
    stored = await store.append(
        first.evidence_id, 0, [first], evidence_raw={first.evidence_id: raw}
    )
    assert isinstance(stored, Committed)
    again, raw2 = evidence(2)  # the same (provider, external_ref, event_type), reported again
    duplicate = await store.append(
        again.evidence_id, 0, [again], evidence_raw={again.evidence_id: raw2}
    )
    assert isinstance(duplicate, Duplicate) and duplicate.evidence_id == first.evidence_id
    rows = await store.reader.fetchall("SELECT event_id, raw_payload FROM external_events")
    assert rows == [(first.evidence_id, raw)]


async def test_evidence_of_many_transfers_is_each_ones_in_journal_order(store: Store) -> None:
    """One read answers for several transfers what `evidence_for` answers for each: its own
    evidence in journal order, and nothing for a transfer with none."""
    a, b, none = "tr_" + "A" * 26, "tr_" + "B" * 26, "tr_" + "C" * 26
    recorded: dict[str, list[ev.EvidenceRecorded]] = {a: [], b: []}
    for n, tid in enumerate([a, b, a, b, a]):
        event, raw = evidence(n, ref=f"0x{n}")
        event = msgspec.structs.replace(event, transfer_id=tid)
        outcome = await store.append(
            event.evidence_id, 0, [event], evidence_raw={event.evidence_id: raw}
        )
        assert isinstance(outcome, Committed), outcome
        recorded[tid].append(event)
    found = await store.evidence_of([b, none, a])
    assert found == recorded
    for tid in (a, b, none):
        assert await store.evidence_for(tid) == recorded.get(tid, [])


async def test_a_claim_must_match_the_transfer_it_creates(store: Store) -> None:
    w, claim = _request(1)
    _, other_claim = _request(2)
    with pytest.raises(InvariantViolation, match="claimed key"):
        await store.append(w.s.transfer_id, 0, w.events, claim=other_claim)
    assert await store.idempotency_record("acme", "key-1") is None
    assert isinstance(await store.append(w.s.transfer_id, 0, w.events, claim=claim), Committed)


async def test_evidence_needs_its_raw_payload(store: Store) -> None:
    event, _ = evidence(1)
    with pytest.raises(InvariantViolation, match="raw payload missing"):
        await store.append(event.evidence_id, 0, [event])


async def test_the_reader_cannot_write(store: Store) -> None:
    import sqlite3

    with pytest.raises(sqlite3.OperationalError):
        await store.reader.execute("DELETE FROM timers")


async def test_many_appenders_share_commits(store: Store) -> None:
    await fund(store, amount="100000.00")
    walks = [
        walk_to("RECONCILED", n=n, route=Route.BANK if n % 2 else Route.WALLET)
        for n in range(1, 41)
    ]
    batches_before = store.writer.batches
    async with anyio.create_task_group() as tasks:
        for w in walks:
            tasks.start_soon(persist, store, w)
    appended = sum(len(w.events) for w in walks)
    assert store.writer.batches - batches_before < appended, "group commit formed no batch"
    for w in walks:
        assert await store.transfer(w.s.transfer_id) == w.s
        assert w.s.status is Status.RECONCILED


async def test_a_closed_store_refuses_writes(data_dir, clock, executor) -> None:  # type: ignore[no-untyped-def]
    async with Store.open(data_dir, clock=clock, executor=executor, migrate=True) as store:
        pass
    w = walk_to("CREATED")
    with pytest.raises(StoreUnavailable):
        await store.append(w.s.transfer_id, 0, w.events)


async def test_unanswered_keys_page_by_key_and_leave_answered_ones_out(store: Store) -> None:
    """Recovery walks every IN_PROGRESS key in keyset pages, whatever it answers on the way."""
    for n, key in enumerate(("key-c", "key-a", "key-b"), start=1):
        assert isinstance(await _submit(store, _request(n, key=key)), Committed)
    await store.complete_key("acme", "key-b", IdempotencyStatus.COMPLETED, 201, b"{}")
    first = await store.unanswered_keys(("", ""), 1)
    assert [r.key for r in first] == ["key-a"]
    rest = await store.unanswered_keys(("acme", "key-a"), 10)
    assert [r.key for r in rest] == ["key-c"]
    assert all(r.status is IdempotencyStatus.IN_PROGRESS for r in first + rest)
