"""The sample grid: each image raw beside the same image after the pipeline, labelled with its class."""

from __future__ import annotations

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.app import ComposeResult
from textual.containers import Container, Horizontal, Vertical, VerticalScroll
from textual.events import Resize
from textual.geometry import Size
from textual.widgets import Label, Static

from ptviz.engine.data.samples import Sample, SampleSet

from .cells import CellTile, box_rows, image_rows, text_row
from .images import Picture, cell_kind

ZOOMS = (8, 16, 24, 32, 48)  # box sizes in cells; 8 and 16 draw 8×8 digits at whole multiples


def tile_width(box: int) -> int:
    """Cells one tile takes across: two boxes, the gap between them and the border."""
    return 2 * box + 1 + 2


def caption(sample: Sample, width: int) -> str:
    """'class-name #index', cut to fit."""
    text = f"{sample.class_name} #{sample.index}"
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"


class SamplePixels:
    """The two images a sample tile shows, whichever way it draws them."""

    sample: Sample
    processed: str  # "train" or "eval": the pipeline of the right-hand image

    @property
    def raw_pixels(self) -> np.ndarray:
        """The raw image shown on the left."""
        return self.sample.raw

    @property
    def processed_pixels(self) -> np.ndarray:
        """The image after the training or evaluation pipeline, shown on the right."""
        return self.sample.train if self.processed == "train" else self.sample.eval


class SampleTile(SamplePixels, CellTile):
    """One sample drawn in cells: its class name and index over the raw image and the processed one."""

    DEFAULT_CSS = """
    SampleTile {
        border: round $panel-lighten-2;
        color: $text-muted;
    }
    """

    def __init__(self, sample: Sample, box: int, processed: str, kind: str = "halfcell"):
        super().__init__()
        self.sample, self.box, self.processed, self.kind = sample, box, processed, kind

    def show(self, sample: Sample, box: int, processed: str) -> None:
        """Draw another sample (or the same one re-rolled) in place."""
        self.sample, self.box, self.processed = sample, box, processed
        self.redraw()

    def content_size(self) -> Size:
        return Size(2 * self.box + 1, 1 + box_rows(self.box))

    def rows(self, style: Style) -> list[list[Segment]]:
        width = 2 * self.box + 1
        gap = Segment(" ", style)
        raw = image_rows(self.raw_pixels, self.box, style, self.kind)
        processed = image_rows(self.processed_pixels, self.box, style, self.kind)
        return [text_row(caption(self.sample, width), width, style), *([*a, gap, *b] for a, b in zip(raw, processed))]


class PictureSampleTile(SamplePixels, Vertical):
    """One sample drawn with Kitty or Sixel graphics: caption over two image widgets (Picture)."""

    DEFAULT_CSS = """
    PictureSampleTile {
        width: auto;
        height: auto;
        border: round $panel-lighten-2;
    }
    PictureSampleTile > .caption {
        color: $text-muted;
    }
    PictureSampleTile > Horizontal {
        width: auto;
        height: auto;
    }
    PictureSampleTile .raw {
        margin-right: 1;
    }
    """

    def __init__(self, sample: Sample, box: int, processed: str):
        super().__init__()
        self.sample = sample
        self.box = box
        self.processed = processed

    def compose(self) -> ComposeResult:
        yield Label(caption(self.sample, 2 * self.box + 1), classes="caption")
        with Horizontal():
            yield Picture(self.raw_pixels, self.box, classes="raw")
            yield Picture(self.processed_pixels, self.box, classes="processed")

    def show(self, sample: Sample, box: int, processed: str) -> None:
        """Draw another sample (or the same one re-rolled) in place."""
        self.sample, self.box, self.processed = sample, box, processed
        self.query_one(".caption", Label).update(caption(sample, 2 * box + 1))
        self.query_one(".raw", Picture).show(sample.raw, box)
        self.query_one(".processed", Picture).show(self.processed_pixels, box)


def make_tile(sample: Sample, box: int, processed: str) -> SampleTile | PictureSampleTile:
    """A tile drawn in cells, or with image widgets where the terminal draws Kitty or Sixel graphics."""
    kind = cell_kind()
    return SampleTile(sample, box, processed, kind) if kind else PictureSampleTile(sample, box, processed)


class SampleGrid(VerticalScroll):
    """A page of samples as tiles in as many columns as fit, with the shapes around the pipeline above."""

    DEFAULT_CSS = """
    SampleGrid {
        height: 1fr;
        padding: 0 1;
        scrollbar-gutter: stable;  /* the columns that fit do not change when the scrollbar appears */
    }
    SampleGrid > #summary {
        color: $text-muted;
        height: auto;
    }
    SampleGrid > #skipped {
        color: $warning;
        height: auto;
        display: none;
    }
    SampleGrid > #skipped.-shown {
        display: block;
    }
    SampleGrid > #tiles {
        layout: grid;
        grid-size: 2;
        grid-rows: auto;
        grid-columns: auto;
        grid-gutter: 0 1;
        height: auto;
    }
    """

    def __init__(self, *, id: str | None = None):
        super().__init__(id=id)
        self.sample_set: SampleSet | None = None
        self.box = ZOOMS[0]
        self.processed = "train"

    def compose(self) -> ComposeResult:
        yield Static("No data loaded yet.", id="summary")
        yield Static("", id="skipped")
        yield Container(id="tiles")

    @property
    def tiles(self) -> list[SampleTile | PictureSampleTile]:
        """The tiles shown, in order."""
        return list(self.query_one("#tiles").children)  # type: ignore[arg-type]

    async def show(self, sample_set: SampleSet, box: int, processed: str, page: int) -> None:
        """Draw a page of samples; tiles are updated in place when the same images come back."""
        self.sample_set, self.box, self.processed = sample_set, box, processed
        self.query_one("#summary", Static).update(self._summary(sample_set, page))
        skipped = self.query_one("#skipped", Static)
        skipped.update("\n".join(f"skipped: {s.reason}" for s in sample_set.skipped))
        skipped.set_class(bool(sample_set.skipped), "-shown")
        tiles = self.tiles
        if [t.sample.index for t in tiles] == [s.index for s in sample_set.samples]:
            for tile, sample in zip(tiles, sample_set.samples):
                tile.show(sample, box, processed)
        else:
            container = self.query_one("#tiles")
            await container.remove_children()
            await container.mount_all(make_tile(s, box, processed) for s in sample_set.samples)
        self._fit_columns()

    def show_message(self, text: str) -> None:
        """Say why there is nothing (new) to show, keeping the last page visible."""
        self.query_one("#summary", Static).update(text)

    def _summary(self, s: SampleSet, page: int) -> str:
        raw_shape = "×".join(map(str, s.raw_shape)) if s.raw_shape else "mixed sizes"
        shape = "×".join(map(str, s.input_shape))
        lo, hi = s.raw_range
        ilo, ihi = s.input_range
        right = f"train pipeline, re-roll {s.reroll}" if self.processed == "train" else "eval pipeline"
        return (f"{s.split} page {page + 1} · left: raw {raw_shape} {s.raw_dtype} {lo:g}..{hi:g} · "
                f"right: {right}, input {shape} {s.input_dtype} {ilo:.2f}..{ihi:.2f} (shown denormalised)")

    def on_resize(self, event: Resize) -> None:
        self._fit_columns()

    def fit_columns(self, width: int) -> None:
        """Lay the tiles out for a width the grid is about to have (before the layout that gives it)."""
        self._fit_columns(width)

    def _fit_columns(self, width: int = 0) -> None:
        width = width or self.scrollable_content_region.width or self.size.width
        self.query_one("#tiles").styles.grid_size_columns = max(1, (width + 1) // (tile_width(self.box) + 1))
