"""The key footer, showing only the keys that fit whole."""

from __future__ import annotations

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.events import Resize
from textual.screen import Screen
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
        self._keys_shown: tuple | None = None  # what the keys drawn say, to skip rebuilding the same ones

    @staticmethod
    def _keys(screen: Screen) -> tuple:
        return tuple((binding.key, binding.description, enabled)
                     for _, binding, enabled, _ in screen.active_bindings.values() if binding.show)

    def bindings_changed(self, screen: Screen) -> None:
        # The keyboard moving between widgets with the same keys (the Data tab's views) changes nothing shown,
        # and a key often changes the bindings twice before the footer is rebuilt: rebuilding every key each
        # time would lay the screen out once more (~30 ms a key press on a 2-core CPU).
        if self._bindings_ready and screen is self.screen:
            keys = self._keys(screen)
            if keys == self._keys_shown:
                return
            if screen.app.app_focus and self.is_attached:
                self._keys_shown = keys  # the rebuild is scheduled now
        super().bindings_changed(screen)

    def compose(self) -> ComposeResult:
        if self._bindings_ready:
            self._keys_shown = self._keys(self.screen)
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
