"""A user's Task as the loop's workload: its model, batches, loss contract and optimizer, built and checked.

Setup runs one real batch through the loss before anything is trained or written: it checks the Dataset and
the loss contract, learns the names of the metrics, and materialises lazy modules so the optimizer sees
every parameter. A task that breaks its contract therefore fails before a run folder exists.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .. import config as cfgmod
from ..config import TASK_FROM_FIT, RunConfig
from ..device import resolve_device
from ..errors import ConfigError, FieldError, TaskError
from ..evaluate import EvalResult
from ..fastpath import autocast, resolve_precision, use_channels_last
from ..models.registry import apply_freeze_edits, count_parameters, freeze_backbone
from ..models.user import LOAD_LOCK, USER_CODE_ERRORS, where
from ..optim import build_optimizer, build_scheduler
from ..task import Task, check_task, load_task
from ..workload import DataShape, StepOutput
from .batches import TaskBatches
from .contract import (
    batch_size,
    check_logits,
    check_names,
    first_tensor,
    function_name,
    inputs_and_labels,
    labels_of,
    metric_values,
    split_loss_output,
)


def cross_entropy(model: nn.Module, batch: Any) -> torch.Tensor:
    """The default loss of a classification task: cross-entropy of model(inputs) against the labels."""
    inputs, labels = inputs_and_labels(batch)
    return F.cross_entropy(model(inputs), labels)


class OutputCapture:
    """Keeps the model's output of its first call after arm(): a classification task's logits."""

    def __init__(self, model: nn.Module):
        self.armed = False
        self.output: Any = None
        previous = getattr(model, "_ptviz_capture", None)
        if previous is not None:  # a model trained again (ptviz.fit's cockpit started twice) keeps one hook
            previous.handle.remove()
        self.handle = model.register_forward_hook(self._hook)
        model._ptviz_capture = self  # type: ignore[assignment]

    def _hook(self, module: nn.Module, args: Any, output: Any) -> None:
        if self.armed:
            self.output, self.armed = output, False

    def arm(self) -> None:
        """Catch the next call's output."""
        self.armed, self.output = True, None

    def take(self) -> Any:
        """The caught output (None when the model was not called)."""
        output, self.output, self.armed = self.output, None, False
        return output


class TaskSetup:
    """The workload of a user's Task (see workload.Workload)."""

    def __init__(self, config: RunConfig, task: Task, device: torch.device):
        self.config = config
        self.task = task
        self.device = device
        self.model: nn.Module = task.model
        self.kind = task.resolved_kind
        self.is_classification = task.is_classification
        self.loss_fn = task.loss or cross_entropy
        self.who_loss = function_name("task.loss", task.loss) if task.loss else "the default cross-entropy loss"
        self.who_metrics = function_name("task.metrics", task.metrics)
        d, seed = config.data, config.train.seed
        self.train = TaskBatches(task.train, "train", d.batch_size, device, shuffle=True, seed=seed,
                                 workers=d.workers, collate=task.collate)
        self.split_batches = {name: TaskBatches(data, name, d.test_batch_size, device, shuffle=False, seed=seed,
                                                workers=d.workers, collate=task.collate)
                              for name, data in (("val", task.val), ("test", task.test)) if data is not None}
        self.capture = OutputCapture(self.model) if self.is_classification else None
        self.metric_names: tuple[str, ...] = ()
        self.eval_metric_names: tuple[str, ...] = ()
        self.class_names = tuple(str(n) for n in task.class_names)
        self.input_shape: tuple[int, ...] = ()
        self.precision = "fp32"
        self.optimizer: torch.optim.Optimizer = None  # type: ignore[assignment]  # set by build_task
        self.scheduler: Any = None
        self.scheduler_per_step = False
        self.scaler: torch.amp.GradScaler | None = None

    # ------------------------------------------------------------------------- one batch

    def forward(self, batch: Any, step: int | None = None) -> tuple[torch.Tensor, Mapping[str, Any], Any]:
        """(loss, named values, logits or None) of one batch; the user's errors become TaskErrors."""
        if self.capture is not None:
            self.capture.arm()
        try:
            out = self.loss_fn(self.model, batch)
        except TaskError:
            raise
        except USER_CODE_ERRORS as exc:
            raise self._user_error(self.who_loss, exc, step) from None
        loss, extras = split_loss_output(out, self.who_loss)
        logits = self.capture.take() if self.capture is not None else None
        return loss, extras, logits

    def eval_metrics(self, batch: Any) -> Mapping[str, Any]:
        """The task's evaluation metrics of one batch."""
        try:
            return self.task.metrics(self.model, batch)  # type: ignore[misc]
        except USER_CODE_ERRORS as exc:
            raise self._user_error(self.who_metrics, exc, None) from None

    @staticmethod
    def _user_error(who: str, exc: BaseException, step: int | None) -> TaskError:
        at = where(exc)
        when = f" at step {step + 1}" if step is not None else ""
        err = TaskError(f"{who} raised{when}: {type(exc).__name__}: {exc}" + (f" ({at})" if at else ""))
        err.details = "".join(traceback.format_exception(exc))
        return err

    def check_contract(self) -> None:
        """Run the first batch of each split through the loss (and metrics) in eval mode: names, lazy modules."""
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                batch = self.train.first_batch()
                _, extras, logits = self.forward(batch)
                self.metric_names = check_names(extras, self.who_loss)
                self.eval_metric_names = self.metric_names
                if self.is_classification:
                    logits = check_logits(logits, labels_of(batch))
                    self.class_names = self.class_names or tuple(str(i) for i in range(logits.shape[1]))
                inputs = inputs_and_labels(batch)[0] if self.is_classification else batch
                first = first_tensor(inputs)
                self.input_shape = tuple(first.shape[1:]) if first is not None and first.ndim else ()
                for name, split in self.split_batches.items():
                    batch = split.first_batch()
                    self.forward(batch)
                    if self.task.metrics is not None:
                        self.eval_metric_names = check_names(self.eval_metrics(batch), self.who_metrics)
        finally:
            self.model.train(was_training)

    # ------------------------------------------------------------------------- the workload interface

    @property
    def batches_per_epoch(self) -> int | None:
        """Training batches per epoch (None for an iterable dataset without a length)."""
        return self.train.batches_per_epoch

    @property
    def splits(self) -> tuple[str, ...]:
        """The evaluation splits the task has."""
        return tuple(name for name in ("val", "test") if name in self.split_batches)

    @property
    def all_metric_names(self) -> tuple[str, ...]:
        """Training's named metrics, then evaluation's own."""
        return tuple(dict.fromkeys(self.metric_names + self.eval_metric_names))

    def describe(self) -> DataShape:
        """Sizes and names for RunStarted."""
        sizes = {name: split.samples or 0 for name, split in self.split_batches.items()}
        return DataShape(self.train.samples or 0, sizes.get("val", 0), sizes.get("test", 0), self.class_names,
                         self.input_shape, False, kind=self.kind, metrics=self.all_metric_names,
                         name=self.task.name or "task")

    def autocast(self) -> AbstractContextManager:
        """Mixed-precision context for forward passes (a no-op in fp32)."""
        return autocast(self.precision, self.device)

    def train_mode(self) -> None:
        """Training mode for the step loop."""
        self.model.train()

    def order(self, epoch: int) -> torch.Tensor:
        """Sample order of `epoch` (0..n-1 for an iterable dataset, which orders itself)."""
        return self.train.order(epoch)

    def epoch_batches(self, epoch: int, start: int, order: torch.Tensor | None) -> Iterator[Any]:
        """Batches of `epoch` from batch `start` on, on the device."""
        return self.train.epoch(epoch, start, order)

    def loss_and_metrics(self, batch: Any, step: int) -> StepOutput:
        """The loss of one batch, its named values and (classification) right predictions; no host sync."""
        loss, extras, logits = self.forward(batch, step)
        metrics = metric_values(extras, self.metric_names, self.who_loss, step + 1)
        correct = None
        if self.is_classification:
            labels = labels_of(batch)
            correct = (check_logits(logits, labels).argmax(1) == labels).sum()
        return StepOutput(loss, metrics, correct, batch_size(batch))

    def evaluate_split(self, split: str) -> EvalResult:
        """Loss and metrics over one split (accuracy and confusion for classification)."""
        from .evaluate import evaluate

        return evaluate(self, split)

    route_changes = 0  # a task's batches are always what its Dataset gives

    def trainable_changed(self) -> None:
        """A freeze changes nothing about a task's batches; frozen parameters just get no gradient."""

    def unreadable_up_front(self) -> dict[str, str]:
        """Nothing: a sample the user's Dataset cannot read fails the run with the Dataset's own error."""
        return {}

    def unreadable_sources(self) -> tuple[dict[str, str], ...]:
        """None (see unreadable_up_front)."""
        return ()

    def data_state(self) -> dict[str, Any] | None:
        """An iterable dataset's position."""
        return self.train.state()

    def load_data_state(self, state: dict[str, Any] | None) -> None:
        """Continue an iterable dataset from data_state()."""
        self.train.resume_state = state

    @property
    def parameter_counts(self) -> tuple[int, int]:
        """(total, trainable)."""
        return count_parameters(self.model)


def build_task(config: RunConfig, task: Task | None = None) -> TaskSetup:
    """Validate `config`, get the task (given, or from the factory config.data.task names) and check it."""
    from ..setup import seed_everything

    config = cfgmod.check(config).copy()
    device = resolve_device(config.train.device)
    if config.train.precision == "fp16" and device.type != "cuda":
        raise ConfigError([FieldError("train.precision", "fp16", f"fp16 needs CUDA, the device is {device.type}; "
                                      "use bf16 or fp32")])
    if task is None and config.data.task == TASK_FROM_FIT:
        raise TaskError("data.task: this run trained a Task handed to ptviz.fit() in a script; continue it "
                        "from that script with ptviz.fit(task, resume=RUN_DIR)")
    # Held from seeding to the first batch: a cockpit preview of the task (another thread) draws from the same
    # random streams, and must not run in between.
    with LOAD_LOCK:
        seed_everything(config.train.seed)  # before the factory builds the model: its initial weights repeat
        task = load_task(config.data.task, config) if task is None else check_task(task, "ptviz.fit")
        task.model.to(device)
        if config.model.freeze_backbone:
            freeze_backbone(task.model)
        apply_freeze_edits(task.model, config.model.freeze)
        setup = TaskSetup(config, task, device)
        setup.check_contract()
    setup.precision = resolve_precision(config.train.precision, device, setup.model)
    use_channels_last(setup.model, device)
    if config.train.compile:
        setup.model = torch.compile(setup.model)  # type: ignore[assignment]
    setup.optimizer = _optimizer(task, setup.model, config)
    batches = setup.batches_per_epoch  # optimizer steps: one per train.accumulate batches
    per_epoch = -(-batches // config.train.accumulate) if batches else config.train.max_steps or 1
    setup.scheduler, setup.scheduler_per_step = build_scheduler(config.optim, setup.optimizer, config.train.epochs,
                                                                per_epoch)
    setup.scaler = torch.amp.GradScaler("cuda") if setup.precision == "fp16" else None
    return setup


def _optimizer(task: Task, model: nn.Module, config: RunConfig) -> torch.optim.Optimizer:
    if task.optimizer is None:
        return build_optimizer(config.optim, model)
    who = function_name("task.optimizer", task.optimizer)
    try:
        optimizer = task.optimizer(model)
    except USER_CODE_ERRORS as exc:
        raise TaskSetup._user_error(who, exc, None) from None
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TaskError(f"{who} returned a {type(optimizer).__name__}, not a torch.optim.Optimizer")
    return optimizer
