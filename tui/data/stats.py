"""The statistics view: split sizes, class balance as bars, shapes and ranges around the pipeline, mean/std, one batch."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.events import Resize
from textual.widgets import Static

from ptviz.engine.data.samples import SampleSet
from ptviz.engine.data.stats import BatchSummary, ChannelStats, SplitCounts

EIGHTHS = " ▏▎▍▌▋▊▉"
MAX_BAR = 40  # cells; longer bars add nothing but distance between the numbers
SPLIT_COLOURS = {"train": "cyan", "val": "yellow", "test": "magenta"}


def bar(value: int, largest: int, width: int) -> str:
    """A horizontal bar `width` cells long at `largest`, drawn to an eighth of a cell."""
    if largest <= 0 or width <= 0:
        return ""
    eighths = round(value / largest * width * 8)
    full, part = divmod(eighths, 8)
    return "█" * full + (EIGHTHS[part] if part else "")


def counts_table(counts: list[SplitCounts], names: tuple[str, ...], width: int) -> Table:
    """Per-class counts of every split as bars side by side, scaled per split."""
    name_width = min(16, max([len("class"), *(len(n) for n in names)]))
    number_width = max(len(str(c.size)) for c in counts) if counts else 1
    bar_width = max(4, min(MAX_BAR, (width - name_width - len(counts) * (number_width + 3) - 2) // max(1, len(counts))))
    table = Table(box=None, padding=(0, 1), show_edge=False, header_style="bold")
    table.add_column("class", max_width=name_width, no_wrap=True, overflow="ellipsis")
    for c in counts:
        table.add_column(c.name, width=bar_width, no_wrap=True)
        table.add_column("", justify="right", width=number_width)
    for i, name in enumerate(names):
        row: list[str | Text] = [name]
        for c in counts:
            value = c.per_class[i] if i < len(c.per_class) else 0
            row += [Text(bar(value, max(c.per_class, default=0), bar_width), style=SPLIT_COLOURS.get(c.name, "")),
                    str(value)]
        table.add_row(*row)
    return table


def range_text(lo: float, hi: float) -> str:
    """'lo..hi' with as few digits as the values need."""
    return f"{lo:.4g}..{hi:.4g}"


class StatsView(VerticalScroll):
    """Numbers about the data set, each block filled in as its computation finishes."""

    DEFAULT_CSS = """
    StatsView {
        padding: 0 1;
        scrollbar-gutter: stable;  /* the bars' width does not change when the scrollbar appears */
    }
    StatsView > Static {
        height: auto;
        margin-bottom: 1;
    }
    StatsView > .heading {
        text-style: bold;
        margin-bottom: 0;
        color: $accent;
    }
    """

    def __init__(self, *, id: str | None = None):
        super().__init__(id=id)
        self.counts: list[SplitCounts] = []
        self.class_names: tuple[str, ...] = ()
        self.channels: ChannelStats | None = None

    def compose(self) -> ComposeResult:
        yield Static("Data set", classes="heading")
        yield Static("No data loaded yet.", id="sizes")
        yield Static("Images per class", classes="heading")
        yield Static("", id="counts")
        yield Static("Images around the pipeline", classes="heading")
        yield Static("", id="shapes")
        yield Static("Per-channel mean and std of the training images", classes="heading")
        yield Static("m: compute them from the training data and fill the Normalize fields", id="channels")
        yield Static("One training batch as the model receives it", classes="heading")
        yield Static("", id="batch")

    def show_counts(self, source: str, counts: list[SplitCounts], class_names: tuple[str, ...]) -> None:
        """Split sizes and the per-class bars."""
        self.counts, self.class_names = counts, class_names
        sizes = ", ".join(f"{c.name} {c.size:,}" for c in counts)
        self.query_one("#sizes", Static).update(f"{source}\n{sizes}; {len(class_names)} classes")
        self._draw_counts()

    def _draw_counts(self) -> None:
        if self.counts:
            width = self.scrollable_content_region.width or 76
            self.query_one("#counts", Static).update(counts_table(self.counts, self.class_names, width))

    def on_resize(self, event: Resize) -> None:
        self._draw_counts()

    def show_samples(self, s: SampleSet) -> None:
        """Shape, dtype and value range before and after the pipeline, over the images of the sample page."""
        raw_shape = "×".join(map(str, s.raw_shape)) if s.raw_shape else "mixed sizes"
        self.query_one("#shapes", Static).update(
            f"before: {raw_shape} {s.raw_dtype}, values {range_text(*s.raw_range)}\n"
            f"after:  {'×'.join(map(str, s.input_shape))} {s.input_dtype}, values {range_text(*s.input_range)} "
            f"(normalised)\nover the {len(s.samples)} images of the sample page"
        )

    def show_channels(self, found: ChannelStats | None, text: str = "") -> None:
        """Computed mean and std (or a progress or error line)."""
        self.channels = found or self.channels
        widget = self.query_one("#channels", Static)
        if found is None:
            widget.update(text)
            return
        lines = [f"mean {', '.join(f'{v:.6f}' for v in found.mean)}",
                 f"std  {', '.join(f'{v:.6f}' for v in found.std)}",
                 f"over {found.images:,} images ({found.pixels_per_channel:,} pixels per channel); "
                 f"filled into Normalize"]
        lines += [f"skipped: {s.reason}" for s in found.skipped]
        widget.update("\n".join(lines))

    def show_batch(self, summary: BatchSummary | None, text: str = "") -> None:
        """Shape, dtype, device and value summary of the first training batch (or why it is missing)."""
        widget = self.query_one("#batch", Static)
        if summary is None:
            widget.update(text)
            return
        widget.update(
            f"inputs {'×'.join(map(str, summary.shape))} {summary.dtype} on {summary.device}\n"
            f"min {summary.min:.4f}  max {summary.max:.4f}  mean {summary.mean:.4f}\n"
            f"labels {'×'.join(map(str, summary.labels_shape))}"
        )
