"""The learning-rate finder's chart: smoothed loss against the learning rate on a log-x braille plot, the
suggested rate marked by a vertical line. Plain rows (plot.py), shared by the cockpit and `ptviz-tui lr-find`."""

from __future__ import annotations

import math

import numpy as np

from ptviz.engine.events import LrSwept

from .plot import Row, Trace, draw

LOSS_COLOR, SUGGESTION_COLOR = "cyan", "green"
SHOWN_ABOVE_START = 1.5  # the runaway tail is cut where the smoothed loss passes this many times its first value


def shown_points(result: LrSwept) -> tuple[np.ndarray, np.ndarray]:
    """(lrs, smoothed losses) worth plotting: the tail where the loss ran away is cut so the dip stays readable."""
    lrs = np.asarray(result.lrs, dtype=np.float64)
    loss = np.asarray(result.smoothed, dtype=np.float64)
    if len(loss) and math.isfinite(loss[0]):
        cap = SHOWN_ABOVE_START * max(float(loss[0]), float(np.nanmin(loss)))
        over = np.flatnonzero(~(loss <= cap))
        if len(over) and over[0] > 1:
            lrs, loss = lrs[:over[0]], loss[:over[0]]
    return lrs, loss


def chart_rows(result: LrSwept, width: int, height: int) -> list[Row]:
    """The sweep as `height` rows of `width` cells."""
    lrs, loss = shown_points(result)
    traces = [Trace(lrs, loss, LOSS_COLOR, "smoothed loss")]
    if result.suggestion is not None and len(loss):
        finite = loss[np.isfinite(loss)]
        lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
        traces.append(Trace(np.array([result.suggestion] * 2), np.array([lo, hi]), SUGGESTION_COLOR,
                            f"suggested {result.suggestion:.3g}"))
    title = f"lr finder: {len(result.lrs)} steps" + (f" ({result.reason})" if result.done and result.reason else "")
    return draw(width, height, title, traces, log_x=True)


def chart_text(result: LrSwept, width: int, height: int) -> str:
    """The chart as plain text lines (for a terminal without the cockpit)."""
    return "\n".join("".join(text for text, _ in row).rstrip() for row in chart_rows(result, width, height))
