"""The CPU time of another process's threads, read from /proc: whose time it is, whatever else the machine runs.

On a machine shared with other jobs, wall-clock ratios swing by ±20%; the CPU seconds a thread used do not
depend on how long it waited for a core. `ThreadClock` samples /proc/<pid>/task/*/stat and keeps each
thread's latest utime+stime, so a thread that has ended still counts with what it had used when last seen.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")  # /proc counts CPU time in clock ticks


def cpu_seconds(stat: str) -> tuple[str, float]:
    """(command name, user + system CPU seconds) from one line of /proc/.../stat."""
    name = stat[stat.index("(") + 1:stat.rindex(")")]  # the name may hold spaces and parentheses
    fields = stat[stat.rindex(")") + 2:].split()  # fields[0] is the state, field 3 of the line
    return name, (int(fields[11]) + int(fields[12])) / TICK


def thread_times(pid: int) -> dict[int, tuple[str, float]]:
    """{thread id: (name, CPU seconds)} of the process's live threads."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out[int(task.name)] = cpu_seconds((task / "stat").read_text())
        except (OSError, ValueError):  # the thread ended between the listing and the read
            pass
    return out


def process_seconds(pid: int) -> float:
    """CPU seconds of the whole process, its ended threads included."""
    return cpu_seconds(Path(f"/proc/{pid}/stat").read_text())[1]


@dataclass
class ThreadClock:
    """Threads' CPU time since `start`: those alive at the start (the UI's) apart from those started since."""

    pid: int
    before: dict[int, tuple[str, float]] = field(default_factory=dict)
    last: dict[int, tuple[str, float]] = field(default_factory=dict)
    process_before: float = 0.0
    process_last: float = 0.0

    def start(self) -> None:
        """Take the starting point (just before the run starts)."""
        self.before = self.last = thread_times(self.pid)
        self.process_before = self.process_last = process_seconds(self.pid)

    def sample(self) -> None:
        """Read every thread's time now (call every fraction of a second: a thread that ends keeps this)."""
        self.last = {**self.last, **thread_times(self.pid)}
        self.process_last = process_seconds(self.pid)

    def since_start(self, tid: int) -> float:
        """CPU seconds thread `tid` used since the start."""
        return self.last.get(tid, ("", 0.0))[1] - self.before.get(tid, ("", 0.0))[1]

    def report(self) -> dict[str, float | dict[str, float]]:
        """CPU seconds since the start: the main thread, every thread alive at the start, the threads started
        since (the training thread and its OpenMP team, and any worker), and the process."""
        old = sum(self.since_start(tid) for tid in self.before)
        total = self.process_last - self.process_before
        each = sorted(((self.since_start(tid), tid) for tid in self.before), reverse=True)
        return {"main_thread": round(self.since_start(self.pid), 3), "threads_before_start": round(old, 3),
                "threads_started_since": round(total - old, 3), "process": round(total, 3),
                "before_start_each": [[tid, self.before[tid][0], round(seconds, 3)] for seconds, tid in each
                                      if seconds > 0]}
