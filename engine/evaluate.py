"""Evaluation: loss, accuracy and confusion matrix over a split, summed on the device."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from .data.augment import Pipeline
from .data.batches import Batches

if TYPE_CHECKING:
    from .distributed.group import Ranks

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
             autocast: AbstractContextManager | None = None, ranks: Ranks | None = None) -> EvalResult:
    """Run the whole split through the model in eval mode; restores the previous mode.

    With `ranks`, each rank runs its shard and the sums are added up over the ranks: the result is that of
    one process evaluating the whole split.
    """
    was_training = model.training
    model.eval()
    device = batches.device
    loss_sum = torch.zeros((), device=device)
    confusion = torch.zeros(num_classes * num_classes, dtype=torch.long, device=device)
    wrong: list[torch.Tensor] = []
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
        confusion += torch.bincount(y * num_classes + pred, minlength=num_classes * num_classes)
        if sum(w.shape[0] for w in wrong) < MAX_WRONG:
            idx = torch.nonzero(pred != y).flatten()[:MAX_WRONG]
            wrong.append(torch.stack([idx + seen, pred[idx], y[idx]], 1))
        seen += y.shape[0]
    model.train(was_training)
    rows_found = torch.cat(wrong)[:MAX_WRONG] if wrong else torch.zeros((0, 3), dtype=torch.long, device=device)
    if ranks is not None:
        loss_sum, confusion, rows_found = reduce_over_ranks(ranks, batches, loss_sum, confusion, rows_found)
    matrix = confusion.view(num_classes, num_classes).cpu()  # the one sync of the pass
    n = int(matrix.sum())
    correct = int(matrix.diagonal().sum())
    rows = rows_found.cpu().tolist()
    return EvalResult(
        loss=float(loss_sum) / max(1, n),
        accuracy=correct / max(1, n),
        samples=n,
        confusion=tuple(tuple(int(v) for v in row) for row in matrix.tolist()),
        wrong=tuple((int(a), int(b), int(c)) for a, b, c in rows),
    )


def reduce_over_ranks(ranks: Ranks, batches: Batches, *sums_and_wrong: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Sums added up over the ranks, and each rank's first misclassified (index, predicted, true) rows merged:
    the indices become places in the whole split, and the first MAX_WRONG of them are kept."""
    *sums, wrong = sums_and_wrong
    for total in sums:
        ranks.sum_(total)
    if batches.shard is not None:
        wrong = torch.cat([batches.shard.global_positions(wrong[:, :1]), wrong[:, 1:]], 1)
    padded = torch.full((MAX_WRONG, 3), -1, dtype=torch.long, device=wrong.device)
    padded[: wrong.shape[0]] = wrong[:MAX_WRONG]
    every = ranks.gather_rows(padded)
    every = every[every[:, 0] >= 0]
    every = every[every[:, 0].argsort()][:MAX_WRONG]
    return (*sums, every)
