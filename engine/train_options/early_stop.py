"""Early stopping: end a run once an epoch result has not improved for `patience` epochs in a row.

A result is named split_value: train_loss, val_accuracy, test_mae (a task's metric), ema_test_loss (the averaged
weights'). Losses and other metrics improve by falling, accuracies by rising (train.early_stop_mode can say
otherwise); a change no larger than `min_delta` is no improvement. The counter is part of every checkpoint,
so a resumed run stops where the uninterrupted one would.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError, FieldError
from ..evaluate import EvalResult
from ..events import EpochEnded

FIELD = "train.early_stop_metric"


def higher_is_better(metric: str, mode: str = "auto") -> bool:
    """Whether `metric` improves by rising; mode "auto" says so for accuracies only."""
    return mode == "max" or (mode == "auto" and metric.endswith("accuracy"))


def check_metric(metric: str, splits: tuple[str, ...], names: tuple[str, ...], classification: bool,
                 averaged: bool) -> None:
    """ConfigError unless a run with these evaluation splits and named metrics reports `metric` every epoch."""
    plain = metric.removeprefix("ema_")
    split, _, value = plain.partition("_")
    if metric.startswith("ema_") and not averaged:
        raise ConfigError([FieldError(FIELD, metric, "needs the weight average: set train.ema_decay")])
    if split not in ("train", *splits):
        hint = ": set data.val_split" if split == "val" else ""
        raise ConfigError([FieldError(FIELD, metric, f"this run has no {split} split{hint}")])
    known = ("loss", *(("accuracy",) if classification else ()), *names)
    if value not in known:
        raise ConfigError([FieldError(FIELD, metric, f"this run reports {split}_{', {split}_'.join(known)}"
                                      .replace("{split}", split))])


def epoch_results(ended: EpochEnded, averaged: dict[str, EvalResult]) -> dict[str, float]:
    """An epoch's results by name, the averaged weights' evaluations (by split) included."""
    results: dict[str, float | None] = {}
    for split in ("train", "val", "test"):
        results[f"{split}_loss"] = getattr(ended, f"{split}_loss")
        results[f"{split}_accuracy"] = getattr(ended, f"{split}_accuracy")
        results.update((f"{split}_{name}", value) for name, value in getattr(ended, f"{split}_metrics").items())
    for split, result in averaged.items():
        results.update({f"ema_{split}_loss": result.loss, f"ema_{split}_accuracy": result.accuracy})
        results.update((f"ema_{split}_{name}", value) for name, value in result.metrics.items())
    return {name: value for name, value in results.items() if value is not None}


class EarlyStopping:
    """Watches one epoch result; update() says when the run should stop."""

    def __init__(self, metric: str, patience: int, min_delta: float = 0.0, mode: str = "auto"):
        self.metric = metric
        self.patience = patience
        self.min_delta = min_delta
        self.higher = higher_is_better(metric, mode)
        self.best: float | None = None
        self.best_epoch = 0
        self.bad_epochs = 0  # epochs in a row without improvement

    def improved(self, value: float) -> bool:
        """Whether `value` beats the best so far by more than min_delta."""
        if self.best is None:
            return True
        if self.higher:
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def update(self, epoch: int, results: dict[str, float]) -> str | None:
        """Take epoch `epoch`'s (1-based) results; the reason to stop now, or None to go on."""
        value = results.get(self.metric, float("nan"))  # a result missing this epoch counts as no improvement
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
