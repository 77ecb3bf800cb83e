"""The transfer-state cache (store/states.py) never goes back: a state read before a later one
that was already kept (two reads racing) does not replace it. The writer's lookups, which run on
its connection's thread, leave it as it is."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from store.executor import Params, Row
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


class NoReads:
    """A connection the lookup must not need: every state asked for is cached or prefetched."""

    def execute(self, sql: str, params: Params = ()) -> None:
        raise AssertionError(sql)

    def run_all(self, statements: Sequence[tuple[str, Sequence[Params]]]) -> None:
        raise AssertionError(statements)

    def fetch_each(self, queries: Sequence[tuple[str, Params]]) -> list[list[Row]]:
        assert not queries, queries
        return []

    def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        raise AssertionError(sql)


def test_the_writers_lookup_leaves_the_cache_as_it_is() -> None:
    """load_now runs on the writer's connection thread while the loop's thread may change the
    cache: it takes cached and prefetched states and remembers neither (the writer does, back
    on the loop)."""
    cached, prefetched = walk_to("QUOTED", n=1).s, walk_to("CREATED", n=2).s
    cache = StateCache()
    cache.remember([cached])
    found = cache.load_now(
        NoReads(),
        {cached.transfer_id: cached.version, prefetched.transfer_id: prefetched.version},
        {prefetched.transfer_id: prefetched},
    )
    assert found == {cached.transfer_id: cached, prefetched.transfer_id: prefetched}
    assert cache.cached(prefetched.transfer_id, prefetched.version) is None
    assert cache.cached(cached.transfer_id, cached.version) == cached


def test_a_prefetched_state_at_another_version_is_folded_again() -> None:
    """Only a state at the journal's version is judged against."""
    stale = walk_to("CREATED", n=3).s
    cache = StateCache()
    with pytest.raises(AssertionError):  # NoReads: the fold was asked for
        cache.load_now(
            NoReads(), {stale.transfer_id: stale.version + 1}, {stale.transfer_id: stale}
        )
