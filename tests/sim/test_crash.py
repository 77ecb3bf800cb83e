"""Crash drills: the engine in a real process on a real SQLite file, killed with SIGKILL at named
failpoints and at random moments, restarted until every transfer is terminal. Each drill then
checks from outside the process: every acknowledged transfer present, none duplicated, all
terminal, the journal replays to the same tables and the simulated world agrees with the ledger.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.drills import FAILPOINTS
from sim.crash import drill

# (failpoint, pass to die on): an early and a later pass of each. The first actor commit is a
# create, so journal.after_commit pass 1 dies with the key claimed but never answered.
FAILPOINT_PASSES = [
    ("journal.before_commit", 1),
    ("journal.before_commit", 23),
    ("journal.after_commit", 1),
    ("journal.after_commit", 31),
    ("chain.after_broadcast", 1),
    ("chain.after_broadcast", 5),
    ("offramp.after_payout_call", 1),
    ("offramp.after_payout_call", 2),
    ("timers.mid_fire", 1),
    ("timers.mid_fire", 2),
    ("chain.after_sign", 1),
    ("chain.after_sign", 4),
]
KILLS_REQUIRED = 50
# A world takes about three of its eight kills before it finishes (how many land depends on how
# fast it runs), so 16 worlds sometimes fell one kill short: the loop stops at 50 kills anyway.
WORLDS_MAX = 32


def test_every_failpoint_is_drilled() -> None:
    assert {name for name, _ in FAILPOINT_PASSES} == FAILPOINTS


@pytest.mark.parametrize(("failpoint", "passes"), FAILPOINT_PASSES)
def test_killed_at_a_failpoint_then_restarted_keeps_every_promise(
    tmp_path: Path, failpoint: str, passes: int
) -> None:
    seed = 40 + FAILPOINT_PASSES.index((failpoint, passes))
    report = drill(
        tmp_path / "data", seed=seed, transfers=12, failpoint=failpoint, failpoint_pass=passes
    )
    print(f"seed {seed}: {report}")
    assert report.problems == []
    assert report.kills == 1
    assert report.acked == 12
    assert sum(report.final_status.values()) == 12


def test_random_sigkills_then_restart_keep_every_promise(tmp_path: Path) -> None:
    """At least 50 SIGKILLs at random moments across several worlds; each world ends clean."""
    kills = 0
    seed = 100
    while kills < KILLS_REQUIRED and seed < 100 + WORLDS_MAX:
        report = drill(
            tmp_path / f"world-{seed}", seed=seed, transfers=20, kills=8, kill_window_s=0.3
        )
        print(
            f"seed {seed}: {report.kills} kills, {report.incarnations} incarnations,"
            f" {report.final_status}, problems {report.problems}"
        )
        assert report.problems == [], f"seed {seed}"
        assert report.acked == 20
        kills += report.kills
        seed += 1
    assert kills >= KILLS_REQUIRED, f"only {kills} kills landed in {seed - 100} worlds"
