"""The layer tree: one row per module with aligned columns, depth control and freeze keys."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.events import Resize
from textual.geometry import Size
from textual.message import Message
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from ptviz.engine.models.summary import ModelSummary, ModuleInfo

from . import format as fmt
from .health import ModuleHealth, dead_style, ratio_style

TOGGLE_STYLE = Style.from_meta({"toggle": True})  # Tree toggles a node when a click lands on this meta
NAME_MIN = 18  # cells kept for guides, icon and module name before any column is shown


@dataclass(frozen=True)
class Column:
    """A fixed-width column of the tree; lower `priority` columns stay longest when space runs out."""

    title: str
    width: int
    priority: int
    cell: Callable[[ModuleInfo, ModelSummary], str]
    right: bool = True
    styled: bool = False  # coloured by the subtree's trainable state
    health: Callable[[ModuleHealth], tuple[str, str]] | None = None  # (text, colour) of a live health column


COLUMNS = (
    Column("type", 11, 4, lambda m, s: m.type, right=False),
    Column("output", 9, 3, lambda m, s: fmt.shape(m)),
    Column("own", 6, 6, lambda m, s: fmt.compact(m.params_own) if m.params_own else ""),
    Column("params", 6, 1, lambda m, s: fmt.compact(m.params_total) if m.params_total else ""),
    Column("state", 6, 1, lambda m, s: fmt.state(m), right=False, styled=True),
    Column("share", 5, 5, lambda m, s: fmt.share(m.params_total / max(1, s.params_total))),
    Column("FLOPs", 6, 2, lambda m, s: fmt.compact(m.flops) if m.flops else ""),
    Column("mode", 7, 7, lambda m, s: fmt.mode(m), right=False),
)


def _grad_cell(h: ModuleHealth) -> tuple[str, str]:
    if h.grad_norm is None:
        return "", ""
    return fmt.compact_float(h.grad_norm), "" if math.isfinite(h.grad_norm) else "red"


def _ratio_cell(h: ModuleHealth) -> tuple[str, str]:
    if h.log_ratio is None:
        return "", ""
    shown = f"{h.log_ratio:.1f}" if math.isfinite(h.log_ratio) else ("-inf" if h.log_ratio < 0 else "inf")
    return shown, ratio_style(h.log_ratio)


def _dead_cell(h: ModuleHealth) -> tuple[str, str]:
    return ("", "") if h.dead is None else (f"{h.dead:.0%}", dead_style(h.dead))


# Shown once a run has sampled layer health (train.health_interval): they take room before the static columns.
HEALTH_COLUMNS = (
    Column("grad", 6, 0, lambda m, s: "", health=_grad_cell),
    Column("log upd", 7, 0, lambda m, s: "", health=_ratio_cell),
    Column("dead", 4, 0, lambda m, s: "", health=_dead_cell),
)


def fit_columns(width: int, summary: ModelSummary | None = None, name_width: int = NAME_MIN,
                health: bool = False) -> tuple[Column, ...]:
    """The columns that fit beside the name in `width` cells, in display order (health ones last).

    Columns are kept by priority at their narrowest; room left once the names (`name_width` cells, guides
    and icon included) fit widens them to what `summary`'s rows hold, so 'AdaptiveAvgPool2d' is not cut.
    """
    room = width - NAME_MIN
    keep: list[Column] = []
    every = COLUMNS + (HEALTH_COLUMNS if health else ())
    for column in sorted(every, key=lambda c: c.priority):
        if column.width + 1 <= room:
            keep.append(column)
            room -= column.width + 1
    spare = room - max(0, name_width - NAME_MIN)
    widths = {c.title: c.width for c in keep}
    if summary is not None and spare > 0:
        for column in keep:
            longest = max((len(column.cell(m, summary)) for m in summary.modules), default=0)
            extra = min(spare, max(0, longest - column.width))
            widths[column.title] += extra
            spare -= extra
    return tuple(replace(c, width=widths[c.title]) for c in every if c.title in widths)


def cell(text: str, width: int, right: bool) -> str:
    """`text` cropped with an ellipsis and padded to exactly `width` cells."""
    if len(text) > width:
        text = text[: width - 1] + "…"
    return text.rjust(width) if right else text.ljust(width)


class ModelTree(Tree[str], inherit_bindings=False):
    """Modules as a tree; node data is the module's qualified name ("" for the model)."""

    DEFAULT_CSS = """
    ModelTree {
        overflow-x: hidden;
        scrollbar-gutter: stable;
        & > .model-tree--trainable { color: $text-success; }
        & > .model-tree--frozen { color: $text-primary; }
        & > .model-tree--mixed { color: $text-warning; }
    }
    """

    COMPONENT_CLASSES = {"model-tree--trainable", "model-tree--frozen", "model-tree--mixed"}

    # Space, digits, e and c are left to the cockpit (pause, tabs, evaluate, checkpoint).
    BINDINGS = [
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "scroll_home", "First", show=False),
        Binding("end", "scroll_end", "Last", show=False),
        Binding("shift+up", "cursor_previous_sibling", "Previous sibling", show=False),
        Binding("shift+down", "cursor_next_sibling", "Next sibling", show=False),
        Binding("enter", "select_cursor", "Open/close", show=False),
        Binding("right", "expand_or_enter", "Expand", show=False),
        Binding("left", "collapse_or_leave", "Collapse", show=False),
        Binding("greater_than_sign", "depth(1)", "Deeper"),
        Binding("less_than_sign", "depth(-1)", "Shallower"),
        Binding("asterisk", "depth(99)", "Expand all", show=False),
        Binding("f", "freeze(False)", "Freeze"),
        Binding("u", "freeze(True)", "Unfreeze"),
        Binding("F", "freeze_all(False)", "Freeze all"),
        Binding("U", "freeze_all(True)", "Unfreeze all", show=False),
    ]

    class ColumnsChanged(Message):
        """The width changed and with it the columns (the pane redraws its header)."""

    class FreezeKeyed(Message):
        """A freeze key was pressed on `module`; the pane turns it into its public request."""

        def __init__(self, module: str, trainable: bool) -> None:
            super().__init__()
            self.module = module
            self.trainable = trainable

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("model", id=id)
        self.guide_depth = 2  # the narrowest indent keeps names readable at 80 columns
        self.summary: ModelSummary | None = None
        self.depth = 1  # levels shown below the model by the depth keys
        self._info_of: dict[str, ModuleInfo] = {}
        self._node_of: dict[str, TreeNode[str]] = {}
        self._shape_key: tuple[tuple[str, str], ...] = ()
        self._cols: tuple[Column, ...] = fit_columns(80)
        self.health: dict[str, ModuleHealth] = {}  # the latest sample of layer health, per module
        self._resized_to = Size(0, 0)  # the size of the last Resize handled

    # ------------------------------------------------------------------------- data

    def show(self, summary: ModelSummary) -> None:
        """Show `summary`; a model with the same modules keeps its expanded nodes and cursor."""
        self.summary = summary
        self._info_of = {m.name: m for m in summary.modules}
        self._fit()
        structure = tuple((m.name, m.type) for m in summary.modules)
        if structure == self._shape_key:
            for node in self._node_of.values():
                node.refresh()
            return
        self._shape_key = structure
        self.clear()
        root = self.root
        root.data = ""
        self._node_of = {"": root}
        for info in summary.modules[1:]:
            parent = self._node_of[info.name.rpartition(".")[0]]
            self._node_of[info.name] = parent.add(info.short_name, data=info.name, allow_expand=bool(info.children))
        self.set_depth(self.depth)
        self.move_cursor(root)

    def clear_model(self) -> None:
        """Show no model."""
        self.summary, self._info_of, self._shape_key = None, {}, ()
        self.clear()
        self._node_of = {"": self.root}

    @property
    def max_depth(self) -> int:
        """Depth of the deepest module."""
        return max((m.depth for m in self._info_of.values()), default=0)

    def set_depth(self, depth: int) -> None:
        """Expand every module above `depth` levels and collapse the rest."""
        self.depth = max(0, min(depth, self.max_depth))
        for name, node in self._node_of.items():
            info = self._info_of.get(name)
            if info is None or not node.allow_expand:
                continue
            if info.depth < self.depth:
                node.expand()
            else:
                node.collapse()

    @property
    def columns(self) -> tuple[Column, ...]:
        """The columns shown at the current width."""
        return self._cols

    def header(self) -> Text:
        """Column titles aligned with the rows."""
        width = self._row_width()
        text = Text(cell("module", width - sum(c.width + 1 for c in self._cols), right=False))
        for column in self._cols:
            text.append(" " + cell(column.title, column.width, column.right))
        return text

    def show_health(self, health: dict[str, ModuleHealth]) -> None:
        """Show the latest layer health in the live columns (added to the row when the first sample arrives)."""
        first = bool(health) != bool(self.health)
        self.health = health
        if first:
            self._fit_width()
        else:
            for node in self._node_of.values():
                node.refresh()

    # ------------------------------------------------------------------------- actions

    def action_depth(self, delta: int) -> None:
        """Show one level more or less (a large delta expands everything)."""
        self.set_depth(self.depth + delta)

    def action_expand_or_enter(self) -> None:
        """Expand a collapsed node, else step to its first child."""
        node = self.cursor_node
        if node is None:
            return
        if node.allow_expand and not node.is_expanded:
            node.expand()
        elif node.children:
            self.move_cursor(node.children[0])

    def action_collapse_or_leave(self) -> None:
        """Collapse an expanded node, else step to its parent."""
        node = self.cursor_node
        if node is None:
            return
        if node.allow_expand and node.is_expanded:
            node.collapse()
        elif node.parent is not None:
            self.move_cursor(node.parent)

    def action_freeze(self, trainable: bool) -> None:
        """Ask to freeze or unfreeze the module under the cursor and everything inside it."""
        node = self.cursor_node
        if node is not None and node.data is not None and self.summary is not None:
            self.post_message(self.FreezeKeyed(node.data, trainable))

    def action_freeze_all(self, trainable: bool) -> None:
        """Ask to freeze or unfreeze the whole model."""
        if self.summary is not None:
            self.post_message(self.FreezeKeyed("", trainable))

    # ------------------------------------------------------------------------- rendering

    def on_resize(self, event: Resize) -> None:
        """Choose the columns that fit the new width."""
        if event.size == self._resized_to:
            # Shown again at the size it had (a tab switch): Tree would drop its line cache and have the whole
            # screen laid out once more (40 ms of a 2-core CPU at 160x48).
            event.prevent_default()
            return
        self._resized_to = event.size
        self._fit_width()

    def _fit_width(self) -> None:
        self._fit()
        for node in self._node_of.values():
            node.refresh()  # rows render again with the new columns
        self.post_message(self.ColumnsChanged())

    def _fit(self) -> None:
        names = max((m.depth * self.guide_depth + 2 + len(m.short_name) for m in self._info_of.values()), default=0)
        self._cols = fit_columns(self._row_width(), self.summary, names, health=bool(self.health))

    def _row_width(self) -> int:
        return self.scrollable_content_region.width or 80

    def render_label(self, node: TreeNode[str], base_style: Style, style: Style) -> Text:
        """Name, indented by the tree, then the columns, right-aligned to the row's end."""
        info = self._info_of.get(node.data or "")
        if info is None or self.summary is None:
            return Text.assemble(str(node.label), style=style)
        icon = ""
        if node.allow_expand:
            icon = self.ICON_NODE_EXPANDED if node.is_expanded else self.ICON_NODE
        indent = info.depth * self.guide_depth
        room = self._row_width() - indent - len(icon) - sum(c.width + 1 for c in self._cols)
        text = Text.assemble((icon, base_style + TOGGLE_STYLE), cell(info.short_name, max(1, room), right=False))
        for column in self._cols:
            if column.health is not None:
                shown, colour_name = column.health(h) if (h := self.health.get(info.name)) else ("", "")
                text.append(" ")
                text.append(cell(shown, column.width, column.right), style=colour_name or None)
                continue
            value = cell(column.cell(info, self.summary), column.width, column.right)
            colour = self.get_component_rich_style(f"model-tree--{info.state}") if column.styled and info.state else None
            text.append(" ")
            text.append(value, style=colour)
        text.stylize(style)
        return text
