"""Transfer states folded from the journal, with a bounded cache of the recently appended ones.

The journal is the only source of a transfer's state: the writer needs the current state to evolve
an append (the store's half of "check each invariant in pairs"), actors need it to activate, the
rebuild needs it to project. A cached state is used only when its version equals the stream's
version in the journal, so a stale entry (another process appended) is refolded, never trusted.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping

from engine import events as ev
from engine import limits
from engine.transfer import TransferState, evolve
from store.executor import Executor


async def fold(ex: Executor, transfer_ids: Iterable[str]) -> dict[str, TransferState]:
    """Each transfer's state from its journal stream, in one query per chunk of ids."""
    ids = sorted(set(transfer_ids))
    states: dict[str, TransferState] = {}
    step = limits.sql_params_per_statement_max
    for start in range(0, len(ids), step):
        chunk = ids[start : start + step]
        rows = await ex.fetchall(
            "SELECT stream_id, payload FROM journal"
            f" WHERE stream_id IN ({', '.join('?' * len(chunk))}) ORDER BY stream_id, version",
            chunk,
        )
        for stream_id, payload in rows:
            event = ev.decode(payload)
            assert ev.is_transfer_event(event), (stream_id, ev.event_type(event))
            states[stream_id] = evolve(states.get(stream_id), event)
    return states


class StateCache:
    def __init__(self, capacity: int = limits.transfer_cache_max) -> None:
        assert capacity > 0
        self._capacity = capacity
        self._states: OrderedDict[str, TransferState] = OrderedDict()

    async def load(self, ex: Executor, versions: Mapping[str, int]) -> dict[str, TransferState]:
        """The state of each transfer at the given journal version."""
        found: dict[str, TransferState] = {}
        missing = []
        for transfer_id, version in versions.items():
            cached = self._states.get(transfer_id)
            if cached is not None and cached.version == version:
                found[transfer_id] = cached
            else:
                missing.append(transfer_id)
        folded = await fold(ex, missing)
        for transfer_id in missing:
            state = folded.get(transfer_id)
            assert state is not None and state.version == versions[transfer_id], transfer_id
            found[transfer_id] = state
        self.remember(folded.values())
        return found

    def remember(self, states: Iterable[TransferState]) -> None:
        for state in states:
            self._states[state.transfer_id] = state
            self._states.move_to_end(state.transfer_id)
        while len(self._states) > self._capacity:
            self._states.popitem(last=False)

    def forget(self) -> None:
        self._states.clear()
