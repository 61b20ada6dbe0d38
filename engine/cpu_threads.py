"""Torch's intra-op thread count for a run: train.threads, or a choice that holds up on a shared machine.

OpenMP threads that outnumber the free cores wait on each other for whole time slices: on a 2-core machine
with another job keeping both cores busy, torch's default 2 threads trained 9-17x slower than 1 thread;
on the same machine idle, 2 threads were 1.2-1.7x faster than 1. So "auto" (train.threads = 0) gives a
run one thread per core that other processes left idle while it was being set up (OMP_NUM_THREADS, when
set, is the user's own choice and wins). The choice is made once per start or resume: a thread count
changes the order of float sums, so a run that must repeat bit for bit sets train.threads.

torch.set_num_threads is process-wide: the training thread sets it when the run starts and puts the
previous count back when the run ends, so other work in the process (the cockpit's previews) keeps its own.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

PROBE_SECONDS = 0.1  # the shortest window the load of other processes is measured over (10 ticks)


@dataclass(frozen=True)
class ThreadChoice:
    """How many intra-op threads a run uses, and why."""

    threads: int
    why: str  # "train.threads", "OMP_NUM_THREADS" or "auto: 1 of 2 cores idle"


def cores() -> int:
    """Cores this process may run on (its CPU affinity, where the system tells)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class LoadProbe:
    """Measures how many cores other processes keep busy from its creation until `busy_cores()`.

    Reads the machine's CPU time from /proc/stat and subtracts this process's own; elsewhere it knows
    nothing and reports None.
    """

    def __init__(self) -> None:
        self.start = _sample()

    def busy_cores(self, min_seconds: float = PROBE_SECONDS) -> float | None:
        """Cores other processes used on average since the probe started (waits for `min_seconds` in all)."""
        if self.start is None:
            return None
        wait = min_seconds - (time.monotonic() - self.start[0])
        if wait > 0:
            time.sleep(wait)  # measuring, not waiting on work: a window too short says nothing
        end = _sample()
        if end is None:
            return None
        wall, busy, ours = (b - a for a, b in zip(self.start, end))
        return max(0.0, (busy - ours) / wall) if wall > 0 else None


def _sample() -> tuple[float, float, float] | None:
    """(monotonic time, CPU seconds used by the whole machine, CPU seconds used by this process)."""
    try:
        with open("/proc/stat", "rb") as fh:
            fields = fh.readline().split()[1:]
        ticks = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, AttributeError):
        return None
    values = [int(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle and iowait
    guest = sum(values[8:10])  # already counted in user and nice
    times = os.times()
    return time.monotonic(), (sum(values) - idle - guest) / ticks, times.user + times.system


def choose(requested: int, device: torch.device, probe: LoadProbe | None = None) -> ThreadChoice:
    """The thread count for a run on `device`: `requested` when set, else OMP_NUM_THREADS, else auto."""
    if requested > 0:
        return ThreadChoice(requested, "train.threads")
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return ThreadChoice(int(env), "OMP_NUM_THREADS")
    available = cores()
    if device.type != "cpu":  # the GPU computes; the CPU threads feed it and may use every core
        return ThreadChoice(available, "auto")
    busy = probe.busy_cores() if probe is not None else None
    if busy is None:
        return ThreadChoice(available, "auto")
    idle = available - busy
    threads = max(1, min(available, int(idle + 0.5)))
    return ThreadChoice(threads, f"auto: {max(0.0, idle):.1f} of {available} cores idle")


@contextmanager
def using(choice: ThreadChoice) -> Iterator[ThreadChoice]:
    """Set torch's intra-op threads for the calling thread's run; the previous count comes back after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(choice.threads)
    try:
        yield choice
    finally:
        torch.set_num_threads(previous)
