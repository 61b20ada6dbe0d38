"""The data pane: samples before and after the pipeline with its editor, statistics, and evaluation views.

The app hands it data through `show_config`, `show_dataset` and `show_evaluation`; it answers with the
messages nested below. Loading and computing run in thread workers (tui.data.jobs) that only post messages back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from ptviz.engine.config import RunConfig
from ptviz.engine.data import samples as sample_views
from ptviz.engine.data import sources
from ptviz.engine.data.augment import Pipeline
from ptviz.engine.events import Evaluated
from ptviz.engine.transform_specs import TransformSpec

from ..steady_tabs import SteadyTabs
from . import jobs
from .evaluation import EvaluationView
from .pipeline_editor import PipelineEditor
from .samples import ZOOMS, SampleGrid, tile_width
from .stats import StatsView

PER_PAGE = 12  # samples per page of the grid
EDITOR_WIDTH = 30  # cells the pipeline editor takes beside the grid


def default_box(side: int, grid_width: int) -> int:
    """The largest zoom that draws an image of `side` pixels no bigger than useful and fits two tiles a row."""
    useful = side * 2 if side <= 16 else side  # small images gain from doubling, larger ones don't
    fitting = [z for z in ZOOMS if z <= useful and 2 * tile_width(z) + 1 <= grid_width]
    return fitting[-1] if fitting else ZOOMS[0]


def data_key(config: RunConfig) -> tuple:
    """What decides which images load: a change here means loading the data set again."""
    d = config.data
    folder = d.dataset == "imagefolder"
    return (d.dataset, d.root, d.val_split, d.fake_size, config.train.seed if d.val_split else None,
            len(d.mean) if folder else None, [str(s) for s in sources.leading_sizing(d.transforms)] if folder else None)


class DataPane(Widget):
    """Samples with the pipeline editor, statistics and evaluation views of one data set."""

    DEFAULT_CSS = """
    DataPane {
        height: 1fr;
        width: 1fr;
    }
    DataPane > #status {
        height: auto;
        max-height: 3;
        color: $text-muted;
        padding: 0 1;
    }
    DataPane > #status.-error {
        color: $error;
    }
    DataPane TabbedContent, DataPane ContentSwitcher, DataPane TabPane {
        height: 1fr;
    }
    DataPane TabPane {
        padding: 0;
    }
    DataPane #samples-tab > Horizontal {
        height: 1fr;
    }
    """
    BINDINGS = [
        Binding("r", "reroll", "Re-roll"),
        Binding("n", "page(1)", "Next images"),
        Binding("b", "page(-1)", "Prev images"),
        Binding("t", "toggle_processed", "Train/eval"),
        Binding("plus,equals_sign", "zoom(1)", "Zoom in"),
        Binding("minus", "zoom(-1)", "Zoom out"),
        Binding("o", "toggle_editor", "Editor"),
        Binding("m", "compute_normalize", "Mean/std"),
        Binding("greater_than_sign", "tab(1)", "Next view"),
        Binding("less_than_sign", "tab(-1)", "Prev view", show=False),
        Binding("escape", "leave_editor", show=False),
    ]
    TABS = ("samples-tab", "stats-tab", "evaluation-tab")

    @dataclass
    class PipelineChanged(Message):
        """The user edited the transform list; every parameter in it is valid."""

        transforms: tuple[TransformSpec, ...]

    @dataclass
    class NormalizeChanged(Message):
        """The user typed new Normalize mean and std values."""

        mean: tuple[float, ...]
        std: tuple[float, ...]

    @dataclass
    class NormalizeComputed(Message):
        """Mean and std were computed from the training images and filled into Normalize."""

        mean: tuple[float, ...]
        std: tuple[float, ...]

    @dataclass
    class EditorToggled(Message):
        """The pipeline editor was shown or hidden with the o key."""

        shown: bool

    @dataclass
    class DataFailed(Message):
        """The data could not be loaded or shown; `text` says why and names the field or file."""

        text: str

    def __init__(self, *, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self.config: RunConfig | None = None
        self.bundle: sources.DataBundle | None = None
        self.sample_set: sample_views.SampleSet | None = None
        self.evaluated: Evaluated | None = None
        self._evaluation_drawn = False
        self._mistakes_reader: Worker | None = None  # the thread reading a gallery's images
        self._mistakes_wanted = False  # a newer evaluation came while it read
        self.transforms: list[TransformSpec] = []
        self.mean: tuple[float, ...] = ()
        self.std: tuple[float, ...] = ()
        self.page = 0
        self.reroll = 0
        self.processed = "train"
        self.box = ZOOMS[0]
        self.zoomed = False  # the user chose the box size; until then it follows the room the grid has
        self._key: tuple | None = None
        self._summary = "No data loaded yet."
        self._error_job: str | None = None  # the job whose failure the status line shows
        self._generation = 0
        self._cancel = threading.Event()

    def compose(self) -> ComposeResult:
        yield Static("No data loaded yet.", id="status")
        with SteadyTabs(initial="samples-tab"):
            with TabPane("Samples", id="samples-tab"):
                with Horizontal():
                    yield PipelineEditor(id="editor")
                    yield SampleGrid(id="grid")
            with TabPane("Statistics", id="stats-tab"):
                yield StatsView(id="stats")
            with TabPane("Evaluation", id="evaluation-tab"):
                yield EvaluationView(id="evaluation")

    # ------------------------------------------------------------------------- called by the app

    def show_config(self, config: RunConfig) -> None:
        """Follow a configuration: load its data set when that changed, else redraw with its pipeline."""
        config = config.copy()
        if data_key(config) != self._key or self.bundle is None:
            if self._key is not None and self.evaluated is not None:
                # An evaluation's image indices refer to the data set it ran on.
                self.evaluated = None
                self.run_worker(self.query_one(EvaluationView).clear(), group="evaluation")
            self._key = data_key(config)
            self.config = config
            self._status(f"loading {config.data.dataset}…")
            self._start(jobs.load, config)
            return
        self.config = config
        if (config.data.transforms, config.data.mean, config.data.std) != (self.transforms, self.mean, self.std):
            self.run_worker(self._take_pipeline(config), exclusive=True, group="editor")

    def show_dataset(self, bundle: sources.DataBundle, config: RunConfig) -> None:
        """Show a data set the app already loaded, with the pipeline of `config`."""
        self._key = data_key(config)
        self._start(jobs.loaded, bundle, config.copy())

    def show_evaluation(self, event: Evaluated) -> None:
        """Show what an evaluation found: confusion matrix, per-class accuracy and the misclassified images.

        While the evaluation view is hidden only the newest evaluation is kept, and drawn when the view shows:
        a run evaluates every epoch, and building a gallery nobody sees slows training.
        """
        self.evaluated = event
        self._evaluation_drawn = False
        if self._evaluation_visible():
            self._draw_evaluation()

    def _evaluation_visible(self) -> bool:
        """Whether the evaluation view shows now (its tab is chosen and the pane is on screen)."""
        return self.query_one(TabbedContent).active == "evaluation-tab" and self.query_one(EvaluationView).is_on_screen

    @on(EvaluationView.Shown)
    def _evaluation_shown(self, message: EvaluationView.Shown) -> None:
        message.stop()
        if self.evaluated is not None and not self._evaluation_drawn:
            self._draw_evaluation()

    def _draw_evaluation(self) -> None:
        event = self.evaluated
        self._evaluation_drawn = True
        names = self.bundle.class_names if self.bundle else ()
        self.query_one(EvaluationView).show(event, names)
        if self.bundle is None or not event.wrong:
            return
        if self._mistakes_reader is not None and not self._mistakes_reader.is_finished:
            # A run evaluates faster than a gallery is read and built: the newest is read when this read ends.
            self._mistakes_wanted = True
            return
        self._mistakes_reader = self._start(jobs.draw_mistakes, event, self.bundle, self._pipeline())

    # ------------------------------------------------------------------------- background jobs

    def _start(self, job: Callable[..., None], *args: object) -> Worker:
        """Run `job` in a thread worker; a newer start of the same job supersedes the older one."""
        # A description of our own: Textual's default is repr(work), which would format every tensor in args.
        return self.run_worker(partial(job, self.post_message, *args), name=job.__name__, group=job.__name__,
                               description=job.__name__, thread=True, exclusive=True, exit_on_error=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Any worker that raised unexpectedly: say so instead of crashing the app; a gallery read that ended
        with a newer evaluation waiting starts the next read."""
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            self._status(f"{event.worker.name} failed: {type(error).__name__}: {error}", error=True)
        if event.worker is self._mistakes_reader and event.worker.is_finished and self._mistakes_wanted:
            self._mistakes_wanted = False
            if self.evaluated is not None and self._evaluation_visible():
                self._draw_evaluation()

    # ------------------------------------------------------------------------- worker results

    @on(jobs.Loaded)
    async def _loaded(self, message: jobs.Loaded) -> None:
        self.bundle, self.config = message.bundle, message.config
        bundle = message.bundle
        self._cancel.set()  # a mean/std pass over the previous data set is no longer wanted
        self.page, self.reroll = 0, 0
        self.zoomed = False
        self.box = self._fitting_box()
        self._summary = (f"{bundle.source}: {len(bundle.train):,} train, {len(bundle.test):,} test images, "
                         f"{len(bundle.class_names)} classes")
        self._status(self._summary)
        self.query_one(StatsView).show_counts(bundle.source, message.counts, bundle.class_names)
        await self._take_pipeline(message.config)
        if self.evaluated is not None:
            self.show_evaluation(self.evaluated)

    def _fitting_box(self, width: int = 0) -> int:
        """The zoom the room (`width`, else the grid's now) gives this data set's images (the smallest while the
        pane is hidden)."""
        grid = self.query_one(SampleGrid)
        width = width or (grid.scrollable_content_region.width if grid.size.width else 0)
        return default_box(max(self.bundle.shape[1:]), width) if self.bundle is not None and width else self.box

    async def _fit_box(self, width: int = 0) -> None:
        """Scale the images to the room, once it is known (the data often loads while another tab shows)."""
        if self.zoomed or self.bundle is None:
            return
        box = self._fitting_box(width)
        if box != self.box:
            self.box = box
            await self._redraw_grid()
            if self.evaluated is not None and self._evaluation_drawn:
                self._draw_evaluation()

    def on_resize(self) -> None:
        self.call_after_refresh(self._fit_box)

    async def _take_pipeline(self, config: RunConfig) -> None:
        d = config.data
        self.transforms, self.mean, self.std = list(d.transforms), tuple(d.mean), tuple(d.std)
        if self.bundle is not None:
            channels, size = self.bundle.shape[0], self.bundle.shape[-1]
            await self.query_one(PipelineEditor).set_pipeline(self.transforms, self.mean, self.std, channels, size)
        self._refresh_samples(batch=True)

    def _pipeline(self) -> Pipeline:
        seed = self.config.train.seed if self.config else 0
        return Pipeline(self.transforms, self.mean, self.std, seed=seed)

    def _refresh_samples(self, batch: bool = False) -> None:
        if self.bundle is None:
            return
        self._generation += 1
        self._start(jobs.draw_samples, self._generation, self.bundle, self._pipeline(), self.page, PER_PAGE,
                    self.reroll)
        if batch and self.config is not None:
            self._start(jobs.summarise_batch, self.bundle, self._pipeline(), self.config)

    @on(jobs.SamplesDrawn)
    async def _samples_drawn(self, message: jobs.SamplesDrawn) -> None:
        if message.generation != self._generation:
            return  # an older request finished after a newer one started
        if self._error_job in ("load", "samples"):
            self._status(self._summary)  # the pipeline runs again: its last failure is over
        await self.query_one(SampleGrid).show(message.sample_set, self.box, self.processed, self.page)
        self.sample_set = message.sample_set  # set once the grid shows it, so waiting on it means "drawn"
        self.query_one(StatsView).show_samples(message.sample_set)

    @on(jobs.BatchSummarised)
    def _batch_summarised(self, message: jobs.BatchSummarised) -> None:
        self.query_one(StatsView).show_batch(message.summary)
        if self._error_job == "batch":
            self._status(self._summary)

    @on(jobs.Progress)
    def _progress(self, message: jobs.Progress) -> None:
        self.query_one(StatsView).show_channels(None, f"computing… {message.done:,} of {message.total:,} images")

    @on(jobs.ChannelsComputed)
    async def _channels_computed(self, message: jobs.ChannelsComputed) -> None:
        found = message.found
        self.query_one(StatsView).show_channels(found)
        self.mean, self.std = found.mean, found.std
        await self.query_one(PipelineEditor).set_normalize(found.mean, found.std)
        self.post_message(self.NormalizeComputed(found.mean, found.std))
        self._refresh_samples(batch=True)

    @on(jobs.MistakesDrawn)
    async def _mistakes_drawn(self, message: jobs.MistakesDrawn) -> None:
        # A run evaluates every epoch: a gallery a newer evaluation replaced, or that nobody sees, is not built
        # (the view draws the newest one when it shows), so it never holds up this pane's other messages.
        if message.event is not self.evaluated:
            return
        if not self._evaluation_visible():
            self._evaluation_drawn = False
            return
        await self.query_one(EvaluationView).show_mistakes(message.mistakes, message.skipped, self.box)

    @on(jobs.Failed)
    def _failed(self, message: jobs.Failed) -> None:
        if message.job == "load":
            self._key = None  # showing the same configuration again retries the load
        if message.job in ("load", "samples"):
            self.query_one(SampleGrid).show_message(f"cannot show the pipeline: {message.text}")
        elif message.job == "batch":
            self.query_one(StatsView).show_batch(None, f"cannot build a batch: {message.text}")
        elif message.job == "channels":
            self.query_one(StatsView).show_channels(None, message.text)
        self._status(message.text, error=True)
        self._error_job = message.job
        self.post_message(self.DataFailed(message.text))

    # ------------------------------------------------------------------------- editor

    @on(PipelineEditor.Edited)
    def _edited(self, message: PipelineEditor.Edited) -> None:
        message.stop()
        self.transforms = list(message.transforms)
        self._refresh_samples(batch=True)
        self.post_message(self.PipelineChanged(message.transforms))

    @on(PipelineEditor.NormalizeEdited)
    def _normalize_edited(self, message: PipelineEditor.NormalizeEdited) -> None:
        message.stop()
        self.mean, self.std = message.mean, message.std
        self._refresh_samples(batch=True)
        self.post_message(self.NormalizeChanged(message.mean, message.std))

    # ------------------------------------------------------------------------- actions

    def action_reroll(self) -> None:
        """Draw fresh random augmentations of the same images."""
        self.reroll += 1
        self._refresh_samples()

    def action_page(self, delta: int) -> None:
        """Show the next or previous page of images."""
        self.page = max(0, self.page + delta)
        self._refresh_samples()

    async def action_toggle_processed(self) -> None:
        """Show the images after the training (augmented) or the evaluation pipeline."""
        self.processed = "eval" if self.processed == "train" else "train"
        await self._redraw_grid()

    async def action_zoom(self, delta: int) -> None:
        """Draw the images larger or smaller."""
        i = ZOOMS.index(self.box) if self.box in ZOOMS else 0
        self.box = ZOOMS[max(0, min(len(ZOOMS) - 1, i + delta))]
        self.zoomed = True
        await self._redraw_grid()

    async def _redraw_grid(self) -> None:
        if self.sample_set is not None:
            await self.query_one(SampleGrid).show(self.sample_set, self.box, self.processed, self.page)

    @property
    def editor_shown(self) -> bool:
        """Whether the pipeline editor shows beside the samples."""
        return self.query_one(PipelineEditor).display

    def _room_after_toggle(self, editor: PipelineEditor, shown: bool) -> int:
        """The grid's content width once the editor beside it is shown or hidden (0: not known)."""
        grid = self.query_one(SampleGrid)
        width, editor_width = grid.scrollable_content_region.width, editor.styles.width.cells
        if not grid.size.width or editor_width is None:
            return 0
        return max(1, width - editor_width if shown else width + editor_width)

    def show_editor(self, shown: bool) -> None:
        """Show or hide the pipeline editor (its own display: a class on the pane would restyle every widget in it)."""
        self.query_one(PipelineEditor).display = shown

    async def action_toggle_editor(self) -> None:
        """Show the pipeline editor with the keyboard in its step list, or hide it to give the images the width."""
        editor = self.query_one(PipelineEditor)
        had_keyboard = editor.has_focus_within
        shown = not self.editor_shown
        room = self._room_after_toggle(editor, shown)
        self.show_editor(shown)
        self.post_message(self.EditorToggled(shown))
        if room:
            # Zoom and columns for the width the grid is about to get, so the layout the toggle needs anyway
            # draws them: fitted after it, they cost one or two more passes over the whole screen.
            await self._fit_box(room)
            self.query_one(SampleGrid).fit_columns(room)
        self.call_after_refresh(self._fit_box)  # the grid's width as laid out (a small terminal also hides the form)
        if shown:
            self.screen.set_focus(editor.steps)  # now, not deferred: a key typed with o goes there ("oa")
        elif had_keyboard:
            self._focus_view()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Escape is ours only in the editor's step list (the form's escape is the editor's); elsewhere the cockpit's."""
        return action != "leave_editor" or self.query_one(PipelineEditor).has_focus_within

    def action_leave_editor(self) -> None:
        """Escape in the step list: the keyboard to the view shown, where the pane's keys (o, >, ...) work; taken out
        of the pane by the cockpit's escape, it left them doing nothing until 2 was pressed again."""
        self._focus_view()

    def action_compute_normalize(self) -> None:
        """Compute per-channel mean and std over the training images and fill the Normalize fields."""
        if self.bundle is None:
            self.notify("no data set loaded yet", severity="warning")
            return
        self._cancel.set()
        self._cancel = threading.Event()
        self.query_one(StatsView).show_channels(None, "computing…")
        self._start(jobs.compute_channels, self.bundle.train, self._cancel)

    def action_tab(self, delta: int) -> None:
        """Switch to the next or previous view."""
        tabs = self.query_one(TabbedContent)
        current = self.TABS.index(tabs.active) if tabs.active in self.TABS else 0
        tabs.active = self.TABS[(current + delta) % len(self.TABS)]
        # The view that had the keyboard is hidden now. Focus the one shown at once: queued behind this pane's
        # messages (a gallery being built), the keyboard would have nowhere to go and the next < or > be lost.
        self._focus_view()

    def _focus_view(self) -> None:
        """Give the keyboard to the view shown (the samples grid, the statistics, the evaluation), so the pane's
        keys keep working."""
        view = dict(zip(self.TABS, (SampleGrid, StatsView, EvaluationView))).get(self.query_one(TabbedContent).active)
        if view is not None:
            self.screen.set_focus(self.query_one(view))  # now, not deferred: the key typed next goes there

    def _status(self, text: str, error: bool = False) -> None:
        self._error_job = None
        status = self.query_one("#status", Static)
        status.update(text)
        status.set_class(error, "-error")

    def on_unmount(self) -> None:
        self._cancel.set()

