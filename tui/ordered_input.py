"""An Input whose editing keys act in the order typed, among the characters typed with them."""

from __future__ import annotations

from textual import events
from textual.widgets import Input


class OrderedInput(Input):
    """Applies its own key bindings (backspace, end, arrows, ...) as each key reaches it, like a character.

    Textual inserts a character in the field at once but runs a binding only after the key has bubbled up to
    the app and back. Keys that arrive in one read (tmux send-keys, a fast typist over SSH) then act out of
    order: backspace and "0.25" typed together left "0.2", the backspace acting last.
    """

    async def _on_key(self, event: events.Key) -> None:
        if not event.is_printable:
            for key in event.aliases:
                for binding in self._bindings.key_to_bindings.get(key, ()):
                    if binding.priority:
                        continue  # a priority binding ran before the key was handed to this field
                    event.stop()
                    event.prevent_default()
                    await self.run_action(binding.action)
                    return
        await super()._on_key(event)
