"""Shared fixtures: the anyio backend, a hypothesis profile, data dirs, clocks and ids.

Randomized tests print their seed: hypothesis prints the failing example and a reproduction blob,
and the hand-rolled ones put `seed=` in their assertion messages.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from sim.clock import ManualClock, SeededIds
from store.executor import ExecutorKind
from store.store import Store

settings.register_profile(
    "default",
    max_examples=250,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("thorough", parent=settings.get_profile("default"), max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture
def anyio_backend() -> str:
    # aiosqlite and the store's task group are asyncio; trio is not a supported backend.
    return "asyncio"


@pytest.fixture(scope="session")
def run_seed() -> int:
    """A random seed for this run of the suite, the same in every xdist worker (they share the
    run's id), so parametrized ids stay stable across workers while each run draws new cases.
    STABLERAIL_TEST_SEED replays a run."""
    given = os.environ.get("STABLERAIL_TEST_SEED")
    if given is not None:
        return int(given)
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or os.urandom(16).hex()
    seed = int(run[:8], 16)
    print(f"STABLERAIL_TEST_SEED={seed}")
    return seed


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(tick_us=1_000)


@pytest.fixture
def ids(clock: ManualClock) -> SeededIds:
    return SeededIds(1234, clock)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture(params=[ExecutorKind.AIOSQLITE, ExecutorKind.INLINE], ids=lambda k: k.value)
def executor(request: pytest.FixtureRequest) -> ExecutorKind:
    """Store contract tests run against both executors."""
    return ExecutorKind(request.param)


@pytest.fixture
async def store(data_dir: Path, clock: ManualClock, executor: ExecutorKind) -> AsyncIterator[Store]:
    async with Store.open(data_dir, clock=clock, executor=executor, migrate=True) as opened:
        yield opened
