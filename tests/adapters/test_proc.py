"""`adapters.proc` reads what the kernel counts a process, or one of its threads, has spent."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from adapters import proc

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="the kernel shows it in Linux's /proc"
)


def _spin(seconds: float) -> None:
    deadline = time.thread_time() + seconds
    while time.thread_time() < deadline:
        pass


def test_a_process_and_its_thread_read_what_they_spent() -> None:
    """CPU burned on this thread moves both the process's figure and this thread's, within one
    tick of the kernel's clock (10 ms) of what Python counts."""
    pid, tid = os.getpid(), threading.get_native_id()
    before = proc.cpu_s(pid), proc.cpu_s(pid, thread=tid), time.process_time()
    _spin(0.3)
    after = proc.cpu_s(pid), proc.cpu_s(pid, thread=tid), time.process_time()
    spent = after[2] - before[2]
    assert abs((after[0] - before[0]) - spent) < 0.05
    assert abs((after[1] - before[1]) - spent) < 0.05
    assert after[1] <= after[0]


def test_another_threads_cpu_is_not_this_ones() -> None:
    """A thread's figure is its own: CPU burned on another thread leaves this one's unmoved."""
    pid, tid = os.getpid(), threading.get_native_id()
    mine = proc.cpu_s(pid, thread=tid)
    other = threading.Thread(target=_spin, args=(0.3,))
    other.start()
    other.join()
    assert proc.cpu_s(pid, thread=tid) - mine < 0.05


def test_a_process_that_is_gone_is_an_os_error() -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with pytest.raises(FileNotFoundError):
        proc.cpu_s(gone.pid)
