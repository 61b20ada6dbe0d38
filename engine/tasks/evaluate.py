"""Evaluation of a Task over one split: sample-weighted loss and metrics, and for classification the
confusion matrix and the first misclassified samples; everything summed on the device, read once."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..evaluate import MAX_WRONG, EvalResult
from .contract import batch_size, check_logits, labels_of, metric_values

if TYPE_CHECKING:
    from .setup import TaskSetup


@torch.no_grad()
def evaluate(setup: TaskSetup, split: str) -> EvalResult:
    """Run the whole split through the loss in eval mode; restores each module's mode afterwards."""
    model, device = setup.model, setup.device
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    names = setup.eval_metric_names
    loss_sum = torch.zeros((), device=device)
    metric_sums = torch.zeros(len(names), device=device)
    confusion: torch.Tensor | None = None
    wrong: list[torch.Tensor] = []
    seen = 0
    try:
        for batch in setup.split_batches[split].evaluation():
            with setup.autocast():
                loss, extras, logits = setup.forward(batch)
                if setup.task.metrics is not None:
                    extras = setup.eval_metrics(batch)
            n = batch_size(batch)
            loss_sum += loss.detach().float() * n
            if names:
                who = setup.who_metrics if setup.task.metrics is not None else setup.who_loss
                metric_sums += torch.stack(metric_values(extras, names, who, 0)) * n
            if setup.is_classification:
                labels = labels_of(batch)
                logits = check_logits(logits, labels)
                k = logits.shape[1]
                if confusion is None:
                    confusion = torch.zeros(k * k, dtype=torch.long, device=device)
                pred = logits.argmax(1)
                confusion += torch.bincount(labels * k + pred, minlength=k * k)[: k * k]
                if sum(w.shape[0] for w in wrong) < MAX_WRONG:
                    idx = torch.nonzero(pred != labels).flatten()[:MAX_WRONG]
                    wrong.append(torch.stack([idx + seen, pred[idx], labels[idx]], 1))
            seen += n
    finally:
        for module, training in modes:
            module.training = training
    values = torch.cat([loss_sum[None], metric_sums]).tolist()  # the one sync of the pass
    total = max(1, seen)
    result = EvalResult(loss=values[0] / total, accuracy=None, samples=seen, confusion=(), wrong=(),
                        metrics={name: v / total for name, v in zip(names, values[1:])})
    if confusion is not None:
        k = int(round(confusion.numel() ** 0.5))
        matrix = confusion.view(k, k).cpu()
        rows = torch.cat(wrong)[:MAX_WRONG].cpu().tolist() if wrong else []
        result.accuracy = int(matrix.diagonal().sum()) / total
        result.confusion = tuple(tuple(int(v) for v in row) for row in matrix.tolist())
        result.wrong = tuple((int(a), int(b), int(c)) for a, b, c in rows)
    return result
