"""Layer health: the numbers on known cases, hooks only on sampled steps, compact log rows, exact resume."""

import importlib.util

import pytest
import torch
from torch import nn

from ptviz.engine.events import LayerStats, Notice
from ptviz.engine.health.advice import PATIENCE, HealthAdvisor
from ptviz.engine.health.sampler import HealthSampler
from ptviz.engine.loop import train
from ptviz.engine.sinks import ListSink
from ptviz.engine.storage import checkpoint as ckpt
from ptviz.engine.storage import history
from ptviz.engine.storage.logrows import events_of, read_rows

from test_checkpoints import only_run, small


def weights_after(config, steps, folder):
    """The model's parameters after `steps` optimizer steps of `config` (from a run that stops there)."""
    config = config.copy()
    config.train.max_steps = steps
    config.output.runs_dir = str(folder / f"after-{steps}")
    train(config)
    return ckpt.load_newest(only_run(config))[0]["model"]


def test_linear_layers_report_the_gradient_norm_and_update_ratio_of_that_step(digits_config, tmp_path):
    """Plain SGD makes the step's update -lr × gradient: both numbers follow from the weights before and after."""
    config = small(digits_config)
    config.optim.optimizer, config.optim.lr = "sgd", 0.05
    config.train.health_interval, k = 7, 14
    before, after = weights_after(config, k - 1, tmp_path), weights_after(config, k, tmp_path)
    sink = ListSink()
    config.train.max_steps = k
    train(config, sink)
    (stats,) = [s for s in sink.of(LayerStats) if s.step == k]
    assert stats.params == ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias")
    for name, grad, weight, update, ratio in zip(stats.params, stats.grad_norms, stats.weight_norms,
                                                 stats.update_norms, stats.update_ratios()):
        delta = after[name] - before[name]
        assert weight == pytest.approx(before[name].norm().item(), rel=1e-6)
        assert update == pytest.approx(delta.norm().item(), rel=1e-6)
        assert ratio == pytest.approx((delta.norm() / before[name].norm()).item(), rel=1e-6)
        assert grad == pytest.approx((delta.norm() / 0.05).item(), rel=1e-4)  # the step moved lr × gradient


def test_a_relu_fed_only_negative_inputs_reports_every_unit_dead():
    """A ReLU after a layer whose outputs are all negative has 100% dead units; one after positives has none."""
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU())
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].bias.fill_(-1.0)  # every input of the first ReLU is -1
        model[2].bias.fill_(5.0)
        model[2].weight.zero_()  # every input of the second is +5
    sampler = HealthSampler(model, interval=1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with sampler.watching(1):
        loss = model(torch.randn(16, 4)).sum()
    loss.backward()
    assert sampler.before_step(1)
    optimizer.step()
    sampler.after_step()
    (stats,) = sampler.read()
    assert stats.activations == ("1", "3")
    assert stats.dead == (1.0, 0.0)
    assert stats.act_means == (0.0, 5.0) and stats.act_stds == (0.0, 0.0)


def relu_hook_counts(config):
    """Forward hooks present on the model's first ReLU at each of its training calls (evaluation runs without grad)."""
    counts: dict[int, list[int]] = {}

    def pre_hook(module, args):
        if isinstance(module, nn.ReLU) and torch.is_grad_enabled():
            counts.setdefault(id(module), []).append(len(module._forward_hooks))

    handle = nn.modules.module.register_module_forward_pre_hook(pre_hook)
    try:
        train(config)
    finally:
        handle.remove()
    return next(iter(counts.values()))


def test_hooks_exist_only_on_sampled_steps_and_never_when_health_is_off(digits_config):
    """Every 4th step's forward pass has the health hook; the others, and every step with health off, none."""
    config = small(digits_config, epochs=1)
    config.output.runs_dir = ""
    config.train.health_interval = 4
    counts = relu_hook_counts(config)
    assert len(counts) == 12
    assert counts == [1 if (i + 1) % 4 == 0 else 0 for i in range(12)]
    config.train.health_interval = 0
    assert relu_hook_counts(config) == [0] * 12


def test_layer_rows_are_compact_read_back_as_events_and_resume_exactly(digits_config):
    """"layers" rows at every sampled step; a run resumed from its epoch-1 checkpoint writes the same rows."""
    config = small(digits_config, epochs=2)
    config.train.health_interval = 5
    train(config)
    run = only_run(config)
    rows = [r for r in read_rows(run / "metrics.jsonl") if r["kind"] == "layers"]
    assert [r["step"] for r in rows] == [5, 10, 15, 20]
    assert set(rows[0]) == {"kind", "step", "params", "grad", "weight", "update", "acts", "dead", "mean", "std", "rank",
                            "wall"}
    assert rows[0]["rank"] == [2, 1, 2, 1, 2, 1]
    assert rows[0]["acts"] == ["relu1", "relu2"]
    assert all(len(f"{v}") <= 11 for v in rows[0]["grad"])  # four significant digits
    back = [e for e in events_of(read_rows(run / "metrics.jsonl")) if isinstance(e, LayerStats)]
    assert [e.step for e in back] == [5, 10, 15, 20] and back[0].params[0] == "fc1.weight"
    attached = [e for e in history.events(run) if isinstance(e, LayerStats)]  # what attach and resume read
    assert attached == back and attached[0].ranks == (2, 1, 2, 1, 2, 1)
    # Resume from the end of epoch 1 (step 12): the rows from there on are written again, identically.
    state = ckpt.load_checkpoint(run / "checkpoints" / "epoch-0001.pt")
    train(config, resume=state, run_dir=run)
    again = [r for r in read_rows(run / "metrics.jsonl") if r["kind"] == "layers"]
    assert [{k: v for k, v in r.items() if k != "wall"} for r in again] == \
           [{k: v for k, v in r.items() if k != "wall"} for r in rows]


@pytest.mark.skipif(not importlib.util.find_spec("tensorboard"), reason="tensorboard is optional")
def test_tensorboard_gets_histograms_of_weights_and_gradients(digits_config):
    """Each sampled step writes a histogram of every trained tensor's weights and gradients."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = small(digits_config, epochs=1)
    config.train.health_interval = 6
    train(config)
    events = EventAccumulator(str(only_run(config) / "tensorboard"), size_guidance={"histograms": 0})
    events.Reload()
    tags = events.Tags()["histograms"]
    assert "weights/fc1.weight" in tags and "grads/fc3.bias" in tags
    assert [h.step for h in events.Histograms("grads/fc1.weight")] == [6, 12]
    weights = events.Histograms("weights/fc2.weight")[0].histogram_value
    assert weights.num == 512 * 256 and sum(weights.bucket) == 512 * 256
    assert "layers/update_ratio/fc1.weight" in events.Tags()["scalars"]


def stats(step, ratio=1e-3, dead=0.1, grad=1.0):
    return LayerStats(step, ("fc.weight", "fc.bias"), (grad, 0.1), (1.0, 1.0), (ratio, ratio * 100), ("relu",), (dead,),
                      (0.5,), (1.0,))


def test_advice_names_the_layer_once_it_stays_off_and_again_only_after_it_came_back():
    """High ratio for PATIENCE samples: one notice; dead units and a gradient spike too; biases are not judged."""
    advisor = HealthAdvisor({"fc.weight": 2, "fc.bias": 1})
    said = [advisor.review(stats(i, ratio=0.05)) for i in range(PATIENCE + 3)]
    assert [len(s) for s in said] == [0] * (PATIENCE - 1) + [1, 0, 0, 0]
    assert "layer fc: update/weight ratio 5.0e-02" in said[PATIENCE - 1][0]
    advisor.review(stats(20))  # back to normal
    said = [advisor.review(stats(21 + i, ratio=1e-7, dead=0.9)) for i in range(PATIENCE)]
    assert len(said[-1]) == 2 and "it barely learns" in said[-1][0] and "90% of its units dead" in said[-1][1]
    advisor = HealthAdvisor({"fc.weight": 2, "fc.bias": 1})
    for i in range(10):
        assert advisor.review(stats(i, grad=1.0 + i / 100)) == []
    (spike,) = advisor.review(stats(11, grad=40.0))
    assert spike == "layer fc: gradient norm 40 is 38× its recent median (1.04) at step 11"
    restored = HealthAdvisor({"fc.weight": 2, "fc.bias": 1})
    restored.load_state_dict(advisor.state_dict())
    assert restored.review(stats(12, grad=40.0)) == advisor.review(stats(12, grad=40.0)) == []


def test_the_run_tells_a_layer_far_off_in_its_log(digits_config):
    """digits-mlp at a learning rate far too high: a notice names a layer whose update ratio stays above 1e-2."""
    config = small(digits_config, epochs=1)
    config.optim.lr = 2.0
    config.train.health_interval = 1
    sink = ListSink()
    train(config, sink)
    texts = [n.text for n in sink.of(Notice) if n.text.startswith("layer ")]
    assert any("update/weight ratio" in t and "the learning rate is high" in t for t in texts), texts
    logged = [r["text"] for r in read_rows(only_run(config) / "metrics.jsonl") if r["kind"] == "notice"]
    assert set(texts) <= set(logged)


def test_sampled_steps_never_read_the_device(digits_config, monkeypatch):
    """A convnet trained whole with health on every step (hooks, norms, update copies, TensorBoard histograms) and
    the spike guard: no value reaches the host inside a step; the samples come out at the read point."""
    from ptviz.engine.loop import Trainer

    from test_fastpath import HostReads, probe_config, run_probe

    config = probe_config(digits_config, cache=False, steps=6)
    config.model.freeze_backbone = False
    config.train.log_interval = 1000  # no interval read inside these steps
    config.train.health_interval, config.train.spike_factor = 1, 5.0
    reads = HostReads()
    step = Trainer._step

    def watched(self, batch):
        with reads:
            step(self, batch)

    monkeypatch.setattr(Trainer, "_step", watched)
    original = Trainer.__init__

    def with_histograms(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.health.sampler.histograms = True

    monkeypatch.setattr(Trainer, "__init__", with_histograms)
    _, trainer = run_probe(config)
    assert trainer.step == 6 and reads.seen == []
    samples = trainer.sink.of(LayerStats)
    assert [s.step for s in samples] == [1, 2, 3, 4, 5, 6]
    assert samples[0].activations and len(samples[0].histograms) == 2 * len(samples[0].params)
