"""The store benchmark runs end to end and reports what the README and the issue quote. (Its
figures are measured by `stablerail bench store`; no test asserts a speed.)"""

from __future__ import annotations

import pytest

from sim.bench import bench_store
from store.executor import ExecutorKind

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("kind", list(ExecutorKind))
async def test_a_small_run_reports_every_figure(kind: ExecutorKind) -> None:
    report = await bench_store(transfers=20, concurrency=8, repeats=1, executor=kind)
    assert report.appends == 20 * 6
    assert report.store_rows_per_s > 0 and report.raw_rows_per_s > 0
    assert report.same_writes_rows_per_s > 0
    assert abs(report.ratio - report.store_rows_per_s / report.raw_rows_per_s) < 0.01
    assert 1 <= report.mean_batch <= 8
    assert report.rows_per_append > 1
