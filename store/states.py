"""Transfer states folded from the journal, with a bounded cache of the recently appended ones.

The journal is the only source of a transfer's state: the writer needs the current state to evolve
an append (the store's half of "check each invariant in pairs"), actors need it to activate, the
rebuild needs it to project. A cached state is used only when its version equals the stream's
version in the journal, so a stale entry (another process appended) is refolded, never trusted.

Readers (`StateCache.latest`) take the other way to the same guarantee: they read only the events
after the cached version and evolve the cached state by them. The journal is append-only and a
stream's versions have no gaps, so that is the stream's state as of the read, whoever appended.

A store has one cache, which its writer and its readers share: every state in it is the journal's
state of its transfer at that state's version, whoever put it there. It changes on the event
loop's thread only. The writer judges a batch on its connection's thread, where it only looks
states up (`cached`, `load_now`: single dict reads, which the GIL makes atomic against the loop's
changes) and remembers what it read and committed once back on the loop.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping

from engine import events as ev
from engine import limits
from engine.transfer import TransferState, evolve
from store.executor import Executor, Params, Sync, chunks


def fold_queries(transfer_ids: Iterable[str]) -> list[tuple[str, Params]]:
    """The reads that fold these transfers' streams whole, one per chunk of ids."""
    return since_queries(dict.fromkeys(transfer_ids, 0))


def fold_rows(rows: Iterable[tuple[str, str]]) -> dict[str, TransferState]:
    """States from (stream_id, payload) rows ordered by stream and version."""
    states: dict[str, TransferState] = {}
    for stream_id, payload in rows:
        event = ev.decode(payload)
        assert ev.is_transfer_event(event), (stream_id, ev.event_type(event))
        states[stream_id] = evolve(states.get(stream_id), event)
    return states


def since_queries(known: Mapping[str, int]) -> list[tuple[str, Params]]:
    """The reads of each stream's events after its known version (0: all of them), one per
    chunk of streams: a join of the wanted (stream, version) pairs with the journal, each one
    range search of its (stream_id, version) index."""
    return [
        (
            "SELECT k.column1, j.payload"
            f" FROM (VALUES {', '.join(['(?, ?)'] * len(chunk))}) AS k"
            " JOIN journal AS j ON j.stream_id = k.column1 AND j.version > k.column2"
            " ORDER BY k.column1, j.version",
            [v for item in chunk for v in item],
        )
        for chunk in chunks(sorted(known.items()), limits.sql_params_per_statement_max // 2)
    ]


async def fold(ex: Executor, transfer_ids: Iterable[str]) -> dict[str, TransferState]:
    """Each transfer's state from its journal stream."""
    results = await ex.fetch_each(fold_queries(transfer_ids))
    return fold_rows(row for rows in results for row in rows)


def fold_now(db: Sync, transfer_ids: Iterable[str]) -> dict[str, TransferState]:
    """As fold, inside a transaction (Executor.call)."""
    results = db.fetch_each(fold_queries(transfer_ids))
    return fold_rows(row for rows in results for row in rows)


class StateCache:
    def __init__(self, capacity: int = limits.transfer_cache_max) -> None:
        assert capacity > 0
        self._capacity = capacity
        self._states: OrderedDict[str, TransferState] = OrderedDict()

    def cached(self, transfer_id: str, version: int) -> TransferState | None:
        state = self._states.get(transfer_id)
        return state if state is not None and state.version == version else None

    async def load(self, ex: Executor, versions: Mapping[str, int]) -> dict[str, TransferState]:
        """The state of each transfer at the given journal version: cached or folded now."""
        found, missing = self._split(versions)
        folded = await fold(ex, missing)
        found = _complete(found, missing, versions, folded)
        self.remember(folded.values())
        return found

    async def latest(self, ex: Executor, transfer_ids: Iterable[str]) -> dict[str, TransferState]:
        """Each transfer's state as the journal has it now (absent: no such transfer): the
        cached state evolved by the events appended after it, in one read."""
        known: dict[str, TransferState] = {}
        versions: dict[str, int] = {}
        for transfer_id in set(transfer_ids):
            state = self._states.get(transfer_id)
            if state is not None:
                known[transfer_id] = state
            versions[transfer_id] = 0 if state is None else state.version
        results = await ex.fetch_each(since_queries(versions))
        evolved: dict[str, TransferState] = {}
        for stream_id, payload in (row for rows in results for row in rows):
            event = ev.decode(payload)
            assert ev.is_transfer_event(event), (stream_id, ev.event_type(event))
            evolved[stream_id] = evolve(evolved.get(stream_id, known.get(stream_id)), event)
        current = known | evolved
        self.remember(current.values())  # the ones read again are the last to be evicted
        return current

    def load_now(
        self,
        db: Sync,
        versions: Mapping[str, int],
        prefetched: Mapping[str, TransferState] | None = None,
    ) -> dict[str, TransferState]:
        """As load, inside a transaction (Executor.call), with the states the caller folded in
        the same reads as its others (`prefetched`) taken first. It may run on the connection's
        thread, so it leaves the cache as it is: the caller remembers the states it returns
        once back on the loop's thread."""
        found, missing = self._split(versions, prefetched)
        return _complete(found, missing, versions, fold_now(db, missing))

    def _split(
        self, versions: Mapping[str, int], prefetched: Mapping[str, TransferState] | None = None
    ) -> tuple[dict[str, TransferState], list[str]]:
        """The states at these versions the cache (or `prefetched`) has, and the transfers it
        has not. Looks up only."""
        found: dict[str, TransferState] = {}
        missing = []
        for transfer_id, version in versions.items():
            state = self.cached(transfer_id, version)
            if state is None and prefetched is not None:
                state = prefetched.get(transfer_id)
            if state is not None and state.version == version:
                found[transfer_id] = state
            else:
                missing.append(transfer_id)
        return found, missing

    def remember(self, states: Iterable[TransferState]) -> None:
        for state in states:
            held = self._states.get(state.transfer_id)
            if held is not None and held.version > state.version:
                continue  # a read that raced a later one: keep the later state
            self._states[state.transfer_id] = state
            self._states.move_to_end(state.transfer_id)
        while len(self._states) > self._capacity:
            self._states.popitem(last=False)


def _complete(
    found: dict[str, TransferState],
    missing: list[str],
    versions: Mapping[str, int],
    folded: dict[str, TransferState],
) -> dict[str, TransferState]:
    """`found` with each missing transfer's folded state, which must be at its version."""
    for transfer_id in missing:
        state = folded.get(transfer_id)
        assert state is not None and state.version == versions[transfer_id], transfer_id
        found[transfer_id] = state
    return found
