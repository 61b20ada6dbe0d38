"""The Data tab: recipe and data form beside the data pane (samples, pipeline, statistics, evaluation)."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Label, Select

from ptviz.engine import config as cfgmod
from ptviz.engine.events import Evaluated
from ptviz.engine.recipes import RECIPES

from ..config_form import ConfigForm
from .pane import DataPane
from .pipeline_editor import PipelineEditor
from ..messages import ConfigEdited, LogRequested

DATA_FIELDS = [p for p in cfgmod.field_paths() if p.startswith("data.")]
DEBOUNCE_SECONDS = 0.4


class DataTab(Horizontal):
    """Edits the data fields and shows what the data and its pipeline look like."""

    class RecipeChosen(Message):
        """The user picked a preset from the recipe list."""

        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

    def __init__(self, config: cfgmod.RunConfig, **kwargs):
        super().__init__(**kwargs)
        self.config = config  # the app's working copy, edited in place
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="form-column"):
            with Horizontal(id="recipe-row"):
                yield Label("recipe")
                choice = self.config.recipe if self.config.recipe in RECIPES else Select.BLANK
                yield Select([(name, name) for name in RECIPES], value=choice, allow_blank=True,
                             prompt="choose a preset…", id="recipe")
            yield ConfigForm(self.config, DATA_FIELDS, id="data-form")
        yield DataPane(id="data-pane")

    def on_mount(self) -> None:
        self.refresh_pane()

    def set_compact(self, compact: bool) -> None:
        """On a small terminal the pipeline editor starts hidden (the form's transforms field edits it too)."""
        self.query_one(DataPane).set_class(compact, "-editor-hidden")
        self.set_class(not compact, "-editing")

    @on(DataPane.EditorToggled)
    def _editor_toggled(self, event: DataPane.EditorToggled) -> None:
        # On a small terminal the editor takes the form's place, so the preview beside it keeps its width.
        self.set_class(event.shown, "-editing")

    def pipeline_errors(self) -> list[str]:
        """Every invalid transform parameter the pipeline editor shows."""
        return [error for editor in self.query(PipelineEditor) for error in editor.errors()]

    def config_changed(self, path: str) -> None:
        """The app applied an edit; follow it in the pane shortly (quick edits cause one reload)."""
        if path.startswith("data."):
            self.refresh_pane()

    def refresh_pane(self) -> None:
        """Show the current configuration in the data pane after a short pause."""
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(DEBOUNCE_SECONDS, lambda: self.query_one(DataPane).show_config(self.config))

    def engine_event(self, event: object) -> None:
        """Show test-set evaluations (epoch ends and evaluate-now) in the pane's evaluation view."""
        if isinstance(event, Evaluated) and event.split == "test":
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
