"""The Data tab for a user's task: its samples as images or as a table, their statistics, and evaluations."""

from __future__ import annotations

from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Vertical, VerticalScroll
from textual.geometry import Size
from textual.message import Message
from textual.widgets import DataTable, Label, Static, TabbedContent, TabPane

from ptviz.engine.events import Evaluated
from ptviz.engine.tasks.preview import SampleView, TaskView

from .cells import CellTile, box_rows, image_rows, text_row
from .evaluation import EvaluationView
from .images import Picture, cell_kind

IMAGE_BOX = 16  # cells an image takes across


def image_label(sample: SampleView) -> str:
    """'label #index', cut to the image's width (or '#index' for an unlabelled sample)."""
    return f"{sample.label} #{sample.index}"[:IMAGE_BOX] if sample.label else f"#{sample.index}"


class ImageTile(CellTile):
    """One image sample drawn in cells: its label (or index) over the picture."""

    DEFAULT_CSS = """
    ImageTile { border: round $panel-lighten-2; color: $text-muted; }
    """

    def __init__(self, sample: SampleView, kind: str = "halfcell"):
        super().__init__()
        self.sample, self.kind = sample, kind

    def content_size(self) -> Size:
        return Size(max(IMAGE_BOX, len(image_label(self.sample))), 1 + box_rows(IMAGE_BOX))

    def rows(self, style: Style) -> list[list[Segment]]:
        width = self.content_size().width
        pad = [Segment(" " * (width - IMAGE_BOX), style)] if width > IMAGE_BOX else []
        image = image_rows(self.sample.image, IMAGE_BOX, style, self.kind)  # type: ignore[arg-type]
        return [text_row(image_label(self.sample), width, style), *(row + pad for row in image)]


class PictureImageTile(Vertical):
    """One image sample drawn with Kitty or Sixel graphics (Picture), under its label (or index)."""

    DEFAULT_CSS = """
    PictureImageTile { width: auto; height: auto; border: round $panel-lighten-2; }
    PictureImageTile > Label { color: $text-muted; }
    """

    def __init__(self, sample: SampleView):
        super().__init__()
        self.sample = sample

    def compose(self) -> ComposeResult:
        yield Label(image_label(self.sample))
        yield Picture(self.sample.image, IMAGE_BOX)  # type: ignore[arg-type]


def make_image_tile(sample: SampleView) -> ImageTile | PictureImageTile:
    """A tile drawn in cells, or with an image widget where the terminal draws Kitty or Sixel graphics."""
    kind = cell_kind()
    return ImageTile(sample, kind) if kind else PictureImageTile(sample)


def stats_table(view: TaskView) -> Table:
    """Sizes of the splits, then per numeric field: shape, dtype, range, mean and std."""
    table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
    for column in ("field", "shape", "dtype", "min", "max", "mean", "std"):
        table.add_column(column, justify="left" if column in ("field", "shape", "dtype") else "right")
    for s in view.stats:
        table.add_row(s.name, s.shape, s.dtype, f"{s.low:.4g}", f"{s.high:.4g}", f"{s.mean:.4g}", f"{s.std:.4g}")
    return table


def sizes_text(view: TaskView) -> str:
    """'task regression (regression): 800 train, 200 test'."""
    sizes = ", ".join(f"{n:,} {split}" if n is not None else f"{split} (iterable)" for split, n in view.sizes)
    return f"task {view.name} ({view.kind}): {sizes}"


class TaskDataView(Vertical):
    """What a task's data looks like; the tab hands it a TaskView and answers page requests."""

    DEFAULT_CSS = """
    TaskDataView { height: 1fr; width: 1fr; }
    TaskDataView > #task-status { height: auto; max-height: 3; color: $text-muted; padding: 0 1; }
    TaskDataView > #task-status.-error { color: $error; }
    TaskDataView TabbedContent, TaskDataView ContentSwitcher, TaskDataView TabPane { height: 1fr; }
    TaskDataView TabPane { padding: 0; }
    TaskDataView #task-table { height: 1fr; }
    TaskDataView #task-images { layout: grid; grid-size: 4; grid-rows: auto; grid-columns: auto; height: auto; }
    TaskDataView #task-images-scroll { height: 1fr; }
    TaskDataView #task-stats, TaskDataView #task-labels { height: auto; padding: 0 1; }
    """
    BINDINGS = [
        Binding("n", "page(1)", "Next samples"),
        Binding("b", "page(-1)", "Prev samples"),
        Binding("greater_than_sign", "tab(1)", "Next view"),
        Binding("less_than_sign", "tab(-1)", "Prev view", show=False),
    ]
    TABS = ("task-samples-tab", "task-stats-tab", "task-evaluation-tab")

    @dataclass
    class PageRequested(Message):
        """The user asked for the next or previous page of samples."""

        delta: int

    def __init__(self, *, id: str | None = None):
        super().__init__(id=id)
        self.view: TaskView | None = None

    def compose(self) -> ComposeResult:
        yield Static("no task loaded yet", id="task-status")
        with TabbedContent(initial="task-samples-tab"):
            with TabPane("Samples", id="task-samples-tab"):
                yield DataTable(id="task-table", cursor_type="row", zebra_stripes=True)
                with VerticalScroll(id="task-images-scroll"):
                    yield Container(id="task-images")
            with TabPane("Statistics", id="task-stats-tab"):
                with VerticalScroll():
                    yield Static("", id="task-stats")
                    yield Static("", id="task-labels")
            with TabPane("Evaluation", id="task-evaluation-tab"):
                yield EvaluationView(id="task-evaluation")

    def on_mount(self) -> None:
        self.query_one("#task-images-scroll").display = False

    async def show(self, view: TaskView) -> None:
        """Draw a page of samples: images when every sample is one, else a table of fields."""
        self.view = view
        self.status(sizes_text(view) + f" · samples from {view.origin}")
        images = view.is_image
        self.query_one("#task-table").display = not images
        self.query_one("#task-images-scroll").display = images
        grid = self.query_one("#task-images")
        await grid.remove_children()
        if images:
            await grid.mount_all(make_image_tile(s) for s in view.samples)
        else:
            self._fill_table(view)
        self.query_one("#task-stats", Static).update(stats_table(view))
        labels = ", ".join(f"{name}: {n}" for name, n in view.label_counts)
        self.query_one("#task-labels", Static).update(f"labels among these samples: {labels}" if labels else "")

    def _fill_table(self, view: TaskView) -> None:
        table = self.query_one("#task-table", DataTable)
        table.clear(columns=True)
        names = list(dict.fromkeys(f.name for s in view.samples for f in s.fields))
        label = any(s.label for s in view.samples)
        table.add_columns("#", *names, *(["label"] if label else []))
        for s in view.samples:
            by_name = {f.name: f for f in s.fields}
            cells = []
            for name in names:
                f = by_name.get(name)
                shape = f"{f.shape} " if f is not None and f.shape is not None else ""
                cells.append(f"{shape}{f.dtype} {f.text}" if f is not None else "")
            table.add_row(str(s.index), *cells, *([s.label] if label else []))

    def status(self, text: str, error: bool = False) -> None:
        """Show a line above the samples (red for a problem)."""
        status = self.query_one("#task-status", Static)
        status.update(text)
        status.set_class(error, "-error")

    def show_evaluation(self, event: Evaluated, class_names: tuple[str, ...]) -> None:
        """The confusion matrix and per-class accuracy of a classification task's evaluation."""
        if event.accuracy is None:
            return
        view = self.query_one(EvaluationView)
        view.show(event, class_names)
        wrong = ", ".join(f"#{i} true {class_names[t] if t < len(class_names) else t} said "
                          f"{class_names[p] if p < len(class_names) else p}" for i, p, t in event.wrong[:12])
        view.query_one("#gallery-note", Static).update(f"first misclassified: {wrong}" if wrong else "none misclassified")

    def action_page(self, delta: int) -> None:
        """Ask for the next or previous page of samples."""
        self.post_message(self.PageRequested(delta))

    def action_tab(self, delta: int) -> None:
        """Switch to the next or previous view."""
        tabs = self.query_one(TabbedContent)
        current = self.TABS.index(tabs.active) if tabs.active in self.TABS else 0
        tabs.active = self.TABS[(current + delta) % len(self.TABS)]

    @on(EvaluationView.Shown)
    def _shown(self, message: EvaluationView.Shown) -> None:
        message.stop()
