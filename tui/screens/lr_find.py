"""The learning-rate finder as a modal screen: the sweep's chart as it grows, its suggestion, Enter to apply it."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Static

from ptviz.engine.events import LrSwept

from ..train.lr_chart import chart_rows


class LrChart(Widget):
    """The sweep's smoothed loss against the learning rate, redrawn at the widget's size."""

    DEFAULT_CSS = "LrChart { height: 1fr; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.result: LrSwept | None = None

    def show(self, result: LrSwept) -> None:
        """Draw `result` from the next frame on."""
        self.result = result
        self.refresh()

    def render(self) -> Text:
        """The chart's rows as one Text."""
        width, height = self.size.width, self.size.height
        if self.result is None or width < 8 or height < 4:
            return Text("sweeping…", style="dim")
        text = Text()
        for i, row in enumerate(chart_rows(self.result, width, height)):
            if i:
                text.append("\n")
            for run, colour in row:
                text.append(run, style=colour or "")
        return text


class LrFindScreen(ModalScreen[float | None]):
    """Shows a learning-rate sweep; dismisses with the suggested rate on Enter, or None on Escape."""

    DEFAULT_CSS = """
    LrFindScreen { align: center middle; }
    LrFindScreen > Vertical { width: 90%; max-width: 110; height: 80%; min-height: 14; border: thick $accent;
                              background: $surface; padding: 0 1; }
    LrFindScreen #lr-find-status { height: auto; color: $text-muted; }
    """
    BINDINGS = [Binding("enter", "apply", "apply"), Binding("escape,q", "cancel", "close")]

    def __init__(self, target: str):
        super().__init__()
        self.target = target  # what Enter sets: "the form's optim.lr" or "the paused run"
        self.result: LrSwept | None = None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield LrChart(id="lr-find-chart")
            yield Static("sweeping on a copy of the model… Escape closes (and stops an idle sweep)",
                         id="lr-find-status")

    def show(self, result: LrSwept) -> None:
        """Take one progress report (or the final one) of the sweep."""
        self.result = result
        self.query_one(LrChart).show(result)
        status = self.query_one("#lr-find-status", Static)
        if not result.done:
            status.update(f"sweeping on a copy of the model: {len(result.lrs)} steps, lr {result.lrs[-1]:.3g}… "
                          "Escape closes")
        elif result.suggestion is None:
            status.update(f"no suggestion ({result.reason} after {len(result.lrs)} steps). Escape closes")
        else:
            status.update(f"suggested learning rate {result.suggestion:.3g} (steepest descent of the smoothed loss; "
                          f"{result.reason}). Enter sets it for {self.target}, Escape leaves it")

    def action_apply(self) -> None:
        """Close with the suggestion, once there is one."""
        if self.result is not None and self.result.done and self.result.suggestion is not None:
            self.dismiss(self.result.suggestion)

    def action_cancel(self) -> None:
        self.dismiss(None)
