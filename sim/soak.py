"""`stablerail soak`: many seeds of the simulated world, across processes, every failure with the
command that reproduces it. `make soak` runs thousands; `make test` runs 200 (tests/sim)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor

import msgspec

from sim.world import SimConfig, simulate


class SeedResult(msgspec.Struct, frozen=True, kw_only=True):
    seed: int
    ok: bool
    failed: dict[str, str]
    reproduce: str


class SoakReport(msgspec.Struct, kw_only=True):
    first: int
    count: int
    transfers: int
    faults: str
    ok: bool
    failures: list[SeedResult]
    transfers_run: int


def _one(config: SimConfig) -> SeedResult:
    report = simulate(config)
    return SeedResult(
        seed=config.seed,
        ok=report.ok,
        failed={name: v for name, v in report.invariants.items() if v != "ok"},
        reproduce=report.reproduce,
    )


def results(first: int, count: int, transfers: int, faults: str, jobs: int) -> Iterator[SeedResult]:
    configs = [
        SimConfig(seed=seed, transfers=transfers, faults=faults)
        for seed in range(first, first + count)
    ]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        yield from pool.map(_one, configs)


def soak(
    first: int,
    count: int,
    *,
    transfers: int = 100,
    faults: str = "swarm",
    jobs: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> SoakReport:
    failures: list[SeedResult] = []
    for done, result in enumerate(results(first, count, transfers, faults, jobs), start=1):
        if not result.ok:
            failures.append(result)
        if progress is not None:
            progress(done, len(failures))
    return SoakReport(
        first=first,
        count=count,
        transfers=transfers,
        faults=faults,
        ok=not failures,
        failures=failures,
        transfers_run=count * transfers,
    )
