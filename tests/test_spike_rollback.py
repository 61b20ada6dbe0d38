"""The spike guard pauses at the step that spiked; rollback restores the checkpoint in place and the log with it."""

import json
import shutil

import torch

from ptviz.engine.commands import Resume, Rollback, SaveCheckpoint
from ptviz.engine.events import CheckpointSaved, Diverged, LrChanged, Notice, Paused, RolledBack, RunFinished
from ptviz.engine.loop import train
from ptviz.engine.session import TrainingSession
from ptviz.engine.sinks import ListSink
from ptviz.engine.storage import checkpoint as ckpt
from ptviz.engine.storage import history
from ptviz.engine.storage.logrows import read_rows
from ptviz.tui.cli import main

from test_checkpoints import only_run, small

SPIKE_MODEL = '''
from torch import nn


class SpikeAt(nn.Module):
    """A linear classifier whose {k}th training forward pass pushes class 0's logit up by 1000: a loss spike whose
    gradients stay bounded (those of a confident wrong answer), so training can go on after it."""

    def __init__(self, num_classes):
        super().__init__()
        self.fc = nn.Linear(64, num_classes)
        self.calls = 0

    def forward(self, x):
        out = self.fc(x.flatten(1))
        if self.training and x.requires_grad is False and self.fc.weight.requires_grad:
            self.calls += 1
            if self.calls == {k}:
                shifted = out.clone()
                shifted[:, 0] += 1000
                return shifted
        return out


def factory(num_classes):
    return SpikeAt(num_classes)
'''


def spike_config(digits_config, tmp_path, k):
    model = tmp_path / "spike_model.py"
    model.write_text(SPIKE_MODEL.replace("{k}", str(k)))
    config = small(digits_config, epochs=3)  # 12 steps per epoch
    config.model.name = f"{model}:factory"
    config.train.log_interval = 1
    config.train.spike_factor = 10.0
    config.output.checkpoint_steps = 8
    return config


async def test_a_spike_at_step_k_pauses_at_k_and_rollback_restores_the_checkpoint_exactly(digits_config, tmp_path):
    """Spike at 30 (last.pt at 24): pause at 30; roll back skipping steps 29-30 at a lower lr; the run completes
    with each step logged once and one rollback row after the checkpoint's."""
    config = spike_config(digits_config, tmp_path, k=30)
    session = TrainingSession(config)
    session.start()
    diverged = await session.next_event(Diverged)
    assert (diverged.step, diverged.action) == (30, "pause") and diverged.median is not None
    assert diverged.value > 10 * diverged.median
    assert (await session.next_event(Paused)).step == 30
    run = only_run(config)
    kept = tmp_path / "before.pt"
    shutil.copy(run / "checkpoints" / "last.pt", kept)
    session.send(SaveCheckpoint())  # refused: the weights after a spike are not a good checkpoint
    assert "checkpoint not saved: the loss spiked at step 30" in (await session.next_event(Notice)).text
    session.send(Rollback(skip=1, lr=0.025))
    back = await session.next_event(RolledBack)
    assert (back.from_step, back.to_step, back.spike_step, back.lr) == (30, 24, 30, 0.025)
    assert len(back.skipped) == 2  # the batches of steps 29 and 30
    assert (await session.next_event(LrChanged)).lr == 0.025
    session.send(SaveCheckpoint(reason="check"))  # the restored weights, written out by the engine itself
    saved = await session.next_event(CheckpointSaved)
    assert saved.step == 24
    restored, before = ckpt.load_checkpoint(saved.path), ckpt.load_checkpoint(kept)
    assert all(torch.equal(restored["model"][k], before["model"][k]) for k in before["model"])
    assert restored["batch_in_epoch"] == before["batch_in_epoch"] and torch.equal(restored["order"], before["order"])
    assert torch.equal(restored["rng"]["torch"], before["rng"]["torch"])
    session.send(Resume())
    finished = await session.next_event(RunFinished)
    assert finished.state == "finished" and finished.step == 36 - 2
    assert session.stop(timeout=10)
    rows = read_rows(run / "metrics.jsonl")
    steps = [r["step"] for r in rows if r["kind"] == "step"]
    assert steps == list(range(1, 35))  # each step stands once
    assert history.read_steps(run)["step"].tolist() == steps  # and so in the binary copy readers take
    kinds = [type(e).__name__ for e in history.events(run)]
    assert kinds.count("RolledBack") == 1 and "Diverged" not in kinds
    (rollback,) = [i for i, r in enumerate(rows) if r["kind"] == "rollback"]
    assert rows[rollback - 1]["kind"] == "checkpoint" and rows[rollback - 1]["step"] == 24
    assert (rows[rollback]["from_step"], rows[rollback]["to_step"]) == (30, 24)
    assert not [r for r in rows if r["kind"] == "diverged"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["state"] == "finished" and "diverged_at_step" not in summary


async def test_resuming_as_it_is_accepts_the_spike_and_checkpoints_again(digits_config, tmp_path):
    config = spike_config(digits_config, tmp_path, k=25)
    session = TrainingSession(config)
    session.start()
    assert (await session.next_event(Paused)).step == 25
    session.send(Resume())
    finished = await session.next_event(RunFinished)
    assert finished.state == "finished" and finished.step == 36
    assert ckpt.load_newest(only_run(config))[0]["step"] == 36
    assert session.stop(timeout=10)


def test_a_spike_stops_a_headless_run_like_a_nan(digits_config, tmp_path, capsys):
    config = spike_config(digits_config, tmp_path, k=22)
    code = main(["--headless", "--model", config.model.name, "--runs-dir", config.output.runs_dir, "--batch-size",
                 "128", "--epochs", "3", "--log-interval", "1", "--spike-factor", "10", "--checkpoint-minutes", "0"])
    assert code == 3
    out = capsys.readouterr().out
    assert "loss spiked to" in out and "at step 22; stopping" in out
    summary = json.loads((only_run(config) / "summary.json").read_text())
    assert summary["state"] == "diverged" and summary["step"] == 22


def test_rollback_without_a_run_folder_is_refused_and_changes_nothing(digits_config):
    config = small(digits_config, epochs=1)
    config.output.runs_dir = ""
    from ptviz.engine.commands import Control

    control = Control()
    control.send(Rollback())
    sink = ListSink()
    finished = train(config, sink, control)
    assert finished.step == 12
    assert any("not rolled back: this run has no folder" in n.text for n in sink.of(Notice))
    assert not sink.of(RolledBack)
