"""Linear learning-rate warm-up in front of the configured schedule.

Optimizer step s (1-based) of the first W uses s/W of the learning rate the optimizer holds, so the ramp
starts near 0 and step W uses the full rate. The scaled rate exists only while the optimizer steps:
the schedule, live changes and checkpoints always see the unscaled one, so a rate set during warm-up is
the ramp's target and the schedule carries on from its own state once the ramp is over. The ramp depends
on the step count alone, which checkpoints hold, so a resumed run continues it exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


class Warmup:
    """The ramp over the first `steps` optimizer steps (0: none)."""

    def __init__(self, steps: int):
        self.steps = steps

    def factor(self, step: int) -> float:
        """Share of the learning rate that optimizer step `step` (1-based) uses."""
        if step >= self.steps:
            return 1.0
        return step / self.steps

    def active(self, step: int) -> bool:
        """Whether optimizer step `step` (1-based) is still on the ramp."""
        return step < self.steps

    @contextmanager
    def applied(self, optimizer: torch.optim.Optimizer, step: int) -> Iterator[float]:
        """Scale every group's rate for optimizer step `step` and put the exact rates back afterwards;
        yields the first group's rate as the step uses it."""
        if not self.active(step):
            yield float(optimizer.param_groups[0]["lr"])
            return
        factor = self.factor(step)
        saved = [group["lr"] for group in optimizer.param_groups]
        for group, lr in zip(optimizer.param_groups, saved):
            group["lr"] = lr * factor
        try:
            yield float(optimizer.param_groups[0]["lr"])
        finally:
            for group, lr in zip(optimizer.param_groups, saved):
                group["lr"] = lr
