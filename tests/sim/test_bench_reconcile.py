"""`stablerail bench reconcile` on a small workload: every figure is reported and the matcher found
every difference the generator injected (the run's exit code says so)."""

from __future__ import annotations

import msgspec

from adapters.cli import main
from sim.bench_reconcile import ReconcileBench, bench_reconcile


def test_a_small_run_reports_every_figure_and_finds_every_injected_difference() -> None:
    r = bench_reconcile(transfers=600, noise=0.3, repeats=1, seed=5)
    assert r.expected_rows == 1_200 and r.evidence_rows > 1_000
    assert r.injected_found and sum(r.findings.values()) > 100
    assert r.rows_per_s > 0 and r.reference_rows_per_s > 0 and r.ratio > 0
    assert r.peak_memory_mb > 0


def test_the_command_prints_one_json_object(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["bench", "reconcile", "--transfers", "300", "--repeats", "1", "--json"]) == 0
    report = msgspec.json.decode(capsys.readouterr().out, type=ReconcileBench)
    assert report.injected_found and report.transfers == 300
