"""Random histories through the real store keep the books and rebuild exactly.

Eight transfers of one client, on both routes, receive random commands (tests/random_commands.py)
from a seed; every decision with events is appended through the store, which refuses a hold the
balance does not cover (the transfer then fails with insufficient_funds, as an actor would).
Afterwards every transfer folded from the journal equals the driver's state, and `verify` passes:
hash chain, ledger invariants over the whole history, and every projection rebuilt from the
journal equal to the live one. Run on both executors; the seed is printed on failure
(STABLERAIL_SEED=<n> reproduces it).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from engine import commands as c
from engine.records import Committed, Rejected
from engine.results import Result
from engine.states import SPENDING, TERMINAL, Route
from engine.timefmt import parse_rfc3339, rfc3339_us
from engine.transfer import TransferState, decide, evolve_all
from store.store import Store
from store.verify import verify
from store.view import UsageKey, usage
from tests.builders import T0, create_command
from tests.random_commands import TIME_STEPS, SeededChooser, next_command
from tests.store.helpers import fund

pytestmark = pytest.mark.anyio

STEPS = 400


@pytest.fixture
def seed() -> int:
    return int(os.environ.get("STABLERAIL_SEED", random.randrange(2**32)))


async def test_random_histories_verify(store: Store, data_dir: Path, seed: int) -> None:
    where = f"seed={seed} (reproduce: STABLERAIL_SEED={seed} pytest {__file__})"
    draw = SeededChooser(seed)
    now = T0
    states: dict[str, TransferState] = {}
    live: list[str] = []
    created = deposits = 0

    async def create() -> None:
        nonlocal created
        created += 1
        route = draw.pick(list(Route))
        amount = f"{draw.number(1, 900)}.{draw.number(0, 99):02d}"
        command = create_command(created, route=route, amount=amount, approvals=draw.number(0, 1))
        decision = decide(None, command, now)
        assert isinstance(await store.append(command.transfer_id, 0, decision.events), Committed)
        states[command.transfer_id] = evolve_all(None, decision.events)
        live.append(command.transfer_id)

    for step in range(STEPS):
        now += draw.pick(TIME_STEPS)
        if len(live) < 8:
            await create()
        if draw.number(0, 24) == 0:
            deposits += 1
            await fund(store, amount=f"{draw.number(1, 2_000)}.00", n=deposits)
        transfer_id = draw.pick(live)
        state = states[transfer_id]
        decision = decide(state, next_command(draw, state, now), now)
        if decision.result is Result.ok and decision.events:
            outcome = await store.append(transfer_id, state.version, decision.events)
            if isinstance(outcome, Rejected):
                assert outcome.result is Result.insufficient_funds, (where, step, outcome)
                decision = decide(state, c.FailTransfer(code="insufficient_funds"), now)
                outcome = await store.append(transfer_id, state.version, decision.events)
            assert isinstance(outcome, Committed), (where, step, outcome)
            states[transfer_id] = state = evolve_all(state, decision.events)
        if state.status in TERMINAL:
            live.remove(transfer_id)

    for transfer_id, state in states.items():
        assert await store.transfer(transfer_id) == state, where
    await _usage_matches_a_count_of_the_holds(store, draw, T0, now, where)
    report = await verify(data_dir)
    # Over seeds 0-199 a walk commits 190-300 rows (median 246); fewer than STEPS // 4 means the
    # command generator stopped producing work, not bad luck.
    assert report.journal_rows > STEPS // 4, (where, "the walk did too little to prove much")
    assert report.ok, (where, [c for c in report.checks if not c.ok])


_SPENDING = ", ".join(f"'{s.value}'" for s in sorted(SPENDING))


async def _usage_matches_a_count_of_the_holds(
    store: Store, draw: SeededChooser, start: int, end: int, where: str
) -> None:
    """The rolling limits' usage from the per-minute projection (store.view.usage) equals a
    count of the holds still spending taken since the window's start, row by row, for the client
    and for each beneficiary: from windows starting at random instants of the history, and at
    each hold's own instant, just before and after it, and at the start of its minute (where
    the count of the window's first minute and the sum of the later ones meet)."""
    rows = await store.reader.fetchall(
        "SELECT client_id, beneficiary, locked_at FROM transactions WHERE locked_at IS NOT NULL"
    )
    keys: list[UsageKey] = []
    for client, beneficiary, locked_at in rows:
        at = parse_rfc3339(locked_at)
        assert at is not None
        minute = at - at % 60_000_000
        for since in (draw.number(start, end), at - 1, at, at + 1, minute, minute - 1):
            keys.extend([(client, None, since), (client, beneficiary, since)])
    found = await store.reader.call(lambda db: usage(db, keys))
    for client, beneficiary, since in keys:
        where_beneficiary = "" if beneficiary is None else " AND beneficiary = ?"
        counted = await store.reader.fetchone(
            "SELECT count(*), coalesce(sum(policy_usd), 0) FROM transactions"
            f" WHERE client_id = ?{where_beneficiary} AND locked_at >= ?"
            f" AND status IN ({_SPENDING})",
            (client, *([beneficiary] if beneficiary else []), rfc3339_us(since)),
        )
        assert counted is not None
        assert found[(client, beneficiary, since)] == list(counted), (where, since)
