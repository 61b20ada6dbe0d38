"""Braille line charts rasterised with numpy: title, frame, ticks, legend and series as rows of coloured runs.

A redraw costs about a millisecond whatever the history's length, because the series arrive reduced to
about two points per column and every dot of every line is placed by array operations, not per point in
Python. Nothing here knows Textual: a row is a list of (text, colour) runs, colour None meaning the frame's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Run = tuple[str, "str | None"]
Row = list[Run]

# Braille dot bits by (row within the cell, column within the cell).
DOT_BITS = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]], dtype=np.uint8)
LEGEND_MARK = "⢕⢕"
MAX_Y_TICKS, MAX_X_TICKS = 7, 5


@dataclass(frozen=True)
class Trace:
    """One series to draw: a braille line through its points, or `marker` at each point."""

    x: np.ndarray
    y: np.ndarray
    color: str
    label: str = ""
    marker: str = ""


def draw(width: int, height: int, title: str, traces: list[Trace], log_y: bool = False,
         log_x: bool = False) -> list[Row]:
    """The chart as `height` rows of exactly `width` cells (empty traces draw only the title and frame)."""
    if width < 8 or height < 4:
        return blank(width, height, title)
    traces = [_finite(t, log_y, log_x) for t in traces]
    traces = [t for t in traces if len(t.x)]
    ch = height - 4  # canvas rows: title, top border, bottom border and x labels take the rest
    if not traces:
        rows: list[Row] = [[(title[:width].center(width), None)]]
        cw = width - 2  # no ticks: the frame takes the x labels' row too
        rows.append([("┌" + "─" * cw + "┐", None)])
        rows.extend([("│" + " " * cw + "│", None)] for _ in range(ch + 1))
        rows.append([("└" + "─" * cw + "┘", None)])
        return rows
    all_x = np.concatenate([t.x for t in traces])
    x_lo, x_hi = _span(all_x)
    all_y = np.concatenate([t.y for t in traces])
    entries = _legend_entries(traces)
    above: list[Row] = []
    while True:  # a legend inside the frame where it covers no dot, else in rows above the frame
        ch = height - 4 - len(above)
        if ch < 1:
            return blank(width, height, title)
        y_lo, y_hi, y_rows, y_labels = _y_axis(all_y, ch, log_y)
        label_w = max(len(s) for s in y_labels)
        cw = width - label_w - 2
        if cw < 4:
            return blank(width, height, title)
        if entries and not above and not _legend_fits(entries, cw, ch):
            above = _legend_rows(entries, width, max(1, (height - 4) // 3))
            continue  # no corner is big enough: skip drawing a canvas only to find that out
        chars, colors = _canvas(traces, cw, ch, (x_lo, x_hi), (y_lo, y_hi))
        if above or not entries or _legend_inside(chars, colors, entries):
            break
        above = _legend_rows(entries, width, max(1, (height - 4) // 3))
    rows = [[(title[:width].center(width), None)], *above]
    palette: list[str | None] = [None] + [t.color for t in traces]
    whole = all(_whole(t.x) for t in traces) and not log_x
    if whole and all_x.min() == all_x.max():  # one epoch so far: one tick, under it
        x_cols, x_labels = [(cw - 1) // 2], [f"{all_x[0]:.0f}"]
    else:
        x_cols, x_labels = _x_ticks(x_lo, x_hi, cw, whole)
    if log_x:
        x_labels = [_short(10 ** float(v)) for v in _tick_values(x_lo, x_hi, x_cols, cw)]
    pad = " " * label_w
    rows.append([(pad + "┌" + "─" * cw + "┐", None)])
    labels_at = dict(zip(y_rows, y_labels))
    for r in range(ch):
        label = labels_at.get(r)
        runs: Row = [((label.rjust(label_w) + "┤") if label is not None else pad + "│", None)]
        runs.extend(_runs(chars[r], colors[r], palette))
        runs.append(("│", None))
        rows.append(runs)
    bottom = ["─"] * cw
    for c in x_cols:
        bottom[c] = "┬"
    rows.append([(pad + "└" + "".join(bottom) + "┘", None)])
    rows.append([(_x_label_line(x_cols, x_labels, label_w + 1, width), None)])
    return rows


def placeable(x, y, log_y: bool, log_x: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The points a chart can place, as float64 arrays: finite, and positive on a log axis."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    if log_y:
        keep &= y > 0
    if log_x:
        keep &= x > 0
    return x[keep], y[keep]


def blank(width: int, height: int, title: str) -> list[Row]:
    """A chart too small to plot in: its title, then empty rows."""
    return [[(title[:width].center(width), None)]] + [[(" " * width, None)] for _ in range(height - 1)]


def _finite(t: Trace, log_y: bool, log_x: bool = False) -> Trace:
    """Keep points a chart can place (on a log axis, shown as log10)."""
    x, y = placeable(t.x, t.y, log_y, log_x)
    return Trace(np.log10(x) if log_x else x, np.log10(y) if log_y else y, t.color, t.label, t.marker)


def _tick_values(lo: float, hi: float, cols: list[int], cw: int) -> list[float]:
    """The x values at tick columns `cols` of a canvas `cw` cells wide."""
    return [lo + (c / max(1, cw - 1)) * (hi - lo) for c in cols]


def _span(values: np.ndarray) -> tuple[float, float]:
    """(low, high) of the values; a single value gets half its size either side, as plotext does."""
    lo, hi = float(values.min()), float(values.max())
    if hi > lo:
        return lo, hi
    half = abs(lo) / 2 or 1.0
    return lo - half, hi + half


def _canvas(traces: list[Trace], cw: int, ch: int, xs: tuple[float, float],
            ys: tuple[float, float]) -> tuple[list[list[str]], np.ndarray]:
    """Characters and colour indices (0: none, i: trace i-1) of the plotting area.

    Every line trace is placed in one pass of array operations (a later trace's colour wins a shared cell),
    so fifty runs overlaid cost about what one does.
    """
    bits = np.zeros((ch, cw), dtype=np.uint8)
    colors = np.zeros((ch, cw), dtype=np.int16)
    marks: list[tuple[np.ndarray, np.ndarray, str, int]] = []
    dot_w, dot_h = 2 * cw, 4 * ch
    lines_x, lines_y, lines_id = [], [], []
    for i, t in enumerate(traces, start=1):
        px = (t.x - xs[0]) / (xs[1] - xs[0]) * (dot_w - 1)
        py = (ys[1] - t.y) / (ys[1] - ys[0]) * (dot_h - 1)
        if t.marker:
            r, c = _cells(px, py, dot_w, dot_h)
            marks.append((r, c, t.marker, i))
            continue
        lines_x.append(px)
        lines_y.append(py)
        lines_id.append(np.full(len(px), i, dtype=np.int16))
    if lines_x:
        dx, dy, ids = _line_dots(np.concatenate(lines_x), np.concatenate(lines_y), np.concatenate(lines_id))
        dx = np.clip(np.rint(dx), 0, dot_w - 1).astype(np.intp)
        dy = np.clip(np.rint(dy), 0, dot_h - 1).astype(np.intp)
        cells = (dy // 4, dx // 2)
        np.bitwise_or.at(bits, cells, DOT_BITS[dy % 4, dx % 2])
        np.maximum.at(colors, cells, ids)
    codes = (0x2800 + bits.astype(np.int32)).tolist()
    chars = [[chr(code) if code != 0x2800 else " " for code in row] for row in codes]
    for r, c, marker, i in marks:
        colors[r, c] = i
        for rr, cc in zip(r.tolist(), c.tolist()):
            chars[rr][cc] = marker
    return chars, colors


def _cells(px: np.ndarray, py: np.ndarray, dot_w: int, dot_h: int) -> tuple[np.ndarray, np.ndarray]:
    c = np.clip(np.rint(px), 0, dot_w - 1).astype(np.intp) // 2
    r = np.clip(np.rint(py), 0, dot_h - 1).astype(np.intp) // 4
    return r, c


def _line_dots(px: np.ndarray, py: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dot positions (and trace ids) along the polylines through (px, py), one polyline per run of equal ids:
    every point, plus one dot per dot of the longer axis of each segment between two points of a trace."""
    if len(px) < 2:
        return px, py, ids
    dx, dy = np.diff(px), np.diff(py)
    same = ids[1:] == ids[:-1]  # no segment joins one trace's last point to the next trace's first
    steps = np.where(same, np.maximum(1, np.ceil(np.maximum(np.abs(dx), np.abs(dy)))), 0).astype(np.intp)
    seg = np.repeat(np.arange(len(steps)), steps)
    start = np.cumsum(steps) - steps
    t = (np.arange(int(steps.sum())) - start[seg]) / np.maximum(1, steps[seg])
    return (np.concatenate([px[seg] + t * dx[seg], px]), np.concatenate([py[seg] + t * dy[seg], py]),
            np.concatenate([ids[seg], ids]))


Entry = tuple[str, str, int, str]  # mark, label, colour index in the canvas, colour


def _legend_entries(traces: list[Trace]) -> list[Entry]:
    """The legend's entries: one per labelled trace."""
    return [((t.marker * 2) if t.marker else LEGEND_MARK, t.label, i, t.color)
            for i, t in enumerate(traces, start=1) if t.label]


def _legend_fits(entries: list[Entry], cw: int, ch: int) -> bool:
    """Whether a legend box of these entries is no bigger than the canvas."""
    width = max(len(mark) + 1 + len(label) for mark, label, _, _ in entries) + 2
    return width <= cw and len(entries) <= ch


def _legend_inside(chars: list[list[str]], colors: np.ndarray, entries: list[Entry]) -> bool:
    """Write the legend, one entry a line, into the first canvas corner where it covers no dot; whether it fit."""
    ch, cw = len(chars), len(chars[0])
    texts = [mark + " " + label for mark, label, _, _ in entries]
    w, h = max(len(t) for t in texts) + 2, len(texts)  # a blank column either side keeps it off the lines
    if w > cw or h > ch:
        return False
    for r0, c0 in ((0, 0), (0, cw - w), (ch - h, 0), (ch - h, cw - w)):
        if all(c == " " for r in range(r0, r0 + h) for c in chars[r][c0:c0 + w]):
            for r, (text, entry) in enumerate(zip(texts, entries), start=r0):
                for k, char in enumerate(text):
                    chars[r][c0 + 1 + k] = char
                    colors[r, c0 + 1 + k] = entry[2] if k < len(entry[0]) else 0
            return True
    return False


def _legend_rows(entries: list[Entry], width: int, max_rows: int) -> list[Row]:
    """The legend as rows above the frame, entries side by side, in at most `max_rows` rows; entries that do
    not fit are counted at the end ('+12 more')."""
    lines: list[list[tuple[str, str | None]]] = [[]]
    used = 0
    for n, (mark, label, _, color) in enumerate(entries):
        gap = 2 if used else 0
        if used and used + gap + len(mark) + 1 + len(label) > width:
            if len(lines) == max_rows:
                more = f"  +{len(entries) - n} more"
                while lines[-1] and used + len(more) > width:  # make room for the count
                    text, _ = lines[-1].pop()
                    used -= len(text)
                lines[-1].append((more[:width - used], None))
                break
            lines.append([])
            used, gap = 0, 0
        room = width - used - gap
        text = (mark + " " + label)[:room]
        if gap:
            lines[-1].append(("  ", None))
        lines[-1].extend([(text[:len(mark)], color), (text[len(mark):], None)])
        used += gap + len(text)
    return [[*runs, (" " * (width - sum(len(t) for t, _ in runs)), None)] for runs in lines]


def _runs(chars: list[str], colors: np.ndarray, palette: list[str | None]) -> Row:
    """Split one canvas row into runs of one colour."""
    cuts = [0, *(np.flatnonzero(np.diff(colors)) + 1).tolist(), len(chars)]
    return [("".join(chars[a:b]), palette[int(colors[a])]) for a, b in zip(cuts, cuts[1:])]


def _y_axis(y: np.ndarray, ch: int, log_y: bool) -> tuple[float, float, list[int], list[str]]:
    """The y range and its ticks: rows (top first) and labels.

    The range widens to round numbers, so every tick, the top and bottom ones included, is a round value
    with its label (0.0 0.5 1.0 ... rather than 0.06 0.41 0.76 ...). On a log axis spanning a decade or
    more, ticks are powers of ten.
    """
    lo, hi = float(y.min()), float(y.max())
    most = max(2, min(MAX_Y_TICKS, ch))
    if hi == lo or ch < 2:  # a constant (a fixed learning rate): one tick, on the line, mid-height
        row = (ch - 1) // 2
        size = _span(y)[1] - _span(y)[0]
        top = lo + size * row / max(1, ch - 1)
        value = 10 ** lo if log_y else lo
        label = f"{value:.6g}" if value == 0 or 1e-4 <= abs(value) < 1e7 else _short(value)
        return top - size, top, [row], [label]
    if log_y and hi - lo >= 1:
        step = max(1, math.ceil((math.ceil(hi) - math.floor(lo)) / (most - 1)))
        lo, hi = math.floor(lo / step) * step, math.ceil(hi / step) * step
        values = [hi - i * step for i in range(round((hi - lo) / step) + 1)]
        return lo, hi, _rows(values, lo, hi, ch), [_short(10 ** v) for v in values]
    lo, hi, step = _nice_range(lo, hi, most)
    values = [hi - i * step for i in range(round((hi - lo) / step) + 1)]
    labels = [_short(10 ** v) for v in values] if log_y else _labels(values, step, exact=True)
    return lo, hi, _rows(values, lo, hi, ch), labels


def _nice_range(lo: float, hi: float, most: int) -> tuple[float, float, float]:
    """(low, high, step): the range widened to multiples of a 1, 2, 2.5 or 5 step, with at most `most` ticks."""
    magnitude = 10 ** math.floor(math.log10((hi - lo) / (most - 1)))
    for scale in (1, 10, 100):
        for mantissa in (1, 2, 2.5, 5):
            step = mantissa * magnitude * scale
            first, last = math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step
            if round((last - first) / step) + 1 <= most:
                return first, last, step
    return lo, hi, hi - lo


def _rows(values: list[float], lo: float, hi: float, ch: int) -> list[int]:
    """The canvas row (0 at the top) of each value."""
    return [round((hi - v) / (hi - lo) * (ch - 1)) for v in values]


def _x_ticks(lo: float, hi: float, cw: int, whole: bool = False) -> tuple[list[int], list[str]]:
    """Columns of the x ticks (left first) and their labels.

    Steps and epochs are whole numbers: over a short span (where evenly spaced labels would need decimals) their
    ticks are too: 1 4 7 10 for ten epochs, not 1.0 3.2 5.5 7.8 10.0, and 1 2 for two, not 1.00 1.48 2.00.
    """
    k = max(2, min(MAX_X_TICKS, cw // 10))
    span = hi - lo
    if whole and 1 <= span < 10 * (k - 1) and span.is_integer() and lo.is_integer():
        n = int(span)
        parts = max(d for d in range(1, k) if n % d == 0)
        if parts + 1 < min(3, k) and n >= 4:  # a prime span: nearly equal parts, ticks at the nearest epochs
            parts = min(k - 1, n // 2)
        values = sorted({int(lo) + round(i * n / parts) for i in range(parts + 1)})
        return [round((v - lo) * (cw - 1) / n) for v in values], [str(v) for v in values]
    cols = [round(i * (cw - 1) / (k - 1)) for i in range(k)]
    values = [lo + (c / max(1, cw - 1)) * (hi - lo) for c in cols]
    return cols, _labels(values, (hi - lo) / (k - 1))


def _whole(x: np.ndarray) -> bool:
    """Whether every x is a whole number (a long series is judged by its first and last thousand)."""
    if len(x) > 2000:
        x = np.concatenate([x[:1000], x[-1000:]])
    return bool(np.all(x == np.round(x)))


def _labels(values: list[float], spacing: float, exact: bool = False) -> list[str]:
    """Numbers with the decimals their spacing needs (one more unless `exact`: a round 1, 2, 2.5 or 5 step), or
    3 significant digits when huge or tiny."""
    big = max(abs(v) for v in values)
    if big >= 1e7 or (0 < big < 1e-4):
        return [_short(v) for v in values]
    if spacing <= 0:
        decimals = 0
    elif exact:
        digits = -math.floor(math.log10(spacing) + 1e-9)
        decimals = max(0, min(6, digits + (1 if round(spacing / 10 ** -digits, 6) == 2.5 else 0)))
    else:
        decimals = max(0, min(6, math.ceil(-math.log10(spacing)) + 1))
    return [_unsigned_zero(f"{v:.{decimals}f}") for v in values]


def _unsigned_zero(label: str) -> str:
    """'-0.00' (a tiny negative rounded away) reads as '0.00'."""
    return label[1:] if label.startswith("-") and not label.strip("-0.") else label


def _short(v: float) -> str:
    return f"{v:.3g}"


def _x_label_line(cols: list[int], labels: list[str], offset: int, width: int) -> str:
    """Labels centred under their ticks, dropping any that would touch the previous one."""
    line = [" "] * width
    free_from = 0
    for c, label in zip(cols, labels):
        start = max(0, min(width - len(label), offset + c - len(label) // 2))
        if start < free_from:
            continue
        line[start:start + len(label)] = label
        free_from = start + len(label) + 1
    return "".join(line)
