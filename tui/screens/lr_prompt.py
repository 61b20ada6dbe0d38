"""Prompt for an exact learning rate."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.validation import ValidationResult, Validator
from textual.widgets import Input, Static

from ptviz.engine.config import check_field

from ..ordered_input import OrderedInput
from .early_keys import EarlyKeys


def lr_problem(text: str) -> str | None:
    """Why `text` is not a learning rate the run accepts (optim.lr's rules), or None."""
    try:
        value = float(text)
    except ValueError:
        return "must be a number > 0, e.g. 0.01 or 3e-4"
    return check_field("optim.lr", value)


class LearningRate(Validator):
    """Accepts what optim.lr accepts."""

    def validate(self, value: str) -> ValidationResult:
        """Valid, or a failure that says what optim.lr allows."""
        why = lr_problem(value)
        return self.failure(why) if why else self.success()


class LrPrompt(EarlyKeys, ModalScreen[float | None]):
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
            yield OrderedInput(f"{self.current:g}" if self.current else "", id="lr-input", validators=[LearningRate()])
            yield Static("", id="lr-reason")

    def on_input_changed(self, event: Input.Changed) -> None:
        result = event.validation_result
        reason = "" if result is None or result.is_valid else "; ".join(result.failure_descriptions)
        self.query_one("#lr-reason", Static).update(reason)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        why = lr_problem(event.value)
        if why is None:
            self.dismiss(float(event.value))
        else:
            self.query_one("#lr-reason", Static).update(why)

    def action_cancel(self) -> None:
        self.dismiss(None)
