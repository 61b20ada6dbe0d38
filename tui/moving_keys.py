"""App keys that move the keyboard act as they are routed, so the keys typed with them follow it."""

from __future__ import annotations

from textual import events
from textual.widget import Widget

# l opens the learning-rate prompt (the value is typed right after it); 1-6 switch tab or pane (and that tab's
# own keys follow: "2>" is the Data tab, then its next view).
MOVING_KEYS = frozenset({"l", "1", "2", "3", "4", "5", "6"})


def takes_keys_itself(widget: Widget | None) -> bool:
    """Whether a widget handles keys in its own key handler (a text field, a select's type-to-search)."""
    return widget is not None and type(widget)._on_key is not Widget._on_key


class MovingKeysNow:
    """App mixin: the binding of a key that moves the keyboard runs when the app routes the key, not after the
    key has bubbled back up from the focused widget.

    Textual hands a key to the focused widget and runs an app binding only once the key has bubbled back up,
    while the keys typed in the same read are routed on meanwhile, to the widget that had the keyboard.
    "l0.02\\r" in one read (tmux, SSH) then sent 0.02 and enter to the cockpit before the prompt was there (the
    value was lost, or the prompt's starting value applied), and "2>" lost the >. Run now, with the keyboard
    moved at once (the actions use Screen.set_focus, not the deferred Widget.focus), the next key is routed to
    where the keyboard went; a prompt hands on the keys that reach it before its field has the keyboard
    (screens/early_keys.py). A focused widget that handles keys itself (a text field) keeps them as before.
    """

    async def on_event(self, event: events.Event) -> None:
        if (isinstance(event, events.Key) and not event.is_forwarded and event.key in MOVING_KEYS
                and not takes_keys_itself(self.focused) and not takes_keys_itself(self.screen)
                and await self._check_bindings(event.key)):
            return
        await super().on_event(event)
