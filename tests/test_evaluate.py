"""Evaluation reads the device a fixed number of times per pass, and finds the same results as a plain loop."""

from __future__ import annotations

import pytest
import torch

from ptviz.engine.data.batches import Batches
from ptviz.engine.evaluate import MAX_WRONG, evaluate
from ptviz.engine.recipes import recipe
from ptviz.engine.setup import build

# Every way a tensor's values reach the host (each one a CPU-GPU sync on a GPU).
READS = ("item", "tolist", "cpu", "numpy", "nonzero", "__bool__", "__int__", "__float__", "__index__")


@pytest.fixture
def setup():
    """digits-mlp, untrained: about 90% of the test images are misclassified, far more than MAX_WRONG."""
    config = recipe("digits-mlp")
    config.output.runs_dir = ""
    return build(config)


def count_reads(monkeypatch) -> list[str]:
    """Patch every read of tensor values to record its name."""
    calls: list[str] = []
    for name in READS:
        original = getattr(torch.Tensor, name)

        def counted(self, *args, __name=name, __original=original, **kwargs):
            calls.append(__name)
            return __original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    return calls


@pytest.mark.parametrize("batch_size", [1000, 7])
def test_host_reads_per_pass_do_not_grow_with_the_number_of_batches(setup, monkeypatch, batch_size):
    test = Batches(setup.data.test, batch_size, setup.device, shuffle=False)
    batches = len(test)
    calls = count_reads(monkeypatch)
    result = evaluate(setup.model, test, setup.pipeline, setup.num_classes)
    assert len(calls) <= 2, f"{len(calls)} host reads over {batches} batches: {calls}"
    assert len(result.wrong) == MAX_WRONG


def test_results_match_a_plain_loop(setup):
    """Loss, confusion and the first misclassified samples, in order, as a per-batch loop with nonzero finds."""
    test = Batches(setup.data.test, 7, setup.device, shuffle=False)
    result = evaluate(setup.model, test, setup.pipeline, setup.num_classes)
    setup.model.eval()
    loss, wrong, confusion, seen = 0.0, [], torch.zeros(setup.num_classes, setup.num_classes, dtype=torch.long), 0
    with torch.no_grad():
        for x, y in test.epoch(0):
            logits = setup.model(setup.pipeline.eval_batch(x))
            loss += float(torch.nn.functional.cross_entropy(logits, y, reduction="sum"))
            pred = logits.argmax(1)
            for t, p in zip(y.tolist(), pred.tolist()):
                confusion[t, p] += 1
            wrong += [(seen + int(i), int(pred[i]), int(y[i])) for i in torch.nonzero(pred != y).flatten()]
            seen += len(y)
    assert result.confusion == tuple(tuple(r) for r in confusion.tolist())
    assert result.wrong == tuple(wrong[:MAX_WRONG])
    assert result.loss == pytest.approx(loss / seen) and result.samples == seen
    assert result.accuracy == pytest.approx(int(confusion.diagonal().sum()) / seen)
