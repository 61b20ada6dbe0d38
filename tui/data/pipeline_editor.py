"""The pipeline editor: transforms in order, then Normalize; add, remove, reorder and set parameters by keyboard."""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.validation import ValidationResult, Validator
from textual.widgets import Input, Label, ListItem, ListView, OptionList, Static
from textual.widgets.option_list import Option

from ptviz.engine import config as cfgmod
from ptviz.engine.transform_specs import CATALOGUE, ParamSpec, TransformSpec

from ..ordered_input import OrderedInput
from .step_list import StepList

SIZED = ("Resize", "CenterCrop", "RandomCrop")  # transforms whose new size starts at the current image size


def parse_param(param: ParamSpec, text: str) -> tuple[float | None, str | None]:
    """(value, None) for text the parameter accepts, else (None, why not)."""
    try:
        number = float(text)
    except ValueError:
        return None, f"{text.strip()!r} is not a number" if text.strip() else "needs a value"
    value: float = int(number) if param.kind is int and number.is_integer() else number
    why = param.check(value)
    return (None, why) if why else (value, None)


def parse_normalize(mean_text: str, std_text: str, channels: int) -> tuple[tuple, tuple, dict[str, str]]:
    """(mean, std, {field: why}) for the Normalize fields; the dict is empty when both are fine."""
    problems: dict[str, str] = {}
    values: dict[str, tuple] = {"mean": (), "std": ()}
    for name, text in (("mean", mean_text), ("std", std_text)):
        try:
            values[name] = cfgmod.parse_text(f"data.{name}", text)
        except ValueError as exc:
            problems[name] = str(exc)
            continue
        why = cfgmod.check_field(f"data.{name}", values[name])
        if why:
            problems[name] = why
    mean, std = values["mean"], values["std"]
    if not problems:
        if len(std) != len(mean):
            problems["std"] = f"needs one value per mean value ({len(mean)})"
        elif mean and len(mean) not in (1, channels):
            problems["mean"] = f"the images have {channels} channel(s); give 1 or {channels} values"
    return mean, std, problems


class ParamValidator(Validator):
    """Accepts what one transform parameter allows (its type and range)."""

    def __init__(self, param: ParamSpec):
        super().__init__()
        self.param = param

    def validate(self, value: str) -> ValidationResult:  # noqa: D102
        why = parse_param(self.param, value)[1]
        return self.failure(why) if why else self.success()


class NormalizeValidator(Validator):
    """Accepts a Normalize mean or std that fits the images and the other field."""

    def __init__(self, editor: PipelineEditor, name: str):
        super().__init__()
        self.editor = editor
        self.name = name

    def validate(self, value: str) -> ValidationResult:  # noqa: D102
        # While the form is being built the other field may not exist yet: take the value held.
        held = {"mean": cfgmod.format_value(self.editor.mean), "std": cfgmod.format_value(self.editor.std)}
        texts = {**held, **self.editor.field_texts(), self.name: value}
        why = parse_normalize(texts.get("mean", ""), texts.get("std", ""), self.editor.channels)[2].get(self.name)
        return self.failure(why) if why else self.success()


class AddTransformScreen(ModalScreen[str | None]):
    """Choose a transform from the catalogue to add to the pipeline."""

    DEFAULT_CSS = """
    AddTransformScreen {
        align: center middle;
    }
    AddTransformScreen > Vertical {
        width: 72;
        max-width: 100%;
        height: auto;
        max-height: 90%;
        border: round $accent;
        background: $surface;
        padding: 0 1;
    }
    AddTransformScreen OptionList {
        height: auto;
        max-height: 16;
    }
    """
    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Add a transform (enter adds, escape cancels)")
            yield OptionList(*(Option(f"{k.name} - {k.help}", id=k.name) for k in CATALOGUE.values()))

    def on_screen_resume(self) -> None:
        self.query_one(OptionList).highlighted = 0  # each time from the top, as a new list would be

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)


ADD_SCREEN = "add-transform"  # the name AddTransformScreen is installed under


def step_text(spec: TransformSpec) -> str:
    """A short line for the list: the call with its values in parameter order, RandomCrop(32, 4)."""
    return f"{spec.name}({', '.join(cfgmod.format_value(v) for v in spec.resolved().values())})"


def kind_text(spec: TransformSpec) -> str:
    """What the transform does and when it runs."""
    kind = spec.kind
    if kind is None:
        return spec.name
    when = "random, training only" if kind.random else "training and evaluation"
    return f"{spec.name}: {kind.help} ({when})"


class PipelineEditor(Vertical):
    """The transform list with a parameter form for the highlighted step; Normalize is always last."""

    DEFAULT_CSS = """
    PipelineEditor {
        width: 30;
        height: 1fr;
        border-right: vkey $panel-lighten-2;
        padding: 0 1 0 0;
    }
    PipelineEditor > .title {
        text-style: bold;
    }
    PipelineEditor > ListView {
        height: auto;
        max-height: 50%;
    }
    PipelineEditor ListItem > Label {
        width: 1fr;
    }
    PipelineEditor > #params {
        height: 1fr;
    }
    PipelineEditor .param-label {
        width: 100%;
        color: $text-muted;
        margin-top: 1;
    }
    PipelineEditor .field-error {
        width: 100%;
        color: $error;
    }
    PipelineEditor > .hint {
        color: $text-muted;
        dock: bottom;
    }
    """
    BINDINGS = [
        Binding("a", "add", "Add step"),
        Binding("d,delete", "remove", "Remove step"),
        Binding("shift+up,ctrl+up", "move(-1)", "Move up"),
        Binding("shift+down,ctrl+down", "move(1)", "Move down"),
        Binding("escape", "back", show=False),
    ]

    @dataclass
    class Edited(Message):
        """The transform list changed and every parameter in it is valid."""

        transforms: tuple[TransformSpec, ...]

    @dataclass
    class NormalizeEdited(Message):
        """The Normalize mean and std were edited and are valid."""

        mean: tuple[float, ...]
        std: tuple[float, ...]

    def __init__(self, *, id: str | None = None):
        super().__init__(id=id)
        self.transforms: list[TransformSpec] = []
        self.mean: tuple[float, ...] = ()
        self.std: tuple[float, ...] = ()
        self.channels = 1
        self.image_size = 32  # default size of a newly added Resize/crop
        self.problems: dict[str, str] = {}  # field name -> why, for the form shown
        self._form_index: int | None = None  # the step whose parameters the form shows
        # Rebuilding the list and the form takes several awaits; a second rebuild (a new pipeline arriving
        # while a step is added) or a highlight landing in between would see a half-built list.
        self._lock = asyncio.Lock()

    def compose(self) -> ComposeResult:
        yield Label("Pipeline", classes="title")
        yield StepList(self._open_form, id="steps")
        yield VerticalScroll(id="params", can_focus=False)
        yield Static("a add · d remove\nshift+↑/↓ move\nenter edit · esc back", classes="hint")

    @property
    def steps(self) -> ListView:
        """The list of steps (transforms, then Normalize)."""
        return self.query_one("#steps", ListView)

    async def set_pipeline(self, transforms: list[TransformSpec], mean: tuple[float, ...], std: tuple[float, ...],
                           channels: int, image_size: int) -> None:
        """Show a pipeline (copied) for editing."""
        self.transforms = copy.deepcopy(list(transforms))
        self.mean, self.std = tuple(mean), tuple(std)
        self.channels, self.image_size = channels, image_size
        await self._rebuild(self.steps.index or 0)

    async def set_normalize(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        """Fill the Normalize fields with new values (for example computed from the data)."""
        self.mean, self.std = tuple(mean), tuple(std)
        await self._rebuild(self.steps.index or 0)

    # ------------------------------------------------------------------------- list

    async def _rebuild(self, index: int) -> None:
        async with self._lock:
            steps = self.steps
            await steps.clear()
            items = [ListItem(Label(f"{i + 1} {step_text(s)}")) for i, s in enumerate(self.transforms)]
            items.append(ListItem(Label(f"{len(self.transforms) + 1} {self._normalize_text()}")))
            await steps.extend(items)
            index = max(0, min(index, len(items) - 1))
            steps.index = index
            await self._build_form(index)

    def _normalize_text(self) -> str:
        if not self.mean:
            return "Normalize: off"
        return f"Normalize({cfgmod.format_value(self.mean)}; {cfgmod.format_value(self.std)})"

    @on(ListView.Highlighted, "#steps")
    async def _highlighted(self, event: ListView.Highlighted) -> None:
        async with self._lock:
            index = self.steps.index  # now, not when the event was sent: a rebuild may have run since
            if index is not None and index != self._form_index:
                await self._build_form(index)

    @on(ListView.Selected, "#steps")
    def _selected(self) -> None:
        """A click on a step: into its form."""
        inputs = self.query("#params Input")
        if inputs:
            inputs.first().focus()

    async def _open_form(self) -> bool:
        """Put the keyboard in the first field of the highlighted step's form, now (the step list's enter runs as
        the app routes keys: the keys typed after it go to the field); False when the form has no field."""
        async with self._lock:
            index = self.steps.index
            if index is not None and index != self._form_index:  # a cursor key moved on in the same read
                await self._build_form(index)
        inputs = self.query("#params Input")
        if not inputs:
            return False
        self.screen.set_focus(inputs.first())
        return True

    def action_add(self) -> None:
        """Choose a transform and insert it after the highlighted step."""
        # One catalogue screen for the app's life: composing and mounting its list again at every a laid the
        # screen out twice more.
        if not self.app.is_screen_installed(ADD_SCREEN):
            self.app.install_screen(AddTransformScreen(), ADD_SCREEN)
        self.app.push_screen(ADD_SCREEN, self._add)

    async def _add(self, name: str | None) -> None:
        if name is None:
            return
        kind = CATALOGUE[name]
        params = dict(kind.defaults())
        if name in SIZED:
            params["size"] = self.image_size
        where = min(len(self.transforms), (self.steps.index or 0) + 1)
        self.transforms.insert(where, TransformSpec(name, params))
        await self._rebuild(where)
        self._changed()
        self.steps.focus()

    async def action_remove(self) -> None:
        """Remove the highlighted transform (Normalize is switched off through its fields instead)."""
        index = self.steps.index
        if index is None or index >= len(self.transforms):
            self.notify("Normalize stays last; clear its mean and std to switch it off", severity="warning")
            return
        del self.transforms[index]
        await self._rebuild(index)
        self._changed()

    async def action_move(self, delta: int) -> None:
        """Move the highlighted transform up or down (never past Normalize)."""
        index = self.steps.index
        if index is None or index >= len(self.transforms):
            return
        target = index + delta
        if not 0 <= target < len(self.transforms):
            return
        self.transforms[index], self.transforms[target] = self.transforms[target], self.transforms[index]
        await self._rebuild(target)
        self._changed()

    def _changed(self) -> None:
        self.post_message(self.Edited(tuple(copy.deepcopy(self.transforms))))

    # ------------------------------------------------------------------------- parameter form

    async def _build_form(self, index: int) -> None:
        self._form_index = index
        form = self.query_one("#params", VerticalScroll)
        await form.remove_children()
        self.problems = {}
        rows: list = []
        if index < len(self.transforms):
            spec = self.transforms[index]
            kind = spec.kind
            values = spec.resolved()
            rows.append(Label(kind_text(spec), classes="param-label"))
            for param in kind.params if kind else ():
                rng = f"{param.low:g}..{param.high:g}" if param.low is not None and param.high is not None else ""
                rows += [Label(f"{param.name} ({rng}) {param.help}", classes="param-label"),
                         OrderedInput(cfgmod.format_value(values[param.name]), name=param.name, compact=True,
                               validators=[ParamValidator(param)]),
                         Label("", classes="field-error", name=param.name)]

        else:
            count = "1 value" if self.channels == 1 else f"1 or {self.channels} values"
            rows.append(Label("Normalize: (x - mean) / std per channel, after the transforms; "
                              "clear both to switch it off", classes="param-label"))
            for name, value in (("mean", self.mean), ("std", self.std)):
                rows += [Label(f"{name} per channel ({count})", classes="param-label"),
                         OrderedInput(cfgmod.format_value(value), name=name, compact=True,
                               validators=[NormalizeValidator(self, name)]),
                         Label("", classes="field-error", name=name)]
        await form.mount_all(rows)

    @on(Input.Changed, "#params Input")
    def _param_changed(self, event: Input.Changed) -> None:
        event.stop()
        index = self.steps.index
        if index is None:
            return
        if index < len(self.transforms):
            self._edit_transform(index, event.input)
        else:
            self._edit_normalize()

    @on(Input.Submitted, "#params Input")
    def _param_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if not self.problems:
            self.steps.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Escape in the list is the cockpit's (it leaves the editor); in the form it is ours."""
        return not (action == "back" and self.steps.has_focus)

    def action_back(self) -> None:
        """Escape in the form goes back to the list (a binding: the cockpit's escape would take the keyboard
        out of the editor before a key handler of ours saw it)."""
        self.steps.focus()

    def _edit_transform(self, index: int, field: Input) -> None:
        spec = self.transforms[index]
        param = next(p for p in spec.kind.params if p.name == field.name)  # type: ignore[union-attr]
        value, why = parse_param(param, field.value)
        self._mark(field.name or "", why)
        if why is None and value != spec.resolved()[param.name]:
            spec.params[param.name] = value  # type: ignore[assignment]
            self._relabel(index, step_text(spec))
            if not self.problems:
                self._changed()

    def errors(self) -> list[str]:
        """The invalid fields of the form shown, named by step: 'data.transforms: RandomCrop size must be >= 1'."""
        index = self._form_index
        step = self.transforms[index].name if index is not None and index < len(self.transforms) else "Normalize"
        return [f"data.transforms: {step} {name} {why}" for name, why in self.problems.items()]

    def field_texts(self) -> dict[str, str]:
        """The text of every field of the form shown, by name."""
        return {i.name or "": i.value for i in self.query("#params Input").results(Input)}

    def _edit_normalize(self) -> None:
        texts = self.field_texts()
        if (texts.get("mean"), texts.get("std")) == (cfgmod.format_value(self.mean), cfgmod.format_value(self.std)):
            # The fields show the values held (rounded for display): nothing was edited.
            for name in ("mean", "std"):
                self._mark(name, None)
            return
        mean, std, problems = parse_normalize(texts.get("mean", ""), texts.get("std", ""), self.channels)
        for widget in self.query("#params Input").results(Input):
            widget.validate(widget.value)  # one field's value can make the other right or wrong
        for name in ("mean", "std"):
            self._mark(name, problems.get(name))
        if not problems and (mean, std) != (self.mean, self.std):
            self.mean, self.std = mean, std
            self._relabel(len(self.transforms), self._normalize_text())
            self.post_message(self.NormalizeEdited(mean, std))

    def _mark(self, name: str, why: str | None) -> None:
        """Show (or clear) why a field's value is refused under that field (its validator colours it)."""
        for label in self.query("#params .field-error").results(Label):
            if label.name == name:
                label.update(f"{name} {why}" if why else "")
                if why:
                    label.scroll_visible()
        if why:
            self.problems[name] = why
        else:
            self.problems.pop(name, None)

    def _relabel(self, index: int, text: str) -> None:
        item = self.steps.children[index]
        item.query_one(Label).update(f"{index + 1} {text}")
