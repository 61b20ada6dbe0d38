"""Early stopping: end a run once an epoch result has not improved for `patience` epochs in a row.

Losses improve by falling, accuracies by rising; a change no larger than `min_delta` is no improvement.
The counter is part of every checkpoint, so a resumed run stops where the uninterrupted one would.
"""

from __future__ import annotations

from typing import Any


def higher_is_better(metric: str) -> bool:
    """Whether `metric` improves by rising (accuracies) rather than falling (losses)."""
    return metric.endswith("accuracy")


class EarlyStopping:
    """Watches one epoch result; update() says when the run should stop."""

    def __init__(self, metric: str, patience: int, min_delta: float = 0.0):
        self.metric = metric
        self.patience = patience
        self.min_delta = min_delta
        self.best: float | None = None
        self.best_epoch = 0
        self.bad_epochs = 0  # epochs in a row without improvement

    def improved(self, value: float) -> bool:
        """Whether `value` beats the best so far by more than min_delta."""
        if self.best is None:
            return True
        if higher_is_better(self.metric):
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def update(self, epoch: int, results: dict[str, float | None]) -> str | None:
        """Take epoch `epoch`'s (1-based) results; the reason to stop now, or None to go on."""
        value = results.get(self.metric)
        if value is None:
            raise KeyError(f"{self.metric} is not among this run's epoch results ({', '.join(sorted(results))})")
        if value == value and self.improved(value):  # NaN never improves
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            return None
        self.bad_epochs += 1
        if self.bad_epochs < self.patience:
            return None
        by = f" by more than {self.min_delta:g}" if self.min_delta else ""
        best = "no finite value yet" if self.best is None else f"best {self.best:.4g} at epoch {self.best_epoch}"
        return f"early stopping: {self.metric} did not improve{by} for {self.bad_epochs} epochs ({best})"

    def state_dict(self) -> dict[str, Any]:
        """The counter and the best value so far, for checkpoints."""
        return {"metric": self.metric, "best": self.best, "best_epoch": self.best_epoch,
                "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint's counter (one that watched another metric starts afresh)."""
        if state.get("metric") != self.metric:
            return
        self.best, self.best_epoch = state.get("best"), int(state.get("best_epoch", 0))
        self.bad_epochs = int(state.get("bad_epochs", 0))
