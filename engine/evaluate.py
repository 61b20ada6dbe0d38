"""Evaluation: loss, accuracy and confusion matrix over a split, summed on the device."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .data.augment import Pipeline
from .data.batches import Batches

MAX_WRONG = 64


@dataclass
class EvalResult:
    """What one pass over a split found."""

    loss: float
    accuracy: float | None  # None when the work is not classification
    samples: int
    confusion: tuple[tuple[int, ...], ...]  # rows: true class, columns: predicted class
    wrong: tuple[tuple[int, int, int], ...]  # (index, predicted, true) of the first misclassified
    metrics: dict[str, float] = field(default_factory=dict)  # a task's named metrics, sample-weighted means


@torch.no_grad()
def evaluate(model: nn.Module, batches: Batches, pipeline: Pipeline, num_classes: int,
             autocast: AbstractContextManager | None = None) -> EvalResult:
    """Run the whole split through the model in eval mode; restores the previous mode.

    Everything is summed on the device and read once at the end: no operation in the loop has an output
    whose size depends on the data (nonzero, bincount on CUDA), since each of those waits for the GPU.
    """
    was_training = model.training
    model.eval()
    device = batches.device
    loss_sum = torch.zeros((), device=device)
    confusion = torch.zeros(num_classes * num_classes, dtype=torch.long, device=device)
    # The first MAX_WRONG misclassified samples as (index, predicted, true), each added once to a zero slot;
    # slot MAX_WRONG collects the rest and is never read (index_add_ is deterministic for integers).
    wrong = torch.zeros(MAX_WRONG + 1, 3, dtype=torch.long, device=device)
    wrong_seen = torch.zeros((), dtype=torch.long, device=device)
    seen = 0
    for x, y in batches.epoch(0):
        inputs = pipeline.eval_batch(x)
        if autocast is not None:
            with autocast:
                logits = model(inputs)
        else:
            logits = model(inputs)
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
        pred = logits.argmax(1)
        confusion.index_add_(0, y * num_classes + pred, torch.ones_like(y))
        miss = pred != y
        rank = wrong_seen + torch.cumsum(miss, 0) - 1  # place of each miss among all misses so far
        slot = torch.where(miss & (rank < MAX_WRONG), rank, MAX_WRONG)
        index = torch.arange(seen, seen + y.shape[0], device=device)
        wrong.index_add_(0, slot, torch.stack([index, pred, y], 1))
        wrong_seen += miss.sum()
        seen += y.shape[0]
    model.train(was_training)
    counts = torch.cat([confusion, wrong[:MAX_WRONG].flatten(), wrong_seen.view(1)]).tolist()  # one sync
    loss = float(loss_sum)  # and the other
    n_cells = num_classes * num_classes
    matrix = [counts[r * num_classes:(r + 1) * num_classes] for r in range(num_classes)]
    n = sum(counts[:n_cells])
    correct = sum(matrix[i][i] for i in range(num_classes))
    rows = counts[n_cells:n_cells + 3 * MAX_WRONG]
    found = min(MAX_WRONG, counts[-1])
    return EvalResult(
        loss=loss / max(1, n),
        accuracy=correct / max(1, n),
        samples=n,
        confusion=tuple(tuple(row) for row in matrix),
        wrong=tuple((rows[3 * i], rows[3 * i + 1], rows[3 * i + 2]) for i in range(found)),
    )
