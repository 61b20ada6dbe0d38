"""The fast paths give the results of the plain path: same accuracy, same head weights, exact resume."""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from ptviz.engine.commands import Control
from ptviz.engine.events import EpochEnded, Evaluated
from ptviz.engine.loop import Trainer, train
from ptviz.engine.setup import build
from ptviz.engine.sinks import ListSink, NullSink
from ptviz.engine.transform_specs import parse_pipeline


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # bit-for-bit comparisons on a shared CPU


def test_fast_defaults_reach_the_plain_paths_accuracy_on_digits(digits_config):
    """Resident batches (the default) end within 0.5 points of the DataLoader path on the digits recipe."""
    digits_config.output.runs_dir = ""
    plain = digits_config.copy()
    plain.data.resident = False
    plain.train.precision = "fp32"
    plain.train.cache_features = False
    accuracy = {}
    for name, config in (("fast", digits_config), ("plain", plain)):
        sink = ListSink()
        train(config, sink)
        started = sink.events[0]
        assert started.resident is (name == "fast")
        accuracy[name] = sink.of(EpochEnded)[-1].test_accuracy
    assert accuracy["fast"] >= 0.95
    assert abs(accuracy["fast"] - accuracy["plain"]) <= 0.005


def probe_config(config, cache: bool, steps: int = 60):
    """A small convnet with its backbone frozen on digits, stopped after `steps` (45 steps make an epoch)."""
    config = config.copy()
    config.output.runs_dir = ""
    config.model.name = "cnn"
    config.model.freeze_backbone = True
    config.train.cache_features = cache
    config.train.max_steps = steps
    config.train.epochs = 2
    return config


def run_probe(config, resume=None):
    setup = build(config)
    trainer = Trainer(setup, ListSink(), Control())
    if resume is not None:
        trainer.restore(resume)
    trainer.run()
    return setup, trainer


def test_cached_features_train_the_same_head_as_the_uncached_path(digits_config):
    """Across an epoch boundary, the cached and recomputed features give allclose heads and equal evaluations."""
    runs = {}
    for cache in (True, False):
        setup = build(probe_config(digits_config, cache))
        backbone_before = {k: v.clone() for k, v in setup.model.state_dict().items() if not k.startswith("fc.")}
        sink = ListSink()
        Trainer(setup, sink, Control()).run()
        assert setup.cache_features is cache and setup.probe is not None and setup.precision == "fp32"
        backbone_after = {k: v for k, v in setup.model.state_dict().items() if not k.startswith("fc.")}
        # Eval mode: BatchNorm statistics of the frozen backbone never move.
        assert all(torch.equal(backbone_before[k], backbone_after[k]) for k in backbone_before)
        runs[cache] = (setup.model.fc.weight.detach(), setup.model.fc.bias.detach(), sink.of(Evaluated))
    (w1, b1, e1), (w0, b0, e0) = runs[True], runs[False]
    assert not torch.equal(w1, build(probe_config(digits_config, True)).model.fc.weight)  # it did train
    assert torch.allclose(w1, w0, atol=1e-5) and torch.allclose(b1, b0, atol=1e-5)
    assert len(e1) == len(e0) == 1 and e1[0].confusion == e0[0].confusion


def test_random_augmentation_turns_feature_caching_off(digits_config):
    """A random transform makes every epoch's training features different, so they are not cached."""
    config = probe_config(digits_config, cache=True, steps=3)
    config.data.transforms = parse_pipeline("RandomHorizontalFlip()")
    setup = build(config)
    Trainer(setup, NullSink(), Control()).run()
    assert setup.cache_features is False and setup.train_batches() is setup.train
    assert setup.probe is not None and id(setup.train) not in setup.probe.cache
    # Evaluation never augments: the test split's features are still computed once.
    assert setup.cache_eval is True and setup.evaluate(setup.test).samples == len(setup.data.test)
    assert setup.probe.cache[id(setup.test)] is not None


def test_cached_probe_resumes_exactly(digits_config):
    """Stopping mid-epoch and restoring state() continues to the same head as an uninterrupted run."""
    _, whole = run_probe(probe_config(digits_config, True, steps=60))
    _, first = run_probe(probe_config(digits_config, True, steps=30))
    state = first.state("test")
    setup, resumed = run_probe(probe_config(digits_config, True, steps=60), resume=state)
    assert resumed.step == whole.step == 60
    assert torch.equal(setup.model.fc.weight, whole.s.model.fc.weight)


class HostReads(TorchDispatchMode):
    """Records the ops that make the host wait for the device: reading a value, or a data-dependent shape."""

    SYNCING = ("aten::_local_scalar_dense", "aten::nonzero", "aten::masked_select", "aten::_unique2")

    def __init__(self):
        super().__init__()
        self.seen: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func._schema.name in self.SYNCING:
            self.seen.append(func._schema.name)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("variant", ["augmented", "cached probe", "every training option"])
def test_a_training_step_never_reads_the_device(digits_config, monkeypatch, variant):
    """No .item(), float/int/bool of a tensor or nonzero inside a step: the loss is read at the log interval only."""
    config = probe_config(digits_config, cache=True, steps=6)
    config.train.log_interval = 1000  # no interval read inside these steps
    config.optim.scheduler = "one-cycle"
    if variant == "every training option":  # accumulation, clipping (its norm stays on the device), warm-up, EMA
        config.optim.scheduler, config.optim.warmup_steps = "step", 4
        config.train.accumulate, config.train.clip_norm, config.train.ema_decay = 3, 0.5, 0.9
    if variant == "augmented":
        config.model.freeze_backbone = False
        config.data.transforms = parse_pipeline("RandomCrop(8, padding=1), RandomHorizontalFlip(), "
                                                "RandomRotation(10), ColorJitter(0.2, 0.2), RandomErasing(0.5)")
    reads = HostReads()
    step = Trainer._step

    def watched(self, batch):
        with reads:
            step(self, batch)

    monkeypatch.setattr(Trainer, "_step", watched)
    setup, trainer = run_probe(config)
    assert trainer.step == 6 and setup.cache_features is (variant != "augmented")
    assert reads.seen == []
