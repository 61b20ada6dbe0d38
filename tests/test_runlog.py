"""The run log's rows, cutting it back to a checkpoint, and following it (no training)."""

import subprocess
import sys

from ptviz.engine.events import CheckpointSaved, EpochEnded, Paused, StepMetrics
from ptviz.engine.storage.logrows import encode, rows_of, rows_up_to_checkpoint
from ptviz.engine.remote import LogFollower
from ptviz.engine.storage import history


def step_rows(first, last, epoch=1):
    n = last - first + 1
    return rows_of(StepMetrics(steps=tuple(range(first, last + 1)), losses=(0.5,) * n, lrs=(0.1,) * n,
                               epoch=epoch, epoch_step=last, samples_per_s=10.0, elapsed=1.0), wall=0.0)


def checkpoint_row(step, save_id):
    return rows_of(CheckpointSaved("last.pt", step, 0, "periodic", save_id=save_id), wall=0.0)


def test_log_is_cut_right_after_the_checkpoints_own_row():
    rows = [*step_rows(1, 10), *checkpoint_row(10, "a"), *step_rows(11, 20), *checkpoint_row(20, "b"),
            *step_rows(21, 23)]
    kept = rows_up_to_checkpoint(rows, "a", 10)
    assert [r["step"] for r in kept if r["kind"] == "step"] == list(range(1, 11)) and kept[-1]["save_id"] == "a"
    # Without the checkpoint's row (killed between writing the file and logging it): cut by step.
    kept = rows_up_to_checkpoint(rows, "missing", 15)
    assert [r["step"] for r in kept if r["kind"] == "step"] == list(range(1, 16))


def test_history_before_a_resume_ends_at_its_checkpoint(tmp_path):
    rows = [*step_rows(1, 10), *checkpoint_row(10, "a"), *step_rows(11, 14)]
    (tmp_path / "metrics.jsonl").write_text(encode(rows))
    cut = history.checkpoint_cut(tmp_path, "a", 10)
    assert history.load(tmp_path, cut=cut).series["loss"].x.tolist() == list(range(1, 11))
    assert history.load(tmp_path).steps == 14


def test_non_finite_losses_are_written_as_null_and_read_back_as_nan(tmp_path):
    rows = rows_of(StepMetrics(steps=(1, 2), losses=(0.25, float("nan")), lrs=(0.1, 0.1), epoch=1, epoch_step=2,
                               samples_per_s=1.0, elapsed=0.1), wall=0.0)
    assert [r["loss"] for r in rows] == [0.25, None]
    (tmp_path / "metrics.jsonl").write_text(encode(rows))
    (event,) = LogFollower(tmp_path).poll()
    assert event.steps == (1, 2) and event.losses[0] == 0.25 and event.losses[1] != event.losses[1]


def test_follower_reads_history_then_only_complete_new_lines(tmp_path):
    log = tmp_path / "metrics.jsonl"
    epoch = EpochEnded(epoch=1, step=10, train_loss=0.5, train_accuracy=0.9, test_loss=0.4, test_accuracy=0.91,
                       val_loss=None, val_accuracy=None, seconds=1.5, lr=0.1)
    log.write_text(encode([*step_rows(1, 10), *rows_of(epoch, 0.0)]))
    follower = LogFollower(tmp_path)
    history = follower.poll()
    assert [type(e) for e in history] == [StepMetrics, EpochEnded] and history[1] == epoch
    line = encode(rows_of(Paused(10), 0.0))
    with open(log, "a") as fh:
        fh.write(line[:7])  # a writer caught mid-line
    assert follower.poll() == []
    with open(log, "a") as fh:
        fh.write(line[7:])
    assert follower.poll() == [Paused(10)]
    assert follower.poll() == []


def test_remote_client_and_run_listing_do_not_import_torch():
    code = ("import sys, ptviz.engine.remote, ptviz.engine.storage.runs, ptviz.tui.commands\n"
            "print('torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_resumed_run_keeps_its_best_result_and_checkpoints_in_the_summary(tmp_path):
    """summary.json during and after a resume still names the best accuracy so far and best.pt."""
    import json

    from ptviz.engine.storage.runlog import RunLog

    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "best.pt").write_bytes(b"x")
    rows = [*step_rows(1, 10), *checkpoint_row(10, "a")]
    (tmp_path / "metrics.jsonl").write_text(encode(rows))
    (tmp_path / "summary.json").write_text(json.dumps({
        "started_at": "2026-11-29T08:00:00", "state": "stopped", "best_test_accuracy": 0.9721,
        "best_checkpoint": "checkpoints/best.pt", "last_checkpoint": "checkpoints/gone.pt"}))
    log = RunLog(tmp_path, resume={"step": 10, "save_id": "a", "best_test_accuracy": 0.9721}, tensorboard=False)
    with log:
        log.emit(EpochEnded(epoch=2, step=20, train_loss=0.3, train_accuracy=0.95, test_loss=0.3,
                            test_accuracy=0.9694, val_loss=None, val_accuracy=None, seconds=1.0, lr=0.1))
        summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["best_test_accuracy"] == 0.9721 and summary["test_accuracy"] == 0.9694
    assert summary["best_checkpoint"] == "checkpoints/best.pt"
    assert "last_checkpoint" not in summary  # a file that is no longer there is not named
    assert summary["started_at"] == "2026-11-29T08:00:00"


def test_run_folders_are_named_after_what_trains_when_it_is_not_the_recipes(tmp_path):
    """<date>-<time>-digits-mlp for the recipe as it is; the model and data set once either changed."""
    from ptviz.engine.recipes import recipe
    from ptviz.engine.storage.rundir import create_run_dir, run_name

    config = recipe("digits-mlp")
    assert run_name(config) == "digits-mlp"
    config.data.dataset = "fake"
    assert run_name(config) == "mnist-mlp-fake"
    config.model.name = "models/my_nets.py:make"
    assert run_name(config) == "my_nets.make-fake"
    config.model.name = "lab.nets:wide_resnet"
    assert run_name(config) == "nets.wide_resnet-fake"
    config.output.runs_dir = str(tmp_path)
    assert create_run_dir(config, now=0).name.endswith("-nets.wide_resnet-fake")


def test_runs_lists_a_damaged_summary_as_damaged_with_the_reason_and_the_rest_as_usual(tmp_path, capsys):
    import json

    from ptviz.tui.cli import main

    summaries = {
        "20260101-000000-good": json.dumps({"state": "finished", "step": 24, "total_steps": 24, "epoch": 2,
                                            "epochs": 2, "best_test_accuracy": 0.9}),
        "20260101-000001-cut": '{"state": "finished", "step": 2',
        "20260101-000002-typed": json.dumps({"state": "finished", "best_test_accuracy": "high"}),
        "20260101-000003-list": "[1, 2]",
    }
    for name, text in summaries.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.toml").write_text('recipe = "digits-mlp"\n')
        (tmp_path / name / "summary.json").write_text(text)
    assert main(["runs", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    table = {line.split()[0]: line.split()[1] for line in out[1:5]}
    assert table == {"20260101-000000-good": "finished", "20260101-000001-cut": "damaged",
                     "20260101-000002-typed": "damaged", "20260101-000003-list": "damaged"}
    assert "90.00%" in out[1]
    assert out[5].startswith("20260101-000001-cut: damaged: summary.json: not valid JSON (")
    assert out[6] == '20260101-000002-typed: damaged: summary.json: best_test_accuracy is "high", not a number'
    assert out[7] == "20260101-000003-list: damaged: summary.json: holds a list, not an object"
