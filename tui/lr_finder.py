"""The cockpit's learning-rate finder: a sweep of the form's configuration while idle (on a worker thread), or
of the paused run (a FindLr command, answered by LrSwept events); Enter sets the suggestion where it applies."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from ptviz.engine.commands import FindLr, SetLearningRate
from ptviz.engine.events import LrSwept

from .messages import EngineEvent, LogRequested
from .screens.lr_find import LrFindScreen

if TYPE_CHECKING:
    from .app import PtvizApp

LR_FIND_GROUP = "lr-find"


class LrFinder:
    """Opens the finder's screen and feeds it; owns the idle sweep's worker and its stop flag."""

    def __init__(self, app: PtvizApp):
        self.app = app
        self.screen: LrFindScreen | None = None
        self.stop = threading.Event()  # ends an idle sweep early (the screen was closed, or the app quits)
        self.busy = False  # an idle sweep is running

    def open(self, run_state: str) -> None:
        """Sweep the paused run, or the form's configuration when no run is going; refuse otherwise."""
        app = self.app
        if app.runner.remote_run:
            app.notify("the learning-rate finder runs in the cockpit that trains the run, not an attached one",
                       severity="warning")
            return
        if app.runner.active and run_state != "paused":
            app.notify("pause the run first (p): the finder sweeps a copy of it from where it stands",
                       severity="warning")
            return
        if self.busy:
            app.notify("a sweep is already running", severity="warning")
            return
        if app.runner.active:
            self._show("the paused run")
            app.runner.send(FindLr())
            return
        errors = app.working.errors()
        if errors:
            app.notify("fix the marked fields first:\n" + "\n".join(errors), severity="error", timeout=6)
            return
        self._show("the form's optim.lr")
        self.stop.clear()
        self.busy = True
        app.run_worker(self._sweep_idle, name="lr-find", group=LR_FIND_GROUP, thread=True, exclusive=True,
                       exit_on_error=False)

    def _show(self, target: str) -> None:
        self.screen = LrFindScreen(target)
        self.app.push_screen(self.screen, self._closed)

    def _sweep_idle(self) -> None:
        """Worker thread: build the form's configuration and sweep it; progress arrives as engine events."""
        from ptviz.engine.lr_find import find_lr

        app = self.app
        try:
            find_lr(app.config.copy(), task=app.fit_task, stop=self.stop.is_set,
                    report=lambda result: app.post_message(EngineEvent(result)))
        except Exception as exc:  # noqa: BLE001 - a bad configuration or user code: said, never raised
            app.post_message(LogRequested(f"lr finder: {exc}", "red"))
            app.post_message(EngineEvent(LrSwept((), (), (), None, True, f"failed: {exc}")))
        finally:
            self.busy = False

    def ingest(self, event: object) -> None:
        """Hand the sweep's reports to the open screen."""
        if isinstance(event, LrSwept) and self.screen is not None:
            self.screen.show(event)

    def _closed(self, lr: float | None) -> None:
        self.screen = None
        self.stop.set()
        if lr is None:
            return
        app = self.app
        if app.runner.active:
            app.runner.send(SetLearningRate(lr))
        else:
            app.working.set_lr(lr)
