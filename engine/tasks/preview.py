"""What the cockpit shows of a Task before training: a table of samples (or images), statistics, the model.

Everything returned is plain data (numbers, text, H×W×C uint8 arrays) so the UI never touches torch.
Samples are read under the evaluation seeds and the model preview runs on a copy: looking at a task never
moves the random streams or the weights of a run.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import RunConfig
from ..errors import TaskError
from ..models.user import USER_CODE_ERRORS
from ..task import Task, load_task
from .batches import TaskBatches, describe_dataset
from .contract import inputs_and_labels
from .seeding import EVAL_EPOCH, SeededSamples, seeded_chunks

MAX_VALUES = 6  # values written out per field before "…"


@dataclass(frozen=True)
class FieldView:
    """One field of one sample: its name, kind and a short text of its values."""

    name: str
    shape: tuple[int, ...] | None  # None for a plain number or text
    dtype: str
    text: str


@dataclass(frozen=True)
class SampleView:
    """One sample as fields, with its label when the task is classification."""

    index: int
    fields: tuple[FieldView, ...]
    label: str = ""
    image: np.ndarray | None = None  # H×W×C uint8 when the input is an image tensor


@dataclass(frozen=True)
class FieldStats:
    """Statistics of one numeric field over the samples read."""

    name: str
    shape: str  # "(3, 32, 32)" or "varies: (5,) (7,)"
    dtype: str
    low: float
    high: float
    mean: float
    std: float


@dataclass(frozen=True)
class TaskView:
    """A task as the Data tab shows it."""

    name: str
    kind: str
    sizes: tuple[tuple[str, int | None], ...]  # (split, samples), None for an iterable without a length
    samples: tuple[SampleView, ...]
    stats: tuple[FieldStats, ...]
    label_counts: tuple[tuple[str, int], ...] = ()  # classification: labels among the samples read
    origin: str = ""  # the train dataset's class and where it is defined

    @property
    def is_image(self) -> bool:
        """Whether every sample shown has an image to draw."""
        return bool(self.samples) and all(s.image is not None for s in self.samples)


def task_for(config: RunConfig, task: Task | None) -> Task:
    """The task to show: the one given, or the one config.data.task names (its factory runs here)."""
    if task is not None:
        return task
    if not config.data.task:
        raise TaskError("no task: set data.task to path/task.py:factory")
    return load_task(config.data.task, config)


def read_samples(task: Task, seed: int, start: int, count: int) -> list[tuple[int, Any]]:
    """(index, sample) of train samples start.. under the evaluation seeds."""
    data = task.train
    if hasattr(data, "__getitem__") and not isinstance(data, torch.utils.data.IterableDataset):
        n = len(data)
        keys = [(EVAL_EPOCH, i % n) for i in range(start, start + min(count, n))] if n else []
        items = SeededSamples(data, seed).__getitems__(keys)
        return [(k[1], item) for k, item in zip(keys, items)]
    chunks = seeded_chunks(data, seed, EVAL_EPOCH, count, skip=start)
    return list(enumerate(next(chunks, []), start))


def task_view(task: Task, seed: int = 0, page: int = 0, count: int = 12) -> TaskView:
    """A page of training samples and what they hold; TaskError when the dataset cannot be read."""
    origin = describe_dataset("task.train", task.train)
    try:
        pairs = read_samples(task, seed, page * count, count)
    except TaskError:
        raise
    except USER_CODE_ERRORS as exc:
        raise TaskError(f"{origin}: reading samples failed: {type(exc).__name__}: {exc}") from None
    classification = task.is_classification
    names = [str(n) for n in task.class_names]
    samples = [_sample_view(index, item, classification, names) for index, item in pairs]
    sizes = []
    for split in ("train", "val", "test"):
        data = getattr(task, split)
        if data is not None:
            try:
                sizes.append((split, len(data)))
            except TypeError:
                sizes.append((split, None))
    counts: dict[str, int] = {}
    for s in samples:
        if s.label:
            counts[s.label] = counts.get(s.label, 0) + 1
    return TaskView(task.name, task.resolved_kind, tuple(sizes), tuple(samples), _stats([i for _, i in pairs]),
                    tuple(sorted(counts.items())), origin)


def _fields(item: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """A sample flattened into (name, value) leaves: tuples by position, dicts by key."""
    if isinstance(item, Mapping):
        return [f for key, value in item.items() for f in _fields(value, f"{prefix}{key}.")]
    if isinstance(item, (list, tuple)) and not (item and all(isinstance(v, (int, float)) for v in item)):
        return [f for i, value in enumerate(item) for f in _fields(value, f"{prefix}{i}.")]
    return [(prefix.rstrip(".") or "sample", item)]


def _sample_view(index: int, item: Any, classification: bool, names: list[str]) -> SampleView:
    label = ""
    fields = item
    if classification:
        try:
            inputs, target = inputs_and_labels(item)
        except TaskError:
            inputs, target = item, None
        if target is not None:
            value = int(target) if not isinstance(target, torch.Tensor) or target.numel() == 1 else None
            label = (names[value] if value is not None and 0 <= value < len(names) else str(value)) \
                if value is not None else str(target)
            fields = inputs
    leaves = _fields(fields, "input." if classification and fields is not item else "")
    views = tuple(_field_view(name, value) for name, value in leaves)
    image = _image(leaves[0][1]) if leaves else None
    return SampleView(index, views, label, image)


def _field_view(name: str, value: Any) -> FieldView:
    if isinstance(value, (torch.Tensor, np.ndarray)):
        array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value
        flat = array.reshape(-1)
        shown = ", ".join(_number(v) for v in flat[:MAX_VALUES]) + (", …" if flat.size > MAX_VALUES else "")
        dtype = str(value.dtype).removeprefix("torch.")
        return FieldView(name, tuple(array.shape), dtype, f"[{shown}]" if array.ndim else shown)
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:39] + "…"
        return FieldView(name, None, "str", repr(text))
    if isinstance(value, (list, tuple)):
        return FieldView(name, (len(value),), "list", "[" + ", ".join(_number(v) for v in value[:MAX_VALUES]) + "]")
    return FieldView(name, None, type(value).__name__, _number(value) if isinstance(value, (int, float)) else repr(value))


def _number(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return repr(value)


def _image(value: Any) -> np.ndarray | None:
    """H×W×C uint8 for display when `value` is a C×H×W image tensor (C of 1 or 3, at least 8×8), else None."""
    if not isinstance(value, torch.Tensor) or value.ndim != 3 or value.shape[0] not in (1, 3) \
            or min(value.shape[1:]) < 8:
        return None
    x = value.detach().cpu()
    if x.dtype != torch.uint8:
        x = x.float()
        low, high = float(x.min()), float(x.max())
        if low < 0 or high > 1:  # normalised: stretch to the visible range
            x = (x - low) / (high - low) if high > low else x * 0
        x = (x.clamp(0, 1) * 255).round().to(torch.uint8)
    return x.permute(1, 2, 0).numpy()


def _stats(items: list[Any]) -> tuple[FieldStats, ...]:
    """Per numeric field: shape (or how it varies), dtype and the range, mean and std of its values."""
    by_field: dict[str, list[Any]] = {}
    for item in items:
        for name, value in _fields(item):
            by_field.setdefault(name, []).append(value)
    out = []
    for name, values in by_field.items():
        arrays = []
        for v in values:
            if isinstance(v, torch.Tensor):
                arrays.append(v.detach().cpu().numpy())
            elif isinstance(v, (np.ndarray, int, float)) and not isinstance(v, bool):
                arrays.append(np.asarray(v))
        if len(arrays) != len(values) or not arrays:
            continue
        shapes = sorted({tuple(a.shape) for a in arrays})
        shape = str(shapes[0]) if len(shapes) == 1 else "varies: " + " ".join(str(s) for s in shapes[:3])
        flat = np.concatenate([a.reshape(-1).astype(np.float64) for a in arrays])
        finite = flat[np.isfinite(flat)]
        if not finite.size:
            continue
        out.append(FieldStats(name, shape, str(arrays[0].dtype), float(finite.min()), float(finite.max()),
                              float(finite.mean()), float(finite.std()) if finite.size > 1 else 0.0))
    return tuple(out)


@dataclass
class ModelPreview:
    """A copy of a task's model, materialised, and the arguments of its first call on a real batch."""

    model: nn.Module
    args: tuple[Any, ...]


def model_preview(task: Task, config: RunConfig, batch: int = 2) -> ModelPreview:
    """Copy the task's model and run one real batch of 2 through the loss on the copy, in eval mode without
    gradients: lazy modules are materialised and the model's call arguments are caught for the summary."""
    try:
        model = copy.deepcopy(task.model).cpu()
    except Exception as exc:  # noqa: BLE001 - a model may hold anything; the preview is then unavailable
        raise TaskError(f"task.model cannot be copied for a preview: {type(exc).__name__}: {exc}") from None
    calls: list[tuple[Any, ...]] = []

    def catch(module: nn.Module, args: tuple[Any, ...]) -> None:
        if not calls:
            calls.append(args)

    handle = model.register_forward_pre_hook(catch)
    loss = task.loss
    split = TaskBatches(task.train, "train", batch, torch.device("cpu"), shuffle=False, seed=config.train.seed,
                        collate=task.collate)
    model.eval()
    try:
        with torch.no_grad():
            data = split.first_batch()
            if loss is not None:
                loss(model, data)
            else:
                model(inputs_and_labels(data)[0])
    except TaskError:
        raise
    except USER_CODE_ERRORS as exc:
        if not calls:
            raise TaskError(f"task.loss: one batch did not go through: {type(exc).__name__}: {exc}") from None
    finally:
        handle.remove()
    if not calls:
        raise TaskError("task.loss never called the model, so its layers cannot be traced")
    return ModelPreview(model, calls[0])
