"""A yes/no question as a modal screen, answered with one key."""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmScreen(ModalScreen[bool]):
    """Asks a question; dismisses with True (the asking key again, y or enter) or False (n or escape).

    The key that asked confirms, so stopping is `x x` and quitting `q q`; enter presses the focused Yes.
    """

    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical { width: 60; max-width: 90%; height: auto; border: thick $warning;
                               background: $surface; padding: 1 2; }
    ConfirmScreen Horizontal { height: auto; align-horizontal: right; margin-top: 1; }
    ConfirmScreen Button { margin-left: 2; }
    """
    BINDINGS = [Binding("n,escape", "answer(False)", "no")]

    def __init__(self, question: str, key: str = "y", yes: str = "Yes", no: str = "No", enter_says_yes: bool = True,
                 about_the_run: bool = False):
        super().__init__()
        self.about_the_run = about_the_run  # a question about the going run (stop it? quit while it trains?)
        self.question = question
        self.key = key
        self.yes, self.no = yes, no
        self.enter_says_yes = enter_says_yes  # False where a slip of the finger must not say yes (running code)

    def compose(self) -> ComposeResult:
        keys = " / ".join(dict.fromkeys((self.key, "y", "enter") if self.enter_says_yes else (self.key, "y")))
        with Vertical():
            yield Static(self.question)
            with Horizontal():
                yield Button(f"{self.yes} ({keys})", variant="warning", id="yes")
                yield Button(f"{self.no} (n / esc{'' if self.enter_says_yes else ' / enter'})", id="no")

    def on_mount(self) -> None:
        self.query_one("#yes" if self.enter_says_yes else "#no", Button).focus()  # enter presses it

    def on_key(self, event: events.Key) -> None:
        if event.key in (self.key, "y"):
            event.stop()
            self.dismiss(True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


def drop_run_question(app) -> None:
    """Close a question about the going run once the run has ended (it finished while the user read it): it no
    longer applies, and its answer would act on nothing."""
    screen = app.screen
    if isinstance(screen, ConfirmScreen) and screen.about_the_run:
        screen.dismiss(None)
