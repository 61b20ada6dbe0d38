"""The help screen: every key binding of the cockpit, grouped."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


class HelpScreen(ModalScreen[None]):
    """Lists the app's bindings; any of Escape, q or ? closes it."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 76; max-width: 95%; height: auto; max-height: 90%;
                                  border: thick $accent; background: $surface; padding: 0 1; }
    """
    BINDINGS = [Binding("escape,q,question_mark,f1", "close", "close")]

    def __init__(self, groups: list[tuple[str, list[tuple[str, str]]]]):
        super().__init__()
        self.groups = groups

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for title, rows in self.groups:
            table.add_row("", "")
            table.add_row(f"[u]{title}[/u]", "")
            for keys, description in rows:
                table.add_row(keys, description)
        with VerticalScroll():
            yield Static("[b]ptviz-tui keys[/b]  (Escape closes; when a form field has the cursor, "
                         "press Escape first so keys reach the cockpit)")
            yield Static(table)

    def action_close(self) -> None:
        self.dismiss(None)
