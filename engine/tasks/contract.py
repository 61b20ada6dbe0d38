"""The loss and metric contract of a Task, checked on host metadata only (types, shapes, names: no sync).

Every breach is a TaskError that names the user's function and where it is defined.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

from ..errors import TaskError
from ..models.user import defined_at

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
# Names a step row of metrics.jsonl already uses (its binary copy's "end" too), and what ptviz reports itself.
RESERVED = frozenset({"kind", "step", "epoch", "epoch_step", "loss", "lr", "elapsed", "samples_per_s", "wall",
                      "grad_norm", "end", "accuracy"})
LABEL_KEYS = ("label", "labels", "target", "targets", "y")


def function_name(what: str, fn: Any) -> str:
    """'task.loss (file.py, line 12)' for messages."""
    at = defined_at(fn)
    return f"{what} ({at})" if at else what


def split_loss_output(out: Any, who: str) -> tuple[torch.Tensor, Mapping[str, Any]]:
    """(loss, named values) from what a loss function returned; TaskError unless it is a scalar tensor."""
    extras: Mapping[str, Any] = {}
    if isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], Mapping):
        out, extras = out
    if not isinstance(out, torch.Tensor):
        raise TaskError(f"{who} returned a {type(out).__name__}, not a tensor: return the loss tensor, "
                        "or (loss, {'name': tensor, ...})")
    if out.numel() != 1:
        raise TaskError(f"{who} returned a loss of shape {tuple(out.shape)}, not a scalar: "
                        "reduce it to one number, e.g. with .mean()")
    if not out.is_floating_point():
        raise TaskError(f"{who} returned a {out.dtype} loss: it must be a floating-point tensor")
    return out.reshape(()), extras


def check_names(values: Mapping[str, Any], who: str) -> tuple[str, ...]:
    """The metric names of a first batch, once each is a valid name holding a one-number tensor."""
    if not isinstance(values, Mapping):
        raise TaskError(f"{who} returned a {type(values).__name__}: metrics must be a dict of name -> tensor")
    for name, value in values.items():
        if not isinstance(name, str) or not NAME.match(name):
            raise TaskError(f"{who}: metric name {name!r} must start with a letter and use letters, digits, "
                            "_ . or -")
        if name in RESERVED:
            raise TaskError(f"{who}: metric name {name!r} is taken by ptviz; call it something else, "
                            f"e.g. {name}_2")
        check_value(name, value, who)
    return tuple(values)


def check_value(name: str, value: Any, who: str) -> None:
    """TaskError unless `value` is a tensor holding one number."""
    if not isinstance(value, torch.Tensor):
        raise TaskError(f"{who}: metric {name!r} is a {type(value).__name__}, not a tensor: return the tensor "
                        "itself (no .item() or float(): reading a value off the device every step stalls it)")
    if value.numel() != 1:
        raise TaskError(f"{who}: metric {name!r} has shape {tuple(value.shape)}: give one number per batch, "
                        "e.g. with .mean()")


def metric_values(values: Mapping[str, Any], names: tuple[str, ...], who: str, step: int) -> tuple[torch.Tensor, ...]:
    """The named values in `names` order, as float scalars still on the device."""
    if tuple(values) != names:
        if not isinstance(values, Mapping) or set(values) != set(names):
            got = sorted(values) if isinstance(values, Mapping) else type(values).__name__
            raise TaskError(f"{who} returned metrics {got} at step {step}, but {sorted(names)} for the first "
                            "batch: return the same names every time")
    out = []
    for name in names:
        value = values[name]
        check_value(name, value, who)
        out.append(value.detach().reshape(()).float())
    return tuple(out)


def batch_size(batch: Any) -> int:
    """Samples in a batch: the first dimension of its first tensor (host metadata, no sync)."""
    tensor = first_tensor(batch)
    if tensor is None:
        return len(batch) if isinstance(batch, (list, tuple)) else 1
    return int(tensor.shape[0]) if tensor.ndim else 1


def first_tensor(value: Any) -> torch.Tensor | None:
    """The first tensor inside a batch (tuples, lists and dicts are searched in order)."""
    if isinstance(value, torch.Tensor):
        return value
    items = value.values() if isinstance(value, Mapping) else value if isinstance(value, (list, tuple)) else ()
    for item in items:
        found = first_tensor(item)
        if found is not None:
            return found
    return None


def inputs_and_labels(batch: Any) -> tuple[Any, Any]:
    """(inputs, labels) of a classification batch: (x, y, ...) or a dict with a label key."""
    if isinstance(batch, (list, tuple)) and len(batch) >= 2:
        return batch[0], batch[1]
    if isinstance(batch, Mapping):
        key = next((k for k in LABEL_KEYS if k in batch), None)
        if key is not None:
            return next(v for k, v in batch.items() if k != key), batch[key]
    raise TaskError("a classification task's batches must be (inputs, labels) or a dict with a 'label' key; "
                    "give the Task a loss function for other batches")


def labels_of(batch: Any) -> torch.Tensor:
    """The class labels of a classification batch."""
    labels = inputs_and_labels(batch)[1]
    if not isinstance(labels, torch.Tensor) or labels.is_floating_point():
        raise TaskError("a classification task's labels must be an integer tensor of class indices "
                        f"(got {getattr(labels, 'dtype', type(labels).__name__)})")
    return labels


def check_logits(logits: Any, labels: torch.Tensor) -> torch.Tensor:
    """The model's output as (batch, classes) logits; TaskError when it is not."""
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or logits.shape[0] != labels.shape[0]:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise TaskError(f"a classification task's model must return logits of shape (batch, classes); it returned "
                        f"{shape} for a batch of {labels.shape[0]} (set kind='regression' or another kind for "
                        "other outputs)")
    return logits
