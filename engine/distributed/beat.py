"""A rank's heartbeat: its step, time per step, time waiting for data and memory, measured on the host.

Step time is the host time from a batch in hand to the end of its step (forward, backward with DDP's
gradient all-reduce, optimizer); data wait is the host time spent getting the next batch. Both are means over
the steps since the last exchange, so they cost two clock reads a step and nothing on the device.
"""

from __future__ import annotations

import os
import time

import torch

MEMORY_SECONDS = 1.0  # read the memory at most once a second


class Beat:
    """Accumulates one rank's timings between exchanges."""

    def __init__(self, device: torch.device):
        self.device = device
        self.mark = time.perf_counter()  # when this rank last started waiting for a batch
        self.started = self.mark
        self.busy = 0.0
        self.waiting = 0.0
        self.steps = 0
        self.memory = 0
        self._memory_clock = 0.0
        self._process = None

    def batch_ready(self) -> None:
        """A batch is in hand: the time since the last mark was spent waiting for data."""
        now = time.perf_counter()
        self.waiting += now - self.mark
        self.started = now

    def step_done(self) -> None:
        """The batch's step is done."""
        now = time.perf_counter()
        self.busy += now - self.started
        self.steps += 1
        self.mark = now

    def restart(self) -> None:
        """Time from here on is not data wait (a step boundary, a pause or an evaluation ended)."""
        self.mark = time.perf_counter()

    def take(self) -> tuple[float, float, int]:
        """(mean step seconds, mean data-wait seconds, memory bytes) since the last take; the sums restart."""
        steps = max(1, self.steps)
        out = (self.busy / steps, self.waiting / steps, self._read_memory())
        self.busy = self.waiting = 0.0
        self.steps = 0
        return out

    def _read_memory(self) -> int:
        now = time.perf_counter()
        if now - self._memory_clock >= MEMORY_SECONDS:
            self._memory_clock = now
            self.memory = self._memory_now()
        return self.memory

    def _memory_now(self) -> int:
        """Memory the tensors of this rank take on its GPU, or the process's resident memory on the CPU."""
        if self.device.type == "cuda":
            return int(torch.cuda.memory_allocated(self.device))  # the allocator's count: no device sync
        try:
            if self._process is None:
                import psutil

                self._process = psutil.Process(os.getpid())
            return int(self._process.memory_info().rss)
        except Exception:  # noqa: BLE001 - a memory figure is never worth a failed run
            return 0
