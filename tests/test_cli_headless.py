"""The headless command: tutorial-style output, exit codes, and bad input that writes nothing."""

import io
import json
import os
import subprocess
import sys

import pytest
from rich.console import Console
from rich.progress import Progress

from ptviz.engine.commands import Control, EvaluateNow, Pause, Resume, SaveCheckpoint, ScaleLearningRate, SetLearningRate
from ptviz.engine.events import CheckpointSaved, Evaluated, LrChanged, Notice, Paused, Resumed, StepMetrics
from ptviz.engine.loop import train
from ptviz.engine.remote import RemoteRun
from ptviz.engine.sinks import FanOut, ListSink
from ptviz.tui.headless import ConsoleSink


def run_cli(*argv, cwd):
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "ptviz", *argv], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300)


def test_headless_default_run_prints_epoch_lines_and_total_time(tmp_path):
    out = run_cli("--headless", "--epochs", "2", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert sum(line.startswith("Epoch ") and "Loss: " in line and "Test accuracy: " in line for line in lines) == 2
    assert any(line.startswith("Training time: ") for line in lines)
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "config.toml").is_file() and (runs[0] / "checkpoints" / "last.pt").is_file()


def test_headless_output_redirected_to_a_file_keeps_each_line_whole(tmp_path):
    """Under nohup or `> log` on a narrow terminal, long lines (paths) are not broken or padded."""
    runs = tmp_path / ("a-rather-long-folder-name-for-runs-" * 2)
    out = subprocess.run([sys.executable, "-m", "ptviz", "--headless", "--epochs", "1", "--runs-dir", str(runs)],
                         capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "COLUMNS": "40"}, timeout=300)
    assert out.returncode == 0, out.stderr
    (run,) = runs.iterdir()
    lines = out.stdout.splitlines()
    assert f"run directory: {run}" in lines
    (final,) = [line for line in lines if line.startswith("checkpoint (final) saved at step ")]
    assert final.endswith(f": {run / 'checkpoints' / 'last.pt'}")
    assert not [line for line in lines if line != line.rstrip()]  # no padding to the terminal's width
    assert "" not in lines and "━" not in out.stdout  # no progress bar, and no blank line where it was
    missing = subprocess.run([sys.executable, "-m", "ptviz", "--headless", "--recipe", "mnist-mlp", "--root", "none"],
                             capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert missing.returncode == 2 and missing.stdout == "" and "mnist files not found" in missing.stderr


@pytest.mark.parametrize("argv, fragment", [
    (("--batch-size", "0"), "data.batch_size: got 0; must be >= 1"),
    (("--batch-size", "-1"), "data.batch_size: got -1; must be >= 1"),
    (("--batch-size", "abc"), "data.batch_size: got 'abc'"),
    (("--dataset", "imagenet"), "data.dataset: got 'imagenet'"),
    (("--model", "vgg16"), "model.name: got 'vgg16'"),
    (("--lr", "0"), "optim.lr: got 0.0; must be > 0"),
    (("--val-split", "1"), "data.val_split: got 1.0; must be < 1"),
    (("--recipe", "mnist-mlp", "--root", "nowhere"), "data.root: mnist files not found in nowhere/MNIST/raw"),
    (("--model", "resnet18", "--pretrained", "--set", "data.mean=0.5"), "model.pretrained"),
    (("--model", "cnn", "--freeze=-featres"), "model.freeze: -featres: the model has no module named 'featres' "
                                              "(did you mean 'features'?)"),
    (("--freeze=-",), "model.freeze: - leaves no parameter trainable; unfreeze a module after it, e.g. +fc3"),
])
def test_bad_input_exits_2_with_one_clear_line_and_writes_nothing(tmp_path, argv, fragment):
    env_home = tmp_path / "torch-home"
    out = subprocess.run([sys.executable, "-m", "ptviz", "--headless", *argv], capture_output=True, text=True,
                         cwd=tmp_path, env={**os.environ, "TORCH_HOME": str(env_home)}, timeout=300)
    assert out.returncode == 2, out.stdout + out.stderr
    assert fragment in out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    assert not (tmp_path / "runs").exists()
    assert not (tmp_path / "nowhere").exists()


def test_a_freeze_typo_in_a_toml_file_exits_2_with_one_line(tmp_path):
    (tmp_path / "run.toml").write_text('[model]\nname = "cnn"\nfreeze = ["-", "+fc", "+featurs"]\n')
    out = run_cli("--headless", "--config", "run.toml", cwd=tmp_path)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr == ("ptviz-tui: error: model.freeze: +featurs: the model has no module named "
                          "'featurs' (did you mean 'features'?)\n")
    assert not (tmp_path / "runs").exists()


def test_malformed_toml_exits_2(tmp_path):
    (tmp_path / "bad.toml").write_text("[data]\nbatch_size = \n")
    out = run_cli("--headless", "--config", "bad.toml", cwd=tmp_path)
    assert out.returncode == 2 and "bad.toml is not valid TOML" in out.stderr and "line 2" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "runs").exists()


def test_help_lists_every_field_flag(tmp_path):
    out = run_cli("--help", cwd=tmp_path)
    assert out.returncode == 0
    for flag in ("--batch-size", "--lr", "--transforms", "--freeze-backbone", "--precision", "--runs-dir"):
        assert flag in out.stdout


class CommandsAtStep:
    """Sends `commands` once the run has logged step `step` (as another terminal would, mid-run)."""

    def __init__(self, control, step, commands):
        self.control, self.step, self.commands = control, step, list(commands)

    def emit(self, event):
        if isinstance(event, StepMetrics) and event.last_step >= self.step and self.commands:
            for command in self.commands:
                self.control.send(command)
            self.commands = []


def test_console_prints_one_line_with_the_step_for_each_change_made_during_the_run(digits_config):
    """A nohup log shows pauses, resumes, lr changes, evaluate-now results, refusals and checkpoints."""
    digits_config.train.epochs = 2
    digits_config.train.log_interval = 1
    digits_config.output.checkpoint_steps = 30
    out = io.StringIO()
    console = Console(file=out, highlight=False, soft_wrap=True)
    control, seen = Control(), ListSink()
    commands = [Pause(), SetLearningRate(0.02), ScaleLearningRate(1e4), EvaluateNow(), SaveCheckpoint(), Resume()]
    sink = FanOut(ConsoleSink(console, Progress(console=console)), seen, CommandsAtStep(control, 5, commands))
    train(digits_config, sink, control)
    lines = out.getvalue().splitlines()
    paused, resumed, changed = seen.of(Paused)[0], seen.of(Resumed)[0], seen.of(LrChanged)[0]
    (now,) = [e for e in seen.of(Evaluated) if e.mid_epoch]
    step = paused.step
    assert step >= 5 and resumed.step == changed.step == now.step == step
    expected = [
        f"paused at step {step}",
        f"learning rate set to 0.02 at step {step}",
        "error: learning rate not changed (0.02 scaled by 10000): optim.lr must be <= 100, got 200",
        f"evaluated on test at step {step} (epoch 1): loss {now.loss:.4f}, accuracy {now.accuracy:.2%}",
        f"checkpoint (manual) saved at step {step}: {seen.of(CheckpointSaved)[0].path}",
        f"resumed at step {step}",
    ]
    first = lines.index(expected[0])
    assert lines[first:first + len(expected)] == expected
    saves = {(e.reason, e.step) for e in seen.of(CheckpointSaved)}
    assert ("periodic", 30) in saves and "checkpoint (periodic) saved at step 30: " in out.getvalue()
    assert not [line for line in lines if "(epoch) saved" in line or "(best) saved" in line]  # the Epoch lines say it
    assert sum(line.startswith("Epoch ") for line in lines) == 2
    assert [n.text for n in seen.of(Notice)] == [expected[2][len("error: "):]]


def test_a_closed_output_pipe_never_stops_training(tmp_path):
    """`ptviz-tui --headless | head`, or a `tee` that was restarted: the run goes on silently and finishes."""
    proc = subprocess.Popen([sys.executable, "-m", "ptviz", "--headless", "--epochs", "2"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        run_dir = next(tmp_path / line.split(": ", 1)[1].strip() for line in proc.stdout
                       if line.startswith("run directory: "))
        with RemoteRun(run_dir) as run:
            run.send(Pause())  # held, so that every line from here on meets a closed pipe
            proc.stdout.close()
            run.send(Resume())  # its own line is the first to fail
        assert proc.wait(timeout=300) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["state"] == "finished" and summary["epoch"] == 2
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()
             if '"kind":"step"' in line]
    assert steps == list(range(1, summary["total_steps"] + 1))


def _started(recipe_name="digits-mlp", print_every=0, steps_per_epoch=250, epochs=2):
    from ptviz.engine.events import RunStarted
    from ptviz.engine.recipes import recipe

    config = recipe(recipe_name).to_dict()
    config["output"]["print_every"] = print_every
    return RunStarted(config=config, run_dir=None, device="cpu", device_name="CPU (1 threads)", params_total=10,
                      params_trainable=10, train_size=8000, val_size=0, test_size=100, steps_per_epoch=steps_per_epoch,
                      total_steps=steps_per_epoch * epochs, epochs=epochs, class_names=tuple("0123456789"),
                      input_shape=(3, 32, 32), resident=True)


def _points(epoch, first, last, epoch_step, elapsed, loss=1.0):
    steps = tuple(range(first, last + 1))
    return StepMetrics(steps=steps, losses=tuple(loss + s / 800 for s in steps), lrs=(0.1,) * len(steps), epoch=epoch,
                       epoch_step=epoch_step, samples_per_s=1000.0, elapsed=elapsed)


def test_the_bar_counts_the_epoch_and_its_eta_holds_while_paused():
    """One bar per epoch (0..steps per epoch, 'epoch 2/2'); the ETA comes from active time, so a pause of any
    length leaves it where it was and the rate reads 0."""
    console = Console(file=io.StringIO())
    progress = Progress(console=console)
    sink = ConsoleSink(console, progress)
    sink.emit(_started())
    sink.emit(_points(1, 1, 100, 100, elapsed=10.0))
    (task,) = progress.tasks
    assert (task.total, task.completed, task.description) == (250, 100, "epoch 1/2")
    assert task.fields["eta"] == "0:15 (run 0:40)"  # 150 and 400 steps left at 0.1 s a step
    sink.emit(Paused(100))
    assert task.fields["eta"] == "0:15 (run 0:40)" and task.fields["rate"] == 0.0
    assert task.description == "paused, epoch 1/2"
    sink.emit(Resumed(100))
    sink.emit(_points(2, 101, 300, 50, elapsed=30.0))  # into the 2nd epoch: its own count
    assert (task.total, task.completed, task.description) == (250, 50, "epoch 2/2")


def test_recipe_b_prints_the_tutorials_running_loss_every_100_batches():
    """cifar10-resnet18 sets output.print_every = 100: '[epoch, batch] loss: mean of those 100', each epoch anew."""
    from ptviz.engine.recipes import recipe

    assert recipe("cifar10-resnet18").output.print_every == 100 and recipe("mnist-mlp").output.print_every == 0
    out = io.StringIO()
    console = Console(file=out, highlight=False, soft_wrap=True)
    sink = ConsoleSink(console, Progress(console=console))
    sink.emit(_started("cifar10-resnet18", print_every=100))
    sink.emit(_points(1, 1, 150, 150, elapsed=1.0, loss=2.0))
    sink.emit(_points(1, 151, 250, 250, elapsed=2.0, loss=2.0))
    sink.emit(_points(2, 251, 360, 110, elapsed=3.0, loss=1.0))
    lines = [line for line in out.getvalue().splitlines() if line.startswith("[")]
    mean = lambda a, b, base: base + sum(range(a, b + 1)) / 800 / (b - a + 1)  # noqa: E731
    assert lines == [f"[1,   100] loss: {mean(1, 100, 2.0):.3f}", f"[1,   200] loss: {mean(101, 200, 2.0):.3f}",
                     f"[2,   100] loss: {mean(251, 350, 1.0):.3f}"]


def test_the_cockpits_log_tells_an_epoch_in_the_headless_words(digits_config):
    """One epoch line for both: 'Epoch 1, Loss: ..., Test accuracy: ...' in the console and in the log."""
    from ptviz.engine.events import EpochEnded
    from ptviz.tui.train.log_pane import LogPane

    event = EpochEnded(epoch=3, step=135, train_loss=0.1234, train_accuracy=0.97, test_loss=0.2, test_accuracy=0.951,
                       val_loss=None, val_accuracy=None, seconds=0.4, lr=0.05)
    out = io.StringIO()
    console = Console(file=out, highlight=False, soft_wrap=True)
    ConsoleSink(console, Progress(console=console)).emit(event)
    log = LogPane()
    log.ingest(event)
    printed = out.getvalue().strip()
    assert printed == "Epoch 3, Loss: 0.1234, Test accuracy: 95.10% (train accuracy 97.00%, 0.4 s)"
    assert log.text_lines[-1].split(" ", 1)[1] == printed


def test_the_cockpits_log_says_one_line_for_the_names_of_one_checkpoint():
    """An epoch's end saves one state as epoch-NNNN.pt, last.pt and best.pt: one log line names them all (at 80×24
    the log has six lines, and two or three wrapped paths an epoch pushed every Epoch line out of sight)."""
    from ptviz.engine.events import CheckpointSaved
    from ptviz.tui.train.log_pane import LogPane

    folder = "runs/r/checkpoints"
    log = LogPane()
    for save_id, step, names in (("a", 45, ("epoch-0001.pt", "last.pt", "best.pt")), ("b", 90, ("epoch-0002.pt",
                                                                                               "last.pt"))):
        for name in names:
            reason = {"best.pt": "best", "last.pt": "final" if step == 90 else "epoch"}.get(name, "epoch")
            log.ingest(CheckpointSaved(f"{folder}/{name}", step, step // 45, reason, save_id=save_id))
    log.ingest(CheckpointSaved(f"{folder}/last.pt", 91, 2, "manual", save_id="c"))
    assert [line.split(" ", 1)[1] for line in log.text_lines] == [
        f"checkpoint (epoch, best) saved at step 45: {folder}/epoch-0001.pt (also last.pt, best.pt)",
        f"checkpoint (epoch, final) saved at step 90: {folder}/epoch-0002.pt (also last.pt)",
        f"checkpoint (manual) saved at step 91: {folder}/last.pt"]
