"""Layers × time heatmap of the update/weight ratio: one row per layer, newest sample on the right.

Samples are reduced to the widget's width like the charts: each column holds the sample of its bucket that is
furthest from the rule of thumb (log10 ratio -3), so a short excursion stays visible however long the run.
Colours run blue (barely learning, 1e-5 and below) through green (1e-3) to red (1e-1 and above).
"""

from __future__ import annotations

import math

import numpy as np
from rich.text import Text
from textual.widget import Widget

from .health import HealthHistory

CENTER, SPAN = -3.0, 2.0  # log10 ratio of the rule of thumb, and how far either way the colour scale reaches
LABEL_WIDTH = 14  # cells for a layer's name at least (a fifth of the width when wider)
CELL = "█"


def reduce(values: np.ndarray, columns: int) -> np.ndarray:
    """(layers, samples) -> (layers, <= columns): per bucket the value furthest from CENTER (NaN if none)."""
    n = values.shape[1]
    if n <= columns:
        return values
    edges = np.linspace(0, n, columns + 1).astype(int)
    out = np.full((values.shape[0], columns), np.nan)
    for c in range(columns):
        block = values[:, edges[c]:edges[c + 1]]
        off = np.where(np.isnan(block), -1.0, np.abs(np.nan_to_num(block, posinf=9.0, neginf=-9.0) - CENTER))
        pick = off.argmax(axis=1)
        out[:, c] = block[np.arange(block.shape[0]), pick]
    return out


def colour(log_ratio: float) -> str:
    """Blue below the rule of thumb, green at it, red above (an RGB hex colour)."""
    if math.isnan(log_ratio):
        return "#303030"
    t = max(-1.0, min(1.0, (log_ratio - CENTER) / SPAN))  # ±inf land on the ends
    if t < 0:
        r, g, b = 0, int(200 * (1 + t) + 40), int(-t * 255)
    else:
        r, g, b = int(t * 255), int(200 * (1 - t) + 40), 0
    return f"#{r:02x}{g:02x}{b:02x}"


class HealthHeatmap(Widget):
    """Draws a HealthHistory's update ratios; shows as many layers as fit, then says how many more there are."""

    DEFAULT_CSS = """
    HealthHeatmap { height: auto; max-height: 50%; display: none; }
    HealthHeatmap.-shown { display: block; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.history: HealthHistory | None = None
        self._rows = 0  # layers drawn: the height follows them

    def show(self, history: HealthHistory) -> None:
        """Draw `history` (shown from its first sample on)."""
        self.history = history
        rows = len(history.layers) if history is not None else 0
        self.set_class(bool(rows), "-shown")
        # A sample changes colours, a new layer the height: only that lays the screen out again (a run samples
        # health several times a second, and a layout of the Model tab costs 15-30 ms on a 2-core CPU).
        self.refresh(layout=rows != self._rows)
        self._rows = rows

    def get_content_height(self, container, viewport, width: int) -> int:
        """A title row and one row per layer."""
        return 1 + (len(self.history.layers) if self.history is not None else 0)

    def render(self) -> Text:
        """The title, then one row of coloured cells per layer."""
        h = self.history
        width, height = self.size.width, self.size.height
        if h is None or not h.layers or width < LABEL_WIDTH + 4:
            return Text("")
        label_width = min(max(len(layer) for layer in h.layers), max(LABEL_WIDTH, width // 5))
        columns = width - label_width - 1
        values = reduce(np.array([h.ratios[layer] for layer in h.layers], dtype=np.float64), columns)
        first, last = h.steps[0], h.steps[-1]
        text = Text(f"log10 update/weight ratio (-3 healthy), steps {first:,}–{last:,}"[:width], style="bold")
        rows = max(0, height - 1)
        shown = h.layers if len(h.layers) <= rows else h.layers[:max(0, rows - 1)]
        for layer, row in zip(shown, values):
            text.append("\n")
            label = layer if len(layer) <= label_width else "…" + layer[-(label_width - 1):]
            text.append(label.ljust(label_width) + " ", style="dim")
            for value in row.tolist():
                text.append(CELL, style=colour(value))
        if len(shown) < len(h.layers):
            text.append(f"\n+{len(h.layers) - len(shown)} more layers (a taller terminal shows them)", style="dim")
        return text
