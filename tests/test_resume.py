"""Resume continues exactly or says why not: code only the run folder names, a resized data set, flags given."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest
import torch

from cockpit_helpers import wait_for
from ptviz.engine import trust
from ptviz.engine.errors import CheckpointError, ConfigError
from ptviz.engine.events import Notice
from ptviz.engine.loop import Trainer, train
from ptviz.engine.sinks import ListSink
from ptviz.engine.storage import checkpoint as ckpt
from ptviz.engine.storage.logrows import read_rows
from ptviz.tui.app import PtvizApp
from ptviz.tui.cli import main
from ptviz.tui.commands import config_of
from ptviz.tui.model.pane import ModelPane
from ptviz.tui.screens.confirm import ConfirmScreen

# A model file that leaves a mark each time it is imported: the mark proves whether resume ran it.
MARKING_MODEL = """
from pathlib import Path
from torch import nn

with Path({marker!r}).open("a") as mark:
    mark.write("imported\\n")


def make(num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes))
"""


def small(config, epochs=2, max_steps=0):
    """digits-mlp in 12 steps per epoch, plain SGD so one step's update is lr × gradient."""
    config.data.batch_size = 128
    config.train.epochs = epochs
    config.train.max_steps = max_steps
    config.train.log_interval = 1
    config.output.checkpoint_minutes = 0
    return config


def only_run(config) -> Path:
    (run,) = Path(config.output.runs_dir).iterdir()
    return run


def steps_logged(run: Path) -> list[int]:
    return [r["step"] for r in read_rows(run / "metrics.jsonl") if r["kind"] == "step"]


@pytest.fixture
def user_model_run(tmp_path, digits_config):
    """A finished 6-step run of a user model file; returns (run dir, spec, marker file)."""
    marker = tmp_path / "imported.txt"
    model = tmp_path / "nets.py"
    model.write_text(MARKING_MODEL.format(marker=str(marker)))
    config = small(digits_config, epochs=1, max_steps=6)
    config.model.name = f"{model}:make"
    train(config)
    marker.unlink()  # the run itself imported it; from here on every import is resume's doing
    return only_run(config), config.model.name, marker


# ----------------------------------------------------------------------------- code the run folder names


def test_headless_resume_refuses_to_import_code_only_the_run_folder_names(user_model_run, capsys):
    """Without --model the file is never imported; the message shows it and the command that confirms it."""
    run, spec, marker = user_model_run
    summary_before = (run / "summary.json").read_text()
    argv = ["resume", str(run), "--headless", "--max-steps", "9"]
    assert main(argv) == 2
    assert trust.user_code(config_of(ckpt.load_newest(run)[0]["config"], "checkpoint")) == {"model.name": spec}
    err = capsys.readouterr().err
    assert f"model.name = {spec} (the file {Path(spec.rpartition(':')[0]).resolve()})" in err
    command = err.strip().splitlines()[-1].strip()
    assert command == shlex.join(["ptviz-tui", *argv, "--model", spec])
    assert not marker.exists()
    assert (run / "summary.json").read_text() == summary_before  # nothing in the run folder changed
    # The exact command it printed: the user named the code, so it runs, and the run continues.
    assert main(shlex.split(command)[1:]) == 0
    assert marker.read_text() == "imported\n"
    assert steps_logged(run) == list(range(1, 10))


async def test_cockpit_resume_asks_before_importing_the_run_folders_code(user_model_run):
    """The cockpit shows the spec and builds nothing, not even the Model tab's preview, until the user says yes."""
    run, spec, marker = user_model_run
    state, _, _ = ckpt.load_newest(run)
    config = config_of(state["config"], "checkpoint")
    config.train.max_steps = 9
    app = PtvizApp(config, resume=state, run_dir=run, unconfirmed_code=trust.user_code(config))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the confirm screen")
        assert spec in app.screen.question and str(Path(spec.rpartition(":")[0]).resolve()) in app.screen.question
        await pilot.press("n")
        pane = app.query_one(ModelPane)
        await wait_for(pilot, lambda: "not built" in pane.error, what="the Model tab to hold its preview")
        assert app.run_state == "idle" and not marker.exists()
        await pilot.press("s")  # starting again asks again
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the confirm screen again")
        await pilot.press("y")
        await wait_for(pilot, lambda: app.run_state == "finished", what="the resumed run to finish")
    assert marker.exists()
    assert steps_logged(run) == list(range(1, 10))


async def test_attaching_shows_a_user_models_tree_only_after_a_yes(user_model_run):
    """attach reads config.toml, which names the model file: the Model tab asks before importing it."""
    run, spec, marker = user_model_run
    config = config_of(__import__("tomllib").loads((run / "config.toml").read_text()), "config.toml")
    app = PtvizApp(config, attach=run, unconfirmed_code=trust.user_code(config))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the confirm screen")
        assert spec in app.screen.question
        pane = app.query_one(ModelPane)
        await wait_for(pilot, lambda: "not built" in pane.error, what="the Model tab to hold its preview")
        assert not marker.exists()
        await pilot.press("y")
        await wait_for(pilot, lambda: app.query_one("ModelTab").preview_model is not None, what="the preview")
    assert marker.exists()


# ----------------------------------------------------------------------------- data size


@pytest.mark.parametrize("val_split", [0.2, 0.0], ids=["shrank", "grew"])
def test_resume_mid_epoch_on_a_resized_training_split_is_refused_naming_both_sizes(digits_config, val_split):
    """Mid-epoch, the saved sample order belongs to the old split: refused before anything is written."""
    config = small(digits_config, epochs=2, max_steps=5)
    config.data.val_split = 0.1
    train(config)
    run = only_run(config)
    state, _, _ = ckpt.load_newest(run)
    assert state["batch_in_epoch"] == 5
    log_before, summary_before = (run / "metrics.jsonl").read_bytes(), (run / "summary.json").read_bytes()
    resized = config.copy()
    resized.data.val_split, resized.train.max_steps = val_split, 0
    with pytest.raises(CheckpointError) as refused:
        train(resized, resume=state, run_dir=run)
    saved, now = state["order"].numel(), {0.2: 1150, 0.0: 1438}[val_split]
    assert f"the training split has {now:,} samples" in str(refused.value)
    assert f"mid-epoch (epoch 1, batch 5) over {saved:,}" in str(refused.value)
    assert (run / "metrics.jsonl").read_bytes() == log_before and (run / "summary.json").read_bytes() == summary_before


def test_resume_at_an_epoch_boundary_on_a_grown_split_continues_with_a_notice(digits_config, capsys):
    """At a boundary the next epoch's order is drawn for the new size: the run goes on, and says so."""
    config = small(digits_config, epochs=1)
    config.data.val_split = 0.2  # 1,150 training images: 9 steps of 128
    train(config)
    run = only_run(config)
    state = ckpt.load_checkpoint(run / "checkpoints" / "epoch-0001.pt")
    assert (state["step"], state["epoch"], state["batch_in_epoch"]) == (9, 1, 0)
    # 1,438 images from here on: 12 steps of 128; --checkpoint names the boundary checkpoint to continue from.
    assert main(["resume", str(run), "--headless", "--checkpoint", "epoch-0001.pt", "--val-split", "0",
                 "--epochs", "2"]) == 0
    assert "resuming" in capsys.readouterr().out
    rows = read_rows(run / "metrics.jsonl")
    assert "the training split has 1,438 samples, the checkpoint's run had 1,150: epoch 2 starts with the new size" \
        in [r["text"] for r in rows if r["kind"] == "notice"]
    assert steps_logged(run) == list(range(1, 22))
    assert json.loads((run / "summary.json").read_text())["state"] == "finished"


async def test_a_resume_at_an_epoch_boundary_names_the_epoch_its_last_step_belongs_to_until_it_steps(digits_config,
                                                                                                      tmp_path):
    """Resumed from epoch 1's checkpoint and paused before a step: the start event, the status line, the log's
    started row and line, `send status` and summary.json all say epoch 1 (1-based), as the step rows, checkpoints
    and evaluations of that position do; before, every one of them said epoch 2 until the first step."""
    from ptviz.engine.commands import Control, Pause, Stop
    from ptviz.engine.events import Paused, RunStarted
    from ptviz.engine.remote import ControlServer
    from ptviz.engine.storage.catalog import read_record
    from textual.app import App

    from ptviz.tui.train.status_bar import StatusBar

    config = small(digits_config, epochs=1)
    train(config, listen=False)
    run = only_run(config)
    state = ckpt.load_checkpoint(run / "checkpoints" / "epoch-0001.pt")
    assert (state["step"], state["epoch"], state["batch_in_epoch"]) == (12, 1, 0)
    config.train.epochs = 2
    control, at_pause = Control(), {}

    class PauseBeforeTheFirstStep(ListSink):
        def emit(self, event):
            super().emit(event)
            if isinstance(event, RunStarted):
                control.send(Pause())
            if isinstance(event, Paused):
                at_pause["record"] = read_record(run)  # the run log is told each event before this sink
                control.send(Stop())

    sink = PauseBeforeTheFirstStep()
    train(config, sink, control, resume=state, run_dir=run, listen=False)
    (started,) = sink.of(RunStarted)
    assert sink.of(Paused)[0].step == started.start_step == 12
    assert (started.start_epoch, started.epoch) == (1, 1)
    assert at_pause["record"].epoch == 1
    async with App().run_test(size=(100, 3)) as pilot:
        bar = StatusBar()
        await pilot.app.mount(bar)
        bar.ingest(started)
        assert " epoch 1/2 " in str(bar.render())
    (row,) = [r for r in read_rows(run / "metrics.jsonl") if r["kind"] == "started" and r["start_step"]]
    assert row["epoch"] == 1
    (tmp_path / "status").mkdir()
    server = ControlServer(tmp_path / "status", Control())
    try:
        for event in sink.events[:sink.events.index(sink.of(Paused)[0]) + 1]:
            server.emit(event)
        assert server.status["epoch"] == 1
    finally:
        server.close()


def test_a_checkpoint_order_that_does_not_fit_is_refused_before_training(digits_config):
    """A step row per step: a checkpoint whose counters make no sense is refused, never trained on."""
    config = small(digits_config, epochs=1, max_steps=5)
    train(config)
    state, _, _ = ckpt.load_newest(only_run(config))
    state["step"] = -5
    with pytest.raises(CheckpointError, match=r"position is invalid: step is -5"):
        train(config, resume=state, run_dir=only_run(config))


# ----------------------------------------------------------------------------- optimizer flags


def test_lr_given_to_resume_is_the_lr_of_the_next_step(digits_config):
    """--lr on resume: the optimizer uses it from the very next step, and the log and checkpoint say so."""
    config = small(digits_config, epochs=1, max_steps=6)
    config.optim.optimizer, config.optim.lr = "sgd", 0.01
    train(config)
    run = only_run(config)
    before = ckpt.load_newest(run)[0]["model"]
    same, changed = run.with_name("same"), run.with_name("changed")
    shutil.copytree(run, same)
    shutil.copytree(run, changed)
    assert main(["resume", str(same), "--headless", "--max-steps", "7"]) == 0
    assert main(["resume", str(changed), "--headless", "--lr", "0.05", "--max-steps", "7"]) == 0
    after = {d: ckpt.load_checkpoint(d / "checkpoints" / "last.pt") for d in (same, changed)}
    for name, weights in before.items():  # plain SGD from the same state and batch: the step scales with lr
        ratio = (after[changed]["model"][name] - weights).norm() / (after[same]["model"][name] - weights).norm()
        assert ratio.item() == pytest.approx(5.0, rel=1e-3), name
    assert after[changed]["optimizer"]["param_groups"][0]["lr"] == 0.05
    rows = read_rows(changed / "metrics.jsonl")
    assert [(r["step"], r["lr"]) for r in rows if r["kind"] == "step"][-2:] == [(6, 0.01), (7, 0.05)]
    assert [(r["step"], r["lr"]) for r in rows if r["kind"] == "lr"] == [(6, 0.05)]
    assert "resume: optim.lr 0.01 → 0.05: the learning rate is now 0.05" in [
        r["text"] for r in rows if r["kind"] == "notice"]
    assert not [r for r in read_rows(same / "metrics.jsonl") if r["kind"] == "lr"]


def test_momentum_and_weight_decay_given_to_resume_reach_the_optimizer(digits_config):
    config = small(digits_config, epochs=1, max_steps=4)
    train(config)
    run = only_run(config)
    assert main(["resume", str(run), "--headless", "--momentum", "0.5", "--weight-decay", "0.001",
                 "--max-steps", "5"]) == 0
    group = ckpt.load_checkpoint(run / "checkpoints" / "last.pt")["optimizer"]["param_groups"][0]
    assert (group["momentum"], group["weight_decay"]) == (0.5, 0.001)
    notices = [r["text"] for r in read_rows(run / "metrics.jsonl") if r["kind"] == "notice"]
    assert "resume: optim.momentum 0.9 → 0.5" in notices and "resume: optim.weight_decay 0 → 0.001" in notices


@pytest.mark.parametrize("flags, field, fragment", [
    (["--optimizer", "adam"], "optim.optimizer", "the checkpoint holds sgd-momentum state"),
    (["--scheduler", "cosine"], "optim.scheduler", "the checkpoint's schedule is none"),
])
def test_resume_refuses_an_optimizer_or_schedule_it_cannot_continue(digits_config, capsys, flags, field, fragment):
    config = small(digits_config, epochs=1, max_steps=4)
    train(config)
    run = only_run(config)
    summary_before = (run / "summary.json").read_text()
    assert main(["resume", str(run), "--headless", *flags, "--max-steps", "6"]) == 2
    err = capsys.readouterr().err
    assert f"{field}: got " in err and fragment in err and "Traceback" not in err
    assert (run / "summary.json").read_text() == summary_before and steps_logged(run) == [1, 2, 3, 4]


def test_one_cycle_refuses_more_epochs_and_cosine_stretches_to_them(digits_config):
    """One-cycle's cycle spans the whole run and cannot stretch; cosine's end moves to the new last epoch."""
    for scheduler in ("one-cycle", "cosine"):
        config = small(digits_config, epochs=1)
        config.optim.scheduler = scheduler
        config.output.runs_dir = str(Path(digits_config.output.runs_dir) / scheduler)
        train(config)
        run = only_run(config)
        state, _, _ = ckpt.load_newest(run)
        longer = config.copy()
        longer.train.epochs = 2
        if scheduler == "one-cycle":
            with pytest.raises(ConfigError, match="one-cycle schedule spans the run's 12 steps"):
                train(longer, resume=state, run_dir=run)
            continue
        sink = ListSink()
        train(longer, sink, resume=state, run_dir=run)
        assert "resume: the cosine schedule now ends at epoch 2 (was 1)" in [n.text for n in sink.of(Notice)]
        assert ckpt.load_checkpoint(run / "checkpoints" / "last.pt")["scheduler"]["T_max"] == 2


# ----------------------------------------------------------------------------- a resume that fails


def test_a_resume_that_fails_before_its_first_step_keeps_a_finished_run_finished(digits_config, monkeypatch,
                                                                                  capsys):
    config = small(digits_config, epochs=1)
    train(config)
    run = only_run(config)
    before = json.loads((run / "summary.json").read_text())
    assert before["state"] == "finished"

    def fails(self, *batch):
        raise RuntimeError("CUDA out of memory (simulated)")

    monkeypatch.setattr(Trainer, "_step", fails)
    assert main(["resume", str(run), "--headless", "--epochs", "2"]) == 1
    after = json.loads((run / "summary.json").read_text())
    assert after["state"] == "finished" and after["step"] == before["step"]
    assert after["resume_failed"] == "RuntimeError: CUDA out of memory (simulated)"
    capsys.readouterr()
    assert main(["runs", str(run.parent)]) == 0
    assert "finished" in capsys.readouterr().out
