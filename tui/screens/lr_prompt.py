"""Prompt for an exact learning rate."""

from __future__ import annotations

import math

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.validation import Function
from textual.widgets import Input, Static


def _valid_lr(text: str) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return value > 0 and math.isfinite(value)


class LrPrompt(ModalScreen[float | None]):
    """Asks for a learning rate; dismisses with the number, or None on Escape."""

    DEFAULT_CSS = """
    LrPrompt { align: center middle; }
    LrPrompt > Vertical { width: 50; max-width: 90%; height: auto; border: thick $accent;
                          background: $surface; padding: 1 2; }
    LrPrompt #lr-reason { color: $error; height: auto; }
    """
    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, current: float | None):
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("Set the learning rate (takes effect from the next step):")
            yield Input(f"{self.current:g}" if self.current else "", id="lr-input",
                        validators=[Function(_valid_lr, "must be a number > 0, e.g. 0.01 or 3e-4")])
            yield Static("", id="lr-reason")

    def on_input_changed(self, event: Input.Changed) -> None:
        result = event.validation_result
        reason = "" if result is None or result.is_valid else "; ".join(result.failure_descriptions)
        self.query_one("#lr-reason", Static).update(reason)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if _valid_lr(event.value):
            self.dismiss(float(event.value))
        else:
            self.query_one("#lr-reason", Static).update("must be a number > 0, e.g. 0.01 or 3e-4")

    def action_cancel(self) -> None:
        self.dismiss(None)
