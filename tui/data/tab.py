"""The Data tab: recipe and data form beside the data pane (samples, pipeline, statistics, evaluation), or
beside a user task's samples when data.task names one (or ptviz.fit handed the cockpit a Task)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Label, Select, Static

from ptviz.engine import config as cfgmod
from ptviz.engine import trust
from ptviz.engine.events import Evaluated, RunStarted
from ptviz.engine.recipes import RECIPES

from ..config_form import ConfigForm
from .pane import DataPane
from .pipeline_editor import PipelineEditor
from .task_view import TaskDataView
from ..messages import ConfigEdited, LogRequested, TaskPreviewDone

DATA_FIELDS = [p for p in cfgmod.field_paths() if p.startswith("data.")]
DEBOUNCE_SECONDS = 0.4
TASK_NOTE = ("A task brings its own data: of the data settings it uses the batch sizes and workers. The data "
             "set, files, image pipeline and normalisation are for the built-in data sets (kept, hidden, for "
             "when data.task is cleared).")


class DataTab(Horizontal):
    """Edits the data fields and shows what the data and its pipeline look like."""

    class RecipeChosen(Message):
        """The user picked a preset from the recipe list."""

        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

    @dataclass
    class TaskViewReady(Message):
        """A page of a task's samples was read on a worker thread."""

        view: Any

    @dataclass
    class TaskViewFailed(Message):
        """The task could not be loaded or its samples read."""

        text: str
        details: str

    def __init__(self, config: cfgmod.RunConfig, *, task: Any = None, unconfirmed_code: dict[str, str] | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.config = config  # the app's working copy, edited in place
        self.fit_task = task  # a Task object handed to ptviz.fit, else None (config.data.task names a factory)
        self.unconfirmed_code = unconfirmed_code if unconfirmed_code is not None else {}  # the app's, shared
        self.task_page = 0
        self.compact = False  # a small terminal: the pipeline editor, when shown, takes the form's place
        self.class_names: tuple[str, ...] = ()
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="form-column"):
            with Horizontal(id="recipe-row"):
                yield Label("recipe")
                choice = self.config.recipe if self.config.recipe in RECIPES else Select.BLANK
                yield Select([(name, name) for name in RECIPES], value=choice, allow_blank=True,
                             prompt="choose a preset…", id="recipe")
            yield Static(TASK_NOTE, id="task-fields-note", classes="-off")
            yield ConfigForm(self.config, DATA_FIELDS, id="data-form")
        yield DataPane(id="data-pane")
        yield TaskDataView(id="task-data")

    def on_mount(self) -> None:
        self.refresh_pane()

    def set_compact(self, compact: bool) -> None:
        """On a small terminal the pipeline editor starts hidden (the form's transforms field edits it too)."""
        self.compact = compact
        self.query_one(DataPane).show_editor(not compact)
        self._fit_form()

    @on(DataPane.EditorToggled)
    def _editor_toggled(self, event: DataPane.EditorToggled) -> None:
        self._fit_form()

    def _fit_form(self) -> None:
        # On a small terminal the editor takes the form's place, so the preview beside it keeps its width. The
        # form's own display, not a class on the tab: a class would restyle every widget in it at each o.
        self.query_one(".form-column").display = not (self.compact and self.query_one(DataPane).editor_shown)

    def pipeline_errors(self) -> list[str]:
        """Every invalid transform parameter the pipeline editor shows."""
        return [error for editor in self.query(PipelineEditor) for error in editor.errors()]

    @property
    def has_task(self) -> bool:
        """Whether the tab shows a user task rather than a built-in data set."""
        return self.fit_task is not None or bool(self.config.data.task)

    def config_changed(self, path: str) -> None:
        """The app applied an edit; follow it in the pane shortly (quick edits cause one reload)."""
        if path == "data.task":
            self._fit_fields()
        if path == "data.task" or (path.startswith("data.") and not self.has_task):
            self.task_page = 0
            self.refresh_pane()

    def refresh_pane(self) -> None:
        """Show the current configuration in the data pane after a short pause."""
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(DEBOUNCE_SECONDS, self._show)

    def _fit_fields(self) -> None:
        """A task run's form holds only the data fields a task reads, and says why."""
        task = self.has_task
        self.query_one(ConfigForm).show_only(cfgmod.TASK_DATA_FIELDS if task else None)
        self.query_one("#task-fields-note").set_class(not task, "-off")

    def _show(self) -> None:
        self._fit_fields()
        task = self.has_task
        self.query_one(DataPane).display = not task
        self.query_one(TaskDataView).display = task
        if not task:
            self.query_one(DataPane).show_config(self.config)
        elif "data.task" in trust.pending(self.config, self.unconfirmed_code):  # loading it would import it
            self.query_one(TaskDataView).status(f"not loaded: this run folder names the task {self.config.data.task}, "
                                                "whose code runs only once you confirm it")
        else:
            self.query_one(TaskDataView).status(f"loading task {self.config.data.task or 'from ptviz.fit'}…")
            self.load_task_view(self.config.copy(), self.fit_task, self.task_page)

    @work(thread=True, exclusive=True, group="task-view", exit_on_error=False)
    def load_task_view(self, config: cfgmod.RunConfig, task: Any, page: int) -> None:
        """Load the task (its factory runs here) and read a page of its training samples (thread worker)."""
        from ptviz.engine.models.user import LOAD_LOCK

        try:
            with LOAD_LOCK:  # never beside a run's own setup: both draw from the process's random streams
                if self.app.runner.active:  # type: ignore[attr-defined]
                    return
                from ptviz.engine.tasks.preview import task_for, task_view

                view = task_view(task_for(config, task), config.train.seed, page)
        except Exception as exc:  # noqa: BLE001 - user code may fail in any way; shown, never raised
            import traceback

            details = getattr(exc, "details", "") or traceback.format_exc()
            self.post_message(self.TaskViewFailed(str(exc), details))
            return
        finally:
            self.post_message(TaskPreviewDone("data"))
        self.post_message(self.TaskViewReady(view))

    @on(TaskViewReady)
    async def _task_view_ready(self, message: TaskViewReady) -> None:
        await self.query_one(TaskDataView).show(message.view)

    @on(TaskViewFailed)
    def _task_view_failed(self, message: TaskViewFailed) -> None:
        self.query_one(TaskDataView).status(message.text, error=True)
        self.post_message(LogRequested(f"data: {message.text}", "red", message.details))

    @on(TaskDataView.PageRequested)
    def _task_page(self, message: TaskDataView.PageRequested) -> None:
        message.stop()
        if self.app.runner.active:  # type: ignore[attr-defined]
            self.notify("samples are read between runs, not during one", severity="warning")
            return
        self.task_page = max(0, self.task_page + message.delta)
        self.load_task_view(self.config.copy(), self.fit_task, self.task_page)

    def engine_event(self, event: object) -> None:
        """Show test-set evaluations (epoch ends and evaluate-now) in the pane's evaluation view."""
        if isinstance(event, RunStarted):
            self.class_names = event.class_names
        if isinstance(event, Evaluated) and event.split == "test":
            if self.has_task:
                self.query_one(TaskDataView).show_evaluation(event, self.class_names)
            else:
                self.query_one(DataPane).show_evaluation(event)

    @on(Select.Changed, "#recipe")
    def _recipe(self, event: Select.Changed) -> None:
        event.stop()
        if event.value is not Select.BLANK and event.value != self.config.recipe:
            self.post_message(self.RecipeChosen(str(event.value)))

    # ------------------------------------------------------------------ edits made in the pane

    def _set(self, path: str, value) -> None:
        cfgmod.set_value(self.config, path, value)
        self.query_one(ConfigForm).show_value(path, value)
        self.post_message(ConfigEdited(path))

    @on(DataPane.PipelineChanged)
    def _pipeline(self, message: DataPane.PipelineChanged) -> None:
        message.stop()
        self._set("data.transforms", list(message.transforms))

    @on(DataPane.NormalizeChanged)
    @on(DataPane.NormalizeComputed)
    def _normalize(self, message: DataPane.NormalizeChanged | DataPane.NormalizeComputed) -> None:
        message.stop()
        self._set("data.mean", tuple(message.mean))
        self._set("data.std", tuple(message.std))
        if isinstance(message, DataPane.NormalizeComputed):
            mean = ", ".join(f"{v:.4f}" for v in message.mean)
            std = ", ".join(f"{v:.4f}" for v in message.std)
            self.post_message(LogRequested(f"Normalize set from the training data: mean ({mean}), std ({std})"))

    @on(DataPane.DataFailed)
    def _failed(self, message: DataPane.DataFailed) -> None:
        message.stop()
        self.post_message(LogRequested(f"data: {message.text}", "red"))
