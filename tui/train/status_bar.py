"""One line of run state: state, epoch, step, throughput, ETA, learning rate and device."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from ptviz.engine.events import (
    EpochEnded,
    LrChanged,
    Paused,
    Resumed,
    RunFailed,
    RunFinished,
    RunStarted,
    StepMetrics,
)

from ..headless import format_eta, run_names

STATE_STYLES = {
    "idle": "bold black on grey70",
    "running": "bold black on green",
    "paused": "bold black on yellow",
    "finished": "bold white on blue",
    "stopped": "bold white on blue",
    "failed": "bold white on red",
    "diverged": "bold white on red",
    "attached": "bold black on cyan",
}


class StatusBar(Static):
    """The run's state line, updated from engine events."""

    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; color: $foreground; }
    """

    state = reactive("idle")

    def __init__(self, **kwargs):
        super().__init__("", **kwargs)
        self.epoch = 0
        self.epochs = 0
        self.step = 0
        self.total_steps = 0
        self.start_step = 0
        self.samples_per_s = 0.0
        self.elapsed = 0.0
        self.lr: float | None = None
        self.device = ""
        self.world_size = 1  # processes training together (torchrun)
        self.global_batch = 0  # samples per optimizer step over every rank
        self.recipe = ""  # the recipe's name, and what it trains ('mnist-mlp on digits')
        self.trains = ""
        self._note = ""
        self._metrics_waiting = False  # step metrics arrived that the line does not show yet

    @property
    def note(self) -> str:
        """A word on what is happening ('stopping…'), shown at the end of the line."""
        return self._note

    @note.setter
    def note(self, text: str) -> None:
        if text != self._note:
            self._note = text
            self.show()

    def name_run(self, recipe: str, trains: str) -> None:
        """Say which recipe the line is about and what it trains (before a run: the configuration's)."""
        if (recipe, trains) != (self.recipe, self.trains):
            self.recipe, self.trains = recipe, trains
            self.show()

    def flush(self) -> bool:
        """Show metrics that arrived since the last frame (the app's frame clock calls this)."""
        if not self._metrics_waiting:
            return False
        self.show()
        return True

    def ingest(self, event: object) -> None:
        """Update from one engine event; a change of state shows at once, metrics with the next frame."""
        if isinstance(event, RunStarted):
            config = event.config
            self.recipe, self.trains = run_names(config, event.task)
            self.epochs, self.total_steps = event.epochs, event.total_steps
            self.step = self.start_step = event.start_step
            self.epoch = event.epoch
            self.device = event.device_name
            self.world_size, self.global_batch = event.world_size, event.global_batch
            self.elapsed = 0.0
            self.samples_per_s = 0.0
            self.lr = None
        elif isinstance(event, StepMetrics):
            self.step, self.epoch = event.last_step, event.epoch
            self.samples_per_s, self.elapsed = event.samples_per_s, event.elapsed
            self.lr = event.lrs[-1]
            self._metrics_waiting = True  # a repaint per batch of points would cost training time
            return
        elif isinstance(event, EpochEnded):
            self.step = event.step
            self.lr = event.lr
            self._metrics_waiting = True
            return
        elif isinstance(event, LrChanged):
            self.lr = event.lr
        elif isinstance(event, (Paused, Resumed)):
            self.step = event.step
        elif isinstance(event, (RunFinished, RunFailed)):
            self.step = event.step or self.step
        else:
            return  # nothing this line shows
        self.show()

    def eta_seconds(self) -> float | None:
        """Remaining time at the average pace of this run so far."""
        done = self.step - self.start_step
        if done <= 0 or self.elapsed <= 0 or self.state not in ("running", "paused"):  # held while paused
            return None
        return (self.total_steps - self.step) * self.elapsed / done

    def watch_state(self, _state: str) -> None:
        self.show()

    def on_resize(self) -> None:
        self.show()

    def show(self) -> None:
        """Redraw the line from the current values (shorter wordings when the full one does not fit)."""
        self._metrics_waiting = False
        width = self.size.width
        for compact, names in ((False, 2), (False, 1), (True, 1), (True, 0)):
            t = self._line(compact, names)
            if not width or t.cell_len <= width:
                break
        self.update(t, layout=False)  # one line of fixed size: no layout pass for every event

    def _line(self, compact: bool, names: int = 2) -> Text:
        """The line; `names` 2 says the recipe and what it trains, 1 the recipe, 0 neither."""
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(f" {self.state.upper()} ", STATE_STYLES.get(self.state, ""))
        if names and self.recipe:
            t.append(f" {self.recipe}", "bold")
            if names > 1 and self.trains:
                t.append(f" ({self.trains})")
        epoch = "ep" if compact else "epoch"
        t.append(f" {epoch} {self.epoch}/{self.epochs}" if self.epochs else f" {epoch} -")
        t.append(f"  step {self.step:,}/{self.total_steps:,}" if self.total_steps else "  step -")
        rate = self.samples_per_s
        if self.state != "running":  # paused, ended or not started: no samples go through, a rate would be stale
            t.append("  -/s" if compact else "  - samples/s")
        else:
            t.append(f"  {rate / 1000:.1f}k/s" if compact and rate >= 10_000 else
                     f"  {rate:,.0f}/s" if compact else f"  {rate:,.0f} samples/s")
        t.append(f"  ETA {format_eta(self.eta_seconds())}")
        if self.lr is not None:
            t.append(f"  lr {self.lr:.3g}")
        device = self.device
        if compact and device.startswith("CPU ("):  # 'CPU (2 threads)' -> 'CPU×2'
            device = "CPU×" + device[5:].split()[0]
        t.append(f"  {device}", "dim")
        if self.world_size > 1:
            t.append(f" ×{self.world_size}" if compact else
                     f"  ×{self.world_size} ranks, global batch {self.global_batch:,}", "dim")
        if self.note:
            t.append(f"  {self.note}", "italic")
        return t
