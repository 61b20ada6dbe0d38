"""Charts of several runs at once: one colour per run, a legend, x by step, epoch or training time."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from textual.app import ComposeResult
from textual.containers import Grid
from textual.reactive import reactive

from ptviz.engine.storage.catalog import RunRecord, differing_settings, short_names

from ..train import plot
from ..train.charts import ChartOptions, MetricChart, chart_renderer
from ..train.history import minmax_indices
from .curves import RunCurves
from .lr_column import LR_PATH, rate_now_text, with_lr

AXES = ("step", "epoch", "time")
AXIS_TITLES = {"step": "step", "epoch": "epoch", "time": "training time (s)"}
MAX_LABEL = 36
PALETTE = ("cyan", "yellow", "magenta", "green", "bright_red", "bright_blue", "bright_white", "dark_orange",
           "orchid", "chartreuse1", "deep_sky_blue1", "gold1")


@dataclass
class OverlayRun:
    """One run drawn in the overlay."""

    path: Path
    label: str
    color: str
    curves: RunCurves
    branch_step: int | None = None  # a fork's first step - 1, where its line leaves its parent's
    branch_epoch: int | None = None
    parent: OverlayRun | None = None  # the fork's parent when that is drawn too


@dataclass
class OverlayState:
    """What the overlay draws: the runs in drawing order (a fork after its parent, so on top) and the x axis."""

    runs: list[OverlayRun] = field(default_factory=list)
    axis: str = "step"
    version: int = 0

    def changed(self) -> None:
        """The runs or the axis changed: every chart redraws."""
        self.version += 1


class OverlayChart(MetricChart):
    """One metric of every run in the overlay."""

    metric = "loss"
    per_step = True  # a step series (else one point per epoch)

    def __init__(self, state: OverlayState, options: ChartOptions, **kwargs):
        super().__init__(None, options, **kwargs)  # type: ignore[arg-type]
        self.state = state

    @property
    def title(self) -> str:  # type: ignore[override]
        return f"{self.name_of_metric} by {AXIS_TITLES[self.state.axis]}"

    name_of_metric = "train loss"

    def data_version(self) -> tuple[int, ...]:
        return (self.state.version, *(run.curves.version for run in self.state.runs))

    def traces(self, width: int) -> list[plot.Trace]:
        out = []
        for run in self.state.runs:
            with run.curves.lock:
                x, y = self.points(run)
            if len(x):
                idx = minmax_indices(y, width)
                out.append(plot.Trace(x[idx], y[idx], run.color, run.label))
        return out

    def points(self, run: OverlayRun) -> tuple[np.ndarray, np.ndarray]:
        """The run's (x, y) on the current axis, a fork's starting at its parent's value at the branch."""
        c = run.curves
        if self.per_step:
            steps, y = getattr(c, self.metric).means()
            if run.parent is not None and run.branch_step is not None and len(steps):
                start = getattr(run.parent.curves, self.metric).value_at(run.branch_step)
                if start is not None:
                    steps, y = np.insert(steps, 0, run.branch_step), np.insert(y, 0, start)
            return self._x(c, steps, steps / c.steps_per_epoch if c.steps_per_epoch else steps), y
        epochs, steps, y = c.epoch_array("epoch"), c.epoch_array("step"), c.epoch_array(self.metric)
        if run.parent is not None and run.branch_epoch and len(epochs):
            p = run.parent.curves
            at = np.flatnonzero(p.epoch_array("epoch") == run.branch_epoch)
            if len(at):
                i = at[-1]
                epochs = np.insert(epochs, 0, run.branch_epoch)
                steps = np.insert(steps, 0, p.epoch_array("step")[i])
                y = np.insert(y, 0, p.epoch_array(self.metric)[i])
        keep = np.isfinite(y)
        return self._x(c, steps[keep], epochs[keep]), y[keep]

    def _x(self, curves: RunCurves, steps: np.ndarray, epochs: np.ndarray) -> np.ndarray:
        axis = self.state.axis
        if axis == "epoch":
            return epochs
        if axis == "time":
            return curves.time_at(steps)
        return steps


class LossOverlay(OverlayChart):
    """Training loss (bucket means) of each run."""

    metric, name_of_metric = "loss", "train loss"


class AccuracyOverlay(OverlayChart):
    """Test accuracy at each epoch's end."""

    metric, name_of_metric, per_step, log_capable = "test_acc", "test accuracy %", False, False


class EpochLossOverlay(OverlayChart):
    """Test loss at each epoch's end."""

    metric, name_of_metric, per_step = "test_loss", "test loss", False


class LrOverlay(OverlayChart):
    """Learning rate of each run."""

    metric, name_of_metric = "lr", "learning rate"


class ThroughputOverlay(OverlayChart):
    """Samples per second of each run."""

    metric, name_of_metric, log_capable = "throughput", "samples/s", False


class OverlayPane(Grid):
    """The overlay's chart grid; one chart at a time on a small terminal (`v` pages)."""

    DEFAULT_CSS = """
    OverlayPane { grid-size: 3 2; grid-gutter: 0 1; height: 1fr; }
    OverlayPane #overlay-loss { column-span: 2; }
    OverlayPane.-compact { grid-size: 1 1; }
    OverlayPane.-compact #overlay-loss { column-span: 1; }
    OverlayPane.-compact OverlayChart.-hidden { display: none; }
    """

    page = reactive(0)

    def __init__(self, state: OverlayState, **kwargs):
        super().__init__(**kwargs)
        self.state = state
        self.options = ChartOptions(draw=chart_renderer()[0])
        self._charts: list[OverlayChart] = []

    def compose(self) -> ComposeResult:
        s, o = self.state, self.options
        yield LossOverlay(s, o, id="overlay-loss")
        yield AccuracyOverlay(s, o, id="overlay-accuracy")
        yield EpochLossOverlay(s, o, id="overlay-epoch-loss")
        yield LrOverlay(s, o, id="overlay-lr")
        yield ThroughputOverlay(s, o, id="overlay-throughput")

    def on_mount(self) -> None:
        self.watch_page(self.page)

    @property
    def charts(self) -> list[OverlayChart]:
        """The five charts."""
        if not self._charts:
            self._charts = list(self.query(OverlayChart))
        return self._charts

    def watch_page(self, page: int) -> None:
        for i, chart in enumerate(self.charts):
            chart.set_class(i != page % len(self.charts), "-hidden")

    def next_page(self) -> None:
        """Show the next chart (compact layout)."""
        self.page = (self.page + 1) % len(self.charts)

    def redraw(self, everything: bool = False) -> int:
        """Replot the charts on screen whose data, runs, axis or size changed; how many were."""
        count = 0
        for chart in self.charts:
            if (everything or chart.stale()) and chart.display and chart.size.width > 0 and chart.is_on_screen:
                chart.replot(whole=everything)
                count += 1
        return count

    def toggle_log_y(self) -> bool:
        """Log-scale y on the charts that allow it; returns the new setting."""
        self.options.log_y = not self.options.log_y
        for chart in self.charts:
            chart.drawn_version = None
        self.redraw(everything=True)
        return self.options.log_y


def run_labels(records: list[RunRecord]) -> dict[Path, str]:
    """Legend labels: the settings that differ between the drawn runs (lr=0.01: the rate each trains at now, as the
    table's lr column says), else the run's name; a single run's is its name (its rate alone told nothing)."""
    paths = with_lr(differing_settings(records), records)[:3] if len(records) > 1 else []
    titles = short_names(paths)
    names = {r.path: r.name for r in records}
    dates = {n.split("-", 1)[0] for n in names.values()}
    if len(dates) == 1 and len(names) > 1 and all("-" in n and n.split("-", 1)[0].isdigit() for n in names.values()):
        names = {p: n.split("-", 1)[1] for p, n in names.items()}  # the same day: the time tells them apart
    labels = {}
    for r in records:
        text = " ".join(f"{titles[p]}={rate_now_text(r) if p == LR_PATH else r.settings.get(p, '-')}" for p in paths)
        labels[r.path] = text or names[r.path]
    if len(set(labels.values())) < len(labels):  # two drawn runs with the same settings: tell them apart by name
        labels = {r.path: (f"{names[r.path]} {labels[r.path]}" if labels[r.path] != names[r.path] else names[r.path])
                  for r in records}
    return {p: (t if len(t) <= MAX_LABEL else t[:MAX_LABEL - 1] + "…") for p, t in labels.items()}
