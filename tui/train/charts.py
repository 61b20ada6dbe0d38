"""Live braille charts fed by engine events and redrawn on a timer (the frame clock's heavy step), reduced to each
chart's width.

A run shows the loss, learning rate and throughput; accuracy when it is classification; and one chart per
named metric of a task (its per-step training values, and its validation and test values).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.app import ComposeResult
from textual.containers import Grid
from textual.geometry import Region
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from ptviz.engine.events import EpochEnded, Evaluated, LrChanged, RunStarted, StepMetrics

from . import plot
from .history import Series, bucket_minmax

SMOOTHING_STEPS = (1, 5, 10, 25, 50, 100, 250, 500, 1000)
# Buckets a history read from a run's log is reduced to: each chart reduces again to its width, so this
# only needs to be many times the widest chart's columns; memory stays a few hundred KB at any length.
HISTORY_BUCKETS = 4096
CHARTS_ENV = "PTVIZ_CHARTS"
RENDERERS = ("braille", "plotext")

Draw = Callable[..., list[plot.Row]]


def chart_renderer(name: str | None = None) -> tuple[Draw, str | None]:
    """The chart drawing function PTVIZ_CHARTS names (braille, the default, or plotext), and a warning
    when the name is not one of them."""
    name = (os.environ.get(CHARTS_ENV, "") if name is None else name).strip().lower()
    if name == "plotext":
        from . import plot_plotext

        return plot_plotext.draw, None
    if name in ("", "braille"):
        return plot.draw, None
    return plot.draw, f"{CHARTS_ENV}={name!r} is not a chart renderer (use {' or '.join(RENDERERS)}): drawing braille"


class MetricHistory:
    """One named metric of a task: per-step training values and evaluations, x in steps."""

    def __init__(self) -> None:
        self.step = Series(smoothed=True)
        self.val = Series(64)
        self.test = Series(64)
        self.now = Series(64)  # evaluate-now points

    def series(self) -> tuple[Series, ...]:
        """Every series of this metric."""
        return (self.step, self.val, self.test, self.now)

    def truncate(self, step: int) -> None:
        """Forget points past `step` (a resumed run rewinds to its checkpoint)."""
        for series in self.series():
            series.truncate(step)


class RunHistory:
    """Every metric of the run so far, as compact series."""

    def __init__(self) -> None:
        self.step_loss = Series(smoothed=True)
        self.lr = Series()
        self.throughput = Series()
        self.train_loss = Series(64)
        self.test_loss = Series(64)
        self.train_acc = Series(64)
        self.test_acc = Series(64)
        self.eval_acc = Series(64)  # evaluate-now points, x in fractional epochs
        self.grad_norm = Series(smoothed=True)  # before clipping, with train.clip_norm
        self.ema_test_loss = Series(64)  # the averaged weights' (train.ema_decay)
        self.ema_test_acc = Series(64)
        self.clip_norm = 0.0  # the run's train.clip_norm: the grad norm chart shows when it is set
        self.steps_per_epoch = 1
        self.classification = True  # whether accuracy applies
        self.metrics: dict[str, MetricHistory] = {}  # a task's named metrics, in the order the run names them
        self.layout = (True, (), False)  # (classification, metric names, clipping): the charts a run needs

    def clear(self) -> None:
        """Start over for a new run."""
        self.__init__()

    def load(self, snapshot) -> None:
        """Show a history read from a run's log (ptviz.engine.storage.history.Snapshot): the step series
        arrive reduced (grad norms and a task's named metrics among them), the epoch series from its other events."""
        self.clear()
        for event in snapshot.events:
            if not isinstance(event, LrChanged):  # the step rows after it carry the new rate
                self.ingest(event)
        columns = {"loss": self.step_loss, "lr": self.lr, "samples_per_s": self.throughput, "grad_norm": self.grad_norm}
        for column, reduced in snapshot.series.items():
            if column not in columns and not np.isfinite(reduced.y).any():
                continue  # a metric the task evaluates but never logs per step
            series = columns[column] if column in columns else self.metric(column).step
            series.load(reduced.x, reduced.y, reduced.sums, reduced.counts)

    def ingest(self, event: object) -> None:
        """Add what `event` carries."""
        if isinstance(event, RunStarted):
            self.steps_per_epoch = max(1, event.steps_per_epoch)
            self.classification = event.task_kind == "classification"
            self.metrics = {name: self.metrics.get(name) or MetricHistory() for name in event.metrics}
            self.clip_norm = float(event.config.get("train", {}).get("clip_norm") or 0.0)
            self.layout = (self.classification, tuple(event.metrics), bool(self.clip_norm))
            for series in (self.step_loss, self.lr, self.throughput, self.grad_norm):
                series.truncate(event.start_step)
            for series in (self.train_loss, self.test_loss, self.train_acc, self.test_acc, self.ema_test_loss,
                           self.ema_test_acc):
                series.truncate(event.start_epoch)
            for metric in self.metrics.values():
                metric.truncate(event.start_step)
        elif isinstance(event, StepMetrics):
            self.step_loss.extend(event.steps, event.losses)
            self.lr.extend(event.steps, event.lrs)
            self.throughput.append(event.last_step, event.samples_per_s)
            for name, values in event.metrics.items():
                self.metric(name).step.extend(event.steps, values)
            if event.grad_norms:
                self.grad_norm.extend(event.steps, event.grad_norms)
        elif isinstance(event, EpochEnded):
            self.train_loss.append(event.epoch, event.train_loss)
            if event.train_accuracy is not None:
                self.train_acc.append(event.epoch, 100 * event.train_accuracy)
            if event.test_loss is not None:
                self.test_loss.append(event.epoch, event.test_loss)
            if event.test_accuracy is not None:
                self.test_acc.append(event.epoch, 100 * event.test_accuracy)
            if event.ema_test_loss is not None:
                self.ema_test_loss.append(event.epoch, event.ema_test_loss)
            if event.ema_test_accuracy is not None:
                self.ema_test_acc.append(event.epoch, 100 * event.ema_test_accuracy)
            for split in ("val", "test"):
                for name, value in getattr(event, f"{split}_metrics").items():
                    getattr(self.metric(name), split).append(event.step, value)
        elif isinstance(event, Evaluated) and event.mid_epoch:
            if event.split == "test" and event.accuracy is not None:
                self.eval_acc.append(event.step / self.steps_per_epoch, 100 * event.accuracy)
            for name, value in event.metrics.items():
                self.metric(name).now.append(event.step, value)
        elif isinstance(event, LrChanged):
            self.lr.append(event.step + 0.5, event.lr)

    def metric(self, name: str) -> MetricHistory:
        """The history of a named metric (made on first sight: a run's log may name one RunStarted did not)."""
        found = self.metrics.get(name)
        if found is None:
            found = self.metrics[name] = MetricHistory()
            self.layout = (self.classification, tuple(self.metrics), bool(self.clip_norm))
        return found

    @property
    def nbytes(self) -> int:
        """Memory held by every series."""
        series = [s for s in vars(self).values() if isinstance(s, Series)]
        series += [s for m in self.metrics.values() for s in m.series()]
        return sum(s.nbytes for s in series)


@dataclass
class ChartOptions:
    """Display settings shared by every chart."""

    log_y: bool = False
    smoothing: int = 10
    draw: Draw = field(default=plot.draw)
    """plot.draw (numpy braille, ~1 ms a chart) or plot_plotext.draw (plotext's own rendering)."""


class MetricChart(Widget):
    """One chart; subclasses say which traces to draw from the shared history."""

    DEFAULT_CSS = """
    MetricChart { height: 1fr; width: 1fr; min-height: 6; background: $surface; color: $foreground; }
    """
    title = "chart"
    log_capable = True

    def __init__(self, history: RunHistory, options: ChartOptions, **kwargs):
        super().__init__(**kwargs)
        self.history = history
        self.options = options
        self.drawn_version: tuple[int, ...] | None = None
        self.drawn_size = (0, 0)
        self.rows: list[plot.Row] = []
        self._styles: dict[tuple[Style, str | None], Style] = {}

    def series(self) -> tuple[Series, ...]:
        """The history series this chart draws."""
        raise NotImplementedError

    def data_version(self) -> tuple[int, ...]:
        """Changes whenever a series this chart draws changes."""
        return tuple(s.version for s in self.series())

    def stale(self) -> bool:
        """Whether this chart's data or size changed since the last replot."""
        return self.drawn_version != self.data_version() or self.drawn_size != tuple(self.size)

    def on_show(self) -> None:
        """Shown again (its tab or its page): draw the points that arrived meanwhile now, not with the next frame
        that replots charts (the frame clock paces those apart, seconds at a large size)."""
        if self.size.width > 0 and self.stale():
            self.replot(whole=True)

    def replot(self, whole: bool = False) -> None:
        """Draw the traces at the current size and repaint the rows that changed (all of them, if `whole`)."""
        old, old_size = self.rows, self.drawn_size
        self._draw()
        width = self.drawn_size[0]
        if whole or self.drawn_size != old_size:
            self.refresh()
        else:  # the frame, the title and often most of the plot stay as they were: repaint only what moved
            moved = [Region(0, y, width, 1) for y, row in enumerate(self.rows) if y >= len(old) or old[y] != row]
            if moved:
                self.refresh(*moved)

    def _draw(self) -> None:
        width, height = self.size
        log_y = self.options.log_y and self.log_capable
        title = self.title + (" (log y)" if log_y else "")
        self.rows = self.options.draw(width, height, title, self.traces(max(10, width - 12)), log_y=log_y)
        self.drawn_version = self.data_version()
        self.drawn_size = (width, height)

    def traces(self, width: int) -> list[plot.Trace]:
        """The series to draw, reduced to about `width` columns."""
        raise NotImplementedError

    def text(self) -> str:
        """The chart as plain text, one line per row (what the terminal shows, without colour)."""
        return "\n".join("".join(text for text, _ in row) for row in self.rows)

    def render_line(self, y: int) -> Strip:
        """One row of the last replot in the theme's colours (Textual caches it until the next refresh)."""
        base = self.visual_style.rich_style  # cached by Textual until the styles change, unlike rich_style
        if self.drawn_size != tuple(self.size):  # first paint or a new size: draw now rather than blank
            self._draw()
        if y >= len(self.rows):
            return Strip.blank(self.size.width, base)
        return Strip([Segment(text, self._style(base, color)) for text, color in self.rows[y]])

    def _style(self, base: Style, color: str | None) -> Style:
        key = (base, color)
        style = self._styles.get(key)
        if style is None:
            style = self._styles[key] = base if color is None else base + Style(color=color)
        return style


class StepLossChart(MetricChart):
    """Training loss at every step: raw (min/max per column, so spikes show) and smoothed."""

    title = "loss / step"

    def series(self) -> tuple[Series, ...]:
        h = self.history
        return (h.step_loss,)

    def traces(self, width: int) -> list[plot.Trace]:
        s = self.history.step_loss
        if not len(s):
            return []
        x, raw, smooth = s.reduced(width, self.options.smoothing)
        out = [plot.Trace(x, raw, "bright_black", "raw")]
        if self.options.smoothing > 1:
            out.append(plot.Trace(x, smooth, "cyan", f"mean of {self.options.smoothing}"))
        return out


class EpochLossChart(MetricChart):
    """Train and test loss per epoch."""

    title = "loss / epoch"

    def series(self) -> tuple[Series, ...]:
        h = self.history
        return (h.train_loss, h.test_loss, h.ema_test_loss)

    def traces(self, width: int) -> list[plot.Trace]:
        h = self.history
        if not len(h.train_loss):
            return []
        out = [plot.Trace(*bucket_minmax(h.train_loss.x, h.train_loss.y, width), "cyan", "train")]
        if len(h.test_loss):
            out.append(plot.Trace(*bucket_minmax(h.test_loss.x, h.test_loss.y, width), "yellow", "test"))
        if len(h.ema_test_loss):
            out.append(plot.Trace(*bucket_minmax(h.ema_test_loss.x, h.ema_test_loss.y, width), "magenta", "ema test"))
        return out


class AccuracyChart(MetricChart):
    """Train and test accuracy per epoch (%), plus evaluate-now points."""

    title = "accuracy % / epoch"
    log_capable = False

    def series(self) -> tuple[Series, ...]:
        h = self.history
        return (h.train_acc, h.test_acc, h.ema_test_acc, h.eval_acc)

    def traces(self, width: int) -> list[plot.Trace]:
        h = self.history
        out = []
        if len(h.train_acc):
            out.append(plot.Trace(*bucket_minmax(h.train_acc.x, h.train_acc.y, width), "cyan", "train"))
        if len(h.test_acc):
            out.append(plot.Trace(*bucket_minmax(h.test_acc.x, h.test_acc.y, width), "yellow", "test"))
        if len(h.ema_test_acc):
            out.append(plot.Trace(*bucket_minmax(h.ema_test_acc.x, h.ema_test_acc.y, width), "magenta", "ema test"))
        if len(h.eval_acc):
            out.append(plot.Trace(*bucket_minmax(h.eval_acc.x, h.eval_acc.y, width), "green", "eval now",
                                  marker="x"))
        return out


class LrChart(MetricChart):
    """Learning rate at every step."""

    title = "learning rate"

    def series(self) -> tuple[Series, ...]:
        h = self.history
        return (h.lr,)

    def traces(self, width: int) -> list[plot.Trace]:
        s = self.history.lr
        if not len(s):
            return []
        x, y, _ = s.reduced(width)
        return [plot.Trace(x, y, "magenta")]


class ThroughputChart(MetricChart):
    """Training samples per second."""

    title = "samples/s"
    log_capable = False

    def series(self) -> tuple[Series, ...]:
        h = self.history
        return (h.throughput,)

    def traces(self, width: int) -> list[plot.Trace]:
        s = self.history.throughput
        if not len(s):
            return []
        x, y, _ = s.reduced(width)
        return [plot.Trace(x, y, "green")]


class GradNormChart(MetricChart):
    """Global gradient norm before clipping at every step (raw min/max and smoothed), and the clip level."""

    title = "grad norm"

    def series(self) -> tuple[Series, ...]:
        h = self.history
        return (h.grad_norm,)

    def traces(self, width: int) -> list[plot.Trace]:
        h = self.history
        s = h.grad_norm
        if not len(s):
            return []
        x, raw, smooth = s.reduced(width, self.options.smoothing)
        out = [plot.Trace(x, raw, "bright_black", "raw")]
        if self.options.smoothing > 1:
            out.append(plot.Trace(x, smooth, "cyan", f"mean of {self.options.smoothing}"))
        if h.clip_norm:
            ends = np.array([x[0], x[-1]], dtype=np.float64)
            out.append(plot.Trace(ends, np.full(2, h.clip_norm), "red", f"clip {h.clip_norm:g}"))
        return out


class NamedMetricChart(MetricChart):
    """One named metric of a task: training values at every step (raw and smoothed), validation and test
    values where epochs ended, and evaluate-now points; x in steps."""

    def __init__(self, name: str, history: RunHistory, options: ChartOptions, **kwargs):
        super().__init__(history, options, **kwargs)
        self.metric = name
        self.title = name

    def series(self) -> tuple[Series, ...]:
        return self.history.metric(self.metric).series()

    def traces(self, width: int) -> list[plot.Trace]:
        m = self.history.metric(self.metric)
        out = []
        if len(m.step):
            x, raw, smooth = m.step.reduced(width, self.options.smoothing)
            out.append(plot.Trace(x, raw, "bright_black", "train"))
            if self.options.smoothing > 1:
                out.append(plot.Trace(x, smooth, "cyan", f"mean of {self.options.smoothing}"))
        for series, color, label in ((m.val, "magenta", "val"), (m.test, "yellow", "test")):
            if len(series):
                out.append(plot.Trace(*bucket_minmax(series.x, series.y, width), color, label))
        if len(m.now):
            out.append(plot.Trace(*bucket_minmax(m.now.x, m.now.y, width), "green", "eval now", marker="x"))
        return out


class ChartsPane(Grid):
    """The chart grid; owns the history. The app's frame clock calls redraw."""

    DEFAULT_CSS = """
    ChartsPane { grid-size: 3 2; grid-gutter: 0 1; height: 1fr; }
    ChartsPane.-rows-3 { grid-size: 3 3; }
    ChartsPane.-rows-4 { grid-size: 3 4; }
    ChartsPane #chart-step-loss { column-span: 2; }
    ChartsPane.-narrow-loss #chart-step-loss { column-span: 1; }
    ChartsPane MetricChart.-absent { display: none; }
    ChartsPane.-compact { grid-size: 2 1; }
    ChartsPane.-compact #chart-step-loss { column-span: 1; }
    ChartsPane.-compact MetricChart.-hidden { display: none; }
    """
    MAX_ROWS = 4  # at most 3×4 cells on a large terminal: beyond that, charts page like the compact layout

    log_y = reactive(False)
    smoothing = reactive(10)
    page = reactive(0)
    """In compact mode, which pair of charts shows (the page key cycles)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.history = RunHistory()
        draw, self.renderer_warning = chart_renderer()
        self.options = ChartOptions(draw=draw)
        self._charts: list[MetricChart] = []
        self.replots = 0  # charts replotted so far (the benchmark counts them)
        self._layout = (True, (), False)  # the (classification, metric names, clipping) the charts show

    def compose(self) -> ComposeResult:
        h, o = self.history, self.options
        yield StepLossChart(h, o, id="chart-step-loss")
        yield AccuracyChart(h, o, id="chart-accuracy")
        yield EpochLossChart(h, o, id="chart-epoch-loss")
        yield LrChart(h, o, id="chart-lr")
        yield ThroughputChart(h, o, id="chart-throughput")
        yield GradNormChart(h, o, id="chart-grad-norm", classes="-absent")

    def on_mount(self) -> None:
        self.watch_page(self.page)

    def watch_page(self, page: int) -> None:
        charts = [c for c in self.query(MetricChart) if not c.has_class("-absent")]
        shown = {(2 * page) % len(charts), (2 * page + 1) % len(charts)}
        for i, chart in enumerate(charts):
            chart.set_class(i not in shown, "-hidden")

    def next_page(self) -> None:
        """Show the next pair of charts (compact layout)."""
        present = sum(1 for c in self.query(MetricChart) if not c.has_class("-absent"))
        self.page = (self.page + 1) % max(1, -(-present // 2))

    def follow_layout(self) -> None:
        """Show the charts the run needs: accuracy only for classification, grad norm when it clips, one per named
        metric of a task."""
        layout = self.history.layout
        if layout == self._layout or not self.query(AccuracyChart):  # none: the app is closing, its charts gone
            return
        self._layout = layout
        classification, names, clipping = layout
        self.query(NamedMetricChart).remove()
        self.query_one(AccuracyChart).set_class(not classification, "-absent")
        self.query_one(GradNormChart).set_class(not clipping, "-absent")
        h, o = self.history, self.options
        charts = [NamedMetricChart(name, h, o, classes="-named") for name in names]
        if charts:
            self.mount(*charts)
        cells = 2 + 3 + int(classification) + int(clipping) + len(names)  # the step-loss chart spans two cells
        narrow = cells % 3 == 1  # a chart alone on a last row: the step loss gives up its second cell instead
        self.set_class(narrow, "-narrow-loss")
        rows = min(self.MAX_ROWS, max(2, -(-(cells - narrow) // 3)))
        for n in (3, 4):
            self.set_class(rows == n, f"-rows-{n}")
        self._charts = []
        self.page = 0
        self.watch_page(0)

    def redraw(self, everything: bool = False) -> int:
        """Replot the charts on screen whose data or size changed (all of them, repainted whole, with
        `everything`); returns how many were redrawn.

        Charts on a hidden tab or page wait: they are stale when they show again and redraw then.
        """
        self.follow_layout()
        count = 0
        for chart in self.charts:
            if (everything or chart.stale()) and chart.display and chart.size.width > 0 and chart.is_on_screen:
                chart.replot(whole=everything)
                count += 1
        self.replots += count
        return count

    @property
    def charts(self) -> list[MetricChart]:
        """The charts (found once per layout: a DOM query ten times a second adds up)."""
        if not self._charts:
            self._charts = list(self.query(MetricChart))
        return self._charts

    def _invalidate(self) -> None:
        """Display options changed: redraw every chart now, so the key that changed them shows at once."""
        for chart in self.charts:
            chart.drawn_version = None  # the hidden ones too, for when they show
        self.redraw(everything=True)

    def watch_log_y(self, value: bool) -> None:
        self.options.log_y = value
        self._invalidate()

    def watch_smoothing(self, value: int) -> None:
        self.options.smoothing = value
        self._invalidate()

    def smoother(self, direction: int) -> int:
        """Step the smoothing window up (+1) or down (-1) the ladder; returns the new window."""
        ladder = SMOOTHING_STEPS
        i = min(range(len(ladder)), key=lambda k: abs(ladder[k] - self.smoothing))
        self.smoothing = ladder[max(0, min(len(ladder) - 1, i + direction))]
        return self.smoothing
