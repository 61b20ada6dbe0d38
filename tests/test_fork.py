"""Fork a run from one of its checkpoints: exact start, changed settings, recorded parent, refusals before any write."""

from __future__ import annotations

import json

import pytest
import torch

from runs_helpers import train_digits
from ptviz.engine.errors import CheckpointError, UserError
from ptviz.engine.fork import config_from, load_parent, plan_fork
from ptviz.engine.loop import Trainer, train
from ptviz.engine.setup import build
from ptviz.engine.sinks import ListSink
from ptviz.engine.commands import Control, SetLearningRate
from ptviz.engine.storage.lineage import read_lineage
from ptviz.tui.cli import main


@pytest.fixture(scope="module")
def parent(tmp_path_factory):
    """A 4-epoch digits run with a checkpoint after every epoch and one loss row per step."""
    runs = tmp_path_factory.mktemp("fork") / "runs"
    return train_digits(runs, lr=0.05, epochs=4, log_interval=1)


def step_rows(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
            if line.startswith('{"kind":"step"')]


def fork_config(parent, lr):
    state, path = load_parent(parent, "epoch-0003.pt")
    config = config_from(state["config"], source=str(path))
    config.output.runs_dir = str(parent.parent)
    config.optim.lr = lr
    return state, path, config


def test_a_fork_starts_from_the_checkpoint_exactly_with_the_new_lr(parent):
    """First step = the checkpoint's + 1; weights before it = the checkpoint's (its loss is the parent's at that
    step, computed before any update); from the next step the new lr makes it differ; parent and step recorded."""
    state, path, config = fork_config(parent, lr=0.01)
    plan = plan_fork(parent, state, path, config)
    assert plan.lineage.step == state["step"] == 3 * 45 and plan.lineage.changed == {"optim.lr": [0.05, 0.01]}
    assert plan.state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.01)
    assert state["optimizer"]["param_groups"][0]["lr"] == 0.05  # the loaded checkpoint itself is left as it was

    trainer = Trainer(build(plan.config), ListSink(), Control())
    trainer.restore(plan.state)
    for name, tensor in state["model"].items():
        assert torch.equal(trainer.s.model.state_dict()[name], tensor), name

    before = set(parent.parent.iterdir())
    config.train.max_steps = state["step"] + 3
    plan = plan_fork(parent, state, path, config)
    train(plan.config, resume=plan.state, parent=plan.lineage, listen=False)
    (child,) = set(parent.parent.iterdir()) - before
    child_rows, parent_rows = step_rows(child), {r["step"]: r for r in step_rows(parent)}
    first = child_rows[0]
    assert first["step"] == state["step"] + 1
    assert first["loss"] == parent_rows[first["step"]]["loss"]  # same weights, same batch
    assert first["lr"] == pytest.approx(0.01) and parent_rows[first["step"]]["lr"] == 0.05
    assert child_rows[1]["loss"] != parent_rows[first["step"] + 1]["loss"]  # the new lr took effect
    lineage = read_lineage(child)
    assert lineage.parent == str(parent.resolve()) and lineage.checkpoint == "epoch-0003.pt"
    assert lineage.step == state["step"] and lineage.epoch == 3


def test_a_checkpoint_that_does_not_fit_the_changed_model_is_refused_before_anything_is_written(parent):
    state, path, config = fork_config(parent, lr=0.05)
    config.model.name = "cnn"
    before = set(parent.parent.iterdir())
    with pytest.raises(CheckpointError, match=r"does not fit the model these settings build \(model.name mnist-mlp → cnn\)"):
        plan_fork(parent, state, path, config)
    assert set(parent.parent.iterdir()) == before


def test_settings_a_fork_cannot_change_are_refused(parent):
    state, path, config = fork_config(parent, lr=0.05)
    config.optim.optimizer = "adam"
    with pytest.raises(UserError, match="optim.optimizer cannot change"):
        plan_fork(parent, state, path, config)
    state, path, config = fork_config(parent, lr=0.05)
    config.train.epochs = 3  # the fork form's epochs field, or --epochs: the message names both, not a flag alone
    with pytest.raises(UserError, match=r"train.epochs is 3: set it above \d+ \(epochs, or --epochs N\)"):
        plan_fork(parent, state, path, config)


def test_user_code_named_only_by_the_run_folder_is_never_imported(parent, tmp_path):
    """A parent whose settings name file.py:factory: refused unless the user names it again."""
    marker = tmp_path / "ran"
    factory = tmp_path / "evil.py"
    factory.write_text(f"open({str(marker)!r}, 'w').write('x')\ndef make(n):\n    raise SystemExit\n")
    state, path, config = fork_config(parent, lr=0.05)
    config.model.name = f"{factory}:make"
    with pytest.raises(UserError, match=f"never imports code that only a run folder names.*--model {factory}:make"):
        plan_fork(parent, state, path, config)
    assert not marker.exists()


def test_fork_command_prints_the_branch_and_runs_lists_the_tree(parent, capsys):
    code = main(["fork", str(parent), "--checkpoint", "epoch-0003.pt", "--lr", "0.02", "--max-steps", "140",
                 "--headless"])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    assert f"forking {parent} from epoch-0003.pt (step 135, epoch 3): optim.lr 0.05 → 0.02" in out.out
    assert main(["runs", str(parent.parent)]) == 0  # stdout is not a terminal here: the plain listing
    lines = capsys.readouterr().out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(parent.name))
    assert lines[at + 1].startswith("└ ") and "@ step 135" in lines[at + 1], lines
    assert main(["fork", str(parent), "--checkpoint", "epoch-0009.pt"]) == 2
    err = capsys.readouterr().err
    assert "no checkpoint 'epoch-0009.pt' (available: " in err and "Traceback" not in err


@pytest.fixture(scope="module")
def live_parent(tmp_path_factory):
    """A 2-epoch digits run (lr setting 0.05) whose rate was changed live to 0.005 at its first logged step."""
    from ptviz.engine.events import StepMetrics
    from runs_helpers import recipe

    runs = tmp_path_factory.mktemp("live") / "runs"
    config = recipe("digits-mlp")
    config.output.runs_dir, config.output.tensorboard = str(runs), False
    config.train.epochs, config.train.log_interval = 2, 1
    control = Control()

    class SetLrAtFirstStep(ListSink):
        def emit(self, event):
            super().emit(event)
            if isinstance(event, StepMetrics) and not self.of(StepMetrics)[1:]:
                control.send(SetLearningRate(0.005))

    train(config, SetLrAtFirstStep(), control, listen=False)
    (run,) = runs.iterdir()
    return run


def child_first_lr(runs, before, argv):
    assert main(argv) == 0
    (child,) = set(runs.iterdir()) - before
    return step_rows(child)[0]["lr"]


def test_a_fork_goes_on_at_the_live_rate_unless_a_rate_is_given_even_the_setting(live_parent, capsys):
    """The checkpoint trained at 0.005 (set live; the setting says 0.05): the fork's settings start at 0.005, so
    leaving optim.lr keeps it, and giving 0.05, the run's setting, trains at 0.05."""
    from ptviz.engine.fork import fork_config

    state, path = load_parent(live_parent, "last")
    assert state["config"]["optim"]["lr"] == 0.05
    assert fork_config(state, str(path)).optim.lr == pytest.approx(0.005)
    runs = live_parent.parent
    common = ["fork", str(live_parent), "--epochs", "3", "--max-steps", str(state["step"] + 2), "--headless"]
    assert child_first_lr(runs, set(runs.iterdir()), common) == pytest.approx(0.005)
    assert "optim.lr" not in capsys.readouterr().out  # the fork changed nothing about the rate
    assert child_first_lr(runs, set(runs.iterdir()), [*common, "--lr", "0.05"]) == pytest.approx(0.05)
    assert "optim.lr 0.005 → 0.05" in capsys.readouterr().out
