"""The Model tab: the run form beside the layer tree, with a preview model built off the UI thread.

For a user task the preview is a copy of the task's model, materialised by one real batch through its loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.timer import Timer

from ptviz.engine import config as cfgmod
from ptviz.engine import trust
from ptviz.engine.commands import SetTrainable
from ptviz.engine.events import LayerStats, Notice, RunStarted, TrainableChanged

from ..config_form import ConfigForm
from ..messages import ConfigEdited, LogRequested, TaskPreviewDone
from .pane import ModelPane

RUN_FIELDS = [p for p in cfgmod.field_paths() if p.split(".")[0] in ("model", "optim", "train", "output")]
PREVIEW_FIELDS = {"model.name", "model.pretrained", "model.freeze_backbone", "model.num_classes", "model.freeze",
                  "data.dataset", "data.root", "data.transforms", "data.mean", "data.batch_size", "data.task"}
DEBOUNCE_SECONDS = 0.4


class ModelTab(Horizontal):
    """Edits model/optim/train/output fields and shows the model those fields build."""

    @dataclass
    class PreviewReady(Message):
        """A preview model and its summary were built on a worker thread."""

        model: Any
        summary: Any
        spec: str
        warning: str = ""  # what the configuration gets wrong without being invalid

    @dataclass
    class PreviewFailed(Message):
        """Building the preview model failed."""

        message: str
        details: str
        spec: str

    def __init__(self, config: cfgmod.RunConfig, unconfirmed_code: dict[str, str] | None = None, *,
                 task: Any = None, **kwargs):
        super().__init__(**kwargs)
        self.config = config  # the app's working copy, edited in place
        self.unconfirmed_code = unconfirmed_code if unconfirmed_code is not None else {}  # the app's, shared
        self.fit_task = task  # a Task object handed to ptviz.fit, else None
        self.preview_model = None
        self._timer: Timer | None = None
        self._warned = ""  # the configuration warning last written to the log
        self._freeze_reason = ""  # why the last preview could not apply model.freeze

    def compose(self) -> ComposeResult:
        yield ConfigForm(self.config, RUN_FIELDS, id="run-form", classes="form-column")
        yield ModelPane(id="model-pane")

    def on_mount(self) -> None:
        self.schedule_preview()

    # ------------------------------------------------------------------ preview

    def config_changed(self, path: str) -> None:
        """The app applied an edit; rebuild the preview when it changes the model."""
        if path in PREVIEW_FIELDS:
            self.schedule_preview()

    def schedule_preview(self) -> None:
        """Rebuild the preview shortly (edits in quick succession cause one build)."""
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(DEBOUNCE_SECONDS, self._build_preview)

    def _build_preview(self) -> None:
        held = trust.pending(self.config, self.unconfirmed_code)
        if held:  # building the preview would import it
            pane = self.query_one(ModelPane)
            pane.spec = self.config.model.name
            pane.error = (f"not built: this run folder names code ({', '.join(held.values())}) that runs only "
                          "once you confirm it")
            return
        if self.fit_task is not None or self.config.data.task:
            self.build_task_preview(self.config.copy(), self.fit_task)
        else:
            self.build_preview(self.config.copy())

    @work(thread=True, exclusive=True, group="model-preview", exit_on_error=False)
    def build_preview(self, config: cfgmod.RunConfig) -> None:
        """Build the configured model and summarize it (thread worker: torch work stays off the UI)."""
        try:
            from ptviz.engine.data.shapes import model_input
            from ptviz.engine.models.registry import build_model, random_backbone_warning
            from ptviz.engine.models.summary import sample_batch, summarize

            shape, classes = model_input(config.data, config.model.num_classes)
            model = build_model(config.model, shape, classes, allow_download=False)
            summary = summarize(model, sample_batch(model, shape), batch_size=config.data.batch_size)
            warning = random_backbone_warning(config.model, model) or ""
        except Exception as exc:  # noqa: BLE001 - any failure (user code included) is shown, never raised
            self.post_message(self.PreviewFailed(str(exc), _details(exc), config.model.name))
            return
        self.post_message(self.PreviewReady(model, summary, config.model.name, warning))

    @work(thread=True, exclusive=True, group="model-preview", exit_on_error=False)
    def build_task_preview(self, config: cfgmod.RunConfig, task: Any) -> None:
        """Summarize a copy of the task's model, materialised by one real batch (thread worker)."""
        from ptviz.engine.models.user import LOAD_LOCK

        spec = config.data.task or "ptviz.fit task"
        try:
            with LOAD_LOCK:  # never beside a run's own setup: both draw from the process's random streams
                if self.app.runner.active:  # type: ignore[attr-defined]
                    return
                from ptviz.engine.models.registry import apply_freeze_edits
                from ptviz.engine.models.summary import summarize
                from ptviz.engine.tasks.preview import model_preview, task_for

                preview = model_preview(task_for(config, task), config)
                apply_freeze_edits(preview.model, config.model.freeze)
                summary = summarize(preview.model, preview.args, batch_size=config.data.batch_size)
        except Exception as exc:  # noqa: BLE001 - any failure (user code included) is shown, never raised
            import traceback

            details = getattr(exc, "details", "") or traceback.format_exc()
            self.post_message(self.PreviewFailed(str(exc), details, spec))
            return
        finally:
            self.post_message(TaskPreviewDone("model"))
        self.post_message(self.PreviewReady(preview.model, summary, spec))

    @on(PreviewReady)
    def _preview_ready(self, message: PreviewReady) -> None:
        self.preview_model = message.model
        pane = self.query_one(ModelPane)
        pane.error = ""
        pane.spec = message.spec
        pane.summary = message.summary
        self._mark_freeze("")
        if message.warning and message.warning != self._warned:
            self.post_message(LogRequested(f"warning: {message.warning}", "yellow"))
        self._warned = message.warning  # said once per configuration, not once per preview

    @on(PreviewFailed)
    def _preview_failed(self, message: PreviewFailed) -> None:
        self.preview_model = None
        pane = self.query_one(ModelPane)
        pane.spec = message.spec
        pane.error = message.message
        self.post_message(LogRequested(f"model preview: {message.message}", "red", message.details))
        field, _, reason = message.message.partition(": ")
        self._mark_freeze(reason if field == "model.freeze" else "")

    def _mark_freeze(self, reason: str) -> None:
        """Mark model.freeze with an edit the model cannot apply (its text passed the field's own rule)."""
        form = self.query_one(ConfigForm)
        if reason:
            form.mark("model.freeze", reason)
        elif self._freeze_reason and form.errors.get("model.freeze") == self._freeze_reason:
            form.mark("model.freeze", None)
        self._freeze_reason = reason

    # ------------------------------------------------------------------ freezing and loading

    @on(ModelPane.FreezeRequested)
    def _freeze(self, message: ModelPane.FreezeRequested) -> None:
        message.stop()
        runner = self.app.runner  # type: ignore[attr-defined]
        if runner.active:
            runner.send(SetTrainable(message.module, message.trainable))  # the pane updates on TrainableChanged
            return
        from ptviz.engine.errors import ModelError
        from ptviz.engine.models.registry import set_trainable, with_freeze_edit

        if self.preview_model is not None:
            try:
                set_trainable(self.preview_model, message.module, message.trainable)
            except ModelError as exc:
                self.post_message(LogRequested(str(exc), "red"))
                return
        self.config.model.freeze = with_freeze_edit(self.config.model.freeze, message.module, message.trainable)
        self.query_one(ConfigForm).show_value("model.freeze", self.config.model.freeze)
        self.post_message(ConfigEdited("model.freeze"))
        self.query_one(ModelPane).apply_trainable(message.module, message.trainable)

    @on(ModelPane.ModelRequested)
    def _load(self, message: ModelPane.ModelRequested) -> None:
        message.stop()
        if self.fit_task is not None or self.config.data.task:
            self.query_one(ModelPane).error = "this run's model comes from its task (data.task); edit the task instead"
            return
        why = cfgmod.check_field("model.name", message.spec)
        if why:
            self.query_one(ModelPane).error = f"model.name: {why}"
            return
        self.config.model.name = message.spec
        self.config.model.freeze = []  # edits named the old model's modules
        form = self.query_one(ConfigForm)
        form.show_value("model.name", message.spec)
        form.show_value("model.freeze", [])
        self.post_message(ConfigEdited("model.name"))
        self.schedule_preview()

    def engine_event(self, event: object) -> None:
        """Reflect a freeze the running loop applied, and the run's layer health."""
        pane = self.query_one(ModelPane)
        if isinstance(event, TrainableChanged):
            pane.apply_trainable(event.module, event.trainable)
        elif isinstance(event, LayerStats):
            pane.health_sample(event)
        elif isinstance(event, Notice) and event.level == "warning" and event.text.startswith("layer "):
            pane.health_note(event.text)
        elif isinstance(event, RunStarted) and not event.start_step:
            pane.health_reset()


def _details(exc: Exception) -> str:
    """The traceback worth logging: user code's own, none for a user error (its message says it all)."""
    from ptviz.engine.errors import UserError

    details = getattr(exc, "details", "")
    if details or isinstance(exc, UserError):
        return details
    import traceback

    return "".join(traceback.format_exception(exc))
