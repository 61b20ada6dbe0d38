"""Events the training loop emits: frozen, plain-data facts a UI or logger consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RunStarted:
    """Training set up and is about to take its first step."""

    config: dict[str, Any]
    run_dir: str | None
    device: str
    device_name: str
    params_total: int
    params_trainable: int
    train_size: int
    val_size: int
    test_size: int
    steps_per_epoch: int
    total_steps: int
    epochs: int
    class_names: tuple[str, ...]
    input_shape: tuple[int, ...]
    resident: bool
    start_step: int = 0
    start_epoch: int = 0
    threads: int = 0  # torch's intra-op threads for this run
    threads_why: str = ""  # train.threads, OMP_NUM_THREADS, or how auto chose
    task_kind: str = "classification"  # anything else has no accuracy: loss and the named metrics
    metrics: tuple[str, ...] = ()  # a task's named metrics, each charted and logged
    task: str = ""  # the task's name; empty for a built-in data set


@dataclass(frozen=True)
class StepMetrics:
    """Per-step values read from the device at the log interval, batched for the consumer."""

    steps: tuple[int, ...]
    losses: tuple[float, ...]
    lrs: tuple[float, ...]
    epoch: int
    epoch_step: int
    samples_per_s: float
    elapsed: float
    metrics: dict[str, tuple[float, ...]] = field(default_factory=dict)  # per named metric, one value per step
    grad_norms: tuple[float, ...] = ()  # global gradient norm before clipping, one per step (with train.clip_norm)

    @property
    def last_step(self) -> int:
        """Global step of the newest point."""
        return self.steps[-1]


@dataclass(frozen=True)
class Evaluated:
    """A pass over an evaluation split finished: loss, accuracy and the confusion matrix, or named metrics."""

    split: str  # "val", "test", or "ema_val" / "ema_test" for the averaged weights
    step: int
    epoch: int
    loss: float
    accuracy: float | None  # None (and no confusion matrix) when the work is not classification
    samples: int
    confusion: tuple[tuple[int, ...], ...]
    wrong: tuple[tuple[int, int, int], ...] = ()  # (index in split, predicted, true), first few
    mid_epoch: bool = False
    metrics: dict[str, float] = field(default_factory=dict)  # a task's named metrics over the split


@dataclass(frozen=True)
class EpochEnded:
    """An epoch finished and was evaluated."""

    epoch: int  # 1-based
    step: int
    train_loss: float
    train_accuracy: float | None  # None when the work is not classification
    test_loss: float | None
    test_accuracy: float | None
    val_loss: float | None
    val_accuracy: float | None
    seconds: float
    lr: float
    train_metrics: dict[str, float] = field(default_factory=dict)  # a task's named metrics, mean over the epoch
    test_metrics: dict[str, float] = field(default_factory=dict)
    val_metrics: dict[str, float] = field(default_factory=dict)
    # The same splits evaluated with the averaged weights (train.ema_decay > 0), else None.
    ema_test_loss: float | None = None
    ema_test_accuracy: float | None = None
    ema_val_loss: float | None = None
    ema_val_accuracy: float | None = None


@dataclass(frozen=True)
class Paused:
    """The loop is holding at a step boundary."""

    step: int


@dataclass(frozen=True)
class Resumed:
    """The loop continued after a pause."""

    step: int


@dataclass(frozen=True)
class LrChanged:
    """The optimizer's learning rate was set by a command; applies from the next step."""

    step: int
    lr: float


@dataclass(frozen=True)
class TrainableChanged:
    """Parameters under a module were frozen or unfrozen by a command; applies from the next step."""

    step: int
    module: str  # qualified name; "" is the whole model
    trainable: bool
    params_trainable: int
    params_total: int


@dataclass(frozen=True)
class CheckpointSaved:
    """A checkpoint file is durably on disk."""

    path: str
    step: int
    epoch: int
    reason: str
    save_id: str = ""  # unique per save: the run log marks where this checkpoint's state was taken


@dataclass(frozen=True)
class CommandApplied:
    """A command sent with a ticket took effect at `step`, or was refused (`error` says why)."""

    ticket: str
    step: int
    error: str = ""


@dataclass(frozen=True)
class Notice:
    """Something worth telling the user that is not an error (a warning, a refused command)."""

    level: str  # "info" | "warning" | "error"
    text: str


@dataclass(frozen=True)
class Diverged:
    """The loss became NaN or infinite; the run stops or pauses, and no checkpoint is written from here on."""

    step: int
    value: float
    action: str  # "stop" | "pause"
    checkpoint: str = ""  # the last good checkpoint, which stays; "" when the run saved none


@dataclass(frozen=True)
class RunFinished:
    """The run ended normally or by a stop command."""

    step: int
    epoch: int
    seconds: float
    stopped: bool
    train_loss: float | None = None
    test_loss: float | None = None
    test_accuracy: float | None = None
    best_test_accuracy: float | None = None  # the averaged weights' when train.ema_decay > 0 (they pick best.pt)
    reason: str = "completed"
    state: str = "finished"  # "finished" | "stopped" | "diverged"
    test_metrics: dict[str, float] = field(default_factory=dict)  # the last epoch's, for a task


@dataclass(frozen=True)
class RunFailed:
    """The run raised; the message says why, the traceback (empty for plain input errors) where."""

    message: str
    traceback: str
    step: int = 0
    user_error: bool = False


Event = (RunStarted | StepMetrics | Evaluated | EpochEnded | Paused | Resumed | LrChanged | TrainableChanged
         | CheckpointSaved | CommandApplied | Notice | Diverged | RunFinished | RunFailed)
TERMINAL = (RunFinished, RunFailed)
