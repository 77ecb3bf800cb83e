"""The transfer-state cache (store/states.py) never goes back: a state read before a later one
that was already kept (two reads racing) does not replace it."""

from __future__ import annotations

from store.states import StateCache
from tests.builders import walk_to


def test_an_older_state_does_not_replace_a_newer_one() -> None:
    quoted, older = walk_to("QUOTED").s, walk_to("CREATED").s
    assert older.transfer_id == quoted.transfer_id and older.version < quoted.version
    cache = StateCache()
    cache.remember([quoted])
    cache.remember([older])
    assert cache.cached(quoted.transfer_id, quoted.version) == quoted
    assert cache.cached(quoted.transfer_id, older.version) is None
