"""The group-commit writer: many concurrent appends, one SQLite transaction, every waiter woken
after the commit.

One task owns the write connection. Appenders put a request on a bounded queue and wait on a
future; the writer takes everything waiting (up to `write_batch_max`), and in one BEGIN IMMEDIATE
... COMMIT:

1. reads what the batch's checks need, with a few set-wise queries: the journal head, each
   stream's version, the idempotency records, evidence already stored, the transfers' current
   states, and the balances of every client account the batch would debit;
2. judges each request in order against that view plus the requests accepted before it (so a
   hold is checked against the balance including every earlier posting in the same batch: the
   check-and-hold is serialized with every other posting on the account), accepting it whole or
   refusing it whole with a Result;
3. writes the accepted requests' journal rows (hash-chained) and projections, one statement per
   table;
4. commits (fsync, synchronous=FULL), and only then answers every waiter.

A request that fails a check does not affect the others. A constraint the checks did not foresee
(a bug) makes the writer roll back and retry each request of the batch alone, so only the culprit
fails. An I/O error fails the whole batch with StoreUnavailable; nothing of it was committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import msgspec

from engine import events as ev
from engine import invariants, ledger, limits
from engine.ports import Clock
from engine.results import Result
from engine.timefmt import rfc3339_us
from engine.transfer import TransferState, evolve
from store import journal
from store.errors import InvariantViolation, StoreUnavailable
from store.executor import Executor
from store.projection import Projection
from store.records import (
    Committed,
    Duplicate,
    IdempotencyRecord,
    IdempotencyStatus,
    Outcome,
    Recorded,
    Rejected,
    WriteRequest,
)
from store.states import StateCache

_payload_encoder = msgspec.json.Encoder()

_INSERT_KEY = (
    "INSERT INTO idempotency_keys (client_id, idempotency_key, request_hash, transaction_id,"
    " status, response_status, response_body, created_at, updated_at, expires_at)"
    " VALUES (?, ?, ?, ?, ?, NULL, NULL, ?, ?, ?)"
)
_COMPLETE_KEY = (
    "UPDATE idempotency_keys SET status = ?, response_status = ?, response_body = ?,"
    " updated_at = ? WHERE client_id = ? AND idempotency_key = ?"
)
KEY_COLUMNS = (
    "client_id, idempotency_key, request_hash, transaction_id, status, response_status,"
    " response_body, expires_at"
)


def key_record(row: Sequence[Any]) -> IdempotencyRecord:
    return IdempotencyRecord(
        client_id=row[0],
        key=row[1],
        request_hash=row[2],
        transaction_id=row[3],
        status=IdempotencyStatus(row[4]),
        response_status=row[5],
        response_body=row[6],
        expires_at=row[7],
    )


class _Pending(msgspec.Struct):
    request: WriteRequest
    future: asyncio.Future[Outcome]


class _Exclusive(msgspec.Struct):
    """Maintenance work that runs alone in its own write transaction, between batches."""

    work: Callable[[Executor], Awaitable[Any]]
    future: asyncio.Future[Any]


_STOP = object()


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _values(n: int, width: int) -> str:
    row = "(" + ", ".join("?" * width) + ")"
    return ", ".join([row] * n)


class _RequestFailed(Exception):
    def __init__(self, outcome: Rejected | Duplicate) -> None:
        self.outcome = outcome


class _BatchView:
    """What the database says at the start of the batch, plus the accepted requests' effects."""

    def __init__(self) -> None:
        self.head_seq = 0
        self.head_hash = journal.GENESIS_HASH
        self.versions: dict[str, int] = {}
        self.keys: dict[tuple[str, str], IdempotencyRecord] = {}
        self.keyed_transactions: dict[tuple[str, str], tuple[str, str]] = {}
        self.evidence: dict[tuple[str, str, str], str] = {}
        # (account, currency) -> credits minus debits, for client accounts the batch debits.
        self.balances: dict[tuple[str, str], int] = {}
        self.projection = Projection()


class Writer:
    def __init__(self, ex: Executor, clock: Clock) -> None:
        self._ex = ex
        self._clock = clock
        self._queue: asyncio.Queue[Any] = asyncio.Queue(limits.write_queue_depth_max)
        self._accepting = True
        self._states = StateCache()
        # Figures for the benchmark and metrics: batches committed and requests in them.
        self.batches = 0
        self.batched_requests = 0

    async def submit(self, request: WriteRequest) -> Outcome:
        if not self._accepting:
            raise StoreUnavailable("the store is closing")
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(request, future))
        return await future

    async def exclusive(self, work: Callable[[Executor], Awaitable[Any]]) -> Any:
        if not self._accepting:
            raise StoreUnavailable("the store is closing")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Exclusive(work, future))
        return await future

    async def stop(self) -> None:
        """Refuse new requests; the writer finishes what is queued, then returns."""
        self._accepting = False
        await self._queue.put(_STOP)

    async def run(self) -> None:
        stopping = False
        while not stopping:
            item = await self._queue.get()
            batch: list[_Pending] = []
            while True:
                if item is _STOP:
                    stopping = True
                    break
                if isinstance(item, _Exclusive):
                    await self._commit(batch)
                    batch = []
                    await self._run_exclusive(item)
                elif not item.future.cancelled():
                    batch.append(item)
                if len(batch) >= limits.write_batch_max:
                    break
                try:
                    item = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
            await self._commit(batch)

    async def _run_exclusive(self, item: _Exclusive) -> None:
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

    async def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            await self._ex.execute("ROLLBACK")

    async def _commit(self, batch: list[_Pending]) -> None:
        if not batch:
            return
        try:
            outcomes = await self._commit_once(batch)
        except sqlite3.IntegrityError:
            await self._rollback()
            if len(batch) == 1:
                raise_into = batch[0].future
                if not raise_into.done():
                    raise_into.set_exception(
                        InvariantViolation("a constraint refused the append (see the journal)")
                    )
                return
            for pending in batch:
                await self._commit([pending])
            return
        except sqlite3.Error as e:
            await self._rollback()
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(StoreUnavailable(f"write failed: {e}"))
            return
        except BaseException:
            await self._rollback()
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(StoreUnavailable("the writer was cancelled"))
            raise
        self.batches += 1
        self.batched_requests += len(batch)
        for pending, outcome in zip(batch, outcomes, strict=True):
            if pending.future.done():
                continue
            if isinstance(outcome, BaseException):
                pending.future.set_exception(outcome)
            else:
                pending.future.set_result(outcome)

    async def _commit_once(self, batch: list[_Pending]) -> list[Outcome | BaseException]:
        requests = [p.request for p in batch]
        now = self._clock.now_us()
        recorded_at = rfc3339_us(now)
        await self._ex.execute("BEGIN IMMEDIATE")
        view = await self._load(requests)
        outcomes: list[Outcome | BaseException] = []
        journal_rows: list[tuple[Any, ...]] = []
        key_inserts: list[tuple[Any, ...]] = []
        key_updates: list[tuple[Any, ...]] = []
        for request in requests:
            try:
                outcome = self._judge(
                    request, view, now, recorded_at, journal_rows, key_inserts, key_updates
                )
            except _RequestFailed as refused:
                outcome = refused.outcome
            except InvariantViolation as bug:
                outcome = bug
            outcomes.append(outcome)
        if journal_rows:
            await self._ex.executemany(journal.INSERT_SQL, journal_rows)
        await view.projection.flush(self._ex)
        if key_inserts:
            await self._ex.executemany(_INSERT_KEY, key_inserts)
        if key_updates:
            await self._ex.executemany(_COMPLETE_KEY, key_updates)
        await self._ex.execute("COMMIT")
        self._states.remember(view.projection.transfers.values())
        return outcomes

    # --- reading what the checks need ---------------------------------------------------------

    async def _load(self, requests: list[WriteRequest]) -> _BatchView:
        view = _BatchView()
        head = await self._ex.fetchone("SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1")
        if head is not None:
            view.head_seq, view.head_hash = head[0], head[1]

        streams = sorted({a.stream_id for r in requests for a in r.appends})
        for chunk in _chunks(streams, limits.sql_params_per_statement_max):
            rows = await self._ex.fetchall(
                "SELECT stream_id, max(version) FROM journal"
                f" WHERE stream_id IN ({', '.join('?' * len(chunk))}) GROUP BY stream_id",
                chunk,
            )
            view.versions.update({s: v for s, v in rows})

        transfer_versions = {
            a.stream_id: view.versions[a.stream_id]
            for r in requests
            for a in r.appends
            if view.versions.get(a.stream_id) and ev.is_transfer_event(a.events[0])
        }
        view.projection = Projection(await self._states.load(self._ex, transfer_versions))

        keys = sorted(
            {(r.claim.client_id, r.claim.key) for r in requests if r.claim}
            | {(r.complete.client_id, r.complete.key) for r in requests if r.complete}
        )
        for chunk in _chunks(keys, limits.sql_params_per_statement_max // 2):
            rows = await self._ex.fetchall(
                f"SELECT {KEY_COLUMNS} FROM idempotency_keys WHERE (client_id, idempotency_key)"
                f" IN (VALUES {_values(len(chunk), 2)})",
                [v for k in chunk for v in k],
            )
            view.keys.update({(row[0], row[1]): key_record(row) for row in rows})
        unrecorded = [k for k in keys if k not in view.keys]
        for chunk in _chunks(unrecorded, limits.sql_params_per_statement_max // 2):
            # A key whose record expired and was cleaned up still names its transfer.
            rows = await self._ex.fetchall(
                "SELECT client_id, idempotency_key, transaction_id, request_hash FROM transactions"
                f" WHERE (client_id, idempotency_key) IN (VALUES {_values(len(chunk), 2)})",
                [v for k in chunk for v in k],
            )
            view.keyed_transactions.update({(c, k): (t, h) for c, k, t, h in rows})

        evidence = sorted(
            {
                (e.provider, e.external_ref, e.event_type)
                for r in requests
                for a in r.appends
                for e in a.events
                if isinstance(e, ev.EvidenceRecorded)
            }
        )
        for chunk in _chunks(evidence, limits.sql_params_per_statement_max // 3):
            rows = await self._ex.fetchall(
                "SELECT provider, external_ref, event_type, event_id FROM external_events"
                " WHERE (provider, external_ref, event_type)"
                f" IN (VALUES {_values(len(chunk), 3)})",
                [v for k in chunk for v in k],
            )
            view.evidence.update({(p, r, t): i for p, r, t, i in rows})

        debited = sorted(
            {
                (entry.account, entry.currency)
                for r in requests
                for a in r.appends
                for e in a.events
                for entry in ev.entries_of(e)
                if entry.debit and ledger.account_kind(entry.account) in ledger.NON_NEGATIVE
            }
        )
        for chunk in _chunks(debited, limits.sql_params_per_statement_max // 2):
            rows = await self._ex.fetchall(
                "SELECT account_id, currency, credits - debits FROM account_balances"
                f" WHERE (account_id, currency) IN (VALUES {_values(len(chunk), 2)})",
                [v for k in chunk for v in k],
            )
            view.balances.update({(a, c): b for a, c, b in rows})
        return view

    # --- judging one request --------------------------------------------------------------------

    def _judge(
        self,
        request: WriteRequest,
        view: _BatchView,
        now: int,
        recorded_at: str,
        journal_rows: list[tuple[Any, ...]],
        key_inserts: list[tuple[Any, ...]],
        key_updates: list[tuple[Any, ...]],
    ) -> Outcome:
        """Check the whole request against the view; only if every check passes, apply it to the
        view and queue its rows. Raises _RequestFailed (an expected refusal) or
        InvariantViolation (a bug in the appender) before touching anything."""
        _check_shape(request)
        versions = _check_versions(request, view)
        states = _evolve_transfers(request, view)
        deltas = _check_funds(request, view)
        evidence = _check_evidence(request, view)
        claim_row, key = _check_claim(request, view, now, recorded_at)
        update_row, completed = _check_complete(request, view, recorded_at, key)
        # After this point the request is accepted: apply it.
        first_seq = view.head_seq + 1
        for append in request.appends:
            for offset, event in enumerate(append.events, start=1):
                seq = view.head_seq + 1
                version = append.expected_version + offset
                kind = ev.event_type(event)
                payload = _payload_encoder.encode(event)
                digest = journal.chain_hash(
                    view.head_hash,
                    seq=seq,
                    stream_id=append.stream_id,
                    version=version,
                    event_type=kind,
                    recorded_at=recorded_at,
                    request_id=request.request_id,
                    payload=payload,
                )
                rec = Recorded(
                    seq=seq,
                    stream_id=append.stream_id,
                    version=version,
                    event_type=kind,
                    event=event,
                    recorded_at=recorded_at,
                    request_id=request.request_id,
                    prev_hash=view.head_hash,
                    hash=digest,
                )
                journal_rows.append(
                    (
                        seq,
                        append.stream_id,
                        version,
                        kind,
                        payload.decode(),
                        recorded_at,
                        request.request_id,
                        view.head_hash,
                        digest,
                    )
                )
                raw = (
                    request.evidence_raw.get(event.evidence_id)
                    if isinstance(event, ev.EvidenceRecorded)
                    else None
                )
                view.projection.add(rec, after=states.get((append.stream_id, version)), raw=raw)
                view.head_seq, view.head_hash = seq, digest
        view.versions.update(versions)
        for account, delta in deltas.items():
            view.balances[account] = view.balances.get(account, 0) + delta
        view.evidence.update(evidence)
        if claim_row is not None and key is not None:
            key_inserts.append(claim_row)
            view.keys[(key.client_id, key.key)] = key
        if update_row is not None and completed is not None:
            key_updates.append(update_row)
            view.keys[(completed.client_id, completed.key)] = completed
        return Committed(first_seq=first_seq, last_seq=view.head_seq, versions=versions)


def _check_shape(request: WriteRequest) -> None:
    streams = [a.stream_id for a in request.appends]
    if len(set(streams)) != len(streams):
        raise InvariantViolation("one request appends to a stream twice")
    for append in request.appends:
        if not append.events or len(append.events) > limits.events_per_append_max:
            raise InvariantViolation(
                f"{append.stream_id}: 1..{limits.events_per_append_max} events"
            )
        if append.expected_version < 0:
            raise InvariantViolation(f"{append.stream_id}: negative expected version")
        for event in append.events:
            owner = _stream_of(event)
            if owner is not None and owner != append.stream_id:
                raise InvariantViolation(
                    f"{ev.event_type(event)} for {owner} in {append.stream_id}"
                )
            entries = ev.entries_of(event)
            if len(entries) > limits.entries_per_event_max:
                raise InvariantViolation(f"{ev.event_type(event)}: too many entries")
            # Transfer events are checked by evolve (_evolve_transfers); the others here.
            problem = None if ev.is_transfer_event(event) else invariants.entries_problem(entries)
            if problem is not None:
                raise InvariantViolation(f"{ev.event_type(event)}: {problem}")
            if (
                isinstance(event, ev.EvidenceRecorded)
                and event.evidence_id not in request.evidence_raw
            ):
                raise InvariantViolation(f"{event.evidence_id}: raw payload missing")
    claim, complete = request.claim, request.complete
    if claim and complete and (claim.client_id, claim.key) != (complete.client_id, complete.key):
        raise InvariantViolation("claim and completion name different keys")
    for append in request.appends:
        created = append.events[0]
        if claim and isinstance(created, ev.TransferCreated):
            terms = (created.client_id, created.idempotency_key, created.request_hash)
            if terms != (claim.client_id, claim.key, claim.request_hash) or (
                claim.transaction_id != created.transfer_id
            ):
                raise InvariantViolation("the claimed key is not the created transfer's")


def _stream_of(event: ev.Event) -> str | None:
    match event:
        case ev.TransferCreated(transfer_id=tid):
            return tid
        case ev.DepositCredited(deposit_id=did):
            return did
        case ev.QuoteIssued(quote=quote):
            return quote.quote_id
        case ev.EvidenceRecorded(evidence_id=eid):
            return eid
    return None


def _check_versions(request: WriteRequest, view: _BatchView) -> dict[str, int]:
    versions = {}
    for append in request.appends:
        current = view.versions.get(append.stream_id, 0)
        if append.expected_version == 0 and current > 0:
            raise _RequestFailed(
                Rejected(result=Result.stream_exists, detail=f"{append.stream_id} exists")
            )
        if append.expected_version != current:
            raise _RequestFailed(
                Rejected(
                    result=Result.version_conflict,
                    detail=f"{append.stream_id} is at version {current},"
                    f" not {append.expected_version}",
                )
            )
        versions[append.stream_id] = current + len(append.events)
    return versions


def _evolve_transfers(
    request: WriteRequest, view: _BatchView
) -> dict[tuple[str, int], TransferState]:
    """Each transfer event applied to its transfer's current state: evolve asserts the move is in
    the transition table (the second check of the pair; decide made the first)."""
    states: dict[tuple[str, int], TransferState] = {}
    for append in request.appends:
        if not ev.is_transfer_event(append.events[0]):
            continue
        state = view.projection.transfer(append.stream_id)
        if state is not None and state.version != append.expected_version:
            raise InvariantViolation(
                f"{append.stream_id}: projection at version {state.version}, journal at"
                f" {append.expected_version}"
            )
        for offset, event in enumerate(append.events, start=1):
            if not ev.is_transfer_event(event):
                raise InvariantViolation(f"{append.stream_id}: mixed event kinds")
            try:
                state = evolve(state, event)
            except AssertionError as e:
                raise InvariantViolation(f"{append.stream_id}: {e}") from e
            states[(append.stream_id, append.expected_version + offset)] = state
    return states


def _check_funds(request: WriteRequest, view: _BatchView) -> dict[tuple[str, str], int]:
    """Client accounts may not go below zero: the check-and-hold, serialized by the single writer
    with every other posting in this batch and every batch before it."""
    deltas: dict[tuple[str, str], int] = {}
    for append in request.appends:
        for event in append.events:
            for entry in ev.entries_of(event):
                if ledger.account_kind(entry.account) in ledger.NON_NEGATIVE:
                    key = (entry.account, entry.currency)
                    deltas[key] = deltas.get(key, 0) + entry.credit - entry.debit
    for key, delta in deltas.items():
        if delta < 0 and view.balances.get(key, 0) + delta < 0:
            raise _RequestFailed(
                Rejected(
                    result=Result.insufficient_funds,
                    detail=f"{key[0]} has {view.balances.get(key, 0)} {key[1]}, needs {-delta}",
                )
            )
    return deltas


def _check_evidence(request: WriteRequest, view: _BatchView) -> dict[tuple[str, str, str], str]:
    found: dict[tuple[str, str, str], str] = {}
    for append in request.appends:
        for event in append.events:
            if isinstance(event, ev.EvidenceRecorded):
                key = (event.provider, event.external_ref, event.event_type)
                existing = view.evidence.get(key) or found.get(key)
                if existing is not None:
                    raise _RequestFailed(Duplicate(evidence_id=existing))
                found[key] = event.evidence_id
    return found


def _check_claim(
    request: WriteRequest, view: _BatchView, now: int, recorded_at: str
) -> tuple[tuple[Any, ...] | None, IdempotencyRecord | None]:
    claim = request.claim
    if claim is None:
        return None, None
    record = view.keys.get((claim.client_id, claim.key))
    if record is not None:
        if record.request_hash != claim.request_hash:
            raise _RequestFailed(Rejected(result=Result.idempotency_key_reused))
        if record.status is IdempotencyStatus.IN_PROGRESS:
            raise _RequestFailed(
                Rejected(result=Result.idempotency_request_in_progress, record=record)
            )
        raise _RequestFailed(Duplicate(record=record, transaction_id=record.transaction_id))
    keyed = view.keyed_transactions.get((claim.client_id, claim.key))
    if keyed is not None:
        transaction_id, request_hash = keyed
        if request_hash != claim.request_hash:
            raise _RequestFailed(Rejected(result=Result.idempotency_key_reused))
        raise _RequestFailed(Duplicate(transaction_id=transaction_id))
    expires_at = rfc3339_us(max(claim.expires_at, now))
    record = IdempotencyRecord(
        client_id=claim.client_id,
        key=claim.key,
        request_hash=claim.request_hash,
        transaction_id=claim.transaction_id,
        status=IdempotencyStatus.IN_PROGRESS,
        response_status=None,
        response_body=None,
        expires_at=expires_at,
    )
    row = (
        claim.client_id,
        claim.key,
        claim.request_hash,
        claim.transaction_id,
        IdempotencyStatus.IN_PROGRESS.value,
        recorded_at,
        recorded_at,
        expires_at,
    )
    return row, record


def _check_complete(
    request: WriteRequest,
    view: _BatchView,
    recorded_at: str,
    claimed: IdempotencyRecord | None,
) -> tuple[tuple[Any, ...] | None, IdempotencyRecord | None]:
    done = request.complete
    if done is None:
        return None, None
    assert done.status is not IdempotencyStatus.IN_PROGRESS
    record = claimed if claimed is not None else view.keys.get((done.client_id, done.key))
    if record is None:
        raise _RequestFailed(
            Rejected(result=Result.command_malformed, detail="no such idempotency key")
        )
    if record.status is not IdempotencyStatus.IN_PROGRESS:
        if (record.status, record.response_status, record.response_body) == (
            done.status,
            done.response_status,
            done.response_body,
        ):
            raise _RequestFailed(Duplicate(record=record, transaction_id=record.transaction_id))
        raise _RequestFailed(
            Rejected(result=Result.idempotency_key_reused, detail="already answered differently")
        )
    completed = msgspec.structs.replace(
        record,
        status=done.status,
        response_status=done.response_status,
        response_body=done.response_body,
    )
    row = (
        done.status.value,
        done.response_status,
        done.response_body,
        recorded_at,
        done.client_id,
        done.key,
    )
    return row, completed
