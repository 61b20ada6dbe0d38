"""Tiles of text and images drawn straight into character cells: one widget each, its lines built once.

A tile of widgets (a caption Label, a row, two image widgets from textual-image) costs Textual a layout pass,
per-cell Styles and a compositor cut at every widget's edge on every frame that repaints it: most of a second
a zoom of twelve tiles on a 2-core CPU. A CellTile hands Textual one finished Strip per line instead, built
when its content or its style changes, with the Segments of equal neighbouring cells merged and each colour
pair's Style made once.
"""

from __future__ import annotations

import numpy as np
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.widget import Widget

from .images import fit, to_pil

UPPER_HALF = "▀"  # foreground: the upper pixel, background: the lower one
SHADES = "█▓▒░ "  # bright to dark, for terminals drawn without colour ("unicode")
_STYLES: dict[bytes, Style] = {}  # a colour pair's Style, made once
_MAX_STYLES = 50_000  # photos have many colours: start again rather than grow without bound


def box_rows(box: int) -> int:
    """Rows of cells a square box `box` cells wide takes (a half-cell is about square)."""
    return -(-box // 2)


def _pair_style(key: bytes) -> Style:
    style = _STYLES.get(key)
    if style is None:
        if len(_STYLES) >= _MAX_STYLES:
            _STYLES.clear()
        style = _STYLES[key] = Style(color=Color.from_rgb(key[0], key[1], key[2]),
                                     bgcolor=Color.from_rgb(key[3], key[4], key[5]))
    return style


def _runs(keys: list, draw) -> list[Segment]:
    """One Segment per run of equal neighbouring cells: draw(key, count) makes it."""
    segments = []
    start = 0
    for x in range(1, len(keys) + 1):
        if x == len(keys) or keys[x] != keys[start]:
            segments.append(draw(keys[start], x - start))
            start = x
    return segments


def image_rows(pixels: np.ndarray, box: int, blank: Style, kind: str = "halfcell") -> list[list[Segment]]:
    """An H×W×C uint8 image fitted into a box `box` cells wide and box_rows(box) high, centred, as rows of
    Segments exactly `box` cells long; the cells around the image are blank in `blank`.

    "halfcell" draws two pixels a cell in colour; "unicode" one grey shade a cell, for terminals without colour.
    """
    height, width = pixels.shape[:2]
    columns, rows = fit(width, height, box)
    rgb = np.asarray(to_pil(pixels, columns, rows).convert("RGB"), dtype=np.uint8)  # 2·rows × columns × 3
    left, top = (box - columns) // 2, (box_rows(box) - rows) // 2
    pad_left = [Segment(" " * left, blank)] if left else []
    pad_right = [Segment(" " * (box - columns - left), blank)] if box - columns - left else []
    empty = [Segment(" " * box, blank)]
    lines = [empty] * top
    for row in range(rows):
        upper, lower = rgb[2 * row], rgb[2 * row + 1]
        if kind == "unicode":
            grey = ((upper.astype(np.uint16) + lower).mean(axis=1) / 2).astype(np.uint8)
            keys = [SHADES[min(len(SHADES) - 1, (255 - int(v)) * len(SHADES) // 256)] for v in grey]
            cells = _runs(keys, lambda char, n: Segment(char * n, blank))
        else:
            pairs = np.concatenate([upper, lower], axis=1)  # columns × 6: the two pixels of each cell
            keys = [pair.tobytes() for pair in pairs]
            cells = _runs(keys, lambda key, n: Segment(UPPER_HALF * n, _pair_style(key)))
        lines.append(pad_left + cells + pad_right)
    return lines + [empty] * (box_rows(box) - top - rows)


def text_row(text: str, width: int, style: Style) -> list[Segment]:
    """`text` padded with blanks to exactly `width` cells (cut to fit)."""
    return [Segment(text[:width].ljust(width), style)]


class CellTile(Widget):
    """A widget whose lines are Segments a subclass builds once per content (`rows`); nothing inside it."""

    DEFAULT_CSS = """
    CellTile {
        width: auto;
        height: auto;
    }
    """

    def __init__(self) -> None:
        super().__init__()
        self._strips: list[Strip] = []
        self._built_for: Style | None = None  # the style the strips were built in; another one rebuilds them
        self._style = Style()  # the widget's style at this repaint

    def rows(self, style: Style) -> list[list[Segment]]:
        """The tile's lines, each exactly `content_size()` wide, in the widget's text style."""
        raise NotImplementedError

    def content_size(self) -> Size:
        """Cells across and lines down of the content (without border and padding)."""
        raise NotImplementedError

    def redraw(self) -> None:
        """The content changed: build its lines again on the next repaint (and its size, if that changed)."""
        self._built_for = None
        self.refresh(layout=True)

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return self.content_size().width

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return self.content_size().height

    def render_lines(self, crop: Region) -> list[Strip]:
        # The widget's style, once for all the lines repainted now (it walks the ancestors' backgrounds).
        self._style = self.rich_style
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        style = self._style
        if style != self._built_for:
            width = self.content_size().width
            self._strips = [Strip(row, width) for row in self.rows(style)]
            self._built_for = style
        return self._strips[y] if y < len(self._strips) else Strip.blank(self.size.width, style)
