"""`stablerail bench api` runs end to end: a real server and echo handler on loopback, load from
other processes, and every 201 the load counted is a transfer in the journal afterwards. (Its
figures are measured by the command; no test asserts a speed.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from adapters import affinity
from adapters.bench_api import bench_api

HAS_PROC = Path("/proc/self/stat").exists()


def test_a_small_run_reports_every_figure_and_loses_no_transfer() -> None:
    """With the server kept on one core where the platform can (`serve --cpu`); the command's
    own test below runs it on any."""
    usable = affinity.usable_cpus()
    core = None if usable is None else min(usable)
    report = bench_api(
        concurrency=4, clients=2, rounds=2, round_s=0.5, warmup_s=0.2, server_cpu=core
    )
    assert report.server_cpu == core
    assert report.server_exit == 0 and report.errors == {}
    assert report.created > 0 and report.created == report.journaled
    assert len(report.api_rounds) == len(report.echo_rounds) == 2
    assert report.creates_per_s > 0 and report.echo_per_s > 0
    assert abs(report.vs_echo - report.creates_per_s / report.echo_per_s) < 0.001
    assert 0 < report.p50_ms <= report.p99_ms
    assert report.machine_cores == os.cpu_count()
    if HAS_PROC:
        assert report.server_cores is not None and report.server_loop_cores is not None
        assert 0 < report.server_loop_cores <= report.server_cores
        assert report.cpu_ms_per_create is not None and report.cpu_ms_per_create > 0
        assert report.echo_cpu_ms_per_request is not None
        assert report.echo_cpu_ms_per_request > 0


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


def test_a_core_the_server_may_not_keep_to_is_refused_before_anything_starts() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "bench", "api", "--server-cpu", "100000"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    assert "--server-cpu: cpu 100000 is not one" in done.stderr and "Traceback" not in done.stderr
