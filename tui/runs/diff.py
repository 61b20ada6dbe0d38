"""Two runs side by side: their resolved settings with the differences marked, then what was changed live."""

from __future__ import annotations

from dataclasses import dataclass

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Static

from ptviz.engine import config as cfgmod
from ptviz.engine.storage.catalog import RunRecord
from ptviz.engine.storage.interventions import Intervention, interventions


def setting_rows(a: RunRecord, b: RunRecord, everything: bool) -> list[tuple[str, str, str, bool]]:
    """(setting, value in a, value in b, differs) for the differing settings, then the equal ones if `everything`."""
    paths = ["recipe", *cfgmod.field_paths()]
    values = {"recipe": (a.recipe, b.recipe)} | {p: (a.settings.get(p, "-"), b.settings.get(p, "-"))
                                                 for p in cfgmod.field_paths()}
    differ = [(p, *values[p], True) for p in paths if values[p][0] != values[p][1]]
    same = [(p, *values[p], False) for p in paths if values[p][0] == values[p][1]] if everything else []
    return differ + same


def lineage_text(r: RunRecord) -> str:
    """'fork of NAME from epoch-0003.pt (step 135): optim.lr 0.05 → 0.01', or ''."""
    li = r.lineage
    if li is None:
        return ""
    changes = ", ".join(f"{p} {cfgmod.format_value(x)} → {cfgmod.format_value(y)}" for p, (x, y) in li.changed.items())
    return f"fork of {li.parent_name} from {li.checkpoint} (step {li.step:,})" + (f": {changes}" if changes else "")


def merged_changes(a: list[Intervention], b: list[Intervention]) -> list[tuple[int, str, str]]:
    """(step, change in a, change in b) ordered by step; one side is empty where only the other changed."""
    rows = [(i.step, 0, i.text()) for i in a] + [(i.step, 1, i.text()) for i in b]
    rows.sort(key=lambda r: (r[0], r[1]))
    return [(step, text if side == 0 else "", text if side == 1 else "") for step, side, text in rows]


class DiffScreen(ModalScreen[None]):
    """The diff of two runs; a shows every setting, escape closes."""

    DEFAULT_CSS = """
    DiffScreen { align: center middle; }
    DiffScreen > VerticalScroll { width: 95%; max-width: 160; height: 90%; border: thick $accent;
                                  background: $surface; padding: 0 1; }
    """
    BINDINGS = [Binding("escape,q,d", "close", "close"), Binding("a", "toggle_all", "all settings")]

    @dataclass
    class ChangesRead(Message):
        """The live changes of both runs were read from their logs."""

        a: list[Intervention]
        b: list[Intervention]

    def __init__(self, a: RunRecord, b: RunRecord):
        super().__init__()
        self.a, self.b = a, b
        self.everything = False
        self.changes: tuple[list[Intervention], list[Intervention]] | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(id="diff-settings")
            yield Static("reading live changes from the logs…", id="diff-changes")
            yield Static("a: all settings / differences only · escape: close", classes="hint")

    def on_mount(self) -> None:
        self._show_settings()
        self._read_changes()

    @work(thread=True, exclusive=True, group="diff-read", exit_on_error=False)
    def _read_changes(self) -> None:
        self.post_message(self.ChangesRead(interventions(self.a.path), interventions(self.b.path)))

    def on_diff_screen_changes_read(self, message: ChangesRead) -> None:
        self.changes = (message.a, message.b)
        self._show_changes()

    def _show_settings(self) -> None:
        table = Table(title=f"settings: {'all' if self.everything else 'differences'}", expand=True,
                      title_justify="left", show_lines=False)
        table.add_column("setting", style="cyan", no_wrap=True)
        table.add_column(self.a.name, overflow="fold")
        table.add_column(self.b.name, overflow="fold")
        rows = setting_rows(self.a, self.b, self.everything)
        for path, x, y, differs in rows:
            style = "bold yellow" if differs else "dim"
            table.add_row(Text(("≠ " if differs else "  ") + path, style=style), Text(x, style=style if differs else ""),
                          Text(y, style=style if differs else ""))
        if not rows:
            table.add_row("", "every setting is the same", "")
        lineage = [t for t in (lineage_text(self.a), lineage_text(self.b)) if t]
        if lineage:
            table.add_row("", "", "")
            table.add_row(Text("fork", style="cyan"), lineage_text(self.a) or "-", lineage_text(self.b) or "-")
        self.query_one("#diff-settings", Static).update(table)

    def _show_changes(self) -> None:
        a, b = self.changes or ([], [])
        table = Table(title="live changes (from the logs)", expand=True, title_justify="left")
        table.add_column("step", justify="right", no_wrap=True)
        table.add_column(self.a.name, overflow="fold")
        table.add_column(self.b.name, overflow="fold")
        for step, x, y in merged_changes(a, b):
            table.add_row(f"{step:,}", x, y)
        if not a and not b:
            table.add_row("", "none: neither run was changed while it trained", "")
        self.query_one("#diff-changes", Static).update(table)

    def action_toggle_all(self) -> None:
        self.everything = not self.everything
        self._show_settings()

    def action_close(self) -> None:
        self.dismiss(None)
