"""Your own task on the engine (CPU): the examples train, commands work, resumes are exact, bad input is named."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest
import torch

import ptviz
from ptviz.engine.commands import Control, EvaluateNow, Pause, Resume, SaveCheckpoint, SetLearningRate, Stop
from ptviz.engine.errors import TaskError
from ptviz.engine.events import (
    CheckpointSaved,
    EpochEnded,
    Evaluated,
    LrChanged,
    Paused,
    Resumed,
    RunFinished,
    RunStarted,
    StepMetrics,
)
from ptviz.engine.loop import Trainer, train
from ptviz.engine.session import TrainingSession
from ptviz.engine.setup import build
from ptviz.engine.sinks import ListSink
from ptviz.engine.storage import checkpoint as ckpt
from ptviz.engine.storage.logrows import read_rows
from ptviz.tui.cli import main as cli_main
from test_never_lose_work import spawned  # noqa: F401 - the fixture
from task_files import AUGMENTED, BROKEN, EXAMPLES, ITERABLE, LAZY_CLASSIFIER, write_task

REGRESSION_MSE_BOUND = 0.02  # the noise alone is 0.0025; predicting the mean scores about 0.9
CHARLM_LOSS_BOUND = 1.2  # nats per character; a uniform guess over its 40-odd characters is ln(40) ≈ 3.7


def task_config(digits_config, spec: str, **fields):
    config = digits_config.copy()
    config.data.task = spec
    for path, value in fields.items():
        section, name = path.split("__")
        setattr(getattr(config, section), name, value)
    return config


def run_dirs(tmp_path):
    folder = tmp_path / "runs"
    return sorted(folder.iterdir()) if folder.exists() else []


# ----------------------------------------------------------------------------- the examples, two ways in


def test_regression_example_through_task_flag_reaches_its_mse_bound_with_mae_charted_and_logged(tmp_path, capsys):
    """ptviz-tui --headless --task examples/regression.py:make: test MSE below the bound; mae in every log."""
    code = cli_main(["--headless", "--task", f"{EXAMPLES / 'regression.py'}:make", "--epochs", "10", "--lr", "0.01",
                     "--runs-dir", str(tmp_path / "runs")])
    out = capsys.readouterr().out
    assert code == 0, out
    (run,) = run_dirs(tmp_path)
    rows = read_rows(run / "metrics.jsonl")
    epochs = [r for r in rows if r["kind"] == "epoch"]
    assert len(epochs) == 10 and epochs[-1]["test_loss"] < REGRESSION_MSE_BOUND, epochs[-1]
    assert epochs[-1]["test_metrics"]["mae"] < epochs[0]["test_metrics"]["mae"]
    steps = [r for r in rows if r["kind"] == "step"]
    assert len(steps) == 320 and all(isinstance(r["mae"], float) for r in steps)
    with open(run / "metrics.csv") as fh:
        table = list(csv.DictReader(fh))
    assert sum(1 for r in table if r["train_mae"]) == 320 and sum(1 for r in table if r["test_mae"]) == 10
    assert f"test mae {epochs[-1]['test_metrics']['mae']:.4g}" in out
    started = next(r for r in rows if r["kind"] == "started")
    assert started["metrics"] == ["mae"] and started["task_kind"] == "regression" and run.name.endswith("-regression")
    assert 'task = "' in (run / "config.toml").read_text()


def test_regression_example_through_fit_headless(tmp_path, monkeypatch):
    """ptviz.fit(task, headless=True) from a script: the same run folder, and the RunFinished it returns."""
    monkeypatch.chdir(tmp_path)
    sys.path.insert(0, str(EXAMPLES))
    try:
        import regression
    finally:
        sys.path.remove(str(EXAMPLES))
    finished = ptviz.fit(regression.make(), headless=True, epochs=10, lr=0.01, runs_dir="runs")
    assert finished.state == "finished" and finished.step == 320
    assert finished.test_loss < REGRESSION_MSE_BOUND and finished.test_metrics["mae"] < 0.15
    (run,) = run_dirs(tmp_path)
    assert 'task = "python"' in (run / "config.toml").read_text()
    assert (run / "checkpoints" / "best.pt").is_file()


def test_charlm_example_loss_falls_below_its_bound_through_both_ways_in(tmp_path, capsys, monkeypatch):
    """The character-level model: the training loss of the 4th epoch (~100 steps) is below the bound, by --task
    and by ptviz.fit; both ways give the same losses (same seed, same task)."""
    spec = f"{EXAMPLES / 'charlm.py'}:make"
    code = cli_main(["--headless", "--task", spec, "--epochs", "4", "--lr", "0.01", "--runs-dir", str(tmp_path / "a")])
    assert code == 0, capsys.readouterr().out
    (run,) = sorted((tmp_path / "a").iterdir())
    epochs = [r for r in read_rows(run / "metrics.jsonl") if r["kind"] == "epoch"]
    assert epochs[-1]["train_loss"] < CHARLM_LOSS_BOUND < epochs[0]["train_loss"]
    assert set(epochs[-1]["train_metrics"]) == {"bpc", "acc"}
    monkeypatch.chdir(tmp_path)
    from ptviz.engine.setup import seed_everything
    from ptviz.engine.task import load_task

    seed_everything(0)  # as the command line does before calling the factory: the same initial weights
    finished = ptviz.fit(load_task(spec, None), headless=True, epochs=4, lr=0.01, runs_dir="b")
    assert finished.train_loss == pytest.approx(epochs[-1]["train_loss"], rel=1e-6)
    assert finished.train_loss < CHARLM_LOSS_BOUND


def test_fit_takes_keyword_arguments_and_refuses_unknown_settings(tmp_path):
    from torch.utils.data import TensorDataset

    x = torch.randn(32, 2)
    with pytest.raises(ptviz.engine.errors.ConfigError, match="epochz: is not a configuration field"):
        ptviz.fit(model=torch.nn.Linear(2, 1), train=TensorDataset(x, x[:, :1]), headless=True, epochz=1)
    finished = ptviz.fit(model=torch.nn.Linear(2, 1), train=TensorDataset(x, x[:, :1]),
                         loss=lambda m, b: (m(b[0]) - b[1]).pow(2).mean(), headless=True, epochs=2, batch_size=8,
                         runs_dir="")
    assert finished.step == 8 and finished.test_loss is None


def test_import_ptviz_stays_free_of_torch():
    out = subprocess.run([sys.executable, "-c", "import sys, ptviz; print('torch' in sys.modules, ptviz.__all__)"],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False ['Task', 'fit']", out.stderr


# ----------------------------------------------------------------------------- commands on a task


def long_task(digits_config, tmp_path):
    spec = f"{write_task(tmp_path, 'noisy', AUGMENTED)}:make"
    return task_config(digits_config, spec, train__epochs=1000, train__log_interval=1)


async def test_commands_drive_a_task_run(digits_config, tmp_path):
    """Pause holds the step; evaluate gives loss and mae (no accuracy); checkpoint and lr apply; resume goes on
    from the next step; stop ends at once."""
    session = TrainingSession(long_task(digits_config, tmp_path))
    session.start()
    started = await session.next_event(RunStarted)
    assert started.task_kind == "regression" and started.metrics == ("mae",)
    first = await session.next_event(StepMetrics)
    assert set(first.metrics) == {"mae"} and len(first.metrics["mae"]) == len(first.steps)
    session.send(Pause())
    paused = await session.next_event(Paused)
    session.send(EvaluateNow())
    evaluated = await session.next_event(Evaluated)
    while not evaluated.mid_epoch:
        evaluated = await session.next_event(Evaluated)
    assert evaluated.step == paused.step and evaluated.accuracy is None and evaluated.confusion == ()
    assert evaluated.samples == 32 and set(evaluated.metrics) == {"mae"}
    session.send(SaveCheckpoint())
    saved = await session.next_event(CheckpointSaved)
    assert saved.step == paused.step
    assert ckpt.load_checkpoint(saved.path)["epoch_totals"]["metrics"].shape == (1,)
    session.send(SetLearningRate(0.0123))
    assert (await session.next_event(LrChanged)).lr == pytest.approx(0.0123)
    session.send(Resume())
    assert (await session.next_event(Resumed)).step == paused.step
    after = await session.next_event(StepMetrics)
    assert after.steps[0] == paused.step + 1 and after.lrs[0] == pytest.approx(0.0123)
    session.send(Stop())
    finished = await session.next_event(RunFinished)
    assert finished.stopped and finished.state == "stopped"
    assert session.stop(timeout=10)


# ----------------------------------------------------------------------------- exact resume


def final_weights(config, stop_at=None, resume=None):
    """Train (up to step `stop_at`), returning the trainer; its state() resumes exactly."""
    config = config.copy()
    if stop_at:
        config.train.max_steps = stop_at
    setup = build(config)
    trainer = Trainer(setup, ListSink(), Control())
    if resume is not None:
        trainer.restore(resume)
    trainer.run()
    return trainer


def test_dataloader_workers_and_a_mid_epoch_restart_give_the_same_weights(digits_config, tmp_path):
    """Random augmentation in the Dataset and dropout: two workers, or a stop at step 7 of 9 per epoch and a
    restore, train bit for bit the weights of one uninterrupted run in this process."""
    spec = f"{write_task(tmp_path, 'noisy', AUGMENTED)}:make"
    config = task_config(digits_config, spec, train__epochs=2, data__batch_size=11, output__runs_dir="")
    plain = final_weights(config)
    config.data.workers = 2
    workers = final_weights(config)
    first = final_weights(config, stop_at=7)
    resumed = final_weights(config, resume=first.state("test"))
    assert plain.step == workers.step == resumed.step == 18
    for name, tensor in plain.s.model.state_dict().items():
        assert torch.equal(workers.s.model.state_dict()[name], tensor), name
        assert torch.equal(resumed.s.model.state_dict()[name], tensor), name


@pytest.mark.parametrize("factory", ["make", "make_plain"])
def test_an_iterable_dataset_resumes_at_its_position(digits_config, tmp_path, factory):
    """An iterable dataset continues from its own state_dict, or is iterated again and skipped forward."""
    spec = f"{write_task(tmp_path, 'stream', ITERABLE)}:{factory}"
    config = task_config(digits_config, spec, train__epochs=2, data__batch_size=8, output__runs_dir="")
    whole = final_weights(config)
    first = final_weights(config, stop_at=3)
    state = first.state("test")
    assert state["data"]["samples"] == 24 and (state["data"]["dataset"] is not None) is (factory == "make")
    resumed = final_weights(config, resume=state)
    assert whole.step == resumed.step == 10
    assert torch.equal(whole.s.model.weight, resumed.s.model.weight)


def test_a_task_step_never_reads_the_device(digits_config, tmp_path, monkeypatch):
    """The loss and the named metric stay on the device inside a step, as for the built-in recipes."""
    from test_fastpath import HostReads

    spec = f"{write_task(tmp_path, 'noisy', AUGMENTED)}:make"
    config = task_config(digits_config, spec, train__max_steps=5, train__log_interval=1000, output__runs_dir="")
    reads, step = HostReads(), Trainer._step

    def watched(self, batch):
        with reads:
            step(self, batch)

    monkeypatch.setattr(Trainer, "_step", watched)
    assert final_weights(config).step == 5 and reads.seen == []


def test_a_lazy_classifier_trains_with_accuracy_and_a_confusion_matrix(digits_config, tmp_path):
    spec = f"{write_task(tmp_path, 'lazy', LAZY_CLASSIFIER)}:make"
    sink = ListSink()
    train(task_config(digits_config, spec, train__epochs=10, data__batch_size=16, output__runs_dir=""), sink)
    started, last = sink.of(RunStarted)[0], sink.of(EpochEnded)[-1]
    assert started.task_kind == "classification" and started.class_names == ("neg", "pos")
    assert started.params_total == 5 * 8 + 8 + 8 * 2 + 2  # materialised before the optimizer was built
    assert last.train_accuracy is not None and last.test_accuracy >= 0.75
    evaluated = sink.of(Evaluated)[-1]
    assert sum(map(sum, evaluated.confusion)) == 16 and len(evaluated.confusion) == 2


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("name, message", [
    ("raises", r"data\.task: calling .*raises\.py:make failed: KeyError: 'missing' \(.*raises\.py, line 6\)"),
    ("non_scalar", r"task\.loss \(.*non_scalar\.py, line 7\) returned a loss of shape \(\d+, 1\), not a scalar"),
    ("float_metric", r"task\.loss \(.*float_metric\.py, line 7\): metric 'mae' is a float, not a tensor"),
    ("ragged", r"task\.train \(Ragged, .*ragged\.py, line 7\): samples of one batch differ: field \[0\] is "
               r"Tensor \(3,\) in sample 0 of the batch but Tensor \(4,\) in sample 1"),
])
def test_a_broken_task_is_one_clear_line_and_writes_nothing(tmp_path, capsys, name, message):
    """Each breach of the contract: exit code 2, one line naming the user's file and line, no run folder."""
    path = write_task(tmp_path, name, BROKEN[name])
    code = cli_main(["--headless", "--task", f"{path}:make", "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert __import__("re").search(message, err), err
    assert not (tmp_path / "runs").exists()


def test_resume_names_the_task_again_or_refuses(tmp_path, capsys):
    """A task run resumes only with --task given again; the run folder's own spec is never imported."""
    spec = f"{EXAMPLES / 'regression.py'}:make"
    assert cli_main(["--headless", "--task", spec, "--epochs", "1", "--runs-dir", str(tmp_path / "runs")]) == 0
    (run,) = run_dirs(tmp_path)
    capsys.readouterr()
    assert cli_main(["resume", str(run), "--headless", "--epochs", "2"]) == 2
    err = capsys.readouterr().err
    assert "names code that resuming would import and run" in err and f"data.task = {spec}" in err
    assert f"--task {spec}" in err  # the command that confirms it
    assert cli_main(["resume", str(run), "--headless", "--epochs", "2", "--task", spec]) == 0
    assert ckpt.load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 64


def test_a_fit_run_resumes_from_its_script_not_the_command_line(tmp_path, monkeypatch, capsys):
    from torch.utils.data import TensorDataset

    monkeypatch.chdir(tmp_path)
    x = torch.randn(32, 2)

    def task():
        return ptviz.Task(model=torch.nn.Linear(2, 1), train=TensorDataset(x, x[:, :1]), kind="regression",
                          loss=lambda m, b: (m(b[0]) - b[1]).pow(2).mean(), name="mine")

    first = ptviz.fit(task(), headless=True, epochs=1, batch_size=8, runs_dir="runs")
    (run,) = run_dirs(tmp_path)
    assert first.step == 4 and cli_main(["resume", str(run), "--headless", "--epochs", "2"]) == 2
    assert "ptviz.fit(task, resume=" in capsys.readouterr().err
    again = ptviz.fit(task(), headless=True, resume=run, epochs=2)
    assert again.step == 8 and again.state == "finished"


def test_a_task_error_mid_run_names_the_step_and_the_line(digits_config, tmp_path):
    path = write_task(tmp_path, "late", """
        import torch
        from torch import nn
        from torch.utils.data import TensorDataset
        import ptviz

        calls = []

        def loss(model, batch):
            calls.append(1)
            if len(calls) > 4:
                raise ValueError("bad batch")
            return model(batch[0]).pow(2).mean()

        def make(config):
            x = torch.randn(40, 2)
            return ptviz.Task(model=nn.Linear(2, 1), train=TensorDataset(x, x), loss=loss, kind="regression")
        """)
    with pytest.raises(TaskError, match=r"task\.loss \(.*late\.py, line 9\) raised at step 4: ValueError: bad batch "
                                        r"\(.*late\.py, line 12\)"):
        train(task_config(digits_config, f"{path}:make", output__runs_dir=""))


def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run_with_workers(tmp_path, spawned):
    """A task run with two DataLoader workers, random augmentation in its Dataset and dropout, killed with
    SIGKILL mid-epoch and resumed from the command line, ends with the weights of an uninterrupted run."""
    import random
    import signal

    from test_never_lose_work import cli, start_headless, steps_logged

    from ptviz.engine.remote import RemoteRun
    from ptviz.tui.cli import build_parser, config_from_args

    path = write_task(tmp_path, "noisy", AUGMENTED)
    flags = ["--task", f"{path}:make", "--batch-size", "10", "--workers", "2", "--log-interval", "1", "--seed", "5",
             "--checkpoint-minutes", "0", "--epochs", "3"]  # 96 samples: 10 steps an epoch, the last one short
    reference = config_from_args(build_parser().parse_args([*flags, "--runs-dir", str(tmp_path / "ref")]))
    train(reference)
    (ref_dir,) = (tmp_path / "ref").iterdir()
    expected = ckpt.load_checkpoint(ref_dir / "checkpoints" / "last.pt")

    proc, run_dir = start_headless(spawned, *flags, "--checkpoint-steps", "3", cwd=tmp_path)
    kill_at = random.choice([s for s in range(4, 26) if s % 10 not in (0, 9)])  # past a mid-epoch checkpoint
    with RemoteRun(run_dir) as run:
        run.wait(step=kill_at)
    proc.kill()
    proc.wait(timeout=60)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL, f"the run ended before the kill at step {kill_at}"
    assert ckpt.load_checkpoint(run_dir / "checkpoints" / "last.pt")["batch_in_epoch"] % 10 != 0

    resumed = cli("resume", str(run_dir), "--headless", "--task", f"{path}:make", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    got = ckpt.load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert got["step"] == expected["step"] == 30
    for name, tensor in expected["model"].items():
        assert torch.equal(got["model"][name], tensor), f"{name} differs after a kill at step {kill_at}"
    assert steps_logged(run_dir) == list(range(1, 31))


def test_fit_runs_headless_when_stdout_is_not_a_terminal_and_package_module_factories_load(tmp_path):
    """A script calling ptviz.fit(task) with its output piped trains headless (no cockpit waits for keys); the
    task comes from package.module:factory on PYTHONPATH, as --task would take it."""
    (tmp_path / "mytasks").mkdir()
    write_task(tmp_path / "mytasks", "__init__", "")
    write_task(tmp_path / "mytasks", "lazy", LAZY_CLASSIFIER)
    script = write_task(tmp_path, "train_it", """
        import ptviz
        from ptviz.engine.task import load_task

        finished = ptviz.fit(load_task("mytasks.lazy:make", None), epochs=2, batch_size=16, runs_dir="runs")
        print("finished", finished.state, finished.step)
        """)
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={**__import__("os").environ, "PYTHONPATH": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert "task lazy (64 train / 16 test)" in out.stdout and "Epoch 2, Loss: " in out.stdout
    assert out.stdout.strip().endswith("finished finished 8")
    (run,) = (tmp_path / "runs").iterdir()
    assert run.name.endswith("-lazy")
