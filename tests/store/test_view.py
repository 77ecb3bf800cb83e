"""The reads a writer batch makes (store/view.py) search their tables' indexes: none scans a
table, whatever the batch holds, so a commit costs the same with ten transfers stored or a
million. (SQLite plans `(a, b) IN (VALUES (..), (..))` with two rows or more as a scan of the
whole table; these reads are written as joins for that reason.)"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from engine.records import Append, ClaimKey, WriteRequest
from sim.clock import ManualClock
from store.executor import ExecutorKind, Params, Row, Sync
from store.states import StateCache
from store.store import open_executor
from store.view import View
from tests.builders import T0, deposit_event
from tests.store.helpers import evidence

pytestmark = pytest.mark.anyio

TABLES = ("journal", "transactions", "idempotency_keys", "external_events", "account_balances")
SCAN = re.compile(rf"^SCAN ({'|'.join(TABLES)})\b")


class Explaining:
    """A Sync that keeps the query plan of every parameterized read before running it."""

    def __init__(self, db: Sync) -> None:
        self.db = db
        self.plans: list[tuple[str, list[str]]] = []

    def explain(self, sql: str, params: Params) -> None:
        if params:
            (rows,) = self.db.fetch_each([(f"EXPLAIN QUERY PLAN {sql}", params)])
            self.plans.append((sql, [row[3] for row in rows]))

    def execute(self, sql: str, params: Params = ()) -> None:
        self.db.execute(sql, params)

    def run_all(self, statements: Sequence[tuple[str, Sequence[Params]]]) -> None:
        self.db.run_all(statements)

    def fetch_each(self, queries: Sequence[tuple[str, Params]]) -> list[list[Row]]:
        for sql, params in queries:
            self.explain(sql, params)
        return self.db.fetch_each(queries)

    def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        self.explain(sql, params)
        return self.db.fetchone(sql, params)


def batch() -> list[WriteRequest]:
    """Three creates' claims, two pieces of evidence and two deposits: every kind of read the
    view makes, each with several rows."""
    claims = [
        WriteRequest(
            claim=ClaimKey(
                client_id="acme",
                key=f"k-{n}",
                request_hash=f"h-{n}",
                transaction_id=f"tr_{n}",
                expires_at=T0,
            )
        )
        for n in range(3)
    ]
    found = [evidence(n, ref=f"0x{n}") for n in range(2)]
    reports = [
        WriteRequest(
            appends=(Append(stream_id=e.evidence_id, expected_version=0, events=(e,)),),
            evidence_raw={e.evidence_id: raw},
        )
        for e, raw in found
    ]
    deposits = [deposit_event("acme", "10.00", 1), deposit_event("beta", "5.00", 2)]
    credits = [
        WriteRequest(appends=(Append(stream_id=d.deposit_id, expected_version=0, events=(d,)),))
        for d in deposits
    ]
    return [*claims, *reports, *credits]


async def test_no_batch_read_scans_a_table(tmp_path: Path) -> None:
    clock = ManualClock(tick_us=1)
    ex, _ = await open_executor(tmp_path / "data", ExecutorKind.INLINE, clock=clock, migrate=True)
    try:
        explaining: list[Explaining] = []

        def read(db: Sync) -> View:
            explaining.append(Explaining(db))
            return View.read(explaining[0], batch(), StateCache(), clock.now_us())

        view = await ex.call(read)
    finally:
        await ex.close()
    plans = explaining[0].plans
    tables = {t for sql, _ in plans for t in TABLES if f" {t} " in f"{sql} "}
    assert tables == {"journal", "transactions", "idempotency_keys", "external_events",
                      "account_balances"}  # fmt: skip
    scans = [(sql, details) for sql, details in plans if any(SCAN.match(d) for d in details)]
    assert scans == []
    assert len(view.keys) == 3 and len(view.evidence) == 2
