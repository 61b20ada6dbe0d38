"""Pixels in the terminal: Kitty or Sixel graphics through textual-image where the terminal has them, half-cells
otherwise (grids of tiles draw those themselves, tui.data.cells).

The terminal is asked what it can draw once, before Textual starts (ptviz.tui.terminal): textual-image's own
questions, asked when it is imported, would race Textual for the answers (and this module loads after the
first screen, with torch). Set PTVIZ_IMAGES=halfcell (or unicode, sixel, tgp) to choose the renderer, for
example over a slow link.
"""

from __future__ import annotations

import logging
import os
import sys

import numpy as np
from PIL import Image as PILImage
from textual.app import ComposeResult
from textual.widget import Widget

from ..terminal import asked

# A terminal that leaves textual-image's size query unanswered is normal (it then assumes a cell size);
# without a handler Python would print that warning and a traceback over the screen.
logging.getLogger("textual_image").addHandler(logging.NullHandler())


def _answers_instead_of_questions() -> None:
    """Give textual-image the probe's answers, and make its own terminal questions fail without asking."""
    from contextlib import contextmanager

    from textual_image import _terminal

    @contextmanager
    def no_question(*_args, **_kwargs):
        raise _terminal.TerminalError("ptviz asked the terminal before Textual started")
        yield  # pragma: no cover - a generator, so this is a context manager

    # Read by the graphics queries when they are imported, and by the cell-size query after its ioctl.
    _terminal.capture_terminal_response = no_question
    info = asked()
    if info is not None and info.cell_pixels and not hasattr(_terminal.get_cell_size, "_result"):
        _terminal.get_cell_size._result = _terminal.CellSize(*info.cell_pixels)  # its cache of the answer


_answers_instead_of_questions()

from textual_image.widget import HalfcellImage, SixelImage, TGPImage, UnicodeImage  # noqa: E402

RENDERER_ENV = "PTVIZ_IMAGES"
RENDERERS = {"halfcell": HalfcellImage, "unicode": UnicodeImage, "sixel": SixelImage, "tgp": TGPImage}


def best_renderer() -> type:
    """Kitty graphics or Sixel where the terminal said it draws them, half-cells on other terminals."""
    info = asked()
    if info is not None and info.kitty_graphics:
        return TGPImage
    if info is not None and info.sixel:
        return SixelImage
    return HalfcellImage if sys.__stdout__ and sys.__stdout__.isatty() else UnicodeImage


def renderer() -> type:
    """The image widget class PTVIZ_IMAGES names (the best the terminal draws when unset or unknown)."""
    return RENDERERS.get(os.environ.get(RENDERER_ENV, "auto").strip().lower()) or best_renderer()


def cell_kind() -> str | None:
    """"halfcell" or "unicode" when images are drawn in character cells (tui.data.cells), None for Kitty or
    Sixel graphics, which need an image widget each (Picture)."""
    return {HalfcellImage: "halfcell", UnicodeImage: "unicode"}.get(renderer())


def fit(width: int, height: int, box_cells: int) -> tuple[int, int]:
    """Cells (columns, rows) for a width×height image in a square box box_cells wide, keeping its shape.

    A half-cell is about square, so a cell column holds one pixel across and a row two pixels down.
    """
    scale = box_cells / max(width, height)
    columns = max(1, round(width * scale))
    rows = max(1, round(height * scale / 2))
    return columns, rows


def to_pil(pixels: np.ndarray, columns: int, rows: int) -> PILImage.Image:
    """An H×W×C uint8 array as a PIL image of exactly columns × 2·rows pixels.

    Growing uses nearest neighbour so 8×8 digits stay crisp squares; shrinking averages (box filter).
    """
    channels = pixels.shape[-1]
    image = PILImage.fromarray(pixels[..., 0] if channels == 1 else pixels[..., :3], "L" if channels == 1 else "RGB")
    size = (columns, rows * 2)
    if image.size == size:
        return image
    grow = size[0] >= image.width and size[1] >= image.height
    return image.resize(size, PILImage.Resampling.NEAREST if grow else PILImage.Resampling.BOX)


class Picture(Widget):
    """One image in a square box `box` cells wide, drawn by textual-image's widget for the renderer (grids drawn
    in cells use tui.data.cells instead); `pixels` keeps the array shown, for tests and callers."""

    DEFAULT_CSS = """
    Picture {
        width: auto;
        height: auto;
        align: center middle;
    }
    """

    def __init__(self, pixels: np.ndarray, box: int, *, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self.pixels = pixels
        self.box = box

    def compose(self) -> ComposeResult:
        yield renderer()(self._image())

    def on_mount(self) -> None:
        self._size_child()

    def show(self, pixels: np.ndarray, box: int | None = None) -> None:
        """Draw new pixels (and optionally a new box size) in place."""
        self.pixels = pixels
        self.box = box or self.box
        self.children[0].image = self._image()  # type: ignore[attr-defined]
        self._size_child()

    def _cells(self) -> tuple[int, int]:
        height, width = self.pixels.shape[:2]
        return fit(width, height, self.box)

    def _image(self) -> PILImage.Image:
        return to_pil(self.pixels, *self._cells())

    def _size_child(self) -> None:
        # The box is fixed whatever the image's shape, so tiles of a grid line up.
        self.styles.width = self.box
        self.styles.height = -(-self.box // 2)
        columns, rows = self._cells()
        for child in self.children:
            child.styles.width = columns
            child.styles.height = rows
