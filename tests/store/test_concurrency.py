"""The check-and-hold is serialized with every other posting on the account.

1,000 transfers of 1.00 USD, all QUOTED, lock their funds concurrently against a balance of
500.00: exactly 500 holds commit, the other 500 are refused with insufficient_funds, the available
balance ends at exactly zero and nothing is ever negative (verify replays the history). Run on
both executors; the submission order is shuffled with a printed seed.
"""

from __future__ import annotations

import random

import anyio
import msgspec
import pytest

from engine import commands as c
from engine import policy
from engine.records import Committed, Rejected
from engine.results import Result
from engine.transfer import decide
from store.store import Store
from store.verify import verify
from tests.builders import Walk, walk_to
from tests.builders import decision as policy_decision
from tests.store.helpers import fund, persist

pytestmark = pytest.mark.anyio

TRANSFERS = 1_000
COVERED = 500


async def test_exactly_the_covered_holds_succeed(store: Store, data_dir) -> None:  # type: ignore[no-untyped-def]
    seed = random.randrange(2**32)
    await fund(store, amount=f"{COVERED}.00")
    walks = [walk_to("QUOTED", n=n, amount="1.00") for n in range(TRANSFERS)]
    for w in walks:
        await persist(store, w, one_by_one=False)
    random.Random(seed).shuffle(walks)
    outcomes: list[object] = []

    async def lock(n: int) -> None:
        w = walks[n]
        decision = decide(w.s, c.LockFunds(), w.now)
        outcomes.append(await store.append(w.s.transfer_id, w.s.version, decision.events))

    async with anyio.create_task_group() as tasks:
        for n in range(TRANSFERS):
            tasks.start_soon(lock, n)

    committed = sum(isinstance(o, Committed) for o in outcomes)
    refused = [o for o in outcomes if isinstance(o, Rejected)]
    assert committed == COVERED, f"seed={seed}"
    assert len(refused) == TRANSFERS - COVERED, f"seed={seed}"
    assert {o.result for o in refused} == {Result.insufficient_funds}, f"seed={seed}"
    (usd,) = await store.client_balances("acme")
    assert (usd.available, usd.held) == (0, COVERED * 100), f"seed={seed}"
    assert store.writer.batches < TRANSFERS * 2, "the holds were never batched"
    report = await verify(data_dir)
    assert report.ok, (seed, report.checks)


async def test_exactly_the_holds_a_rolling_limit_allows_succeed(store: Store, data_dir) -> None:  # type: ignore[no-untyped-def]
    """A rolling limit is serialized like the balance: 200 holds of 1.00 against a 24 h volume
    limit of 50.00 (the balance covers them all): exactly 50 commit, 150 are limit_exceeded."""
    seed = random.randrange(2**32)
    await fund(store, amount="1000.00")
    limit = policy.LimitCheck(
        limit_id="daily", scope=policy.Scope.CLIENT, window_us=24 * policy.US_PER_HOUR,
        volume_max=50_00,
    )  # fmt: skip
    decision = msgspec.structs.replace(policy_decision(), usd_amount=100, limits=(limit,))
    walks = [walk_to("QUOTED", n=n, amount="1.00", policy=decision) for n in range(200)]
    for w in walks:
        await persist(store, w, one_by_one=False)
    random.Random(seed).shuffle(walks)
    outcomes: list[object] = []

    async def lock(w: Walk) -> None:
        decided = decide(w.s, c.LockFunds(), w.now)
        outcomes.append(await store.append(w.s.transfer_id, w.s.version, decided.events))

    async with anyio.create_task_group() as tasks:
        for w in walks:
            tasks.start_soon(lock, w)

    refused = [o for o in outcomes if isinstance(o, Rejected)]
    assert sum(isinstance(o, Committed) for o in outcomes) == 50, f"seed={seed}"
    assert {o.result for o in refused} == {Result.limit_exceeded}, f"seed={seed}"
    assert len(refused) == 150, f"seed={seed}"
    assert all("daily" in o.detail for o in refused), f"seed={seed}"
    assert (await verify(data_dir)).ok
