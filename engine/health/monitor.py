"""What the loop calls for a run's health: layer samples and their notices, the spike guard, rollback's skips.

One object with a few narrow calls, so the loop stays readable: watching() around a forward pass,
before_step()/after_step() around the optimizer step, read() at the read point, check() on the losses read.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import nn

from ..config import RunConfig
from ..events import LayerStats, Notice
from .advice import HealthAdvisor
from .rollback import BatchSkips
from .sampler import HealthSampler
from .spike import SpikeGuard

_NOTHING = nullcontext()


class HealthMonitor:
    """The health side of one run (every part off when its field is 0)."""

    def __init__(self, config: RunConfig, model: nn.Module, scaler: torch.amp.GradScaler | None = None):
        t = config.train
        # Hooks on a compiled model's modules would make torch.compile trace it again: parameters only, then.
        self.sampler = (HealthSampler(model, t.health_interval, scaler, activations=not t.compile)
                        if t.health_interval > 0 else None)
        self.advisor = HealthAdvisor()  # each sample carries its tensors' ranks
        self.spikes = SpikeGuard(t.spike_factor) if t.spike_factor > 0 else None
        self.skips = BatchSkips()
        self.notes: list[Notice] = []
        if self.sampler is not None and t.compile and self.sampler.probe is None:
            self.notes.append(Notice("info", "layer health: no activation statistics with train.compile "
                                             "(hooks would make it compile again); norms and ratios are kept"))

    def watching(self, step: int) -> AbstractContextManager:
        """Context for the forward pass of step `step`'s first batch (hooks only when that step is sampled)."""
        return self.sampler.watching(step) if self.sampler is not None else _NOTHING

    def before_step(self, step: int) -> bool:
        """Call before optimizer step `step`; True when it is sampled (then call after_step() after it)."""
        return self.sampler is not None and self.sampler.before_step(step)

    def after_step(self) -> None:
        """Call after a sampled optimizer step."""
        self.sampler.after_step()  # type: ignore[union-attr]

    def read(self) -> Iterator[LayerStats | Notice]:
        """The samples taken since the last read (one copy from the device), each followed by its notices."""
        if self.sampler is None:
            return
        for stats in self.sampler.read():
            yield stats
            for text in self.advisor.review(stats):
                yield Notice("warning", text)

    def check(self, first_step: int, losses: list[float]) -> tuple[int, float, float] | None:
        """(step, loss, median) of a spike among freshly read step losses, or None."""
        return self.spikes.check(first_step, losses) if self.spikes is not None else None

    def discard(self) -> None:
        """Forget samples not yet read (a rollback returns to before them)."""
        if self.sampler is not None:
            self.sampler.discard()

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps: the advisor's streaks, the spike window and the skipped batches."""
        return {"advice": self.advisor.state_dict(), "spikes": self.spikes.state_dict() if self.spikes else None,
                "skipped": self.skips.state_dict()}

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Continue from state_dict(); a checkpoint without one starts them afresh."""
        state = state or {}
        self.advisor.load_state_dict(state.get("advice") or {})
        if self.spikes is not None:
            self.spikes.load_state_dict(state.get("spikes") or {})
        self.skips.load_state_dict(state.get("skipped") or [])
