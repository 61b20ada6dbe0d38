"""A form bound to configuration fields: validated as you type, each invalid field marked with its reason."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.validation import ValidationResult, Validator
from textual.widgets import Checkbox, Input, Label, Select, Static

from ptviz.engine import config as cfgmod

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


# Labels that would wrap in the label column: the early-stopping fields read as one group.
LABELS = {
    "train.early_stop_metric": "early stop on",
    "train.early_stop_mode": "stop mode",
    "train.early_stop_patience": "stop patience",
    "train.early_stop_min_delta": "stop min delta",
}


def _label(path: str) -> str:
    return LABELS.get(path) or path.split(".", 1)[1].replace("_", " ")


class ConfigForm(VerticalScroll):
    """Rows of label + editor for the given field paths; posts FieldChanged for every valid edit."""

    DEFAULT_CSS = """
    ConfigForm { height: 1fr; padding: 0 1; scrollbar-size-vertical: 1; }
    ConfigForm .row { height: auto; }
    ConfigForm .row Label { width: 17; padding: 0 1 0 0; color: $text-muted; }
    ConfigForm .row Input { height: 1; border: none; padding: 0 1; width: 1fr; background: $boost; }
    ConfigForm .row Input:focus { background: $accent 30%; }
    ConfigForm .row Input.-invalid { background: $error 30%; border: none; }
    ConfigForm .row Input.-invalid:focus { background: $error 45%; border: none; }
    ConfigForm .row Select { width: 1fr; height: 1; }
    ConfigForm .row Select > SelectCurrent { border: none; height: 1; padding: 0 1; background: $boost; }
    ConfigForm .row Select:focus > SelectCurrent { background: $accent 30%; }
    ConfigForm .row Checkbox { height: 1; border: none; padding: 0 1; width: 7; background: $boost; }
    ConfigForm .row Checkbox:focus { background: $accent 30%; }
    ConfigForm .reason { color: $error; height: auto; max-height: 2; padding: 0 0 0 17; display: none; }
    ConfigForm .reason.-shown { display: block; }
    ConfigForm .section { color: $accent; text-style: bold; padding: 1 0 0 0; }
    ConfigForm .section.-first { padding: 0; }
    ConfigForm .row.-off { display: none; }
    ConfigForm .reason.-off { display: none; }
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
            with Horizontal(classes="row"):
                yield Label(_label(path))
                if "choices" in rule:
                    yield Select([(c, c) for c in rule["choices"]], value=value, allow_blank=False, id=wid)
                elif cfgmod.field_type(path) == "bool":
                    yield Checkbox("", value=value, id=wid)
                else:
                    yield OrderedInput(shown(path, value), id=wid, validators=[FieldValidator(path)],
                                validate_on=["changed", "submitted"], placeholder=PLACEHOLDERS.get(path, ""))
            yield Static("", classes="reason", id=wid + "-reason")
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
        return self.query_one("#f-" + path.replace(".", "-").replace("_", "-"))

    def show_value(self, path: str, value: Any) -> None:
        """Show a value set elsewhere (no FieldChanged is posted for it)."""
        widget = self.editor(path)
        with widget.prevent(Input.Changed, Select.Changed, Checkbox.Changed):
            widget.value = shown(path, value) if isinstance(widget, Input) else value
        self._mark(path, None)

    def show_only(self, paths: Collection[str] | None) -> None:
        """Hide the fields not in `paths` (None shows them all); a hidden field keeps its value."""
        for path in self.paths:
            off = paths is not None and path not in paths
            editor = self.editor(path)
            editor.parent.set_class(off, "-off")  # its row: label and editor
            self.query_one(f"#{editor.id}-reason").set_class(off, "-off")

    def shown_paths(self) -> list[str]:
        """The fields on show."""
        return [p for p in self.paths if not self.editor(p).parent.has_class("-off")]

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
        reason_widget = self.query_one("#" + self.editor(path).id + "-reason", Static)
        if reason:
            self.errors[path] = reason
            reason_widget.update(self._two_lines(f"↑ {reason}", reason_widget))
            reason_widget.tooltip = reason  # whole, where the two lines had to cut it
        else:
            self.errors.pop(path, None)
            reason_widget.update("")
            reason_widget.tooltip = None
        reason_widget.set_class(bool(reason), "-shown")

    def _two_lines(self, text: str, widget: Static) -> str:
        """`text` as it fits in two lines of the reason's width, cut with an ellipsis (start names it whole)."""
        width = self.scrollable_content_region.width - widget.styles.padding.left
        if width < 10:
            return text
        lines = Text(text).wrap(self.app.console, width)
        if len(lines) <= 2:
            return text
        return lines[0].plain.rstrip() + "\n" + lines[1].plain[: width - 1].rstrip() + "…"

    def on_resize(self) -> None:
        """Cut the reasons again for the new width."""
        for path, reason in list(self.errors.items()):
            self._mark(path, reason)

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
