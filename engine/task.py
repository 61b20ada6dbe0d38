"""`Task`: your model, datasets and loss, trained, charted and checkpointed by ptviz like a built-in recipe.

A Task comes from a factory named on the command line (`ptviz-tui --task path/to/task.py:make`, or
`package.module:make`), which receives the run's RunConfig so the form, flags and TOML still set batch
size, learning rate and epochs; or it is handed to `ptviz.fit(task)` from a script.

The loss contract: `loss(model, batch)` returns a scalar tensor, or `(loss, {"name": tensor, ...})` whose
named values (one number per batch, still on the device) become charts and log columns. They are read
with the loss at the log interval, so returning them costs no host sync.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

import torch
from torch import nn
from torch.utils.data import Dataset

from .errors import TaskError

Batch = Any
"""What the DataLoader yields for a batch (tensors moved to the training device): a tuple, dict, tensor..."""
LossOutput = Union[torch.Tensor, tuple[torch.Tensor, Mapping[str, torch.Tensor]]]
LossFn = Callable[[nn.Module, Batch], LossOutput]
MetricsFn = Callable[[nn.Module, Batch], Mapping[str, torch.Tensor]]
OptimizerFactory = Callable[[nn.Module], torch.optim.Optimizer]

CLASSIFICATION = "classification"


@dataclass
class Task:
    """What to train: a model, its datasets, a loss, and optionally metrics, an optimizer and a kind."""

    model: nn.Module
    """The network, trained in place. Lazy modules (nn.LazyLinear...) are materialised with one real batch."""
    train: Dataset
    """Training data: a map-style Dataset, or an IterableDataset (see the README on resuming those)."""
    test: Dataset | None = None
    """Evaluated after every epoch and on the evaluate key; the best checkpoint follows it."""
    val: Dataset | None = None
    """Evaluated after every epoch too, reported beside test."""
    loss: LossFn | None = None
    """loss(model, batch) -> loss or (loss, {"name": tensor}); None: cross-entropy of model(inputs) and labels."""
    metrics: MetricsFn | None = None
    """Evaluation metrics: metrics(model, batch) -> {"name": tensor} per batch, averaged over a split by
    sample count; None evaluates the loss's named values instead."""
    optimizer: OptimizerFactory | None = None
    """optimizer(model) -> torch.optim.Optimizer; None builds the configured one (optim.* fields)."""
    kind: str = ""
    """"classification" adds accuracy, the confusion matrix and misclassified samples (batches are
    (inputs, labels) and the model returns logits); anything else shows loss and the named metrics.
    Empty: classification when `loss` is None, else "other"."""
    collate: Callable[[list[Any]], Batch] | None = None
    """Turns a list of samples into a batch; None uses PyTorch's default_collate."""
    class_names: Sequence[str] = ()
    """Names of the classes of a classification task, for the confusion matrix."""
    name: str = ""
    """Short name for run folders and titles; empty takes the factory's file or function name."""

    @property
    def resolved_kind(self) -> str:
        """The kind with the empty default resolved."""
        return self.kind or (CLASSIFICATION if self.loss is None else "other")

    @property
    def is_classification(self) -> bool:
        """Whether accuracy and the confusion matrix apply."""
        return self.resolved_kind == CLASSIFICATION


def check_task(task: object, origin: str) -> Task:
    """`task` when it is a Task with usable fields; TaskError names the field and what it must be."""
    if not isinstance(task, Task):
        raise TaskError(f"data.task: {origin} returned {type(task).__name__}, not a ptviz.Task")
    problems = []
    if not isinstance(task.model, nn.Module):
        problems.append(f"model is a {type(task.model).__name__}, not a torch.nn.Module")
    for name in ("train", "test", "val"):
        data = getattr(task, name)
        if data is None and name != "train":
            continue
        if not isinstance(data, Dataset) and not (hasattr(data, "__getitem__") and hasattr(data, "__len__")):
            problems.append(f"{name} is a {type(data).__name__}, not a torch.utils.data.Dataset")
    for name in ("loss", "metrics", "optimizer", "collate"):
        value = getattr(task, name)
        if value is not None and not callable(value):
            problems.append(f"{name} must be a function, got {type(value).__name__}")
    if not isinstance(task.kind, str):
        problems.append(f"kind must be text like 'classification' or 'regression', got {task.kind!r}")
    if problems:
        raise TaskError(f"data.task: {origin}: " + "; ".join(problems))
    return task


def load_task(spec: str, config: Any) -> Task:
    """Call the factory `spec` names with the run's configuration; TaskError says what went wrong and where."""
    from .models.user import LOAD_LOCK, USER_CODE_ERRORS, load_factory, user_code_error

    factory = load_factory(spec, field="data.task", error=TaskError)
    try:
        takes_config = bool(inspect.signature(factory).parameters)
    except (TypeError, ValueError):
        takes_config = True
    try:
        with LOAD_LOCK:
            task = factory(config) if takes_config else factory()
    except USER_CODE_ERRORS as exc:
        raise user_code_error(f"calling {spec}", exc, "", "data.task", TaskError) from None
    task = check_task(task, spec)
    if not task.name:
        target, _, function = spec.rpartition(":")
        stem = target.replace("\\", "/").rsplit("/", 1)[-1].removesuffix(".py").rsplit(".", 1)[-1]
        task.name = stem if function in ("make", "task", "make_task", "build") else function
    return task
