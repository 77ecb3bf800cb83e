"""`stablerail bench api` runs end to end: a real server and echo handler on loopback, load from
other processes, and every 201 the load counted is a transfer in the journal afterwards. (Its
figures are measured by the command; no test asserts a speed.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adapters import affinity
from adapters.bench_api import _cpu_s, bench_api

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


@pytest.mark.skipif(not HAS_PROC, reason="the CPU figures are read from Linux's /proc")
def test_a_process_cpu_is_read_as_the_kernel_counts_it() -> None:
    """What `_cpu_s` reads for this process moves with the CPU this process spends (the kernel
    counts in ticks of 10 ms), its first thread's with it; a process that is gone reads None."""
    before, clock_before = _cpu_s(os.getpid()), time.process_time()
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass
    after, clock_after = _cpu_s(os.getpid()), time.process_time()
    assert before is not None and after is not None
    spent = clock_after - clock_before
    assert abs((after[0] - before[0]) - spent) < 0.05
    assert abs((after[1] - before[1]) - spent) < 0.05  # the spinning was on the first thread
    assert after[1] <= after[0]
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert _cpu_s(gone.pid) is None


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
    assert "--server-cpu 100000: not a core" in done.stderr and "Traceback" not in done.stderr
