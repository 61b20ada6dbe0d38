"""The spike guard: a step loss far above the median of the recent ones is treated like a NaN loss.

The losses are checked where the loop reads them from the device, so the guard adds no host sync; the run
then pauses (cockpit) or stops (headless) at the next step boundary, naming the step that spiked.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from typing import Any

WINDOW = 100  # step losses the median is taken over
MIN_POINTS = 20  # losses needed before the guard judges (the first steps of a run fall fast)


class SpikeGuard:
    """Flags a finite step loss above `factor` times the median of the last WINDOW losses."""

    def __init__(self, factor: float):
        self.factor = factor
        self.recent: deque[float] = deque(maxlen=WINDOW)

    def check(self, first_step: int, losses: list[float]) -> tuple[int, float, float] | None:
        """(step, loss, median) of the first spike among consecutive steps' losses, or None.

        A spike never joins the window: a run that goes on after one is judged against the losses before it.
        Non-finite losses are the divergence check's and are left out too.
        """
        for i, loss in enumerate(losses):
            if not math.isfinite(loss):
                continue
            if len(self.recent) >= MIN_POINTS:
                median = statistics.median(self.recent)
                if median > 0 and loss > self.factor * median:
                    return first_step + i, loss, median
            self.recent.append(loss)
        return None

    def state_dict(self) -> dict[str, Any]:
        """The window, for checkpoints."""
        return {"recent": list(self.recent)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from state_dict()."""
        self.recent = deque(map(float, state.get("recent", [])), maxlen=WINDOW)
