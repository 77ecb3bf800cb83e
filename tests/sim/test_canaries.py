"""Canaries: each bug planted on purpose (actors.drills.CANARIES) must be caught by the
simulation's checks within 200 swarm seeds, and the seed that catches it must pass without it,
so what failed is the planted bug and not the seed."""

from __future__ import annotations

import pytest

from actors.drills import CANARIES
from sim.world import SimConfig, simulate

SEEDS = 200


@pytest.mark.parametrize("canary", sorted(CANARIES))
def test_planted_bug_is_caught_within_200_seeds(canary: str) -> None:
    for seed in range(SEEDS):
        report = simulate(SimConfig(seed=seed, transfers=100, faults="swarm", canaries=(canary,)))
        if not report.ok:
            break
    else:
        pytest.fail(f"{canary} went unnoticed for {SEEDS} seeds")
    failed = {name: v for name, v in report.invariants.items() if v != "ok"}
    print(f"{canary}: caught at seed {seed} by {failed}")
    assert report.reproduce.endswith(f"--plant {canary}")
    clean = simulate(SimConfig(seed=seed, transfers=100, faults="swarm"))
    assert clean.ok, clean.invariants
