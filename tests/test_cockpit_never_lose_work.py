"""The cockpit keeps work through an SSH drop, and attaches to a headless run in another process."""

from __future__ import annotations

import signal
import sys
import time

from cockpit_helpers import wait_for
from ptviz.engine.storage import checkpoint as ckpt
from ptviz.engine.remote import RemoteRun
from pty_terminal import PtyTerminal
from test_never_lose_work import ENV, FLAGS, spawned, start_headless, steps_logged  # noqa: F401 - fixture
from ptviz.tui.app import PtvizApp
from ptviz.tui.train.charts import ChartsPane
from ptviz.tui.commands import config_of
from ptviz.tui.train.status_bar import StatusBar


def test_sighup_to_the_cockpit_over_a_pty_checkpoints_within_one_step_and_exits(tmp_path, spawned):  # noqa: F811
    """The SSH connection goes: the cockpit's terminal closes, the run saves where it is and the process ends."""
    term = PtyTerminal([sys.executable, "-m", "ptviz", *FLAGS, "--epochs", "1000", "--runs-dir", "runs"],
                       cwd=tmp_path, env={**ENV, "TERM": "xterm-256color"})
    proc = term.proc
    spawned.append(proc)
    try:
        term.wait_for(rb"IDLE")  # the cockpit has drawn its first screen
        term.write(b"s")
        deadline = time.monotonic() + 120
        while not list((tmp_path / "runs").glob("*/control/sock")):
            assert time.monotonic() < deadline and proc.poll() is None, term.text()[-2000:]
            time.sleep(0.1)
        (run_dir,) = (tmp_path / "runs").iterdir()
        with RemoteRun(run_dir) as run:
            run.wait(step=10)
    finally:
        term.hang_up()  # the connection drops: the kernel hangs up the session
    proc.wait(timeout=120)
    assert proc.returncode == 128 + signal.SIGHUP
    state = ckpt.load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert state["reason"] == "stopped" and state["step"] >= 10
    assert steps_logged(run_dir) == list(range(1, state["step"] + 1))  # nothing after the checkpoint is lost


async def test_attach_drives_a_headless_run_in_another_process_and_detaching_leaves_it_running(
        tmp_path, spawned):  # noqa: F811
    proc, run_dir = start_headless(spawned, *FLAGS, "--epochs", "1000", cwd=tmp_path)
    with RemoteRun(run_dir) as other:  # another client, attached all along
        other.wait(step=5)
        config = config_of(__import__("tomllib").loads((run_dir / "config.toml").read_text()), "config.toml")
        app = PtvizApp(config, attach=run_dir)
        async with app.run_test(size=(100, 30)) as pilot:
            history = app.query_one(ChartsPane).history
            status = app.query_one(StatusBar)
            await wait_for(pilot, lambda: len(history.step_loss) >= 5, what="history from the log")
            assert history.step_loss.x[0] == 1  # the whole history, from the first step
            await pilot.press("p")
            await wait_for(pilot, lambda: app.run_state == "paused", what="paused")
            paused = other.status()
            assert paused["paused"] and paused["step"] == status.step
            await pilot.pause(0.5)
            assert other.status()["step"] == paused["step"]  # the counter stopped
            await pilot.press("right_square_bracket")
            await wait_for(pilot, lambda: status.lr == 0.1, what="lr doubled in the other process")
            await pilot.press("p")
            await wait_for(pilot, lambda: status.step > paused["step"] + 3, what="running again")
            await pilot.press("q")  # detach
            await wait_for(pilot, lambda: not app.is_running, what="detached")
        after = other.wait(step=status.step + 5)
        assert not after["paused"] and proc.poll() is None  # detaching did not disturb the run
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    assert ckpt.load_checkpoint(run_dir / "checkpoints" / "last.pt")["reason"] == "stopped"


async def test_resume_in_the_cockpit_shows_the_whole_history_and_continues(tmp_path, digits_config):
    """`ptviz-tui resume RUN_DIR` without --headless: the charts start from the first step, then go on."""
    from ptviz.engine.loop import train

    digits_config.train.max_steps = 30
    digits_config.train.log_interval = 1
    train(digits_config)
    (run_dir,) = (tmp_path / "runs").iterdir()
    state = ckpt.load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert state["step"] == 30
    config = config_of(state["config"], "checkpoint")
    config.train.max_steps = 50
    app = PtvizApp(config, resume=state, run_dir=run_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        history = app.query_one(ChartsPane).history
        await wait_for(pilot, lambda: app.run_state == "finished", what="the resumed run to reach max_steps")
        assert list(history.step_loss.x) == list(range(1, 51))  # history and continuation, one point per step
    assert steps_logged(run_dir) == list(range(1, 51))
