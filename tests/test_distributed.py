"""Several processes under torchrun (gloo on the CPU, 2 ranks): training, exact resume, control and failures.

Each test starts real torchrun agents in their own process groups (killed when the test ends) and waits on
files, the control socket or process exit, never on fixed pauses.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch
from rich.console import Console

from ptviz.engine.remote import RemoteRun
from ptviz.engine.storage import checkpoint as ckpt
from ptviz.engine.storage.logrows import read_rows

pytestmark = pytest.mark.distributed

ENV = {**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1"}
# Shuffled batches with random augmentation; 1,438 training digits in batches of 32 per rank: 23 steps an epoch.
FLAGS = ["--batch-size", "32", "--log-interval", "1", "--seed", "7", "--checkpoint-minutes", "0",
         "--transforms", "RandomRotation(15), RandomCrop(8, padding=1)"]
STEPS_PER_EPOCH = 23
BOOM = '''
import os
from torch import nn

class Boom(nn.Module):
    """Trains normally, except that rank 1 raises at its fifth training batch."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
        self.calls = 0

    def forward(self, x):
        if self.training:
            self.calls += 1
            if os.environ.get("RANK") == "1" and self.calls == 5:
                raise RuntimeError("rank one exploded on purpose")
        return self.net(x)

def make():
    return Boom()
'''


@pytest.fixture
def spawned(tmp_path):
    """Agents a test started, each in a session of its own; what is left of them (workers too) is killed, and
    so is any process still working in the test's folder (an agent the cockpit started in the background)."""
    procs: list[subprocess.Popen] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(timeout=60)
    left = []
    for other in psutil.process_iter():
        try:
            if other.pid != os.getpid() and Path(other.cwd()).is_relative_to(tmp_path):
                other.kill()
                left.append(other)
        except psutil.Error:
            continue
    psutil.wait_procs(left, timeout=60)


def start(spawned, *argv, cwd, env=None):
    """`python -m ptviz ARGV` in a new session, its output in a file (read with `output`)."""
    log = open(cwd / f"agent-{len(spawned)}.out", "w")
    proc = subprocess.Popen([sys.executable, "-m", "ptviz", *argv], cwd=cwd, env=env or ENV, text=True,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    proc.output_path = cwd / f"agent-{len(spawned)}.out"
    spawned.append(proc)
    return proc


def output(proc) -> str:
    return proc.output_path.read_text()


def wait_until(condition, what: str, timeout: float = 180.0, proc=None):
    """Poll `condition` until it returns something true; fail with `what` (and the output) after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            value = condition()
            if value:
                return value
            pytest.fail(f"the run ended (exit code {proc.returncode}) before {what}:\n{output(proc)}")
        time.sleep(0.05)  # a poll interval, not a wait for something to happen
    pytest.fail(f"timed out waiting for {what}")


def run_dir_of(proc, cwd) -> Path:
    """The run folder rank 0 announced, once it is listening."""
    def announced():
        for line in output(proc).splitlines():
            if line.startswith("run directory: "):
                folder = cwd / line.split(": ", 1)[1].strip()
                return folder if (folder / "control").exists() else None
        return None

    return wait_until(announced, "the run directory", proc=proc)


def finish(proc, timeout: float = 300.0) -> str:
    proc.wait(timeout=timeout)
    return output(proc)


def only_run(folder: Path) -> Path:
    """The one run folder under `folder` (torchrun's job notes sit beside it in .elastic)."""
    (run_dir,) = [p for p in folder.iterdir() if not p.name.startswith(".")]
    return run_dir


def steps_logged(run_dir):
    return [r["step"] for r in read_rows(run_dir / "metrics.jsonl") if r["kind"] == "step"]


def summary(run_dir) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def workers_of(proc) -> dict[int, psutil.Process]:
    """The agent's worker processes by rank."""
    found = {}
    for child in psutil.Process(proc.pid).children(recursive=True):
        try:
            rank = child.environ().get("RANK")
        except psutil.Error:
            continue
        if rank is not None:
            found[int(rank)] = child
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_same_weights(got: dict, expected: dict, why: str) -> None:
    assert got["step"] == expected["step"], why
    for name, tensor in expected["model"].items():
        assert torch.equal(got["model"][name], tensor), f"{name} differs {why}"
    for index, slot in expected["optimizer"]["state"].items():
        for key, value in slot.items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(got["optimizer"]["state"][index][key], value), f"optimizer {key} differs {why}"


def test_two_ranks_train_digits_to_95_percent_in_step_with_one_log_row_per_step(tmp_path, spawned):
    """`--headless --nproc 2`: ≥95% test accuracy, equal replicas, every step logged once, and the sharded
    evaluation's accuracy equal to one process evaluating the saved weights."""
    proc = start(spawned, "--headless", "--nproc", "2", "--epochs", "6", "--log-interval", "1", "--runs-dir",
                 "runs", cwd=tmp_path)
    out = finish(proc)
    assert proc.returncode == 0, out
    assert "2 processes" in out and "global batch 64 (32 per process)" in out, out
    run_dir = only_run(tmp_path / "runs")
    done = summary(run_dir)
    assert done["state"] == "finished" and done["world_size"] == 2
    assert done["test_accuracy"] >= 0.95, done
    first, second = done["replicas"]
    assert first == second, "the ranks' final weights differ"
    total = done["total_steps"]
    assert total == 6 * STEPS_PER_EPOCH  # 1,438 samples: 719 per rank in batches of 32
    assert steps_logged(run_dir) == list(range(1, total + 1))

    # One process evaluates the saved weights on the whole test split: the same accuracy, exactly.
    from ptviz.engine.setup import build
    from ptviz.tui.commands import config_of

    state = ckpt.load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert state["world_size"] == 2 and len(state["ranks"]) == 2
    setup = build(config_of(state["config"], source="test"))
    setup.model.load_state_dict(state["model"])
    alone = setup.evaluate(setup.test)
    assert alone.accuracy == done["test_accuracy"]
    assert alone.loss == pytest.approx(done["test_loss"], rel=1e-6)
    last = [r for r in read_rows(run_dir / "metrics.jsonl") if r["kind"] == "eval" and r["split"] == "test"][-1]
    assert last["confusion"] == [list(row) for row in alone.confusion]
    assert last["wrong"] == [list(row) for row in alone.wrong]  # the misclassified samples, in split order


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted 2-rank run of FLAGS over 3 epochs: its final checkpoint."""
    cwd = tmp_path_factory.mktemp("reference")
    done = subprocess.run([sys.executable, "-m", "ptviz", "--headless", "--nproc", "2", *FLAGS, "--epochs", "3",
                           "--runs-dir", "runs"], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    run_dir = only_run(cwd / "runs")
    state = ckpt.load_checkpoint(run_dir / "checkpoints" / "last.pt")
    state["run_dir"] = run_dir
    return state


def killed_run(spawned, cwd, kill, *extra):
    """A 2-rank run of FLAGS with a checkpoint every 4 steps, `kill(proc)` once step 9 is reached."""
    proc = start(spawned, "--headless", "--nproc", "2", *FLAGS, "--epochs", "3", "--checkpoint-steps", "4",
                 "--runs-dir", "runs", *extra, cwd=cwd)
    run_dir = run_dir_of(proc, cwd)
    with RemoteRun(run_dir) as run:
        run.wait(step=9)
    kill(proc)
    return proc, run_dir


def test_sigkill_of_the_agent_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path, spawned, reference):
    """The agent is SIGKILLed: its workers end with it, and `resume` (2 ranks again) ends bit-for-bit equal."""
    proc, run_dir = killed_run(spawned, tmp_path, lambda p: p.kill())
    workers = list(workers_of(proc).values()) if proc.poll() is None else []
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, output(proc)
    psutil.wait_procs(workers, timeout=60)  # the workers die with their agent (no orphans keep training)
    assert not [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]
    saved = ckpt.load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert 0 < saved["batch_in_epoch"] < STEPS_PER_EPOCH and saved["step"] < 3 * STEPS_PER_EPOCH, "not mid-epoch"

    resumed = subprocess.run([sys.executable, "-m", "ptviz", "resume", str(run_dir), "--headless"], cwd=tmp_path,
                             env=ENV, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "with 2 processes" in resumed.stdout and "Traceback" not in resumed.stderr
    got = ckpt.load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert_same_weights(got, reference, f"after a kill at step {saved['step']}")
    assert steps_logged(run_dir) == list(range(1, 3 * STEPS_PER_EPOCH + 1))
    assert summary(run_dir)["replicas"][0] == summary(run_dir)["replicas"][1]


def test_a_killed_worker_restarts_from_the_last_checkpoint_by_itself(tmp_path, spawned, reference):
    """--max-restarts 1: rank 1 is SIGKILLed, torchrun tears the group down and restarts it; the run continues
    from its newest checkpoint to the same weights, and `runs` shows one restart."""
    proc, run_dir = killed_run(spawned, tmp_path, lambda p: workers_of(p)[1].kill(), "--max-restarts", "1")
    out = finish(proc)
    assert proc.returncode == 0, out
    assert "restart 1: continuing from" in out
    got = ckpt.load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert_same_weights(got, reference, "after rank 1 was killed and restarted")
    assert steps_logged(run_dir) == list(range(1, 3 * STEPS_PER_EPOCH + 1))
    assert summary(run_dir)["restarts"] == 1
    listing = subprocess.run([sys.executable, "-m", "ptviz", "runs", "runs"], cwd=tmp_path, env=ENV,
                             capture_output=True, text=True, timeout=120)
    assert "1 restart" in listing.stdout, listing.stdout


def test_pause_outlasts_the_group_timeout_and_set_lr_and_stop_reach_every_rank_at_one_step(tmp_path, spawned):
    """With a 3 s process-group timeout: a pause held on both ranks at one step for longer resumes cleanly; a
    new learning rate is in force on both from the same step; stop ends both at one step."""
    env = {**ENV, "PTVIZ_DIST_TIMEOUT": "3"}
    proc = start(spawned, "--headless", "--nproc", "2", *FLAGS, "--epochs", "1000", "--runs-dir", "runs",
                 cwd=tmp_path, env=env)
    run_dir = run_dir_of(proc, tmp_path)
    with RemoteRun(run_dir) as run:
        run.wait(step=5)
        paused = run.send({"cmd": "pause"})
        assert paused["paused"]
        ranks = wait_until(lambda: (r := run.status().get("ranks")) and all(x["paused"] for x in r) and r,
                           "both ranks reporting the pause", proc=proc)
        held = {x["step"] for x in ranks}
        assert held == {paused["step"]}, ranks
        deadline = time.monotonic() + 4.5  # longer than the 3 s timeout a collective would have
        while time.monotonic() < deadline:
            assert {x["step"] for x in run.status()["ranks"]} == held, "a rank moved while paused"
            time.sleep(0.25)  # sampling the held steps over the pause, not waiting for an event
        run.send({"cmd": "set_lr", "lr": 0.02})
        # Commands that run collectives while the ranks are held: the others take them from the store.
        assert run.send({"cmd": "evaluate"})["result"]["accuracy"] > 0
        saved = run.send({"cmd": "checkpoint"})["result"]
        assert saved["step"] == paused["step"] and saved["checkpoint"].endswith("last.pt")
        run.send({"cmd": "resume"})
        lr_step = paused["step"]
        run.wait(step=lr_step + 20)
        assert run.send({"cmd": "evaluate"})["result"]["accuracy"] > 0  # and while they train
        frozen = run.send({"cmd": "freeze", "module": "fc1"})  # DDP is rebuilt on both ranks at one step
        run.wait(step=frozen["step"] + 20)
        thawed = run.send({"cmd": "unfreeze", "module": "fc1"})
        run.wait(step=thawed["step"] + 20)
        run.send({"cmd": "stop"})
    out = finish(proc)
    assert proc.returncode == 0, out
    rows = read_rows(run_dir / "metrics.jsonl")
    steps = [r for r in rows if r["kind"] == "step"]
    assert [r["step"] for r in steps] == list(range(1, len(steps) + 1))
    assert all(r["lr"] == 0.02 for r in steps if r["step"] > lr_step)
    assert all(r["lr"] != 0.02 for r in steps if r["step"] <= lr_step)
    beats = [r for r in rows if r["kind"] == "ranks"]
    assert beats and all(len(set(b["steps"])) == 1 and len(set(b["lrs"])) == 1 for b in beats), beats
    assert any(b["step"] > lr_step and set(b["lrs"]) == {0.02} for b in beats)
    assert ckpt.load_checkpoint(run_dir / "checkpoints" / "last.pt")["config"]["model"]["freeze"] == ["-fc1", "+fc1"]
    done = summary(run_dir)
    assert done["state"] == "stopped" and done["step"] == len(steps)
    assert done["replicas"][0] == done["replicas"][1], "the ranks' weights differ (a step or a freeze apart)"


def test_two_agents_on_one_machine_train_one_run(tmp_path, spawned, reference):
    """Two "machines": agents with --nnodes 2 and one rendezvous endpoint make one 2-rank run. Through the
    DataLoader path (--no-resident) it ends bit-for-bit where the resident 2-rank reference run ends."""
    endpoint = f"127.0.0.1:{free_port()}"
    common = ["--headless", "--nproc", "1", "--nnodes", "2", "--rdzv-endpoint", endpoint, *FLAGS, "--epochs", "3",
              "--no-resident", "--runs-dir", "runs"]
    first = start(spawned, *common, "--node-rank", "0", cwd=tmp_path)
    second = start(spawned, *common, "--node-rank", "1", cwd=tmp_path)
    assert finish(first) and first.returncode == 0, output(first)
    assert finish(second) is not None and second.returncode == 0, output(second)
    run_dir = only_run(tmp_path / "runs")
    done = summary(run_dir)
    assert done["state"] == "finished" and done["world_size"] == 2
    assert done["replicas"][0] == done["replicas"][1]
    assert steps_logged(run_dir) == list(range(1, done["total_steps"] + 1))
    got = ckpt.load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert_same_weights(got, reference, "between two agents over the DataLoader and one agent over resident data")


def test_a_rank_that_raises_fails_the_run_with_its_traceback(tmp_path, spawned):
    """Rank 1's model raises: exit code 1, rank 1's traceback printed and in summary.json, no rank left."""
    (tmp_path / "boom.py").write_text(BOOM)
    proc = start(spawned, "--headless", "--nproc", "2", "--model", "boom.py:make", "--epochs", "2",
                 "--runs-dir", "runs", cwd=tmp_path)
    out = finish(proc, timeout=240)
    assert proc.returncode == 1, out
    assert "rank 1 failed: RuntimeError: rank one exploded on purpose" in out, out
    assert "boom.py" in out  # the traceback into the user's code
    run_dir = only_run(tmp_path / "runs")
    done = summary(run_dir)
    assert done["state"] == "failed" and done["failed_rank"] == 1
    assert "rank one exploded on purpose" in done["traceback"]
    assert not [p for p in psutil.Process().children(recursive=True) if "ptviz" in " ".join(p.cmdline())]


async def test_the_cockpit_attaches_to_two_ranks_shows_each_and_sigterm_stops_both_with_one_checkpoint(
        tmp_path, spawned):
    """Attach: the Ranks panel lists both ranks (host, device, step) and the status line the global batch; p pauses
    every rank at one step. SIGTERM to the agent reaches both ranks: one checkpoint at the step they stopped."""
    from cockpit_helpers import wait_for

    from ptviz.tui.app import PtvizApp
    from ptviz.tui.commands import config_of
    from ptviz.tui.train.ranks_panel import RanksPanel
    from ptviz.tui.train.status_bar import StatusBar

    proc = start(spawned, "--headless", "--nproc", "2", *FLAGS, "--epochs", "1000", "--runs-dir", "runs",
                 cwd=tmp_path)
    run_dir = run_dir_of(proc, tmp_path)
    config = config_of(__import__("tomllib").loads((run_dir / "config.toml").read_text()), "config.toml")
    app = PtvizApp(config, attach=run_dir)
    async with app.run_test(size=(120, 34)) as pilot:
        panel, status = app.query_one(RanksPanel), app.query_one(StatusBar)
        await wait_for(pilot, lambda: panel.report is not None and panel.display, what="the ranks' heartbeats")
        assert len(panel.report.hosts) == 2 and panel.report.devices == ("cpu", "cpu")
        assert "×2" in str(status.render()) and status.global_batch == 64  # "×2 ranks, global batch 64" where it fits
        await pilot.press("p")
        await wait_for(pilot, lambda: app.run_state == "paused", what="paused")
        await wait_for(pilot, lambda: panel.report.paused, what="both ranks reporting the pause")
        assert len(set(panel.report.steps)) == 1 and panel.report.steps[0] == status.step
        await wait_for(pilot, lambda: panel._shown is panel.report, what="the panel drawn")
        assert panel.border_title == "ranks (2, paused)" and panel.region.height > 3
        table = Console(width=110, record=True, file=open(os.devnull, "w"))
        table.print(panel.content)
        lines = table.export_text().splitlines()
        assert lines[0].split() == ["#", "host", "device", "step", "ms/step", "÷", "med", "wait", "memory"]
        assert [line.split()[:4] for line in lines[1:3]] == [[str(r), host, "cpu", f"{status.step:,}"]
                                                             for r, host in enumerate(panel.report.hosts)]
        app.save_screenshot(str(tmp_path / "ranks.svg"))
        await pilot.press("p")
        await wait_for(pilot, lambda: app.run_state == "running" and status.step > panel.report.steps[0] + 3,
                       what="running again")
        await pilot.press("q")  # detach: the run goes on
        await wait_for(pilot, lambda: not app.is_running, what="detached")
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)  # the agent alone: torchrun passes it on to every worker
    out = finish(proc)
    assert proc.returncode == 128 + signal.SIGTERM, out
    state = ckpt.load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert state["reason"] == "stopped"
    assert steps_logged(run_dir) == list(range(1, state["step"] + 1))
    done = summary(run_dir)
    assert done["state"] == "stopped" and done["step"] == state["step"]
    assert done["replicas"][0] == done["replicas"][1], "the ranks stopped at different steps"


def test_a_two_rank_run_continues_in_one_process_with_a_notice(tmp_path, reference, capsys):
    """`resume --nproc 1` of a 2-rank run: allowed, said to be no longer bit-exact, and it trains on."""
    import shutil

    from ptviz.tui.cli import main

    run_dir = tmp_path / "run"
    shutil.copytree(reference["run_dir"], run_dir)
    assert main(["resume", str(run_dir), "--headless", "--nproc", "1", "--epochs", "4"]) == 0
    captured = capsys.readouterr()
    assert "trained by 2 process(es) and continues with 1" in captured.err
    assert "no longer bit-exact" in captured.out  # the loop's notice, in the run's log too
    done = summary(run_dir)
    assert done["state"] == "finished" and done["world_size"] == 1
    assert done["step"] == 3 * STEPS_PER_EPOCH + 45  # the 4th epoch in one process: 1,438 / 32 batches


def test_nproc_in_the_cockpit_attaches_to_the_ranks_it_starts_and_q_leaves_them_training(tmp_path, spawned):
    """`ptviz-tui --nproc 2` in a terminal: the run trains headless under torchrun in the background, the cockpit
    shows both ranks, q detaches (the run goes on and says how to reach it), and `send stop` ends it."""
    from pty_terminal import PtyTerminal

    term = PtyTerminal([sys.executable, "-m", "ptviz", "--nproc", "2", *FLAGS, "--epochs", "1000", "--runs-dir",
                        "runs"], cwd=tmp_path, env=ENV, rows=34, columns=120)
    spawned.append(term.proc)
    try:
        term.wait_for(rb"ranks \(2\)")  # the Ranks panel's title, once both ranks reported
        term.write(b"q")
        match = term.wait_for(rb"the run goes on in the background \(pid (\d+)\)")
        term.proc.wait(timeout=60)
    finally:
        term.hang_up()
    assert term.proc.returncode == 0
    agent = psutil.Process(int(match.group(1)))
    run_dir = only_run(tmp_path / "runs")
    with RemoteRun(run_dir) as run:
        assert run.status()["world_size"] == 2 and run.status()["state"] == "running"
        run.send({"cmd": "stop"})
    agent.wait(timeout=120)  # not our child: the cockpit started it in a session of its own
    done = summary(run_dir)
    assert done["state"] == "stopped" and done["replicas"][0] == done["replicas"][1]
