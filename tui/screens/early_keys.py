"""A screen that gives the keys typed before its field had the keyboard to that field, in order."""

from __future__ import annotations

from textual import events
from textual.screen import Screen
from textual.widget import Widget


class EarlyKeys(Screen):
    """Keys routed to the screen while nothing in it is focused (typed in the same read as the key that opened
    it) go to the first widget that gets the keyboard, before any key typed after them."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._early: list[events.Key] = []

    def _forward_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and self.focused is None and not event.is_forwarded:
            self._early.append(event)
            return
        super()._forward_event(event)

    def set_focus(self, widget: Widget | None, scroll_visible: bool = True, from_app_focus: bool = False) -> None:
        super().set_focus(widget, scroll_visible, from_app_focus)
        # Handed on here, in the same step as the focus: the app routes the next key to the field only after.
        early, self._early = self._early, []
        for key in early:
            if self.focused is not None:
                self.focused._forward_event(events.Key(key.key, key.character))
