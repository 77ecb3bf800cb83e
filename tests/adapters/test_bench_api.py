"""`stablerail bench api` runs end to end: a real server and echo handler on loopback, load from
other processes, and every 201 the load counted is a transfer in the journal afterwards. (Its
figures are measured by the command; no test asserts a speed.)"""

from __future__ import annotations

import json
import subprocess
import sys

from adapters.bench_api import bench_api


def test_a_small_run_reports_every_figure_and_loses_no_transfer() -> None:
    report = bench_api(concurrency=4, clients=2, rounds=2, round_s=0.5, warmup_s=0.2)
    assert report.server_exit == 0 and report.errors == {}
    assert report.created > 0 and report.created == report.journaled
    assert len(report.api_rounds) == len(report.echo_rounds) == 2
    assert report.creates_per_s > 0 and report.echo_per_s > 0
    assert abs(report.vs_echo - report.creates_per_s / report.echo_per_s) < 0.001
    assert 0 < report.p50_ms <= report.p99_ms


def test_the_command_prints_the_json_the_issue_names() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "bench", "api", "--json", "--rounds", "1",
         "--seconds", "0.5", "--concurrency", "2", "--clients", "1"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    for field in ("creates_per_s", "p50_ms", "p99_ms", "echo_per_s", "vs_echo"):
        assert isinstance(report[field], float | int), field
