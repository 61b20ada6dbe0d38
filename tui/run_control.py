"""The run keys: start, pause, stop, checkpoint, evaluate, the learning rate, roll back, fork and quit, with the
questions some of them ask first."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from textual import work

from ptviz.engine import config as cfgmod
from ptviz.engine import trust
from ptviz.engine.commands import EvaluateNow, Pause, Resume, SaveCheckpoint, ScaleLearningRate, SetLearningRate

from .config_form import ConfigForm
from .runs.tab import RunsTab
from .screens.confirm import ConfirmScreen
from .screens.lr_prompt import LrPrompt
from .screens.rollback import RollbackScreen
from .train.charts import ChartsPane
from .train.log_pane import LogPane
from .train.status_bar import StatusBar
from .trust_prompt import ask_to_run_code

if TYPE_CHECKING:
    from pathlib import Path

    from ptviz.engine.storage.lineage import Lineage

    from .attach import RemoteController
    from .engine_feed import EngineFeed
    from .lr_finder import LrFinder
    from .runner import RunController
    from .working_config import WorkingConfig

ENDED = ("finished", "stopped", "diverged", "failed")  # run states after the engine's last event


class RunControl:
    """The cockpit's run actions, which its bindings name: a mixin of PtvizApp, whose runner and run state they
    read and set."""

    # What the actions use of the app (set in PtvizApp.__init__ and on_mount).
    runner: RunController | RemoteController
    run_state: str
    config: cfgmod.RunConfig
    working: WorkingConfig
    feed: EngineFeed
    lr_finder: LrFinder
    unconfirmed_code: dict[str, str]
    resume_state: dict | None
    resume_dir: Path | None
    resume_parent: Lineage | None
    fit_task: object
    current_lr: float | None
    spike_step: int | None
    signalled: int | None

    def action_start(self) -> None:
        """Start a run with the current configuration unless a field is invalid."""
        if self.runner.remote_run:
            self.notify("attached to a run in another process: it is already going", severity="warning")
            return
        if self.runner.active and self.run_state in ENDED:  # the run has ended and its thread is closing
            self.query_one(StatusBar).note = "starting…"
            self._start_once_closed()
            return
        if self.runner.active:
            self.notify("a run is already going; stop it first (x)", severity="warning")
            return
        if self.lr_finder.busy:
            self.notify("the learning-rate finder is sweeping; close it first (escape)", severity="warning")
            return
        errors = self.working.errors()
        if errors:
            self.query_one(LogPane).say("start refused: " + "; ".join(errors), "bold red")
            self.notify("fix the marked fields first:\n" + "\n".join(errors), severity="error", timeout=6)
            return
        if trust.pending(self.config, self.unconfirmed_code):
            ask_to_run_code(self, "resuming" if self.resume_state is not None else "training", self.action_start)
            return
        charts = self.query_one(ChartsPane)
        if self.resume_state is None:
            charts.history.clear()
        self.runner.start(self.config.copy(), resume=self.resume_state, run_dir=self.resume_dir, task=self.fit_task,
                          parent=self.resume_parent)
        self.resume_state = self.resume_dir = self.resume_parent = None
        self.run_state = "running"
        self.query_one(StatusBar).note = "starting…"

    @work(group="start", exclusive=True)
    async def _start_once_closed(self) -> None:
        """Start as soon as the ended run's thread has returned (it writes its last files first)."""
        finished = self.runner.finished
        await asyncio.to_thread(finished.wait, 60)
        if self.run_state in ENDED:  # still nothing else going (a key may have changed it meanwhile)
            self.action_start()

    def action_pause_resume(self) -> None:
        """Pause a running loop, or resume a paused one."""
        if self.run_state in ("running", "attached"):
            self.runner.send(Pause())
        elif self.run_state == "paused":
            self.runner.send(Resume())

    def action_stop(self) -> None:
        """Ask, then stop at the next step boundary (the engine saves a checkpoint); x again or enter confirms."""
        if not self.runner.active:
            self.notify("no run is going", severity="warning", timeout=2)
            return

        def answered(yes: bool | None) -> None:
            if yes and self.runner.active:
                self.runner.stop_soon()
                self.query_one(StatusBar).note = "stopping…"

        what = "the attached run" if self.runner.remote_run else "training"
        self.push_screen(ConfirmScreen(f"Stop {what}? A checkpoint is saved: ptviz-tui resume RUN_DIR continues it.",
                                       key="x", yes="Stop", no="Keep training", about_the_run=True), answered)

    def action_checkpoint(self) -> None:
        """Save a checkpoint now."""
        self._send(SaveCheckpoint())

    def action_evaluate(self) -> None:
        """Evaluate on the test set now."""
        self._send(EvaluateNow())

    def action_lr_scale(self, factor: float) -> None:
        """Multiply the learning rate, unless the result leaves optim.lr's range (the engine would refuse it)."""
        if self.current_lr is not None and (why := cfgmod.check_field("optim.lr", self.current_lr * factor)):
            self.notify(f"the learning rate stays {self.current_lr:g}: ×{factor:g} would give "
                        f"{self.current_lr * factor:g}, and optim.lr {why}", severity="warning")
            return
        self._send(ScaleLearningRate(factor))

    def action_lr_prompt(self) -> None:
        """Ask for an exact learning rate."""
        if not self.runner.active:
            self.notify("start a run first; before that, set optim.lr in the Model tab", severity="warning")
            return

        def chosen(value: float | None) -> None:
            if value is not None:
                self._send(SetLearningRate(value))

        self.push_screen(LrPrompt(self.current_lr), chosen)

    def action_lr_find(self) -> None:
        """Sweep the learning rate on a copy (idle: the form's configuration; paused: the run)."""
        self.lr_finder.open(self.run_state)

    def action_rollback(self) -> None:
        """Roll the paused run back to its newest checkpoint, optionally skipping batches and lowering the lr."""
        if self.runner.remote_run or not self.runner.active or self.run_state != "paused":
            self.notify("roll back works on a paused run of this cockpit (it pauses by itself after a spike)",
                        severity="warning")
            return

        def chosen(command) -> None:
            if command is not None:
                self._send(command)

        self.push_screen(RollbackScreen(self.spike_step, self.current_lr), chosen)

    def _send(self, command) -> None:
        if not self.runner.send(command):
            self.notify("no run is going (press s to start)", severity="warning")

    def on_runs_tab_fork_requested(self, message: RunsTab.ForkRequested) -> None:
        """Train a fork checked in the Runs view, in this cockpit (its parent's history first on the charts)."""
        if self.runner.active or self.runner.remote_run:
            self.notify("a run is going in this cockpit; stop it first (x), or fork from the command line: "
                        "ptviz-tui fork RUN --headless", severity="warning", timeout=6)
            return
        plan = message.plan
        self.config.__dict__.update(plan.config.copy().__dict__)  # the tabs hold a reference to this object
        for form in self.query(ConfigForm):
            form.load(self.config)
        self.resume_state, self.resume_dir, self.resume_parent = plan.state, None, plan.lineage
        self.query_one(ChartsPane).history.clear()
        self.feed.replay_history(self.resume_state, self.resume_dir, self.resume_parent)
        self.action_start()
        self.query_one(LogPane).say(f"fork of {plan.lineage.parent_name} from {plan.lineage.checkpoint} "
                                    f"(step {plan.lineage.step:,}) started", "bold")

    async def action_quit(self) -> None:
        """Quit; while training, ask first and then stop the run cleanly (attached: just detach)."""
        # A run whose end the screen shows is not asked about while its thread closes its logs.
        ended = self.run_state in ENDED
        if not self.runner.active or self.runner.remote_run or ended:
            self._leave()
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.stop_and_exit()

        self.push_screen(ConfirmScreen("Training is running. Stop it (a checkpoint is saved) and quit?", key="q",
                                       yes="Stop and quit", no="Stay", about_the_run=True), answered)

    @work(group="shutdown", exclusive=True)
    async def stop_and_exit(self) -> None:
        """Stop the run (it saves a checkpoint), then leave."""
        self.query_one(StatusBar).note = "stopping…"
        if not self.runner.remote_run:
            await self.runner.stop()
        self._leave()

    def _leave(self) -> None:
        if self.runner.remote_run:
            self.runner.detach()
        self.exit(128 + self.signalled if self.signalled else 0)
