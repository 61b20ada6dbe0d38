"""The key footer: one line of text with the keys that fit whole."""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual.screen import Screen
from textual.widget import Widget

Key = tuple[str, str, bool]  # what the key shows, its description, whether it acts now


class FittingFooter(Widget):
    """The keys of what has the keyboard, most important first, without any that would be cut.

    One widget drawing one line: Textual's Footer mounts a widget per key and rebuilds them whenever the
    keyboard moves, which lays the whole screen out once more (30-40 ms a tab switch on a 2-core CPU). Here a
    change of keys repaints one line. The app lists its bindings most important first, so a narrow terminal
    keeps start, pause, stop, help and quit, and `?` lists the rest.
    """

    COMPONENT_CLASSES = {"fitting-footer--key", "fitting-footer--description"}
    DEFAULT_CSS = """
    FittingFooter {
        dock: bottom;
        height: 1;
        background: $footer-background;
        color: $footer-foreground;
    }
    FittingFooter > .fitting-footer--key {
        color: $footer-key-foreground;
        background: $footer-key-background;
        text-style: bold;
    }
    FittingFooter > .fitting-footer--description {
        color: $footer-description-foreground;
        background: $footer-description-background;
    }
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.keys: tuple[Key, ...] = ()  # the keys of the screen's bindings, those that do not fit included

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)
        self.call_after_refresh(self._bindings_changed, self.screen)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen) -> None:
        if screen is not self.screen or not self.is_attached:
            return
        keys = self._keys(screen)
        if keys != self.keys:  # the keyboard moving between widgets with the same keys changes nothing shown
            self.keys = keys
            self.refresh()

    def _keys(self, screen: Screen) -> tuple[Key, ...]:
        """One key per action (the first bound), in the bindings' order."""
        seen: set[str] = set()
        keys = []
        for _, binding, enabled, _ in screen.active_bindings.values():
            if binding.show and binding.action not in seen:
                seen.add(binding.action)
                keys.append((self.app.get_key_display(binding), binding.description, enabled))
        return tuple(keys)

    def shown(self, width: int | None = None) -> list[Key]:
        """The keys that fit whole in `width` cells (the footer's own width by default)."""
        room = self.size.width if width is None else width
        used, fitting = 0, []
        for key in self.keys:
            used += cell_len(key[0]) + 1 + cell_len(key[1])  # 'k Description'
            if used > room:
                break
            fitting.append(key)
            used += 1  # the space before the next key
        return fitting

    def render(self) -> Text:
        key_style = self.get_component_rich_style("fitting-footer--key")
        description_style = self.get_component_rich_style("fitting-footer--description")
        text = Text(no_wrap=True, overflow="crop", end="")
        for i, (key, description, enabled) in enumerate(self.shown()):
            if i:
                text.append(" ")
            dim = "" if enabled else " dim"
            text.append(key, key_style + dim if dim else key_style)
            text.append(" " + description, description_style + dim if dim else description_style)
        return text
