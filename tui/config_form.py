"""A form bound to configuration fields: validated as you type, each invalid field marked with its reason."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.validation import ValidationResult, Validator
from textual.widgets import Checkbox, Input, Label, Select, Static

from ptviz.engine import config as cfgmod

from .field_reason import FieldReason
from .ordered_input import OrderedInput


class FieldValidator(Validator):
    """Parses the text as the field's type and applies the field's rule."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def validate(self, value: str) -> ValidationResult:
        """Success, or failure carrying the reason."""
        try:
            parsed = parse_field(self.path, value)
        except ValueError as exc:
            return self.failure(str(exc))
        why = cfgmod.check_field(self.path, parsed)
        return self.failure(why) if why else self.success()


# Fields whose 0 means something other than a count: the field shows empty, its placeholder says what 0 means.
ZERO_MEANS = {
    "model.num_classes": "0: from the data set",
    "train.max_steps": "0: no limit",
    "output.checkpoint_every": "0: only last and best",
    "output.checkpoint_steps": "0: off",
    "output.checkpoint_minutes": "0: off",
    "output.print_every": "0: epoch lines only",
    "optim.warmup_steps": "0: off",
    "train.threads": "0: auto, a thread per idle core",
    "train.clip_norm": "0: off",
    "train.ema_decay": "0: off",
    "train.health_interval": "0: off",
    "train.spike_factor": "0: off",
}


def shown(path: str, value: Any) -> str:
    """The text a field's editor holds for `value` (empty where 0 means 'from the data set', 'off'...)."""
    return "" if path in ZERO_MEANS and value == 0 else cfgmod.format_value(value)


def parse_field(path: str, text: str) -> Any:
    """The value of a field's text (an empty field whose 0 has a meaning is 0)."""
    return 0 if path in ZERO_MEANS and not text.strip() else cfgmod.parse_text(path, text)


PLACEHOLDERS = {**ZERO_MEANS,
    "data.transforms": "none, e.g. RandomCrop(32, padding=4), RandomHorizontalFlip()",
    "data.mean": "none (no Normalize)",
    "output.runs_dir": "none: write nothing",
    "train.early_stop_metric": "none, or val_loss, test_accuracy, ema_test_loss...",
}


# Labels that would not fit the label column (a grid row is one line): the early-stopping fields read as one group.
LABELS = {
    "output.checkpoint_minutes": "checkpoint mins",
    "train.early_stop_metric": "early stop on",
    "train.early_stop_mode": "stop mode",
    "train.early_stop_patience": "stop patience",
    "train.early_stop_min_delta": "stop min delta",
}


LABEL_WIDTH = 17  # the label column of DEFAULT_CSS, the space before the editor included


def _label(path: str) -> str:
    return LABELS.get(path) or path.split(".", 1)[1].replace("_", " ")


class ConfigForm(VerticalScroll):
    """Rows of label + editor for the given field paths; posts FieldChanged for every valid edit."""

    # One grid of label and editor per field, no row containers: a tab switch lays out and paints every widget
    # of the form, so each widget less per field is ~50 fewer on the Model tab. A reason is mounted only while
    # its field is invalid, spanning both columns under the field.
    DEFAULT_CSS = """
    ConfigForm {
        layout: grid; grid-size: 2; grid-columns: 17 1fr; grid-rows: 1;
        height: 1fr; padding: 0 1; scrollbar-size-vertical: 1;
    }
    ConfigForm > Label { width: 17; padding: 0 1 0 0; color: $text-muted; }
    ConfigForm > Input { height: 1; border: none; padding: 0 1; width: 1fr; background: $boost; }
    ConfigForm > Input:focus { background: $accent 30%; }
    ConfigForm > Input.-invalid { background: $error 30%; border: none; }
    ConfigForm > Input.-invalid:focus { background: $error 45%; border: none; }
    ConfigForm > Select { width: 1fr; height: 1; }
    ConfigForm > Select > SelectCurrent { border: none; height: 1; padding: 0 1; background: $boost; }
    ConfigForm > Select:focus > SelectCurrent { background: $accent 30%; }
    ConfigForm > Checkbox { height: 1; border: none; padding: 0 1; width: 7; background: $boost; }
    ConfigForm > Checkbox:focus { background: $accent 30%; }
    ConfigForm > .reason { column-span: 2; padding: 0 0 0 17; }
    ConfigForm > .section { column-span: 2; row-span: 2; color: $accent; text-style: bold; padding: 1 0 0 0; }
    ConfigForm > .section.-first { row-span: 1; padding: 0; }
    """

    @dataclass
    class FieldChanged(Message):
        """A field now holds a valid new value."""

        form: ConfigForm
        path: str
        value: Any

    @dataclass
    class FieldInvalid(Message):
        """A field's text is not a valid value; reason says why."""

        form: ConfigForm
        path: str
        reason: str

    def __init__(self, config: cfgmod.RunConfig, paths: list[str], **kwargs):
        super().__init__(**kwargs)
        self.paths = paths
        self.initial = config
        self.errors: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        docs = cfgmod.field_docs()
        section = None
        for path in self.paths:
            head = path.split(".")[0]
            if head != section:
                yield Static(f"── {head} ──", classes="section" + (" -first" if section is None else ""), markup=False)
                section = head
            value = cfgmod.get_value(self.initial, path)
            wid = "f-" + path.replace(".", "-").replace("_", "-")
            rule = cfgmod._field(path).metadata
            yield Label(_label(path))
            if "choices" in rule:
                yield Select([(c, c) for c in rule["choices"]], value=value, allow_blank=False, id=wid)
            elif cfgmod.field_type(path) == "bool":
                yield Checkbox("", value=value, id=wid)
            else:
                yield OrderedInput(shown(path, value), id=wid, validators=[FieldValidator(path)],
                                  validate_on=["changed", "submitted"], placeholder=PLACEHOLDERS.get(path, ""))
            self.call_after_refresh(self._set_tooltip, wid, docs.get(path, ""))

    def _set_tooltip(self, wid: str, text: str) -> None:
        for widget in self.query(f"#{wid}"):
            widget.tooltip = text

    def path_of(self, widget_id: str | None) -> str | None:
        """The field path edited by the widget with this id."""
        if not widget_id or not widget_id.startswith("f-"):
            return None
        for path in self.paths:
            if "f-" + path.replace(".", "-").replace("_", "-") == widget_id:
                return path
        return None

    def editor(self, path: str):
        """The widget that edits `path`."""
        return self.get_child_by_id("f-" + path.replace(".", "-").replace("_", "-"))

    def show_value(self, path: str, value: Any) -> None:
        """Show a value set elsewhere (no FieldChanged is posted for it)."""
        widget = self.editor(path)
        with widget.prevent(Input.Changed, Select.Changed, Checkbox.Changed):
            widget.value = shown(path, value) if isinstance(widget, Input) else value
        self._mark(path, None)

    def show_only(self, paths: Collection[str] | None) -> None:
        """Hide the fields not in `paths` (None shows them all); a hidden field keeps its value."""
        children = list(self.children)
        for path in self.paths:
            on_show = paths is None or path in paths
            editor = self.editor(path)
            label = children[children.index(editor) - 1]  # the grid holds each field as label, editor
            label.display = editor.display = on_show
            for reason in self.query_children(f"#{editor.id}-reason"):
                reason.display = on_show and path in self.errors

    def shown_paths(self) -> list[str]:
        """The fields on show."""
        return [p for p in self.paths if self.editor(p).display]

    def load(self, config: cfgmod.RunConfig) -> None:
        """Show the values of `config` (e.g. after choosing another recipe)."""
        for path in self.paths:
            value = cfgmod.get_value(config, path)
            widget = self.editor(path)
            if isinstance(widget, Input):
                widget.value = shown(path, value)
            else:
                widget.value = value
            self._mark(path, None)

    def mark(self, path: str, reason: str | None) -> None:
        """Show (or clear, with None) a reason the field is wrong found beyond its own rule, e.g. by building."""
        self._mark(path, reason)

    def _mark(self, path: str, reason: str | None) -> None:
        # A field's reason is mounted the first time it is invalid and hidden, not removed, once it is fixed:
        # a removal finishes later, and the next invalid keystroke would mount a second widget with its id.
        editor = self.editor(path)
        widget = next(self.query_children(f"#{editor.id}-reason").results(FieldReason), None)
        if reason:
            self.errors[path] = reason
            if widget is None:
                self.mount(FieldReason(reason, id=f"{editor.id}-reason", classes="reason"), after=editor)
            else:
                widget.show(reason)
                widget.display = True
        else:
            self.errors.pop(path, None)
            if widget is not None:
                widget.display = False

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        event.stop()
        path = self.path_of(event.input.id)
        if path is None:
            return
        result = event.validation_result
        if result is not None and not result.is_valid:
            reason = "; ".join(result.failure_descriptions)
            self._mark(path, reason)
            self.post_message(self.FieldInvalid(self, path, reason))
            return
        self._mark(path, None)
        self._changed(path, parse_field(path, event.value))

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        event.stop()
        path = self.path_of(event.select.id)
        if path is not None and event.value is not Select.BLANK:
            self._changed(path, event.value)

    @on(Checkbox.Changed)
    def _checkbox_changed(self, event: Checkbox.Changed) -> None:
        event.stop()
        path = self.path_of(event.checkbox.id)
        if path is not None:
            self._changed(path, event.value)

    def _changed(self, path: str, value: Any) -> None:
        self.post_message(self.FieldChanged(self, path, value))
