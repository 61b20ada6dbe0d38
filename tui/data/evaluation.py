"""The evaluation views: confusion matrix, per-class accuracy and a gallery of misclassified images."""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Container, Vertical, VerticalScroll
from textual.events import Resize
from textual.geometry import Size
from textual.message import Message
from textual.widgets import Label, Static

from ptviz.engine.data.evaluation import ClassAccuracy, Mistake, class_names_for, per_class_accuracy
from ptviz.engine.data.samples import Skipped
from ptviz.engine.events import Evaluated

from .cells import CellTile, box_rows, image_rows, text_row
from .images import Picture, cell_kind
from .stats import MAX_BAR, bar


NO_EVALUATION = "No evaluation yet: results appear here after the first evaluation of a run."


def confusion_table(event: Evaluated, names: tuple[str, ...], width: int = 200) -> Table:
    """Rows are true classes, columns predictions; the diagonal is right, the rest are mistakes.

    When the padded table with its totals would be wider than `width`, it drops the totals (the per-class
    table below has them) and the padding, so ten classes fit a 40-column pane with every count readable.
    """
    names = class_names_for(event, names)
    short = all(len(n) <= 4 for n in names)
    columns = [sum(row[j] for row in event.confusion) for j in range(len(names))]
    labels = [name if short else str(j) for j, name in enumerate(names)]
    row_labels = [names[i] if short else f"{i} {names[i]}" for i in range(len(names))]
    total_width = len(str(sum(columns)))
    full = min(14, max(9, *map(len, row_labels))) + 1 + len(labels) * (max(total_width, *map(len, labels)) + 2)
    compact = full + total_width + 2 > width
    table = Table(box=None, padding=(0, 0) if compact else (0, 1), show_edge=False, header_style="bold",
                  show_footer=not compact, title_justify="left")
    table.add_column("t\\p" if compact else "true\\pred", no_wrap=True, max_width=14, overflow="ellipsis",
                     footer="total")
    cell = max(*(len(str(v)) for row in event.confusion for v in row), *map(len, labels))
    for j, label in enumerate(labels):
        # Compact columns have no padding: one more cell keeps the numbers apart.
        table.add_column(label, justify="right", footer=str(columns[j]), min_width=cell + 1 if compact else None)
    if not compact:
        table.add_column("total", justify="right", footer=str(sum(columns)), style="bold")
    for i, row in enumerate(event.confusion):
        cells = [Text(str(v), style="bold green") if i == j else Text(str(v), style="red") if v else
                 Text("·", style="dim") for j, v in enumerate(row)]
        table.add_row(row_labels[i], *cells, *(() if compact else (str(sum(row)),)))
    return table


def accuracy_table(rows: list[ClassAccuracy], width: int) -> Table:
    """Per true class: a bar of its accuracy, the percentage and correct/support."""
    name_width = min(16, max((len(r.name) for r in rows), default=5))
    bar_width = max(4, min(MAX_BAR, width - name_width - 22))
    table = Table(box=None, padding=(0, 1), show_edge=False, show_header=False)
    table.add_column(no_wrap=True, max_width=name_width, overflow="ellipsis")
    table.add_column(width=bar_width, no_wrap=True)
    table.add_column(justify="right")
    table.add_column(justify="right")
    for r in rows:
        acc = r.accuracy
        table.add_row(r.name, Text(bar(r.correct, r.support, bar_width), style="green"),
                      "-" if acc is None else f"{acc:.1%}", f"{r.correct}/{r.support}")
    return table


def mistake_labels(mistake: Mistake, box: int) -> tuple[str, str, str]:
    """The lines above and below a misclassified image: its true class, the predicted one, its index."""
    width = max(box, 10)
    return f"true {mistake.true}"[:width], f"said {mistake.predicted}"[:width], f"#{mistake.index}"


class MistakeTile(CellTile):
    """One misclassified image with its true and predicted class, drawn in cells."""

    DEFAULT_CSS = """
    MistakeTile {
        border: round $error 60%;
        padding: 0 1;
        color: $text-muted;
    }
    """

    def __init__(self, mistake: Mistake, box: int, kind: str = "halfcell"):
        super().__init__()
        self.mistake, self.box, self.kind = mistake, box, kind

    def show(self, mistake: Mistake, box: int) -> None:
        """Draw another misclassified image in place."""
        self.mistake, self.box = mistake, box
        self.redraw()

    def content_size(self) -> Size:
        return Size(max(self.box, *map(len, mistake_labels(self.mistake, self.box))), 3 + box_rows(self.box))

    def rows(self, style: Style) -> list[list[Segment]]:
        width = self.content_size().width
        true, said, index = mistake_labels(self.mistake, self.box)
        pad = [Segment(" " * (width - self.box), style)] if width > self.box else []
        image = [row + pad for row in image_rows(self.mistake.image, self.box, style, self.kind)]
        return [text_row(true, width, style), text_row(said, width, style), *image, text_row(index, width, style)]


class PictureMistakeTile(Vertical):
    """One misclassified image drawn with Kitty or Sixel graphics (Picture), with its true and predicted class."""

    DEFAULT_CSS = """
    PictureMistakeTile {
        width: auto;
        height: auto;
        border: round $error 60%;
        padding: 0 1;
    }
    PictureMistakeTile > Label {
        color: $text-muted;
    }
    """

    def __init__(self, mistake: Mistake, box: int):
        super().__init__()
        self.mistake = mistake
        self.box = box

    def compose(self) -> ComposeResult:
        true, said, index = mistake_labels(self.mistake, self.box)
        yield Label(true)
        yield Label(said)
        yield Picture(self.mistake.image, self.box)
        yield Label(index)


def make_mistake_tile(mistake: Mistake, box: int) -> MistakeTile | PictureMistakeTile:
    """A tile drawn in cells, or with image widgets where the terminal draws Kitty or Sixel graphics."""
    kind = cell_kind()
    return MistakeTile(mistake, box, kind) if kind else PictureMistakeTile(mistake, box)


class EvaluationView(VerticalScroll):
    """What the last evaluation found, shown per class and per image."""

    DEFAULT_CSS = """
    EvaluationView {
        padding: 0 1;
    }
    EvaluationView > Static {
        height: auto;
        margin-bottom: 1;
    }
    EvaluationView > .heading {
        text-style: bold;
        color: $accent;
        margin-bottom: 0;
    }
    EvaluationView > #gallery {
        layout: grid;
        grid-size: 4;
        grid-rows: auto;
        grid-columns: auto;
        grid-gutter: 0 1;
        height: auto;
    }
    """

    class Shown(Message):
        """The view became visible (its tab was chosen), so a deferred evaluation can be drawn."""

    def __init__(self, *, id: str | None = None):
        super().__init__(id=id)
        self.event: Evaluated | None = None
        self.rows: list[ClassAccuracy] = []
        self.matrix_total = 0
        self.class_names: tuple[str, ...] = ()
        self.box = 8

    def compose(self) -> ComposeResult:
        yield Static(NO_EVALUATION, id="title")
        yield Static("Confusion matrix (rows: true class, columns: predicted)", classes="heading")
        yield Static("", id="confusion")
        yield Static("Accuracy per class", classes="heading")
        yield Static("", id="per-class")
        yield Static("Misclassified images", classes="heading")
        yield Static("", id="gallery-note")
        yield Container(id="gallery")

    async def clear(self) -> None:
        """Forget the evaluation shown (its images belong to another data set)."""
        self.event, self.rows, self.matrix_total = None, [], 0
        self.query_one("#title", Static).update(NO_EVALUATION)
        for name in ("#confusion", "#per-class", "#gallery-note"):
            self.query_one(name, Static).update("")
        await self.query_one("#gallery").remove_children()

    def show(self, event: Evaluated, class_names: tuple[str, ...]) -> None:
        """Draw the matrix and the per-class accuracy of `event`."""
        self.event = event
        self.rows = per_class_accuracy(event, class_names)
        self.matrix_total = sum(sum(row) for row in event.confusion)
        when = f"epoch {event.epoch}" + (" (mid-epoch)" if event.mid_epoch else "") + f", step {event.step:,}"
        self.query_one("#title", Static).update(
            f"{event.split} split after {when}: accuracy {event.accuracy:.2%} on {event.samples:,} images, "
            f"loss {event.loss:.4f}"
        )
        self.class_names = class_names
        self._draw_tables()

    async def show_mistakes(self, mistakes: list[Mistake], skipped: list[Skipped], box: int) -> None:
        """Fill the gallery with the misclassified images."""
        self.box = box
        shown = self.event.wrong if self.event else ()
        total = self.matrix_total - sum(r.correct for r in self.rows)
        note = f"{len(mistakes)} of {total:,} misclassified images"
        if len(shown) < total:
            note += f" (the evaluation keeps the first {len(shown)})"
        note += "".join(f"\nskipped: {s.reason}" for s in skipped)
        self.query_one("#gallery-note", Static).update(note)
        gallery = self.query_one("#gallery")
        tiles = list(gallery.children)
        if cell_kind() and all(isinstance(tile, MistakeTile) for tile in tiles):
            # Every epoch of a run brings a gallery: redraw the tiles there are, add or remove only the rest.
            for tile, mistake in zip(tiles, mistakes):
                tile.show(mistake, box)
            if len(tiles) > len(mistakes):
                await gallery.remove_children(tiles[len(mistakes):])
        else:
            await gallery.remove_children()
            tiles = []
        if len(mistakes) > len(tiles):
            await gallery.mount_all([make_mistake_tile(m, box) for m in mistakes[len(tiles):]])
        self._fit_columns()

    def _draw_tables(self) -> None:
        if self.event is not None:
            width = self.scrollable_content_region.width or 76
            self.query_one("#confusion", Static).update(confusion_table(self.event, self.class_names, width))
            self.query_one("#per-class", Static).update(accuracy_table(self.rows, width))

    def on_show(self) -> None:
        self.post_message(self.Shown())

    def on_resize(self, event: Resize) -> None:
        self._draw_tables()
        self._fit_columns()

    def _fit_columns(self) -> None:
        width = self.scrollable_content_region.width or self.size.width
        tile = max(self.box, 10) + 4
        self.query_one("#gallery").styles.grid_size_columns = max(1, (width + 1) // (tile + 1))
