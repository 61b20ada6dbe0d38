"""The same charts drawn by plotext (PTVIZ_CHARTS=plotext): plotext's look, at plotext's cost.

`draw` has the signature of `plot.draw` and returns the same rows of (text, colour) runs, so the chart
widgets, the on-screen/changed-only replots and the frame clock work unchanged. The traces arrive already
reduced to about two points per column, so plotext's cost does not grow with the run's length; it grows
with the chart's size (about 50 ms for a 100×20 braille chart on a laptop core, against ~1 ms for
`plot.draw`), which is why it is not the default. benchmarks/p4_charts.py measures both side by side.
"""

from __future__ import annotations

from rich.text import Text
from textual_plotext.plot import Plot

from .plot import Row, Trace, blank, placeable

# plotext has no "bright_black": its grey is the nearest.
COLOURS = {"bright_black": "gray"}

_figure: Plot | None = None


def _plot() -> Plot:
    global _figure
    if _figure is None:
        _figure = Plot()
    return _figure


def draw(width: int, height: int, title: str, traces: list[Trace], log_y: bool = False) -> list[Row]:
    """The chart as `height` rows of exactly `width` cells, drawn by plotext."""
    if width < 8 or height < 4:
        return blank(width, height, title)
    plt = _plot()
    plt.clear_data()
    plt.clear_figure()
    plt.theme("clear")  # no background of its own: the widget's theme shows through
    plt.plotsize(width, height)
    plt._set_size(width, height)
    plt.title(title)
    if log_y:
        plt.yscale("log")
    for t in traces:
        x, y = placeable(t.x, t.y, log_y)
        if not len(x):
            continue
        colour = COLOURS.get(t.color, t.color)
        label = t.label or None
        if t.marker:
            plt.scatter(x.tolist(), y.tolist(), color=colour, marker=t.marker, label=label)
        else:
            plt.plot(x.tolist(), y.tolist(), color=colour, marker="braille", label=label)
    lines = Text.from_ansi(plt.build()).split("\n")
    rows = [_runs(line, width) for line in lines[:height]]
    rows += [[(" " * width, None)] for _ in range(height - len(rows))]
    return rows


def _runs(line: Text, width: int) -> Row:
    """One line of plotext's output as runs of one foreground colour, padded or cut to `width`."""
    line.truncate(width, pad=True)
    plain = line.plain
    colours: list[str | None] = [None] * len(plain)
    for span in line.spans:
        style = span.style
        colour = getattr(getattr(style, "color", None), "name", None)
        if colour and colour != "default":
            colours[span.start:span.end] = [colour] * (min(span.end, len(plain)) - span.start)
    runs: Row = []
    start = 0
    for i in range(1, len(plain) + 1):
        if i == len(plain) or colours[i] != colours[start]:
            runs.append((plain[start:i], colours[start]))
            start = i
    return runs
