"""The pipeline editor's step list: enter and the cursor keys act as the app routes them, before the next key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from textual.binding import Binding
from textual.widgets import ListView


class StepList(ListView):
    """A ListView whose enter (into the step's form) and cursor keys are priority bindings.

    Textual hands a key to the focused widget and runs its binding only once the key has bubbled back up to the
    app, while the keys typed in the same read are routed on to the widget still focused. Enter, which moves
    the keyboard into the parameter form, then came too late: "\\r0.25" in one read (tmux, SSH) sent "0.25" to
    the list (and its 2 and 5 to the cockpit's tab keys). A priority binding runs as the app routes the key,
    so the form has the keyboard before the next key is routed; the cursor keys are priority too, so an enter
    typed after them opens the step they reached.
    """

    BINDINGS = [
        Binding("enter", "open_form", "Edit", show=False, priority=True),
        Binding("up", "cursor_up", "Cursor up", show=False, priority=True),
        Binding("down", "cursor_down", "Cursor down", show=False, priority=True),
    ]

    def __init__(self, open_form: Callable[[], Awaitable[bool]], *, id: str | None = None):
        super().__init__(id=id)
        self._open_form = open_form  # puts the keyboard in the highlighted step's form; False when it has no field

    async def action_open_form(self) -> None:
        """Move into the highlighted step's form, or select the step when it has nothing to edit."""
        if not await self._open_form():
            self.action_select_cursor()
