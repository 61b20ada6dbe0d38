"""Run folders for the Runs view's tests: real trained runs, and synthetic ones written in the real formats."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

from ptviz.engine.config import dump_toml
from ptviz.engine.events import EpochEnded, LrChanged, RunFinished, RunStarted, StepMetrics, TrainableChanged
from ptviz.engine.loop import train
from ptviz.engine.recipes import recipe
from ptviz.engine.storage.lineage import Lineage, write_lineage
from ptviz.engine.storage.logrows import encode, rows_of

LRS = (0.05, 0.2, 0.01)


def train_digits(runs: Path, lr: float, epochs: int = 2, **train_fields) -> Path:
    """Train the default recipe on digits into a new folder under `runs`; returns the run folder."""
    config = recipe("digits-mlp")
    config.output.runs_dir = str(runs)
    config.optim.lr = lr
    config.train.epochs = epochs
    config.output.tensorboard = False
    for name, value in train_fields.items():
        setattr(config.train, name, value)
    before = set(runs.iterdir()) if runs.exists() else set()
    train(config, listen=False)
    (run,) = set(runs.iterdir()) - before
    return run


def copy_run(run: Path, name: str) -> Path:
    """A copy of a run folder beside it (its lock and socket left behind)."""
    target = run.parent / name
    shutil.copytree(run, target, ignore=shutil.ignore_patterns("control"))
    return target


def synthetic_run(runs: Path, name: str, lr: float, *, epochs: int = 4, steps_per_epoch: int = 45,
                  started: str = "2026-11-29T12:00:00+0000", seconds: float = 12.5, accuracy_gain: float = 0.0,
                  parent: Path | None = None, branch_epoch: int = 0) -> Path:
    """A finished digits-mlp run written directly: config.toml, summary.json and metrics.jsonl, fixed values."""
    config = recipe("digits-mlp")
    config.output.runs_dir = "runs"
    config.optim.lr = lr
    config.train.epochs = epochs
    run = runs / name
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.toml").write_text(dump_toml(config))
    first_epoch = branch_epoch + 1
    rows = rows_of(RunStarted(config=config.to_dict(), run_dir=str(run), device="cpu", device_name="CPU",
                              params_total=1, params_trainable=1, train_size=1438, val_size=0, test_size=359,
                              steps_per_epoch=steps_per_epoch, total_steps=epochs * steps_per_epoch, epochs=epochs,
                              class_names=tuple("0123456789"), input_shape=(1, 8, 8), resident=True,
                              start_step=branch_epoch * steps_per_epoch, start_epoch=branch_epoch), 0.0)
    best = None
    for epoch in range(first_epoch, epochs + 1):
        first = (epoch - 1) * steps_per_epoch + 1
        steps = tuple(range(first, first + steps_per_epoch))
        losses = tuple(2.3 * math.exp(-s * lr) + 0.05 + 0.05 * math.sin(s) ** 2 for s in steps)
        rows += rows_of(StepMetrics(steps=steps, losses=losses, lrs=(lr,) * len(steps), epoch=epoch,
                                    epoch_step=steps_per_epoch, samples_per_s=15000.0 + 100 * epoch,
                                    elapsed=seconds * epoch / epochs), 1000.0 + epoch)
        accuracy = min(0.99, 1 - 0.3 / epoch + accuracy_gain)
        best = max(best or 0.0, accuracy)
        rows += rows_of(EpochEnded(epoch=epoch, step=steps[-1], train_loss=losses[-1], train_accuracy=accuracy,
                                   test_loss=losses[-1] * 1.2, test_accuracy=accuracy, val_loss=None,
                                   val_accuracy=None, seconds=seconds / epochs, lr=lr), 1000.0 + epoch)
        if epoch == 2:
            rows += rows_of(LrChanged(step=steps[-1], lr=lr / 2), 1000.0 + epoch)
            rows += rows_of(TrainableChanged(step=steps[-1], module="fc1", trainable=False, params_trainable=10,
                                             params_total=20), 1000.0 + epoch)
    total = epochs * steps_per_epoch
    rows += rows_of(RunFinished(step=total, epoch=epochs, seconds=seconds, stopped=False, train_loss=0.1,
                                test_loss=0.12, test_accuracy=accuracy, best_test_accuracy=best), 1000.0 + epochs)
    (run / "metrics.jsonl").write_text(encode(rows))
    summary = {"started_at": started, "state": "finished", "step": total, "epoch": epochs, "total_steps": total,
               "epochs": epochs, "test_accuracy": accuracy, "best_test_accuracy": best, "train_loss": 0.1,
               "seconds": seconds}
    (run / "summary.json").write_text(json.dumps(summary))
    if parent is not None:
        write_lineage(run, Lineage(parent=str(parent.resolve()), checkpoint=f"epoch-{branch_epoch:04d}.pt",
                                   step=branch_epoch * steps_per_epoch, epoch=branch_epoch,
                                   changed={"optim.lr": [0.05, lr]}))
    return run
