"""App keys that open a prompt act as they are routed, so the keys typed with them reach the prompt."""

from __future__ import annotations

from textual import events
from textual.widget import Widget

PROMPT_KEYS = frozenset({"l"})  # l asks for an exact learning rate: the value is typed right after it


def takes_keys_itself(widget: Widget | None) -> bool:
    """Whether a widget handles keys in its own key handler (a text field, a select's type-to-search)."""
    return widget is not None and type(widget)._on_key is not Widget._on_key


class PromptKeysNow:
    """App mixin: a prompt key's binding runs when the app routes the key, not after it has bubbled back.

    Textual hands a key to the focused widget and runs an app binding only once the key has bubbled back up,
    while the keys typed in the same read are routed on meanwhile. "l0.02\\r" in one read (tmux, SSH) then
    sent 0.02 and enter to the cockpit before the prompt was there: the value was lost, or the prompt's
    starting value was applied. Run now, the prompt is pushed before the next key is routed (and the prompt
    hands the keys that reach it before its field has the keyboard on to that field: screens/early_keys.py).
    A focused widget that handles keys itself (a text field) keeps them as before.
    """

    async def on_event(self, event: events.Event) -> None:
        if (isinstance(event, events.Key) and not event.is_forwarded and event.key in PROMPT_KEYS
                and not takes_keys_itself(self.focused) and not takes_keys_itself(self.screen)
                and await self._check_bindings(event.key)):
            return
        await super().on_event(event)
