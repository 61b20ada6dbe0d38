"""The key footer, showing only the keys that fit whole."""

from __future__ import annotations

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.events import Resize
from textual.widgets import Footer
from textual.widgets._footer import FooterKey


class FittingFooter(Footer):
    """Textual's compact footer without the keys that do not fit: its own cuts the last one mid-word.

    The app lists its bindings most important first, so a narrow terminal keeps start, pause, stop, help
    and quit, and `?` lists the rest.
    """

    def __init__(self, **kwargs):
        super().__init__(compact=True, show_command_palette=False, **kwargs)
        self._width = 0

    def compose(self) -> ComposeResult:
        room = self.size.width or self.app.size.width
        used = 0
        for widget in super().compose():
            if isinstance(widget, FooterKey):
                used += cell_len(widget.key_display) + 1 + cell_len(widget.description)  # 'k Description'
                if used > room:
                    return
                used += 1  # the margin before the next key
            yield widget

    def on_resize(self, event: Resize) -> None:
        if event.size.width != self._width:
            self._width = event.size.width
            self.call_after_refresh(self.recompose)
