"""The learning-rate finder: leaves a paused run bit-for-bit as it was, suggests a rate that trains, and its CLI."""

from __future__ import annotations

import pytest
import torch

from ptviz.engine.commands import Control, FindLr, Pause, Resume
from ptviz.engine.events import LrSwept, Paused, StepMetrics
from ptviz.engine.loop import train
from ptviz.engine.lr_find import find_lr, suggest
from ptviz.engine.sinks import ListSink
from ptviz.engine.storage import checkpoint as ckpt
from ptviz.tui.cli import main

from test_checkpoints import only_run, small


def run_with(config, sweep: bool) -> list[float]:
    """Train `config`, pausing at the first step boundary (and sweeping there when `sweep`); every step loss."""
    control = Control()
    control.send(Pause())  # taken at the first step boundary

    class Resumer(ListSink):
        def emit(self, event):
            super().emit(event)
            if isinstance(event, Paused):
                if sweep:
                    control.send(FindLr(end=0.1, steps=30))
                control.send(Resume())

    sink = Resumer()
    train(config, sink, control)
    swept = sink.of(LrSwept)
    assert bool(swept) == sweep and (not sweep or (swept[-1].done and len(swept[-1].lrs) == 30))
    return [v for e in sink.of(StepMetrics) for v in e.losses]


def test_a_sweep_on_a_paused_run_leaves_it_bit_for_bit_unchanged(digits_config, tmp_path):
    """A 30-step sweep at a pause (sgd-momentum: optimizer state matters): every later step loss and the final
    weights, momentum buffers and RNG equal those of the same run without the sweep."""
    config = small(digits_config, epochs=2)
    config.train.log_interval = 1
    final = {}
    for sweep in (False, True):
        config.output.runs_dir = str(tmp_path / f"sweep-{sweep}")
        losses = run_with(config, sweep)
        state = ckpt.load_newest(only_run(config))[0]
        final[sweep] = (losses, state["model"], state["optimizer"]["state"], state["rng"]["torch"])
    (la, wa, oa, ra), (lb, wb, ob, rb) = final[False], final[True]
    assert la == lb and len(la) == 24
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert torch.equal(ra, rb)
    assert oa and all(torch.equal(oa[i]["momentum_buffer"], ob[i]["momentum_buffer"]) for i in oa)


def test_the_suggested_rate_trains_digits_mlp_to_95_percent_in_10_epochs(digits_config):
    """The steepest descent of a default sweep, given to digits-mlp, reaches >= 95% test accuracy in 10 epochs."""
    digits_config.output.runs_dir = ""
    result = find_lr(digits_config.copy())
    assert result.done and result.suggestion is not None
    assert result.lrs[0] == 1e-7 and "ran away" in result.reason  # 10 is far too high for digits-mlp
    digits_config.optim.lr = result.suggestion
    digits_config.train.epochs = 10
    finished = train(digits_config)
    assert finished.test_accuracy >= 0.95, (result.suggestion, finished.test_accuracy)


def test_suggest_picks_the_steepest_descent_against_log_lr():
    """On a loss that falls fastest at lr 1e-3 (in log10 lr) the suggestion is 1e-3, whatever comes after the
    lowest point (a blow-up is no descent)."""
    logs = [-6 + i * 0.1 for i in range(51)]  # 1e-6 .. 1e-1
    lrs = [10 ** x for x in logs]
    losses = [1 + 1 / (1 + 10 ** ((x + 3) * 3)) for x in logs]  # 2 falling to 1, fastest at 1e-3
    assert suggest(lrs, losses) == pytest.approx(1e-3, rel=0.01)
    blown = [v if x < -2 else 1 + (x + 2) * 50 for x, v in zip(logs, losses)]  # rises steeply from 1e-2
    assert suggest(lrs, blown) == pytest.approx(1e-3, rel=0.01)
    assert suggest(lrs[:3], losses[:3]) is None


def test_lr_find_command_prints_a_chart_and_the_suggestion(capsys):
    """ptviz-tui lr-find takes field flags, draws the sweep and names the rate; bad ranges are one line."""
    assert main(["lr-find", "--recipe", "digits-mlp", "--num-steps", "40", "--max-lr", "1", "--batch-size", "32",
                 "--runs-dir", ""]) == 0
    out = capsys.readouterr().out
    assert "lr finder: suggested learning rate" in out and "⢕⢕ smoothed loss" in out
    assert "train with it: ptviz-tui --recipe digits-mlp --lr " in out
    assert main(["lr-find", "--min-lr", "1", "--max-lr", "0.1"]) == 2
    assert "lr-find: the sweep needs 0 < start < end" in capsys.readouterr().err
