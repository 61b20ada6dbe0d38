"""Every optimizer and schedule the configuration offers: built as named, and training with it lowers the loss."""

import math

import pytest
import torch
from torch import nn

from ptviz.engine.config import OPTIMIZERS, OptimConfig
from ptviz.engine.events import EpochEnded
from ptviz.engine.loop import train
from ptviz.engine.optim import build_optimizer, build_scheduler, current_lr
from ptviz.engine.sinks import ListSink


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_each_optimizer_is_built_as_named_and_trains(digits_config, name):
    cfg = OptimConfig(optimizer=name, lr=0.01 if name.startswith("adam") else 0.05, momentum=0.8, weight_decay=1e-4)
    opt = build_optimizer(cfg, nn.Linear(3, 2))
    expected = {"sgd": torch.optim.SGD, "sgd-momentum": torch.optim.SGD, "adam": torch.optim.Adam,
                "adamw": torch.optim.AdamW}[name]
    group = opt.param_groups[0]
    assert type(opt) is expected and group["lr"] == cfg.lr and group["weight_decay"] == 1e-4
    if expected is torch.optim.SGD:
        assert group["momentum"] == (0.8 if name == "sgd-momentum" else 0)

    digits_config.optim = cfg
    digits_config.data.batch_size = 128
    digits_config.train.epochs = 3
    sink = ListSink()
    finished = train(digits_config, sink)
    epochs = sink.of(EpochEnded)
    assert finished.state == "finished" and len(epochs) == 3
    assert epochs[-1].train_loss < 0.9 * epochs[0].train_loss and epochs[-1].test_accuracy > 0.6


def lrs_over(cfg: OptimConfig, epochs: int, steps_per_epoch: int) -> list[float]:
    """The learning rate after each epoch (per-step schedules stepped every batch, as the loop does)."""
    opt = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=cfg.lr)
    scheduler, per_step = build_scheduler(cfg, opt, epochs, steps_per_epoch)
    out = []
    for _ in range(epochs):
        for _ in range(steps_per_epoch):
            opt.step()
            if per_step:
                scheduler.step()
        if scheduler is not None and not per_step:
            scheduler.step()
        out.append(current_lr(opt))
    return out


def test_schedules_follow_their_shapes():
    assert lrs_over(OptimConfig(lr=0.1, scheduler="none"), 3, 4) == [0.1, 0.1, 0.1]
    step = lrs_over(OptimConfig(lr=0.1, scheduler="step", step_size=2, gamma=0.5), 4, 4)
    assert step == pytest.approx([0.1, 0.05, 0.05, 0.025])
    cosine = lrs_over(OptimConfig(lr=0.1, scheduler="cosine"), 4, 4)
    assert cosine[1] == pytest.approx(0.05) and cosine[-1] == pytest.approx(0.0, abs=1e-12)
    assert all(a > b for a, b in zip(cosine, cosine[1:]))
    cycle = lrs_over(OptimConfig(lr=0.1, scheduler="one-cycle"), 10, 10)
    assert max(cycle) <= 0.1 + 1e-9 and cycle[-1] < 1e-4
    assert cycle.index(max(cycle)) < 5  # warms up in the first third or so, then anneals
    assert not any(math.isnan(v) for v in cycle)


def test_a_live_lr_outside_optim_lr_is_refused_and_the_run_goes_on(digits_config):
    """set-lr 1e39 or scale-lr 1e300 overflowed float32 in the next step and failed the run: now refused."""
    from ptviz.engine.commands import Control, ScaleLearningRate, SetLearningRate
    from ptviz.engine.events import CommandApplied, LrChanged, Notice, RunStarted

    digits_config.train.epochs = 1
    control, sink = Control(), ListSink()
    for command in (SetLearningRate(1e39, ticket="a"), ScaleLearningRate(1e300, ticket="b"),
                    SetLearningRate(float("nan"), ticket="c"), ScaleLearningRate(2.0, ticket="d")):
        control.send(command)
    finished = train(digits_config, sink, control)
    assert finished.state == "finished" and finished.step == sink.of(RunStarted)[0].total_steps
    outcomes = {e.ticket: e.error for e in sink.of(CommandApplied)}
    assert "optim.lr must be <= 100, got 1e+39" in outcomes["a"]
    assert "(0.05 scaled by 1e+300): optim.lr must be <= 100" in outcomes["b"]
    assert "optim.lr must be a finite number" in outcomes["c"]
    assert outcomes["d"] == "" and [e.lr for e in sink.of(LrChanged)] == [pytest.approx(0.1)]
    assert [n.text for n in sink.of(Notice)] == [outcomes["a"], outcomes["b"], outcomes["c"]]
