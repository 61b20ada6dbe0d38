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
    start_epoch: int = 0  # 0-based epoch the next step trains in
    epoch: int = 1  # 1-based epoch the last step belongs to (1 before the first): start_epoch at an epoch boundary
    threads: int = 0  # torch's intra-op threads for this run
    threads_why: str = ""  # train.threads, OMP_NUM_THREADS, or how auto chose
    task_kind: str = "classification"  # anything else has no accuracy: loss and the named metrics
    metrics: tuple[str, ...] = ()  # a task's named metrics, each charted and logged
    task: str = ""  # the task's name; empty for a built-in data set
    world_size: int = 1  # ranks training together (torchrun); 1 for a single process
    global_batch: int = 0  # samples per optimizer step over every rank (data.batch_size × accumulate × ranks)
    restart: int = 0  # how often torchrun's agent restarted this job before this start


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
    """The loss became NaN or infinite, or spiked (`median` set); the run stops or pauses, and no checkpoint is
    written until it is rolled back (or, after a spike, resumed as it is)."""

    step: int
    value: float
    action: str  # "stop" | "pause"
    median: float | None = None  # a spike: the running median of the step loss the value was compared with
    checkpoint: str = ""  # the last good checkpoint, which stays; "" when the run saved none


@dataclass(frozen=True)
class Histogram:
    """A tensor's values in buckets, as TensorBoard's add_histogram_raw takes them."""

    tag: str  # "weights/fc1.weight", "grads/fc1.weight"
    min: float
    max: float
    num: int
    sum: float
    sum_squares: float
    bucket_limits: tuple[float, ...]  # right edge of each bucket
    bucket_counts: tuple[float, ...]


@dataclass(frozen=True)
class LayerStats:
    """Per-layer health of one sampled optimizer step (train.health_interval): norms per parameter tensor that
    had a gradient, and statistics per activation module (ReLU and friends) of the step's first batch."""

    step: int
    params: tuple[str, ...]  # parameter names as in named_parameters()
    grad_norms: tuple[float, ...]  # L2 norm of each gradient before clipping (unscaled under fp16)
    weight_norms: tuple[float, ...]  # L2 norm of each tensor before the step
    update_norms: tuple[float, ...]  # L2 norm of what the step changed, ||new - old||
    activations: tuple[str, ...] = ()  # module names
    dead: tuple[float, ...] = ()  # share of units that never fired over the batch (saturated, for tanh/sigmoid)
    act_means: tuple[float, ...] = ()
    act_stds: tuple[float, ...] = ()
    histograms: tuple[Histogram, ...] = ()  # for TensorBoard only (never in metrics.jsonl)
    ranks: tuple[int, ...] = ()  # dimensions of each parameter tensor (the ratio rule is for 2 or more)

    def update_ratios(self) -> tuple[float, ...]:
        """||update|| / ||weights|| per parameter tensor (inf for a tensor that was all zeros)."""
        return tuple(u / w if w > 0 else (0.0 if u == 0 else float("inf"))
                     for u, w in zip(self.update_norms, self.weight_norms))


@dataclass(frozen=True)
class LrSwept:
    """A learning-rate sweep (lr-find) on a copy of the weights and optimizer went on, or ended (`done`)."""

    lrs: tuple[float, ...]
    losses: tuple[float, ...]  # each step's raw loss
    smoothed: tuple[float, ...]  # centred moving average (no lag), the curve the suggestion is taken on
    suggestion: float | None  # the steepest descent of the smoothed loss; None until found
    done: bool
    reason: str = ""  # why it ended: "swept to 10", "the loss ran away at lr 3.2", "stopped"
    step: int = 0  # the run's step it was taken at (0 before a run)


@dataclass(frozen=True)
class RolledBack:
    """The live run went back to a checkpoint in place: weights, optimizer, position and RNG; the logs were cut
    back to it."""

    from_step: int
    to_step: int
    to_epoch: int  # 0-based epoch the checkpoint was taken in
    checkpoint: str  # file name
    spike_step: int | None = None  # the step whose loss spiked or diverged, if any
    skipped: tuple[tuple[int, int], ...] = ()  # (epoch, batch) positions that will be left out
    lr: float | None = None  # the learning rate set with the rollback, if any


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
    replicas: tuple[str, ...] = ()  # several ranks: each one's final weights as a sha256 (equal when in step)


@dataclass(frozen=True)
class RunFailed:
    """The run raised; the message says why, the traceback (empty for plain input errors) where."""

    message: str
    traceback: str
    step: int = 0
    user_error: bool = False
    rank: int | None = None  # the rank that raised first, in a multi-rank run


@dataclass(frozen=True)
class RanksReported:
    """Every rank's heartbeat, as rank 0 last heard it (multi-rank runs), one entry per rank in each tuple."""

    step: int  # rank 0's step
    hosts: tuple[str, ...]
    devices: tuple[str, ...]
    steps: tuple[int, ...]
    step_seconds: tuple[float, ...]  # mean host time per step since the previous report
    data_wait: tuple[float, ...]  # mean host time per step spent waiting for a batch
    memory: tuple[int, ...]  # bytes: allocated by torch on the rank's GPU, or the process's resident memory
    lrs: tuple[float, ...] = ()  # the learning rate each rank's optimizer holds
    paused: bool = False  # the ranks hold at a pause (their steps are where each one waits)


Event = (RunStarted | StepMetrics | Evaluated | EpochEnded | Paused | Resumed | LrChanged | TrainableChanged
         | CheckpointSaved | CommandApplied | Notice | Diverged | LayerStats | LrSwept | RolledBack | RunFinished
         | RunFailed | RanksReported)
TERMINAL = (RunFinished, RunFailed)
