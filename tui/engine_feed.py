"""Engine events into the cockpit: each reaches every pane that shows it, and moves the run's state."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

from ptviz.engine.events import Diverged, Paused, Resumed, RolledBack, RunFailed, RunFinished, RunStarted
from ptviz.engine.storage.lineage import Lineage

from .runs.tab import RunsTab
from .screens.confirm import drop_run_question
from .train.charts import HISTORY_BUCKETS, ChartsPane
from .train.log_pane import LogPane
from .train.ranks_panel import RanksPanel
from .train.status_bar import StatusBar

if TYPE_CHECKING:
    from .app import PtvizApp

FAILED_HINT = "fix the problem, then press s"
EARLY_TAB_EVENTS = 5000  # engine events kept for the Data and Model tabs until they have loaded
HISTORY_LOG_EVENTS = 200  # an attached run's past events the log shows (its charts show all of them)


class EngineFeed:
    """Hands engine events to the panes, the run's state and the lr finder; keeps them for the Data and Model
    tabs until those have loaded."""

    def __init__(self, app: PtvizApp):
        self.app = app
        # Every event reaches these: found once (the app has mounted them), not per event.
        self.charts = app.query_one(ChartsPane)
        self.log = app.query_one(LogPane)
        self.status = app.query_one(StatusBar)
        self.ranks = app.query_one(RanksPanel)
        self.runs = app.query_one(RunsTab)
        # Events for the tabs while they load (bounded: the newest ones are what they show).
        self.early: deque = deque(maxlen=EARLY_TAB_EVENTS)

    def take_queued(self) -> bool:
        """Frame step: take the metrics the run queued since the last frame; whether there were any."""
        sink = self.app.runner.sink
        queued = sink.take() if sink is not None else []
        for event in queued:
            self.ingest(event)
        return bool(queued)

    def ingest(self, event: object, charts: bool = True, log: bool = True) -> None:
        """Hand one engine event to every pane that shows it (the charts and log unless told otherwise)."""
        app, status = self.app, self.status
        if charts:
            self.charts.history.ingest(event)
        if log:
            self.log.ingest(event)
        self.ranks.ingest(event)
        self.to_tabs(event)
        app.lr_finder.ingest(event)
        status.ingest(event)
        app.current_lr = status.lr if status.lr is not None else app.current_lr
        if isinstance(event, RunStarted):
            self.runs.run_started(event.run_dir)
            status.note = ""  # 'starting…', or the hint of a failure before this run
        if isinstance(event, (RunStarted, Resumed)):
            app.run_state = "running"
        elif isinstance(event, Paused):
            app.run_state = "paused"
        elif isinstance(event, RunFinished):
            app.run_state = event.state  # finished (max_steps included), stopped or diverged
            status.note = ""
            drop_run_question(app)
            if app.finished is not None:
                app.finished.append(event)
        elif isinstance(event, RunFailed):
            app.run_state = "failed"
            status.note = FAILED_HINT
            drop_run_question(app)
            app.notify(event.message, title="run failed", severity="error", timeout=8)
        elif isinstance(event, Diverged):
            app.spike_step = event.step
            what = (f"loss became {event.value}" if event.median is None else
                    f"loss spiked to {event.value:.4g} ({event.value / event.median:.0f}× its running median)")
            kept = "the last good checkpoint is kept" if event.checkpoint else "no checkpoint was saved before it"
            undo = ("R rolls back to the last good checkpoint; or "
                    if event.action == "pause" and event.checkpoint else "")
            app.notify(f"{what} at step {event.step:,}; the run is {event.action}ped and {kept}. "
                       f"{undo}lower the learning rate ([ or l), then resume.",
                       title="training diverged" if event.median is None else "loss spike", severity="error",
                       timeout=15)
        elif isinstance(event, RolledBack):
            app.spike_step = None

    def to_tabs(self, event: object) -> None:
        """Hand an engine event to the Data and Model tabs, or keep it until they have loaded."""
        model_tab, data_tab = self.app.model_tab, self.app.data_tab
        if model_tab is None or data_tab is None:
            self.early.append(event)
            return
        model_tab.engine_event(event)
        data_tab.engine_event(event)

    def tabs_ready(self) -> None:
        """The Data and Model tabs have loaded: hand them what a run or a history told before they were there."""
        early, self.early = self.early, deque()
        for event in early:
            self.to_tabs(event)

    def replay_history(self, state: dict, run_dir: Path | None, parent: Lineage | None) -> None:
        """Show a resumed run's history up to its checkpoint (reduced to chart width) before it continues."""
        from ptviz.engine.storage import history

        source = run_dir or (Path(parent.parent) if parent else None)
        if source is None:
            return
        # A fork (no save_id of its own) shows its parent's history up to the branch step.
        cut = history.checkpoint_cut(source, state.get("save_id", ""), int(state["step"]))
        snapshot = history.load(source, buckets=HISTORY_BUCKETS, cut=cut)
        self.charts.history.load(snapshot)
        for event in snapshot.events:  # the layer health sampled up to the checkpoint
            self.to_tabs(event)

    def load_history(self, snapshot) -> None:
        """An attached run's history: the charts take its reduced series, the other panes its events (the log
        only the last few: thousands of lines would take seconds to lay out and say little)."""
        self.charts.history.load(snapshot)
        events = [*snapshot.events, *([snapshot.last] if snapshot.last else [])]
        first_logged = max(0, len(snapshot.events) - HISTORY_LOG_EVENTS)
        if first_logged:
            self.log.say(f"the log holds {snapshot.steps:,} steps and {len(snapshot.events):,} other "
                         f"events; the last {HISTORY_LOG_EVENTS} follow", "dim")
        for i, event in enumerate(events):
            self.ingest(event, charts=False, log=i >= first_logged)
