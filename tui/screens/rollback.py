"""Roll the paused run back to its newest checkpoint: how many steps around the spike to leave out, which lr."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from ptviz.engine.commands import Rollback

from .lr_prompt import LearningRate, lr_problem

MAX_SKIP = 1000


def skip_problem(text: str) -> str | None:
    """Why `text` is not a number of steps to leave out, or None."""
    try:
        value = int(text)
    except ValueError:
        return "steps to leave out: a whole number, 0 for none"
    return None if 0 <= value <= MAX_SKIP else f"steps to leave out: 0 to {MAX_SKIP}"


class RollbackScreen(ModalScreen[Rollback | None]):
    """Asks how to roll back; dismisses with the Rollback command on Enter, or None on Escape."""

    DEFAULT_CSS = """
    RollbackScreen { align: center middle; }
    RollbackScreen > Vertical { width: 72; max-width: 95%; height: auto; border: thick $warning;
                                background: $surface; padding: 1 2; }
    RollbackScreen Input { margin-bottom: 1; }
    RollbackScreen #rollback-reason { color: $error; height: auto; }
    """
    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, spike_step: int | None, lr: float | None):
        super().__init__()
        self.spike_step = spike_step
        self.lr = lr

    def compose(self) -> ComposeResult:
        where = f"the spike at step {self.spike_step:,}" if self.spike_step is not None else "the current step"
        with Vertical():
            yield Static(f"Roll back to the newest checkpoint (weights, optimizer, data position, RNG); the log is "
                         f"cut back to it. Leave out the batches of the steps within N of {where}:")
            yield Input("1" if self.spike_step is not None else "0", id="rollback-skip")
            yield Static("Learning rate from there on (lower it if the loss spiked):")
            yield Input(f"{self.lr / 2:g}" if self.lr and self.spike_step is not None else
                        (f"{self.lr:g}" if self.lr else ""), id="rollback-lr", validators=[LearningRate()])
            yield Static("Enter rolls back (the run stays paused: p resumes), Escape cancels", classes="hint")
            yield Static("", id="rollback-reason")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        skip, lr = self.query_one("#rollback-skip", Input).value, self.query_one("#rollback-lr", Input).value.strip()
        why = skip_problem(skip) or (lr_problem(lr) if lr else None)
        if why is not None:
            self.query_one("#rollback-reason", Static).update(why)
            return
        unchanged = not lr or (self.lr is not None and lr == f"{self.lr:g}")  # the field's default: keep the rate
        self.dismiss(Rollback(int(skip), None if unchanged else float(lr)))

    def action_cancel(self) -> None:
        self.dismiss(None)
