"""The ptviz cockpit: composition, key bindings and the top-level handlers.

What the handlers hand on lives beside it: the run keys in run_control (a mixin: the bindings name its
actions), engine events in engine_feed, configuration edits in working_config, the Data and Model tabs'
loading in tab_loader, the trust question in trust_prompt, and opening the cockpit from a command in entry.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.widgets import TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from ptviz.engine import config as cfgmod
from ptviz.engine.storage.lineage import Lineage

from . import heap
from .attach import RemoteController
from .config_form import ConfigForm
from .engine_feed import EngineFeed
from .footer import FittingFooter
from .frame_clock import FrameClock
from .headless import run_names
from .keys import UngluedKeys, unglue_escapes
from .moving_keys import MovingKeysNow
from .lr_finder import LrFinder
from .messages import (ConfigEdited, EngineEvent, EngineEventsWaiting, HistoryLoaded, LogRequested, TabsLoaded,
                       TaskPreviewDone)
from .run_control import RunControl
from .runner import TRAINING_GROUP, RunController
from .runs.tab import RunsTab
from .screens.help import KEYS, HelpScreen
from .shutdown import install_stop_signals
from .steady_tabs import SteadyTabs
from .tab_loader import TABS_GROUP, TabLoader
from .terminal import typed_keys
from .threads import ThreadPerTask
from .train.charts import ChartsPane
from .train.device_panel import DevicePanel
from .train.log_pane import LogPane
from .train.ranks_panel import RanksPanel
from .train.status_bar import StatusBar
from .trust_prompt import ask_to_run_code
from .working_config import WorkingConfig

if TYPE_CHECKING:  # the tabs import torch: the app loads them after its first screen (tab_loader)
    from .data.tab import DataTab
    from .model.tab import ModelTab

COMPACT_WIDTH, COMPACT_HEIGHT = 120, 34


class PtvizApp(RunControl, MovingKeysNow, UngluedKeys, App[int]):
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
        if "TEXTUAL_ANIMATIONS" not in os.environ:  # over SSH each animated frame is bytes and CPU; show the end
            self.animation_level = "none"
        unglue_escapes()
        self.config = config.copy()
        # User code a run folder names (trust.user_code) that runs only after the user says yes.
        self.unconfirmed_code = dict(unconfirmed_code or {})
        self.resume_state = resume
        self.resume_dir = run_dir
        self.resume_parent = parent  # set when the run to start is a fork of another (resume is then its checkpoint)
        self.initial_tab = tab
        self.runner = RemoteController(self, attach) if attach is not None else RunController(self)
        if attach is not None:  # q leaves the other process's run going (run_control.action_quit): say so
            self._bindings.key_to_bindings["q"] = [replace(binding, description="Detach")
                                                   for binding in self._bindings.key_to_bindings["q"]]
        self.current_lr: float | None = None
        self.signalled: int | None = None
        self.typed = typed  # keys typed at the terminal before the app could read them
        self.exits_process = False  # run_app ends the process when the app closes
        self.tab_loader = TabLoader(self, defer=defer_tabs)
        self.data_tab: DataTab | None = None  # None until the tab has loaded
        self.model_tab: ModelTab | None = None
        self.fit_task = task  # a Task handed to ptviz.fit: trained as soon as the tabs have looked at it
        self.finished = finished  # receives each RunFinished (ptviz.fit returns the last)
        self._previews_waited: set[str] = {"data", "model"} if task is not None and resume is None else set()
        self.lr_finder = LrFinder(self)
        self.working = WorkingConfig(self)  # self.config, edited by the forms
        self.spike_step: int | None = None  # the step whose loss diverged or spiked, until rolled back or resumed

    # ------------------------------------------------------------------ composition

    def compose(self) -> ComposeResult:
        with SteadyTabs(initial="train", id="tabs"):
            with TabPane("Train [1]", id="train"):
                yield ChartsPane(id="charts")
                with Horizontal(id="train-bottom"):
                    yield LogPane(id="log")
                    yield RanksPanel(id="ranks")
                    yield DevicePanel(id="device")
            with TabPane("Data [2]", id="data"):
                yield from self.tab_loader.compose("data")
            with TabPane("Model [3]", id="model"):
                yield from self.tab_loader.compose("model")
            with TabPane("Runs [4]", id="runs"):
                yield RunsTab(self.config, id="runs-tab")
        yield StatusBar(id="status")
        yield FittingFooter()

    def on_mount(self) -> None:
        # Where Textual runs thread workers; a process about to end waits for none (a preview still computing).
        asyncio.get_running_loop().set_default_executor(ThreadPerTask(join_on_shutdown=not self.exits_process))
        self.feed = EngineFeed(self)
        self.frames = FrameClock(self, [self.feed.take_queued, self.query_one(StatusBar).flush,
                                        self.query_one(LogPane).flush, self.query_one(DevicePanel).flush,
                                        self.query_one(RanksPanel).flush, self.query_one(RunsTab).redraw],
                                 heavy=[self.query_one(ChartsPane).redraw])
        self.frames.start()
        install_stop_signals(self)
        log = self.query_one(LogPane)
        if self.runner.remote_run:
            log.say(f"attached to {self.runner.run_dir}: keys drive that run; q detaches and leaves it running", "bold")
            self.run_state = "attached"
            self.runner.follow()
        else:
            name, trains = run_names(self.config)
            self.query_one(StatusBar).name_run(name, trains)
            what = f"task {trains}".rstrip() if self.config.data.task else f"recipe {name} ({trains})"
            log.say(f"ready: {what}. Press s to start, ? for keys.", "bold")
        if warning := self.query_one(ChartsPane).renderer_warning:
            log.say(warning, "yellow")
        self.tab_loader.start()
        for key in typed_keys(self.typed):  # in order, before anything typed from now on
            self.post_message(key)
        if self.resume_state is not None:
            self.feed.replay_history(self.resume_state, self.resume_dir, self.resume_parent)
            self.action_start()
        elif self.unconfirmed_code:
            ask_to_run_code(self, "showing its model")
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

    @on(TabsLoaded)
    async def _tabs_loaded(self, message: TabsLoaded) -> None:
        await self.tab_loader.mount(message)

    def on_resize(self) -> None:
        self.apply_size()

    def apply_size(self, force: bool = False) -> None:
        compact = self.size.width < COMPACT_WIDTH or self.size.height < COMPACT_HEIGHT
        if (force or compact != self.screen.has_class("-compact")) and self.data_tab is not None:
            self.data_tab.set_compact(compact)
        self.screen.set_class(compact, "-compact")
        self.query_one(ChartsPane).set_class(compact, "-compact")
        self.query_one(RunsTab).set_compact(compact)

    # ------------------------------------------------------------------ configuration

    @on(ConfigForm.FieldChanged)
    def _field_changed(self, message: ConfigForm.FieldChanged) -> None:
        self.working.field_changed(message.path, message.value)

    @on(ConfigEdited)
    def _config_edited(self) -> None:
        self.working.edited()

    def on_data_tab_recipe_chosen(self, event: DataTab.RecipeChosen) -> None:
        """The recipe list picked a preset (handler named for DataTab.RecipeChosen, a class loaded later)."""
        self.working.load_recipe(event.name)

    @on(LogRequested)
    def _log_requested(self, message: LogRequested) -> None:
        log = self.query_one(LogPane)
        log.say(message.text, message.style)
        if message.details:
            log.say_details(message.details)

    # ------------------------------------------------------------------ engine events

    @on(EngineEvent)
    def _engine_event(self, message: EngineEvent) -> None:
        self.feed.ingest(message.event)

    @on(EngineEventsWaiting)
    def _engine_events(self, message: EngineEventsWaiting) -> None:
        for event in message.inbox.take():
            self.feed.ingest(event)

    @on(HistoryLoaded)
    def _history_loaded(self, message: HistoryLoaded) -> None:
        self.feed.load_history(message.snapshot)
        self.runner.took_history(message.follower)

    def watch_run_state(self, state: str) -> None:
        self.query_one(StatusBar).state = state
        heap.training(state == "running")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place worker failures land; the engine has already reported its own as RunFailed."""
        if event.worker.group == TABS_GROUP and event.state == WorkerState.ERROR:
            self.tab_loader.failed(event.worker.error)
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
            widget = found.first()
            widget.screen.set_focus(widget)  # now, not deferred: a key typed with this one goes there (moving_keys.py)
        else:
            self.set_focus(None)  # the Train tab, or a tab still loading

    def action_focus_pane(self, pane: str) -> None:
        self.query_one(TabbedContent).active = "train"
        widget = self.query_one(f"#{pane}")
        widget.screen.set_focus(widget)

    def action_blur(self) -> None:
        self.set_focus(None)

    def action_help(self) -> None:
        self.push_screen(HelpScreen(KEYS))

    def on_unmount(self) -> None:
        """However the cockpit ends (quit, a crash in the UI, a test's end), its own run is asked to stop at the
        next step boundary, so it saves a checkpoint and its thread ends even if it was paused."""
        self.lr_finder.stop.set()
        if not self.runner.remote_run:
            self.runner.stop_soon()
