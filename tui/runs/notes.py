"""Edit a run's note and tags in a small modal form."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from ptviz.engine.storage.notes import Notes, parse_tags


class NotesScreen(ModalScreen[Notes | None]):
    """Note and tags of one run; enter saves, escape leaves them as they were."""

    DEFAULT_CSS = """
    NotesScreen { align: center middle; }
    NotesScreen > Vertical { width: 72; max-width: 95%; height: auto; border: thick $accent;
                             background: $surface; padding: 0 1; }
    NotesScreen Input { height: 1; border: none; padding: 0 1; background: $boost; margin-bottom: 1; }
    NotesScreen Input:focus { background: $accent 30%; }
    NotesScreen Label { color: $text-muted; }
    NotesScreen .hint { color: $text-muted; }
    """
    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, run_name: str, notes: Notes):
        super().__init__()
        self.run_name = run_name
        self.notes = notes

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"[b]Note on {self.run_name}[/b]")
            yield Label("note")
            yield Input(self.notes.note, id="note-text", placeholder="what this run tried, what it showed")
            yield Label("tags (space or comma separated)")
            yield Input(" ".join(self.notes.tags), id="note-tags", placeholder="e.g. baseline lr-sweep")
            yield Static("enter saves (in notes.json in the run folder) · tab moves · escape cancels", classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        note = self.query_one("#note-text", Input).value.strip()
        tags = parse_tags(self.query_one("#note-tags", Input).value)
        self.dismiss(Notes(note, tags))

    def action_cancel(self) -> None:
        self.dismiss(None)
