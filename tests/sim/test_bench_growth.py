"""The growth benchmark measures what it claims: the store really holds each size of reconciled
filler transfers (spread over their clients, a month old, their transactions all different) and
the measuring engine, started on that store by a child process, drives its own transfers to
RECONCILED with the chain going on from where the store's indexer left it. (Its figures come from
`stablerail bench growth`; no test asserts a speed.)"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from engine.timefmt import rfc3339_us
from sim.bench_growth import FILL_CLIENTS, bench_growth
from sim.clock import EPOCH_US
from store.schema import db_path


def test_each_size_is_stored_and_measured_by_an_engine_on_that_store(tmp_path: Path) -> None:
    directory = tmp_path / "data"
    report = bench_growth(
        sizes=[0, 40, 90], transfers=12, rounds=2, concurrency=4, data_dir=directory
    )
    assert [s.stored for s in report.sizes] == [0, 40, 90]
    for size in report.sizes:
        assert len(size.runs) == 2 and all(r > 0 for r in size.runs)
        assert size.start_s > 0 and size.rss_mb > 0 and size.database_mb > 0
    assert report.sizes[0].vs_reference == 1.0
    assert report.sizes[0].fill_per_s == 0 and report.sizes[2].fill_per_s > 0
    with sqlite3.connect(db_path(directory)) as db:
        fill = db.execute(
            "SELECT count(*), count(DISTINCT client_id), max(created_at), count(DISTINCT"
            " on_chain_tx_hash) FROM transactions WHERE client_id LIKE 'fill-%'"
            " AND status = 'RECONCILED'"
        ).fetchone()
        measured = db.execute(
            "SELECT count(*), count(DISTINCT status) FROM transactions WHERE client_id = 'bench'"
        ).fetchone()
        statuses = db.execute(
            "SELECT status FROM transactions WHERE client_id = 'bench' GROUP BY status"
        ).fetchall()
    assert fill[0] == 90 and fill[1] == min(90, FILL_CLIENTS) and fill[3] == 90
    month_ago = EPOCH_US - 29 * 24 * 3600 * 1_000_000
    assert fill[2] < rfc3339_us(month_ago)
    # Three measurements of two rounds of twelve, every one reconciled.
    assert measured == (3 * 2 * 12, 1) and statuses == [("RECONCILED",)]
