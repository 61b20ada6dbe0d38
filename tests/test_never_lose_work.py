"""Real processes: SIGKILL then resume is bit-exact, stop signals checkpoint, and other processes attach."""

import json
import os
import random
import signal
import subprocess
import sys

import pytest
import torch

from ptviz.engine.storage import checkpoint as ckpt
from ptviz.engine.storage.logrows import read_rows
from ptviz.engine.loop import train
from ptviz.engine.remote import RemoteRun
from pty_terminal import PtyTerminal, as_from_a_shell
from ptviz.tui.cli import build_parser, config_from_args, main

ENV = {**os.environ, "COLUMNS": "200"}
# Shuffled batches and random augmentation, small enough to start quickly: 23 steps per epoch.
FLAGS = ["--batch-size", "64", "--log-interval", "1", "--seed", "7", "--checkpoint-minutes", "0",
         "--transforms", "RandomRotation(15), RandomCrop(8, padding=1)"]


def cli(*argv, cwd, **kw):
    return subprocess.run([sys.executable, "-m", "ptviz", *argv], capture_output=True, text=True, cwd=cwd,
                          env=ENV, timeout=300, **kw)


@pytest.fixture
def spawned():
    """Processes a test started; any still alive when it ends (a failed test) are killed."""
    procs = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def start_headless(spawned, *argv, cwd):
    """A headless run in its own process, and its run directory once it is set up and listening."""
    proc = subprocess.Popen([sys.executable, "-m", "ptviz", "--headless", *argv], cwd=cwd, env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=as_from_a_shell)
    spawned.append(proc)
    for line in proc.stdout:
        if line.startswith("run directory: "):
            return proc, cwd / line.split(": ", 1)[1].strip()
    proc.wait(timeout=60)
    pytest.fail(f"the run did not start (exit code {proc.returncode})")


def steps_logged(run_dir):
    return [r["step"] for r in read_rows(run_dir / "metrics.jsonl") if r["kind"] == "step"]


def reference_and_killed_run(tmp_path, spawned, flags, total):
    """An uninterrupted run's last checkpoint, and the folder of the same run SIGKILLed at a random step."""
    reference = config_from_args(build_parser().parse_args([*flags, "--runs-dir", str(tmp_path / "ref")]))
    train(reference)
    (ref_dir,) = (tmp_path / "ref").iterdir()
    expected = ckpt.load_checkpoint(ref_dir / "checkpoints" / "last.pt")

    proc, run_dir = start_headless(spawned, *flags, "--checkpoint-steps", "4", cwd=tmp_path)
    kill_at = random.randint(5, total - 25)
    with RemoteRun(run_dir) as run:
        run.wait(step=kill_at)
    proc.kill()
    proc.wait(timeout=60)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL, f"the run ended before the kill at step {kill_at}"
    return expected, run_dir, kill_at


def resume_matches(tmp_path, run_dir, expected, kill_at):
    """Resume a killed run to its end; its last checkpoint equals `expected` bit for bit, one log row a step."""
    resumed = cli("resume", str(run_dir), "--headless", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming" in resumed.stdout and "Traceback" not in resumed.stderr
    got = ckpt.load_checkpoint(run_dir / "checkpoints" / "last.pt")
    total = expected["step"]
    assert got["step"] == total
    for name, tensor in expected["model"].items():
        assert torch.equal(got["model"][name], tensor), f"{name} differs after a kill at step {kill_at}"
    for index, slot in expected["optimizer"]["state"].items():
        assert torch.equal(got["optimizer"]["state"][index]["momentum_buffer"], slot["momentum_buffer"])
    assert steps_logged(run_dir) == list(range(1, total + 1)), f"killed at step {kill_at}"
    return got


def test_sigkill_at_a_random_step_then_resume_matches_an_uninterrupted_run_bit_for_bit(tmp_path, spawned):
    total = 3 * 23
    expected, run_dir, kill_at = reference_and_killed_run(tmp_path, spawned, [*FLAGS, "--epochs", "3"], total)
    listing = cli("runs", "runs", cwd=tmp_path)
    assert run_dir.name in listing.stdout and "interrupted" in listing.stdout, listing.stdout
    assert expected["step"] == total
    resume_matches(tmp_path, run_dir, expected, kill_at)
    csv_steps = [line.split(",")[1] for line in (run_dir / "metrics.csv").read_text().splitlines()[1:]
                 if line.split(",")[3]]
    assert csv_steps == [str(s) for s in range(1, total + 1)]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["state"] == "finished" and summary["step"] == total
    assert "finished" in cli("runs", "runs", cwd=tmp_path).stdout


def test_sigkill_mid_accumulation_with_every_training_option_then_resume_is_bit_for_bit(tmp_path, spawned):
    """Accumulation over 3 batches (a kill mostly lands inside a group), clipping, warm-up, the weight average
    and early stopping: the resumed run ends where an uninterrupted one does, its average included."""
    options = ["--accumulate", "3", "--clip-norm", "0.5", "--warmup-steps", "20", "--ema-decay", "0.9",
               "--early-stop-metric", "test_loss", "--early-stop-patience", "3", "--epochs", "4"]
    total = 4 * 8  # 23 batches in groups of 3: 8 optimizer steps an epoch
    expected, run_dir, kill_at = reference_and_killed_run(tmp_path, spawned, [*FLAGS, *options], total)
    assert expected["step"] == total
    got = resume_matches(tmp_path, run_dir, expected, kill_at)
    for name, tensor in expected["ema"].items():
        assert torch.equal(got["ema"][name], tensor), f"averaged {name} differs after a kill at step {kill_at}"
    assert got["early_stop"] == expected["early_stop"]
    norms = [r["grad_norm"] for r in read_rows(run_dir / "metrics.jsonl") if r["kind"] == "step"]
    assert len(norms) == total and all(n > 0 for n in norms)


def assert_stopped_by_signal(proc, run_dir, sig):
    """The process saved last.pt at a step boundary, logged every step up to it, and exited with 128 + sig."""
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, out
    assert "Traceback" not in (out or "")
    state = ckpt.load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert state["reason"] == "stopped"
    assert steps_logged(run_dir) == list(range(1, state["step"] + 1))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["state"] == "stopped" and summary["reason"] == f"received {sig.name}"
    assert summary["step"] == state["step"]
    return state


def test_terminal_hangup_checkpoints_at_the_next_step_and_exits_cleanly(tmp_path, spawned):
    """An SSH drop: the run's terminal goes away, the kernel sends SIGHUP, and writing to the terminal fails."""
    term = PtyTerminal([sys.executable, "-m", "ptviz", "--headless", *FLAGS, "--epochs", "1000"], cwd=tmp_path, env=ENV)
    proc = term.proc
    spawned.append(proc)
    try:
        run_dir = tmp_path / term.wait_for(rb"run directory: (\S+)\r?\n").group(1).decode()
        with RemoteRun(run_dir) as run:
            run.wait(step=5)
    finally:
        term.hang_up()  # the connection drops
    state = assert_stopped_by_signal(proc, run_dir, signal.SIGHUP)
    assert state["step"] >= 5


def test_other_processes_attach_pause_and_resume_a_headless_run(tmp_path, spawned):
    proc, run_dir = start_headless(spawned, *FLAGS, "--epochs", "1000", cwd=tmp_path)
    assert "running" in cli("runs", "runs", cwd=tmp_path).stdout
    with RemoteRun(run_dir) as first:  # one client stays attached throughout
        first.wait(step=3)
        # A second process attaches and pauses the run; the first sees it paused.
        out = cli("send", str(run_dir), "pause", cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["paused"] is True  # the status printed is the one after the command
        step = first.wait(paused=True)["step"]
        # Another process comes and goes while it is paused: the step counter stays where it stopped.
        status = json.loads(cli("send", str(run_dir), "status", cwd=tmp_path).stdout)
        assert status["paused"] and status["step"] == step
        assert first.status()["step"] == step
        assert max(steps_logged(run_dir)) == step
        # Another one resumes it; steps count on from where they stopped.
        out = cli("send", str(run_dir), "resume", cwd=tmp_path)
        assert out.returncode == 0 and json.loads(out.stdout)["paused"] is False
        assert first.wait(step=step + 5)["paused"] is False
    # Detached again, the run carries on until SIGTERM checkpoints and ends it.
    proc.send_signal(signal.SIGTERM)
    assert assert_stopped_by_signal(proc, run_dir, signal.SIGTERM)["step"] >= step + 5


def test_ctrl_c_checkpoints_at_the_next_step_and_exits_cleanly(tmp_path, spawned):
    """Ctrl-C in a headless run (SIGINT) saves last.pt at a step boundary, like SIGTERM; no traceback."""
    proc, run_dir = start_headless(spawned, *FLAGS, "--epochs", "1000", cwd=tmp_path)
    with RemoteRun(run_dir) as run:
        run.wait(step=3)
    proc.send_signal(signal.SIGINT)
    assert assert_stopped_by_signal(proc, run_dir, signal.SIGINT)["step"] >= 3


def send(run_dir, *words, cwd, capsys=None):
    """`ptviz-tui send RUN_DIR ...` in its own process, or in this one with `capsys`: (exit code, JSON, stderr)."""
    if capsys is None:
        out = cli("send", str(run_dir), *words, cwd=cwd)
        code, stdout, stderr = out.returncode, out.stdout, out.stderr
    else:
        code = main(["send", str(run_dir), *words])
        stdout, stderr = capsys.readouterr()
    return code, json.loads(stdout) if stdout.strip() else None, stderr


def test_send_answers_each_command_with_its_outcome_once_it_took_effect(tmp_path, spawned, capsys):
    """`ptviz-tui send` from other processes: each answer is the command's outcome, true to the run's files."""
    proc, run_dir = start_headless(spawned, *FLAGS, "--epochs", "1000", cwd=tmp_path)
    here = {"cwd": tmp_path, "capsys": capsys}  # most clients run in this process, to keep the test quick
    with RemoteRun(run_dir) as run:
        run.wait(step=3)
        code, paused, _ = send(run_dir, "pause", cwd=tmp_path)
        step = paused["result"]["step"]
        assert code == 0 and paused["result"] == {"paused": True, "step": step} and paused["step"] == step >= 3
        assert run.status()["step"] == step and max(steps_logged(run_dir)) == step  # held right there

        code, evaluated, _ = send(run_dir, "evaluate", **here)
        result = evaluated["result"]
        (row,) = [r for r in read_rows(run_dir / "metrics.jsonl") if r["kind"] == "eval" and r["mid_epoch"]]
        assert code == 0 and result["split"] == "test" and result["step"] == row["step"] == step
        assert (result["loss"], result["accuracy"]) == (row["loss"], row["accuracy"]) and 0 < result["accuracy"] <= 1

        code, saved, _ = send(run_dir, "checkpoint", **here)
        assert code == 0 and saved["result"]["step"] == step
        assert ckpt.load_checkpoint(saved["result"]["checkpoint"])["step"] == step

        code, changed, _ = send(run_dir, "set-lr", "0.02", **here)
        assert code == 0 and changed["result"]["lr"] == pytest.approx(0.02) and changed["result"]["step"] == step
        code, changed, _ = send(run_dir, "scale-lr", "0.5", **here)
        assert code == 0 and changed["result"]["lr"] == pytest.approx(0.01)
        for command, value in (("set-lr", "-1"), ("scale-lr", "0"), ("set-lr", "nan")):
            code, _, err = send(run_dir, command, value, **here)
            assert code == 2 and "must be a positive number" in err and "Traceback" not in err, err
        # Values the configuration would refuse are refused live too (1e39 overflowed float32 in the next step).
        for command, value in (("set-lr", "1e39"), ("scale-lr", "1e300"), ("scale-lr", "20000")):
            code, _, err = send(run_dir, command, value, **here)
            assert code == 2 and "optim.lr must be <= 100" in err and "Traceback" not in err, err
        assert run.status()["lr"] == pytest.approx(0.01) and run.status()["state"] == "paused"
        code, _, err = send(run_dir, "set-lr", **here)
        assert code == 2 and "set-lr needs a value" in err

        code, resumed, _ = send(run_dir, "resume", **here)
        assert code == 0 and resumed["result"] == {"paused": False, "step": step}
        run.wait(step=step + 5)
        code, stopped, _ = send(run_dir, "stop", cwd=tmp_path)
    out, _ = proc.communicate(timeout=120)
    assert code == 0 and proc.returncode == 0, out
    result = stopped["result"]
    summary = json.loads((run_dir / "summary.json").read_text())
    state = ckpt.load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert result["state"] == summary["state"] == "stopped" and result["step"] == summary["step"] == state["step"]
    assert result["step"] == max(steps_logged(run_dir)) > step + 5
    rows = read_rows(run_dir / "metrics.jsonl")  # the epoch the run stopped in, 1-based in every place
    assert result["epoch"] == summary["epoch"] == [r for r in rows if r["kind"] == "step"][-1]["epoch"]
    assert result["checkpoint"] == str((run_dir / "checkpoints" / "last.pt").absolute())
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.01)
    code, _, err = send(run_dir, "status", **here)
    assert code == 2 and "no run is listening" in err
