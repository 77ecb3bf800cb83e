"""Keeping the server on one core (`[server] cpu`, `serve --cpu`).

The server's Python runs under one interpreter lock: its event loop's thread and the store's
connection threads take turns. On a machine with cores to spare the kernel runs those threads on
different cores, and every hand-off of the lock then wakes a thread on another core. Under
`stablerail bench api` the server used 1.04 cores either way, and on one core it spent about 15%
less CPU per create (README, "Figures"). SQLite's own work, which runs without the lock, gives up
its second core; the commits' waits for the disk need none.

Linux only (`os.sched_setaffinity`); elsewhere the setting is refused at load.
"""

from __future__ import annotations

import os
from pathlib import Path


def usable_cpus() -> set[int] | None:
    """The cores this process may run on; None where the platform cannot say or pin."""
    if not hasattr(os, "sched_getaffinity") or not hasattr(os, "sched_setaffinity"):
        return None
    return set(os.sched_getaffinity(0))


def refusal(cpu: int) -> str | None:
    """Why the server cannot be kept on `cpu`, or None if it can."""
    usable = usable_cpus()
    if usable is None:
        return "this platform cannot keep a process on one core"
    if cpu not in usable:
        return f"cpu {cpu} is not one this process may run on: {sorted(usable)}"
    return None


def keep_on(cpu: int) -> None:
    """Every thread of this process on `cpu` from now on: each running thread has its own mask,
    and a thread started later takes its starter's."""
    for task in Path("/proc/self/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), {cpu})
        except ProcessLookupError:
            continue  # ended meanwhile
