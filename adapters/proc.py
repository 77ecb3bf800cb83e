"""What Linux's /proc says a process has spent, for the benchmarks that measure another process
(the node under `bench evm`, the server under `bench api`)."""

from __future__ import annotations

import os
from pathlib import Path


def cpu_s(pid: int, thread: int | None = None) -> float:
    """User + system CPU seconds of process `pid`, or of its thread `thread` only. OSError where
    there is no /proc, or no such process or thread."""
    stat = f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat"
    # The fields after the command name, which is in parentheses and may hold spaces: utime and
    # stime are the line's 14th and 15th fields, the 12th and 13th after it.
    fields = Path(stat).read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
