"""The first walk: five transfers end where they should, the books verify, and the same seed
writes a byte-identical journal (the in-loop executor and the seeded world are deterministic)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sim.demo import run_demo
from store.schema import db_path
from store.verify import verify

pytestmark = pytest.mark.anyio


def _journal(data_dir: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db_path(data_dir))
    try:
        return conn.execute("SELECT * FROM journal ORDER BY seq").fetchall()
    finally:
        conn.close()


async def test_the_demo_walk(tmp_path: Path) -> None:
    result = await run_demo(tmp_path / "demo")
    assert [t.status for t in result.transfers] == [
        "RECONCILED",
        "RECONCILED",
        "CANCELLED",
        "FAILED",
        "FAILED",
    ]
    assert result.transfers[1].steps[1].command == "ApproveTransfer"
    assert [t.steps[-1].status for t in result.transfers[3:]] == ["FAILED", "FAILED"]
    # 25,000.00 deposited; 1,500.00 and 12,000.00 paid out; the cancelled hold came back.
    assert result.balances == {"USD": {"available": "11500.00", "held": "0.00"}}
    assert (await verify(tmp_path / "demo")).ok


async def test_same_seed_same_journal(tmp_path: Path) -> None:
    await run_demo(tmp_path / "a", seed=11)
    await run_demo(tmp_path / "b", seed=11)
    await run_demo(tmp_path / "c", seed=12)
    assert _journal(tmp_path / "a") == _journal(tmp_path / "b")
    assert _journal(tmp_path / "a") != _journal(tmp_path / "c")


async def test_fresh_starts_over(tmp_path: Path) -> None:
    first = await run_demo(tmp_path / "d")
    again = await run_demo(tmp_path / "d", fresh=True)
    assert again.journal_rows == first.journal_rows
