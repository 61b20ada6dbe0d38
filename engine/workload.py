"""What the training loop trains: the one interface between the loop and a kind of work.

Two implementations: the built-in image classification (setup.Setup: resident uint8 data, batched
augmentation, the frozen-backbone probe) and a user's Task (tasks.setup.TaskSetup, through a DataLoader).
The loop owns the order of things (steps, commands, checkpoints); a workload owns data, loss and evaluation.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

from .config import RunConfig
from .evaluate import EvalResult


@dataclass
class StepOutput:
    """What one training batch gave: everything still on the device, nothing read yet."""

    loss: torch.Tensor  # scalar, with its autograd graph
    metrics: tuple[torch.Tensor, ...] = ()  # detached scalars, in the workload's metric_names order
    correct: torch.Tensor | None = None  # classification: right predictions in the batch
    samples: int = 0  # batch size (host metadata, no sync)


@dataclass(frozen=True)
class DataShape:
    """What RunStarted reports about the data."""

    train_size: int
    val_size: int
    test_size: int
    class_names: tuple[str, ...]
    input_shape: tuple[int, ...]
    resident: bool
    kind: str = "classification"
    metrics: tuple[str, ...] = ()  # every named metric: training's, then evaluation's own
    name: str = ""  # the task's name; empty for a built-in data set


class Workload(Protocol):
    """The objects and operations the loop works with."""

    config: RunConfig
    device: torch.device
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scheduler_per_step: bool
    scaler: torch.amp.GradScaler | None
    route_changes: int  # changes when a freeze switches what training batches are; the loop then fetches again

    @property
    def metric_names(self) -> tuple[str, ...]:
        """Names of the values StepOutput.metrics carries, in order."""

    @property
    def is_classification(self) -> bool:
        """Whether steps count correct predictions and evaluations give accuracy and a confusion matrix."""

    @property
    def batches_per_epoch(self) -> int | None:
        """Training batches per epoch; None for an iterable dataset without a length (the epoch ends when it does)."""

    @property
    def splits(self) -> tuple[str, ...]:
        """The evaluation splits there are, of "val" and "test"."""

    def describe(self) -> DataShape:
        """Sizes and names for RunStarted."""

    def autocast(self) -> AbstractContextManager:
        """Mixed-precision context for forward passes (a no-op in fp32)."""

    def train_mode(self) -> None:
        """Put the model in training mode for the step loop."""

    def order(self, epoch: int) -> torch.Tensor:
        """Sample order of `epoch`, a pure function of (seed, epoch) (0..n-1 when the data set orders itself)."""

    def epoch_batches(self, epoch: int, start: int, order: torch.Tensor | None) -> Iterator[Any]:
        """Batches of `epoch` from batch `start` on, on the training device."""

    def loss_and_metrics(self, batch: Any, step: int) -> StepOutput:
        """Forward one batch at global `step` (called under autocast())."""

    def evaluate_split(self, split: str) -> EvalResult:
        """Loss and metrics (accuracy and confusion for classification) over one split."""

    def trainable_changed(self) -> None:
        """Follow a freeze or unfreeze the loop applied at a step boundary."""

    def unreadable_up_front(self) -> dict[str, str]:
        """Files found unreadable before training (path -> why), each replaced by a readable one."""

    def unreadable_sources(self) -> tuple[dict[str, str], ...]:
        """Growing path -> why records of files replaced while training; the loop reports what is new."""

    def data_state(self) -> dict[str, Any] | None:
        """What a checkpoint needs to continue the data where it is (an iterable dataset's position)."""

    def load_data_state(self, state: dict[str, Any] | None) -> None:
        """Continue from data_state()."""

    @property
    def parameter_counts(self) -> tuple[int, int]:
        """(total, trainable)."""
