"""The simulated world outlives its process: saved before anything it did is observed, loaded
with the new process's clock and ids, and checked against the ledger by `stablerail verify`; a
world saved by the previous format still loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.cli import main
from sim.chain import unfinalized_blocks_max
from sim.clock import SeededIds, VirtualClock
from sim.crash import drill
from sim.durable import WORLD_FILE, WorldFile


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("drill") / "data"
    report = drill(data, seed=7, transfers=6)
    assert report.problems == [], report
    return data


def test_load_binds_the_new_process_clock_and_keeps_the_books(finished: Path) -> None:
    clock = VirtualClock(start_us=1)
    ids = SeededIds(1, clock)
    saved = WorldFile.load(finished, clock, ids)
    assert saved is not None
    rails = saved.rails
    assert rails.bank.now == clock.now_us  # the clock is the loader's, not a pickled copy
    assert rails.quotes.now == clock.now_us
    assert len(rails.chain.blocks) <= unfinalized_blocks_max  # final blocks are pruned
    assert rails.chain.balance("USDC", rails.treasury) > 0
    world = WorldFile(finished.parent / "copy", saved, clock, ids)
    world.path.parent.mkdir()
    world.save()
    saves = world.saves
    world.save()
    assert world.saves == saves, "nothing changed, nothing written"
    rails.chain.produce()
    world.save()
    assert world.saves == saves + 1


def test_verify_checks_the_world_against_the_ledger(
    finished: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", "--data-dir", str(finished)]) == 0
    assert "ok   world" in capsys.readouterr().out
    # The chain gains money the ledger never booked: verify must say so.
    tampered = finished.parent / "tampered"
    tampered.mkdir()
    for name in ("stablerail.sqlite3", WORLD_FILE):
        (tampered / name).write_bytes((finished / name).read_bytes())
    clock = VirtualClock()
    ids = SeededIds(0, clock)
    saved = WorldFile.load(tampered, clock, ids)
    assert saved is not None
    saved.rails.chain.mint("USDC", saved.rails.treasury, 5)
    WorldFile(tampered, saved, clock, ids).save()
    assert main(["verify", "--data-dir", str(tampered), "--json"]) == 1
    found = json.loads(capsys.readouterr().out)
    assert found["ok"] is False
    assert any("treasury_matches_chain" in p for p in found["world"]["problems"])


def test_a_world_saved_before_the_indexer_still_loads(
    finished: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A format-1 world (no final blocks kept, no trade reports) loads with both empty."""
    clock = VirtualClock(start_us=1)
    ids = SeededIds(1, clock)
    saved = WorldFile.load(finished, clock, ids)
    assert saved is not None
    del saved.rails.chain.final_blocks
    del saved.rails.offramp.reported
    monkeypatch.setattr("sim.durable.FORMAT", 1)
    old = WorldFile(finished.parent / "format-1", saved, clock, ids)
    old.path.parent.mkdir()
    old.save()
    monkeypatch.undo()
    again = WorldFile.load(old.path.parent, clock, ids)
    assert again is not None
    assert again.rails.chain.final_blocks == {} and again.rails.offramp.reported == set()
    assert again.rails.chain.balance("USDC", again.rails.treasury) > 0
