"""Live plotext charts fed by engine events and redrawn on a timer, reduced to each plot's width."""

from __future__ import annotations

import math
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Grid
from textual.reactive import reactive
from textual_plotext import PlotextPlot

from engine.events import EpochEnded, Evaluated, LrChanged, RunStarted, StepMetrics

from .history import Series

REDRAW_SECONDS = 0.1  # at most ten redraws a second, however fast events arrive
SMOOTHING_STEPS = (1, 5, 10, 25, 50, 100, 250, 500, 1000)


class RunHistory:
    """Every metric of the run so far, as compact series."""

    def __init__(self) -> None:
        self.step_loss = Series()
        self.lr = Series()
        self.throughput = Series()
        self.train_loss = Series(64)
        self.test_loss = Series(64)
        self.train_acc = Series(64)
        self.test_acc = Series(64)
        self.eval_acc = Series(64)  # evaluate-now points, x in fractional epochs
        self.steps_per_epoch = 1
        self.version = 0  # bumped on every change; charts redraw only when it moved

    def clear(self) -> None:
        """Start over for a new run."""
        self.__init__()

    def ingest(self, event: object) -> None:
        """Add what `event` carries."""
        if isinstance(event, RunStarted):
            self.steps_per_epoch = max(1, event.steps_per_epoch)
            for series in (self.step_loss, self.lr, self.throughput):
                series.truncate(event.start_step)
            for series in (self.train_loss, self.test_loss, self.train_acc, self.test_acc):
                series.truncate(event.start_epoch)
        elif isinstance(event, StepMetrics):
            self.step_loss.extend(event.steps, event.losses)
            self.lr.extend(event.steps, event.lrs)
            self.throughput.append(event.last_step, event.samples_per_s)
        elif isinstance(event, EpochEnded):
            self.train_loss.append(event.epoch, event.train_loss)
            self.train_acc.append(event.epoch, 100 * event.train_accuracy)
            if event.test_loss is not None:
                self.test_loss.append(event.epoch, event.test_loss)
                self.test_acc.append(event.epoch, 100 * event.test_accuracy)
        elif isinstance(event, Evaluated) and event.mid_epoch and event.split == "test":
            self.eval_acc.append(event.step / self.steps_per_epoch, 100 * event.accuracy)
        elif isinstance(event, LrChanged):
            self.lr.append(event.step + 0.5, event.lr)
        else:
            return
        self.version += 1


@dataclass
class ChartOptions:
    """Display settings shared by every chart."""

    log_y: bool = False
    smoothing: int = 10


class MetricChart(PlotextPlot):
    """One chart; subclasses draw their series from the shared history."""

    DEFAULT_CSS = """
    MetricChart { height: 1fr; width: 1fr; min-height: 6; }
    """
    title = "chart"
    log_capable = True

    def __init__(self, history: RunHistory, options: ChartOptions, **kwargs):
        super().__init__(**kwargs)
        self.history = history
        self.options = options
        self.drawn_version = -1
        self.drawn_size = (0, 0)

    def stale(self) -> bool:
        """Whether the data or the size changed since the last replot."""
        return self.drawn_version != self.history.version or self.drawn_size != tuple(self.size)

    def replot(self) -> None:
        """Clear, draw the series, refresh (plotext renders on the next paint)."""
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        log_y = self.options.log_y and self.log_capable
        suffix = " (log y)" if log_y else ""
        plt.title(self.title + suffix)
        if self.draw(plt, max(10, self.size.width - 12)) and log_y:
            plt.yscale("log")
        self.drawn_version = self.history.version
        self.drawn_size = tuple(self.size)
        self.refresh()

    def draw(self, plt, width: int) -> bool:
        """Plot the series; return whether anything was drawn."""
        raise NotImplementedError


def _positive(xs, ys, log_y: bool):
    if not log_y:
        return list(xs), list(ys)
    keep = [(x, y) for x, y in zip(xs, ys) if y > 0 and math.isfinite(y)]
    return [k[0] for k in keep], [k[1] for k in keep]


class StepLossChart(MetricChart):
    """Training loss at every step: raw (min/max per column, so spikes show) and smoothed."""

    title = "loss / step"

    def draw(self, plt, width: int) -> bool:
        s = self.history.step_loss
        if not len(s):
            return False
        x, raw, smooth = s.reduced(width, self.options.smoothing)
        log_y = self.options.log_y
        plt.plot(*_positive(x, raw, log_y), color="gray", marker="braille", label="raw")
        if self.options.smoothing > 1:
            plt.plot(*_positive(x, smooth, log_y), color="cyan", marker="braille",
                     label=f"mean of {self.options.smoothing}")
        return True


class EpochLossChart(MetricChart):
    """Train and test loss per epoch."""

    title = "loss / epoch"

    def draw(self, plt, width: int) -> bool:
        h = self.history
        if not len(h.train_loss):
            return False
        log_y = self.options.log_y
        plt.plot(*_positive(h.train_loss.x, h.train_loss.y, log_y), color="cyan", marker="braille", label="train")
        if len(h.test_loss):
            plt.plot(*_positive(h.test_loss.x, h.test_loss.y, log_y), color="orange", marker="braille",
                     label="test")
        return True


class AccuracyChart(MetricChart):
    """Train and test accuracy per epoch (%), plus evaluate-now points."""

    title = "accuracy % / epoch"
    log_capable = False

    def draw(self, plt, width: int) -> bool:
        h = self.history
        if not len(h.train_acc) and not len(h.eval_acc):
            return False
        if len(h.train_acc):
            plt.plot(list(h.train_acc.x), list(h.train_acc.y), color="cyan", marker="braille", label="train")
        if len(h.test_acc):
            plt.plot(list(h.test_acc.x), list(h.test_acc.y), color="orange", marker="braille", label="test")
        if len(h.eval_acc):
            plt.scatter(list(h.eval_acc.x), list(h.eval_acc.y), color="green", marker="x", label="eval now")
        return True


class LrChart(MetricChart):
    """Learning rate at every step."""

    title = "learning rate"

    def draw(self, plt, width: int) -> bool:
        s = self.history.lr
        if not len(s):
            return False
        x, y, _ = s.reduced(width)
        plt.plot(*_positive(x, y, self.options.log_y), color="magenta", marker="braille")
        return True


class ThroughputChart(MetricChart):
    """Training samples per second."""

    title = "samples/s"
    log_capable = False

    def draw(self, plt, width: int) -> bool:
        s = self.history.throughput
        if not len(s):
            return False
        x, y, _ = s.reduced(width)
        plt.plot(list(x), list(y), color="green", marker="braille")
        return True


class ChartsPane(Grid):
    """The chart grid; owns the history and a redraw timer."""

    DEFAULT_CSS = """
    ChartsPane { grid-size: 3 2; grid-gutter: 0 1; height: 1fr; }
    ChartsPane #chart-step-loss { column-span: 2; }
    ChartsPane.-compact { grid-size: 2 1; }
    ChartsPane.-compact #chart-step-loss { column-span: 1; }
    ChartsPane.-compact MetricChart.-hidden { display: none; }
    """

    log_y = reactive(False)
    smoothing = reactive(10)
    page = reactive(0)
    """In compact mode, which pair of charts shows (the page key cycles)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.history = RunHistory()
        self.options = ChartOptions()

    def compose(self) -> ComposeResult:
        h, o = self.history, self.options
        yield StepLossChart(h, o, id="chart-step-loss")
        yield AccuracyChart(h, o, id="chart-accuracy")
        yield EpochLossChart(h, o, id="chart-epoch-loss")
        yield LrChart(h, o, id="chart-lr")
        yield ThroughputChart(h, o, id="chart-throughput")

    def on_mount(self) -> None:
        self.watch_page(self.page)
        self.set_interval(REDRAW_SECONDS, self.redraw)

    def watch_page(self, page: int) -> None:
        charts = list(self.query(MetricChart))
        shown = {(2 * page) % len(charts), (2 * page + 1) % len(charts)}
        for i, chart in enumerate(charts):
            chart.set_class(i not in shown, "-hidden")

    def next_page(self) -> None:
        """Show the next pair of charts (compact layout)."""
        self.page = (self.page + 1) % 3

    def redraw(self) -> int:
        """Replot the visible charts whose data or size changed; returns how many were redrawn."""
        count = 0
        for chart in self.query(MetricChart):
            if chart.display and chart.size.width > 0 and chart.stale():
                chart.replot()
                count += 1
        return count

    def _invalidate(self) -> None:
        for chart in self.query(MetricChart):
            chart.drawn_version = -1

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
