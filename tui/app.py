"""The ptviz cockpit: composition, key bindings and the top-level handlers."""

from __future__ import annotations

import asyncio
import os
import sys
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from textual import events, on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widgets import TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from ptviz.engine import config as cfgmod
from ptviz.engine import trust
from ptviz.engine.commands import EvaluateNow, Pause, Resume, SaveCheckpoint, ScaleLearningRate, SetLearningRate
from ptviz.engine.events import Diverged, Paused, Resumed, RolledBack, RunFailed, RunFinished, RunStarted
from ptviz.engine.recipes import recipe
from ptviz.engine.storage.lineage import Lineage

from . import heavy_tabs
from .attach import RemoteController
from .config_form import ConfigForm
from .footer import FittingFooter
from .frame_clock import FrameClock
from .headless import what_trains
from .heap import full_passes_on_a_clock
from .keys import split_escape, unglue_escapes
from .lr_finder import LrFinder
from .messages import (ConfigEdited, EngineEvent, EngineEventsWaiting, HistoryLoaded, LogRequested, TabsLoaded,
                       TaskPreviewDone)
from .runs.tab import RunsTab
from .runner import TRAINING_GROUP, RunController
from .screens.confirm import ConfirmScreen
from .screens.help import KEYS, HelpScreen
from .screens.lr_prompt import LrPrompt
from .screens.rollback import RollbackScreen
from .shutdown import install_stop_signals
from .terminal import typed_keys
from .threads import ThreadPerTask
from .train.charts import HISTORY_BUCKETS, ChartsPane
from .train.device_panel import DevicePanel
from .train.log_pane import LogPane
from .train.ranks_panel import RanksPanel
from .train.status_bar import StatusBar

if TYPE_CHECKING:  # the tabs import torch: the app loads them after its first screen (heavy_tabs)
    from .data.tab import DataTab
    from .model.tab import ModelTab

COMPACT_WIDTH, COMPACT_HEIGHT = 120, 34
FAILED_HINT = "fix the problem, then press s"
ENDED = ("finished", "stopped", "diverged", "failed")  # run states after the engine's last event
EARLY_TAB_EVENTS = 5000  # engine events kept for the Data and Model tabs until they have loaded
HISTORY_LOG_EVENTS = 200  # an attached run's past events the log shows (its charts show all of them)


class PtvizApp(App[int]):
    """Configure, watch and control a training run."""

    CSS_PATH = "app.tcss"
    TITLE = "ptviz"
    BINDINGS = [
        Binding("s", "start", "Start"),
        Binding("p,space", "pause_resume", "Pause"),
        Binding("x", "stop", "Stop"),
        Binding("c", "checkpoint", "Ckpt"),
        Binding("e", "evaluate", "Eval"),
        Binding("question_mark,f1", "help", "Help"),  # before the lr keys: a narrow footer still shows help and quit
        Binding("q", "quit", "Quit"),
        Binding("right_square_bracket", "lr_scale(2.0)", "lr×2"),
        Binding("left_square_bracket", "lr_scale(0.5)", "lr÷2"),
        Binding("l", "lr_prompt", "lr="),
        Binding("L", "lr_find", "lr find", show=False),
        Binding("R", "rollback", "Roll back", show=False),
        Binding("y", "toggle_log_y", "Log y"),
        Binding("plus,equals_sign", "smoothing(1)", "Smooth+"),
        Binding("minus", "smoothing(-1)", "Smooth-"),
        Binding("v", "chart_page", "Charts"),
        Binding("1", "show_tab('train')", "Train", show=False),
        Binding("2", "show_tab('data')", "Data", show=False),
        Binding("3", "show_tab('model')", "Model", show=False),
        Binding("4", "show_tab('runs')", "Runs", show=False),
        Binding("5", "focus_pane('log')", "Log", show=False),
        Binding("6", "focus_pane('device')", "Device", show=False),
        Binding("escape", "blur", show=False),
    ]

    run_state = reactive("idle")
    """idle, running, paused, finished, stopped or failed."""

    def __init__(self, config: cfgmod.RunConfig, *, resume: dict | None = None, run_dir: Path | None = None,
                 attach: Path | None = None, unconfirmed_code: Mapping[str, str] | None = None, typed: str = "",
                 defer_tabs: bool | None = None, task: object = None, finished: list | None = None,
                 parent: Lineage | None = None, tab: str = "train"):
        super().__init__()
        unglue_escapes()
        self.config = config.copy()
        # User code a run folder names (trust.user_code) that runs only after the user says yes.
        self.unconfirmed_code = dict(unconfirmed_code or {})
        self.resume_state = resume
        self.resume_dir = run_dir
        self.resume_parent = parent  # set when the run to start is a fork of another (resume is then its checkpoint)
        self.initial_tab = tab
        self.runner = RemoteController(self, attach) if attach is not None else RunController(self)
        self.current_lr: float | None = None
        self.signalled: int | None = None
        self.typed = typed  # keys typed at the terminal before the app could read them
        self.exits_process = False  # run_app ends the process when the app closes
        self.defer_tabs = not heavy_tabs.imported() if defer_tabs is None else defer_tabs
        self.data_tab: DataTab | None = None  # None until the tab has loaded
        self.model_tab: ModelTab | None = None
        # Engine events for the tabs while they load (bounded: the newest ones are what they show).
        self._early_events: deque = deque(maxlen=EARLY_TAB_EVENTS)
        self.fit_task = task  # a Task handed to ptviz.fit: trained as soon as the tabs have looked at it
        self.finished = finished  # receives each RunFinished (ptviz.fit returns the last)
        self._previews_waited: set[str] = {"data", "model"} if task is not None and resume is None else set()
        self.lr_finder = LrFinder(self)
        self.spike_step: int | None = None  # the step whose loss diverged or spiked, until rolled back or resumed

    # ------------------------------------------------------------------ composition

    def compose(self) -> ComposeResult:
        with TabbedContent(initial="train", id="tabs"):
            with TabPane("Train [1]", id="train"):
                yield ChartsPane(id="charts")
                with Horizontal(id="train-bottom"):
                    yield LogPane(id="log")
                    yield RanksPanel(id="ranks")
                    yield DevicePanel(id="device")
            with TabPane("Data [2]", id="data"):
                yield from self._tab("data")
            with TabPane("Model [3]", id="model"):
                yield from self._tab("model")
            with TabPane("Runs [4]", id="runs"):
                yield RunsTab(self.config, id="runs-tab")
        yield StatusBar(id="status")
        yield FittingFooter()

    def _tab(self, name: str) -> ComposeResult:
        if self.defer_tabs:
            yield heavy_tabs.TabLoading(name)
        else:
            yield heavy_tabs.build(name, self.config, self.unconfirmed_code, self.fit_task)

    def on_mount(self) -> None:
        # Where Textual runs thread workers; a process about to end waits for none (a preview still computing).
        asyncio.get_running_loop().set_default_executor(ThreadPerTask(join_on_shutdown=not self.exits_process))
        # Every engine event reaches these three: found once, not per event (the tabs load later).
        self._panes = (self.query_one(ChartsPane), self.query_one(LogPane), self.query_one(StatusBar))
        self._ranks = self.query_one(RanksPanel)
        self.frames = FrameClock(self, [self._take_engine_events, self.query_one(ChartsPane).redraw,
                                        self.query_one(StatusBar).flush, self.query_one(LogPane).flush,
                                        self.query_one(DevicePanel).flush, self.query_one(RanksPanel).flush,
                                        self.query_one(RunsTab).redraw])
        self.frames.start()
        install_stop_signals(self)
        log = self.query_one(LogPane)
        if self.runner.remote_run:
            log.say(f"attached to {self.runner.run_dir}: keys drive that run; q detaches and leaves it running", "bold")
            self.run_state = "attached"
            self.runner.follow()
        else:
            self.query_one(StatusBar).name_run(self.config.recipe, what_trains(self.config))
            log.say(f"ready: recipe {self.config.recipe} ({what_trains(self.config)}). "
                    "Press s to start, ? for keys.", "bold")
        if warning := self.query_one(ChartsPane).renderer_warning:
            log.say(warning, "yellow")
        if self.defer_tabs:
            self.query_one(StatusBar).note = heavy_tabs.LOADING_NOTE
            self.call_after_refresh(self._load_tabs)  # after the first screen is drawn
        else:
            self._tabs_mounted()
        for key in typed_keys(self.typed):  # in order, before anything typed from now on
            self.post_message(key)
        if self.resume_state is not None:
            self._replay_history()
            self.action_start()
        elif self.unconfirmed_code:
            self._ask_to_run_code("showing its model")
        elif self.fit_task is not None:
            log.say("training starts once the Data and Model tabs have read the task", "dim")
        if self.initial_tab != "train":
            self.call_after_refresh(self.action_show_tab, self.initial_tab)

    @on(TaskPreviewDone)
    def _task_preview_done(self, message: TaskPreviewDone) -> None:
        """ptviz.fit's run starts after the previews: they read the task's samples and copy its model, and never
        beside a run, whose random streams and weights they would otherwise touch."""
        if message.tab in self._previews_waited:
            self._previews_waited.discard(message.tab)
            if not self._previews_waited:
                self.action_start()

    def _ask_to_run_code(self, purpose: str, then: Callable[[], None] | None = None) -> None:
        """Show the user code the run folder names; import it (then call `then`) only after a yes."""
        shown = "\n".join(f"  {trust.describe(path, spec)}"
                          for path, spec in trust.pending(self.config, self.unconfirmed_code).items())
        log = self.query_one(LogPane)

        def answered(yes: bool | None) -> None:
            if not yes:
                log.say("not run: the run folder's code was not confirmed. Name your own (model.name in the Model "
                        "tab, data.task in the Data tab) and press s, or quit with q", "yellow")
                return
            self.unconfirmed_code.clear()
            log.say("confirmed: the run folder's code may run", "bold")
            if self.model_tab is not None:
                self.model_tab.schedule_preview()
            if self.data_tab is not None:
                self.data_tab.refresh_pane()
            if then is not None:
                then()

        self.push_screen(ConfirmScreen(f"This run folder names code that {purpose} imports and runs:\n{shown}\n\n"
                                       "Run it? Say yes only if you trust where the folder came from.",
                                       enter_says_yes=False), answered)

    @work(thread=True, group="tabs", exit_on_error=False)
    def _load_tabs(self) -> None:
        """Import the Data and Model tabs, and torch with them, off the UI thread."""
        self.post_message(TabsLoaded(*heavy_tabs.load()))

    @on(TabsLoaded)
    async def _tabs_loaded(self, message: TabsLoaded) -> None:
        for name in ("data", "model"):
            pane = self.query_one(f"#{name}", TabPane)
            await pane.remove_children()
            await pane.mount(heavy_tabs.build(name, self.config, self.unconfirmed_code, self.fit_task))
        self._tabs_mounted()
        status = self.query_one(StatusBar)
        if status.note == heavy_tabs.LOADING_NOTE:
            status.note = ""
        self.query_one(LogPane).say(f"torch {message.torch_version} loaded in {message.seconds:.1f} s", "dim")
        tabs = self.query_one(TabbedContent)
        if tabs.active in ("data", "model"):  # shown while loading: its keys reach it now
            self.action_show_tab(tabs.active)

    def _tabs_mounted(self) -> None:
        self.data_tab = self.query_one("#data-tab")
        self.model_tab = self.query_one("#model-tab")
        self._apply_size(force=True)
        early, self._early_events = self._early_events, deque()
        for event in early:  # what a run or a history told before the tabs were there
            self._to_tabs(event)

    def _to_tabs(self, event: object) -> None:
        """Hand an engine event to the Data and Model tabs, or keep it until they have loaded."""
        if self.model_tab is None or self.data_tab is None:
            self._early_events.append(event)
            return
        self.model_tab.engine_event(event)
        self.data_tab.engine_event(event)


    def _replay_history(self) -> None:
        """Show a resumed run's history up to its checkpoint (reduced to chart width) before it continues."""
        from ptviz.engine.storage import history

        state = self.resume_state
        source = self.resume_dir or (Path(self.resume_parent.parent) if self.resume_parent else None)
        if source is None:
            return
        # A fork (no save_id of its own) shows its parent's history up to the branch step.
        cut = history.checkpoint_cut(source, state.get("save_id", ""), int(state["step"]))
        snapshot = history.load(source, buckets=HISTORY_BUCKETS, cut=cut)
        self.query_one(ChartsPane).history.load(snapshot)
        for event in snapshot.events:  # the layer health sampled up to the checkpoint
            self._to_tabs(event)

    def on_resize(self) -> None:
        self._apply_size()

    def _apply_size(self, force: bool = False) -> None:
        compact = self.size.width < COMPACT_WIDTH or self.size.height < COMPACT_HEIGHT
        if (force or compact != self.screen.has_class("-compact")) and self.data_tab is not None:
            self.data_tab.set_compact(compact)
        self.screen.set_class(compact, "-compact")
        self.query_one(ChartsPane).set_class(compact, "-compact")
        self.query_one(RunsTab).set_compact(compact)

    async def on_event(self, event: events.Event) -> None:
        """A key that arrived glued to an escape (tmux and SSH send `escape s` as one read, which Textual
        takes for alt+s; `escape 3` is read as escape then 3, see keys.unglue_escapes) acts as escape, then
        that key."""
        if not isinstance(event, events.Key) or event.is_forwarded:
            await super().on_event(event)
            return
        if event.key == "escape" and event.character is None:  # the first of a pair unglue_escapes made
            keys = [event]
        else:
            keys = split_escape(event) or []
        if not keys:
            await super().on_event(event)
            return
        escape, *then = keys
        # The escape's binding runs now (a field gives up the keyboard), so the key goes where it then points.
        if not await self._check_bindings(escape.key):
            await super().on_event(escape)
        for key in then:
            await super().on_event(key)

    # ------------------------------------------------------------------ configuration

    @on(ConfigForm.FieldChanged)
    def _field_changed(self, message: ConfigForm.FieldChanged) -> None:
        if cfgmod.get_value(self.config, message.path) != message.value:
            cfgmod.set_value(self.config, message.path, message.value)
            self._config_edited()
            for tab in (self.model_tab, self.data_tab):
                if tab is not None:
                    tab.config_changed(message.path)

    @on(ConfigEdited)
    def _config_edited(self) -> None:
        """A failed run's state and hint describe the configuration it ran with: an edit makes them stale."""
        if not self.runner.active and not self.runner.remote_run:
            self.query_one(StatusBar).name_run(self.config.recipe, what_trains(self.config))
        if self.run_state == "failed" and not self.runner.active:
            self.run_state = "idle"
            status = self.query_one(StatusBar)
            if status.note == FAILED_HINT:
                status.note = ""

    @on(LogRequested)
    def _log_requested(self, message: LogRequested) -> None:
        log = self.query_one(LogPane)
        log.say(message.text, message.style)
        if message.details:
            log.say_details(message.details)

    def on_data_tab_recipe_chosen(self, event: DataTab.RecipeChosen) -> None:
        """The recipe list picked a preset: load it into every form (handler named for DataTab.RecipeChosen)."""
        chosen = recipe(event.name)
        chosen.output = self.config.output  # where runs go is the user's choice, not the recipe's
        self.config.__dict__.update(chosen.__dict__)  # same object: the tabs hold a reference to it
        for form in self.query(ConfigForm):
            form.load(self.config)
        self._config_edited()
        if self.model_tab is not None and self.data_tab is not None:
            self.model_tab.schedule_preview()
            self.data_tab.refresh_pane()
        self.query_one(LogPane).say(f"recipe {event.name} loaded ({what_trains(self.config)})")

    def form_errors(self) -> list[str]:
        """Every invalid field shown in a form or found by whole-config validation."""
        errors = [f"{path}: {reason}" for form in self.query(ConfigForm) for path, reason in form.errors.items()]
        if self.data_tab is not None:
            errors += self.data_tab.pipeline_errors()
        if not errors:
            errors = [str(e) for e in cfgmod.validate(self.config)]
        return errors

    # ------------------------------------------------------------------ run control

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
        errors = self.form_errors()
        if errors:
            self.query_one(LogPane).say("start refused: " + "; ".join(errors), "bold red")
            self.notify("fix the marked fields first:\n" + "\n".join(errors), severity="error", timeout=6)
            return
        if trust.pending(self.config, self.unconfirmed_code):
            self._ask_to_run_code("resuming" if self.resume_state is not None else "training", self.action_start)
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
        self.push_screen(ConfirmScreen(f"Stop {what}? A checkpoint is saved; `ptviz-tui resume` continues it.",
                                       key="x", yes="Stop", no="Keep training"), answered)

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

    def set_form_lr(self, lr: float) -> None:
        """Put `lr` into optim.lr, as if typed in the Model tab's form."""
        cfgmod.set_value(self.config, "optim.lr", lr)
        for form in self.query(ConfigForm):
            if "optim.lr" in form.paths:
                form.show_value("optim.lr", lr)
        self.query_one(LogPane).say(f"optim.lr set to {lr:g} (lr finder)")

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

    @on(RunsTab.ForkRequested)
    def _fork_requested(self, message: RunsTab.ForkRequested) -> None:
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
        self._replay_history()
        self.action_start()
        self.query_one(LogPane).say(f"fork of {plan.lineage.parent_name} from {plan.lineage.checkpoint} "
                                    f"(step {plan.lineage.step:,}) started", "bold")

    # ------------------------------------------------------------------ engine events

    @on(EngineEvent)
    def _engine_event(self, message: EngineEvent) -> None:
        self._ingest(message.event)

    @on(HistoryLoaded)
    def _history_loaded(self, message: HistoryLoaded) -> None:
        """An attached run's history: the charts take its reduced series, the other panes its events (the log
        only the last few: thousands of lines would take seconds to lay out and say little)."""
        snapshot = message.snapshot
        self.query_one(ChartsPane).history.load(snapshot)
        events = [*snapshot.events, *([snapshot.last] if snapshot.last else [])]
        first_logged = max(0, len(snapshot.events) - HISTORY_LOG_EVENTS)
        if first_logged:
            self.query_one(LogPane).say(f"the log holds {snapshot.steps:,} steps and {len(snapshot.events):,} other "
                                        f"events; the last {HISTORY_LOG_EVENTS} follow", "dim")
        for i, event in enumerate(events):
            self._ingest(event, charts=False, log=i >= first_logged)
        self.runner.took_history(message.follower)

    @on(EngineEventsWaiting)
    def _engine_events(self, message: EngineEventsWaiting) -> None:
        for event in message.inbox.take():
            self._ingest(event)

    def _take_engine_events(self) -> bool:
        """Frame step: take the metrics the run queued since the last frame; whether there were any."""
        sink = self.runner.sink
        queued = sink.take() if sink is not None else []
        for event in queued:
            self._ingest(event)
        return bool(queued)

    def _ingest(self, event: object, charts: bool = True, log: bool = True) -> None:
        """Hand one engine event to every pane that shows it (the charts and log unless told otherwise)."""
        charts_pane, log_pane, status = self._panes
        if charts:
            charts_pane.history.ingest(event)
        if log:
            log_pane.ingest(event)
        self._ranks.ingest(event)
        self._to_tabs(event)
        self.lr_finder.ingest(event)
        status.ingest(event)
        self.current_lr = status.lr if status.lr is not None else self.current_lr
        if isinstance(event, RunStarted):
            self.query_one(RunsTab).run_started(event.run_dir)
            status.note = ""  # 'starting…', or the hint of a failure before this run
        if isinstance(event, (RunStarted, Resumed)):
            self.run_state = "running"
        elif isinstance(event, Paused):
            self.run_state = "paused"
        elif isinstance(event, RunFinished):
            self.run_state = event.state  # finished (max_steps included), stopped or diverged
            status.note = ""
            if self.finished is not None:
                self.finished.append(event)
        elif isinstance(event, RunFailed):
            self.run_state = "failed"
            status.note = FAILED_HINT
            self.notify(event.message, title="run failed", severity="error", timeout=8)
        elif isinstance(event, Diverged):
            self.spike_step = event.step
            what = (f"loss became {event.value}" if event.median is None else
                    f"loss spiked to {event.value:.4g} ({event.value / event.median:.0f}× its running median)")
            kept = "the last good checkpoint is kept" if event.checkpoint else "no checkpoint was saved before it"
            undo = "R rolls back to the last good checkpoint; or " if event.action == "pause" and event.checkpoint else ""
            self.notify(f"{what} at step {event.step:,}; the run is {event.action}ped and {kept}. "
                        f"{undo}lower the learning rate ([ or l), then resume.",
                        title="training diverged" if event.median is None else "loss spike", severity="error",
                        timeout=15)
        elif isinstance(event, RolledBack):
            self.spike_step = None

    def watch_run_state(self, state: str) -> None:
        self.query_one(StatusBar).state = state

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place worker failures land; the engine has already reported its own as RunFailed."""
        if event.worker.group == "tabs" and event.state == WorkerState.ERROR:
            for loading in self.query(heavy_tabs.TabLoading):
                loading.failed(event.worker.error)
            self.query_one(LogPane).say(f"the Data and Model tabs could not load: {event.worker.error!r}", "bold red")
        if event.worker.group == TRAINING_GROUP and event.state == WorkerState.ERROR:
            if self.run_state not in ("failed",):
                self.run_state = "failed"
                self.query_one(LogPane).say(f"training thread ended with {event.worker.error!r}", "bold red")

    # ------------------------------------------------------------------ view

    def action_toggle_log_y(self) -> None:
        charts = self.query_one(ChartsPane)
        charts.log_y = not charts.log_y

    def action_smoothing(self, direction: int) -> None:
        window = self.query_one(ChartsPane).smoother(direction)
        self.notify(f"step-loss smoothing: mean of {window}", timeout=1.5)

    def action_chart_page(self) -> None:
        self.query_one(ChartsPane).next_page()

    def action_show_tab(self, tab: str) -> None:
        """Switch tab and put the keyboard on what the tab shows (Tab reaches the form fields)."""
        self.query_one(TabbedContent).active = tab
        target = {"data": "#grid", "model": "#model-tree", "runs": "#runs-table"}.get(tab)
        if tab == "data" and self.data_tab is not None and self.data_tab.has_task:
            target = "#task-table" if self.query_one("#task-table").display else "#task-images-scroll"
        found = self.query(target) if target else None
        if found:
            found.first().focus()
        else:
            self.set_focus(None)  # the Train tab, or a tab still loading

    def action_focus_pane(self, pane: str) -> None:
        self.query_one(TabbedContent).active = "train"
        self.query_one(f"#{pane}").focus()

    def action_blur(self) -> None:
        self.set_focus(None)

    def action_help(self) -> None:
        self.push_screen(HelpScreen(KEYS))

    async def action_quit(self) -> None:
        """Quit; while training, ask first and then stop the run cleanly (attached: just detach)."""
        # A run whose end the screen shows is not asked about while its thread closes its logs.
        ended = self.run_state in ("finished", "stopped", "diverged", "failed")
        if not self.runner.active or self.runner.remote_run or ended:
            self._leave()
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.stop_and_exit()

        self.push_screen(ConfirmScreen("Training is running. Stop it (a checkpoint is saved) and quit?", key="q",
                                       yes="Stop and quit", no="Stay"), answered)

    @work(group="shutdown", exclusive=True)
    async def stop_and_exit(self) -> None:
        """Stop the run (it saves a checkpoint), then leave."""
        self.query_one(StatusBar).note = "stopping…"
        if not self.runner.remote_run:
            await self.runner.stop()
        self._leave()

    def on_unmount(self) -> None:
        """However the cockpit ends (quit, a crash in the UI, a test's end), its own run is asked to stop at the
        next step boundary, so it saves a checkpoint and its thread ends even if it was paused."""
        self.lr_finder.stop.set()
        if not self.runner.remote_run:
            self.runner.stop_soon()

    def _leave(self) -> None:
        if self.runner.remote_run:
            self.runner.detach()
        self.exit(128 + self.signalled if self.signalled else 0)


def run_app(config: cfgmod.RunConfig, *, resume: dict | None = None, run_dir: Path | None = None,
            attach: Path | None = None, unconfirmed_code: Mapping[str, str] | None = None, task: object = None,
            finished: list | None = None, parent: Lineage | None = None, tab: str = "train") -> int:
    """Open the cockpit on `config` (training `task` at once when given, showing `tab` first); returns the exit
    code, or, from the command line (no `finished` list for ptviz.fit to read), ends the process with it."""
    from .terminal import probe

    info = probe()  # before Textual reads the terminal: its answers, and any key typed since launch
    app = PtvizApp(config, resume=resume, run_dir=run_dir, attach=attach, unconfirmed_code=unconfirmed_code,
                   typed=info.typed if info else "", task=task, finished=finished, parent=parent, tab=tab)
    app.exits_process = finished is None
    with full_passes_on_a_clock():
        code = app.run()
    if not app.runner.remote_run and not app.runner.join(timeout=120):  # the UI is gone; the work is not lost
        print("ptviz-tui: the training thread did not stop in time", file=sys.stderr)
    # The terminal is restored, the run saved and its thread ended: nothing is left to do but Python's own
    # teardown, which takes seconds once torch is loaded (2 s and more on a busy 2-core machine). Leave now.
    sys.stdout.flush()
    sys.stderr.flush()
    if not app.exits_process:
        return code or 0
    os._exit(code or 0)
