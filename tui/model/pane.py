"""The model pane: the layer tree, the selected module's details, totals and a field to load another model."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Input, Label, Static, Tree

from ptviz.engine.events import LayerStats
from ptviz.engine.models.summary import ModelSummary, ModuleInfo

from . import format as fmt
from .health import HealthHistory
from .heatmap import HealthHeatmap
from .tree import ModelTree

SPEC_HINT = "resnet18, cnn, mnist-mlp, path/file.py:factory or package.module:factory; enter loads"


class ModelPane(Vertical):
    """Shows a ModelSummary and asks the app to freeze, unfreeze or load models; never touches a model itself."""

    DEFAULT_CSS = """
    ModelPane {
        height: 1fr;
        & > #model-header { height: 1; color: $text-muted; text-style: bold; }
        & > ModelTree { height: 1fr; }
        & > #model-detail { height: auto; max-height: 2; color: $text-muted; }
        & > #model-totals { height: auto; border-top: hkey $panel; }
        & > #model-error { height: auto; max-height: 6; color: $text-error; display: none; }
        & > #model-error.-shown { display: block; }
        & > #model-health-note { height: auto; max-height: 2; color: $text-warning; display: none; }
        & > #model-health-note.-shown { display: block; }
        & > #model-spec-row { height: 1; }
        & #model-spec-row > Label { width: auto; padding-right: 1; color: $text-muted; }
        & #model-spec-row > Input { width: 1fr; }
    }
    """

    BINDINGS = [
        Binding("m", "focus_spec", "Load model"),
        Binding("escape", "focus_tree", "Back to tree", show=False),
    ]

    summary: reactive[ModelSummary | None] = reactive(None, init=False)
    """What the pane shows; set a new value (or call apply_trainable) and the pane redraws."""

    spec = reactive("", init=False)
    """The loaded model's name as the user would type it."""

    error = reactive("", init=False)
    """Why the last requested model did not load; empty when it did."""

    @dataclass
    class FreezeRequested(Message):
        """The user asked to freeze (trainable=False) or unfreeze every parameter under `module` ("" = all)."""

        module: str
        trainable: bool

    @dataclass
    class ModelRequested(Message):
        """The user typed a model to load: a built-in name, path/file.py:factory or package.module:factory."""

        spec: str

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.health = HealthHistory()  # the run's samples of layer health
        self._health_waiting = False  # samples arrived while the pane was off screen: drawn when it shows

    def compose(self) -> ComposeResult:
        yield Static(id="model-header")
        yield ModelTree(id="model-tree")
        yield HealthHeatmap(id="model-heatmap")
        yield Static(id="model-health-note", markup=False)
        yield Static(id="model-detail")
        yield Static(id="model-totals")
        yield Static(id="model-error", markup=False)
        with Horizontal(id="model-spec-row"):
            yield Label("model")
            yield Input(placeholder=SPEC_HINT, compact=True, id="model-spec")

    def on_mount(self) -> None:
        """Draw whatever was set before mounting."""
        self._redraw()
        self.watch_spec(self.spec)
        self.watch_error(self.error)

    @property
    def tree(self) -> ModelTree:
        """The layer tree."""
        return self.query_one(ModelTree)

    def apply_trainable(self, module: str, trainable: bool) -> None:
        """Show that every parameter under `module` is now trainable (or frozen); the app has applied it."""
        if self.summary is not None:
            self.summary = self.summary.with_trainable(module, trainable)

    # ------------------------------------------------------------------------- layer health

    def health_sample(self, stats: LayerStats) -> None:
        """Keep one sample of layer health; show it in the tree's live columns and the heatmap now if the pane is
        on screen, else when it shows (repainting a hidden tab's tree takes the UI thread from training)."""
        self.health.add(stats)
        if self.is_on_screen:
            self._show_health()
        else:
            self._health_waiting = True

    def on_show(self) -> None:
        if self._health_waiting:
            self._show_health()

    def _show_health(self) -> None:
        self._health_waiting = False
        self.tree.show_health(self.health.latest)
        self.query_one(HealthHeatmap).show(self.health)

    def health_note(self, text: str) -> None:
        """Show the latest notice about a layer far from the rules of thumb under the tree."""
        note = self.query_one("#model-health-note", Static)
        note.update(f"⚠ {text}")
        note.add_class("-shown")

    def health_reset(self) -> None:
        """Forget the samples (a new run starts)."""
        self.health.clear()
        self._health_waiting = False
        self.tree.show_health({})
        self.query_one(HealthHeatmap).show(self.health)
        self.query_one("#model-health-note", Static).remove_class("-shown")

    # ------------------------------------------------------------------------- watchers

    def watch_summary(self) -> None:
        """Redraw tree, details and totals."""
        if self.is_mounted:
            self._redraw()

    def watch_spec(self, spec: str) -> None:
        """Put the loaded model's name in the field."""
        if self.is_mounted:
            self.query_one("#model-spec", Input).value = spec

    def watch_error(self, error: str) -> None:
        """Show (or hide) why a model did not load."""
        if self.is_mounted:
            box = self.query_one("#model-error", Static)
            box.update(error)
            box.set_class(bool(error), "-shown")

    def _redraw(self) -> None:
        tree = self.tree
        if self.summary is None:
            tree.clear_model()
        else:
            tree.show(self.summary)
        self._draw_header()
        self._draw_totals()
        self._draw_detail(tree.cursor_node.data if tree.cursor_node is not None else "")

    # ------------------------------------------------------------------------- handlers

    @on(ModelTree.ColumnsChanged)
    def _draw_header(self) -> None:
        self.query_one("#model-header", Static).update(self.tree.header())

    @on(ModelTree.FreezeKeyed)
    def _freeze_keyed(self, message: ModelTree.FreezeKeyed) -> None:
        message.stop()
        self.post_message(self.FreezeRequested(message.module, message.trainable))

    @on(Tree.NodeHighlighted)
    def _node_highlighted(self, message: Tree.NodeHighlighted) -> None:
        message.stop()
        self._draw_detail(message.node.data or "")

    @on(Input.Submitted, "#model-spec")
    def _spec_submitted(self, message: Input.Submitted) -> None:
        message.stop()
        spec = message.value.strip()
        if spec:
            self.error = ""
            self.post_message(self.ModelRequested(spec))

    def action_focus_spec(self) -> None:
        """Move to the model field."""
        self.query_one("#model-spec", Input).focus()

    def action_focus_tree(self) -> None:
        """Back to the tree."""
        self.tree.focus()

    # ------------------------------------------------------------------------- text

    def _draw_totals(self) -> None:
        self.query_one("#model-totals", Static).update(totals_text(self.summary))

    def _draw_detail(self, name: str) -> None:
        info = None
        if self.summary is not None:
            try:
                info = self.summary.module(name)
            except KeyError:
                pass
        self.query_one("#model-detail", Static).update(detail_text(info, self.summary) if info else "")


def totals_text(summary: ModelSummary | None) -> Text:
    """Two lines: parameter counts and memory, then activation memory and FLOPs."""
    if summary is None:
        return Text("no model yet: type one below (m)")
    line1 = (f"{fmt.exact(summary.params_total)} params · {fmt.exact(summary.params_trainable)} trainable · "
             f"{fmt.exact(summary.params_frozen)} frozen · {fmt.size(summary.param_bytes)} weights")
    if summary.forward_error:
        line2 = f"no shapes or FLOPs: {summary.forward_error}"
    else:
        line2 = (f"activations ≈ {fmt.size(summary.activation_bytes)} for a batch of {summary.batch_size} · "
                 f"{fmt.compact(summary.flops_per_sample)} FLOPs per sample")
    return Text(f"{line1}\n{line2}")


def detail_text(info: ModuleInfo, summary: ModelSummary) -> Text:
    """One or two lines about the module under the cursor."""
    parts = [info.name or "(model)", info.type]
    shape = fmt.shape(info)
    if shape:
        parts.append(f"out {shape}" + (f" ×{info.calls} calls" if info.calls > 1 else ""))
    if info.params_total:
        own = f" (own {fmt.exact(info.params_own)})" if 0 < info.params_own < info.params_total else ""
        parts.append(f"{fmt.exact(info.params_total)} params{own} {fmt.state(info)} {fmt.share(summary.share(info.name))}")
    if info.flops:
        parts.append(f"{fmt.compact(info.flops)} FLOPs/sample")
    parts.append(fmt.mode(info))
    return Text(" · ".join(parts))
