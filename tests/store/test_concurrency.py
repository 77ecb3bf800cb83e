"""The check-and-hold is serialized with every other posting on the account.

1,000 transfers of 1.00 USD, all QUOTED, lock their funds concurrently against a balance of
500.00: exactly 500 holds commit, the other 500 are refused with insufficient_funds, the available
balance ends at exactly zero and nothing is ever negative (verify replays the history). Run on
both executors; the submission order is shuffled with a printed seed.
"""

from __future__ import annotations

import random

import anyio
import pytest

from engine import commands as c
from engine.records import Committed, Rejected
from engine.results import Result
from engine.transfer import decide
from store.store import Store
from store.verify import verify
from tests.builders import walk_to
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
