"""Keys as the user meant them when a terminal glues them together."""

from __future__ import annotations

from types import SimpleNamespace

from textual import events
from textual.keys import Keys, _character_to_key

# Escape glued to one of these is, in Textual's table, a macOS Option character (escape 3 reads as £) or a
# word move (escape f as ctrl+right). The cockpit binds 1/2/3 to its tabs, f and b to keys of its own.
GLUED_TO_ESCAPE = "1234567890-=§fb"


def split_escape(event: events.Key) -> list[events.Key] | None:
    """Escape, then the key, for an alt+key that is an escape glued to a key; None for every other key.

    tmux and SSH deliver `escape` followed at once by `s` in one read, which Textual takes for alt+s (a
    terminal's Alt is the same escape prefix). The cockpit binds no alt keys, so both mean: escape, then s.
    """
    char = event.character
    if not event.key.startswith("alt+") or not char or len(char) != 1 or not char.isprintable():
        return None
    return [events.Key("escape", "\x1b"), events.Key(char if char.isalnum() else _character_to_key(char), char)]


def unglue_escapes() -> None:
    """Make Textual read escape glued to a digit, -, =, §, f or b as escape, then that key.

    Over tmux and SSH, escape (leaving a field) and the next key arrive in one read; Textual's table turns
    `escape 3` into £ (which the field then receives) where the user meant: leave the field, Model tab.
    """
    from textual._ansi_sequences import ANSI_SEQUENCES_KEYS  # the table Textual's input parser reads

    for char in GLUED_TO_ESCAPE:
        name = char if char.isalnum() else _character_to_key(char)
        ANSI_SEQUENCES_KEYS["\x1b" + char] = (Keys.Escape, SimpleNamespace(value=name))


class UngluedKeys:
    """App mixin: keys glued to an escape act as escape, then the key (keys that arrive alone pass through)."""

    async def on_event(self, event: events.Event) -> None:
        """A key that arrived glued to an escape (tmux and SSH send `escape s` as one read, which Textual
        takes for alt+s; `escape 3` is read as escape then 3, see keys.unglue_escapes) acts as escape, then
        that key."""
        if not isinstance(event, events.Key) or event.is_forwarded:
            await super().on_event(event)
            return
        if event.key == "escape" and event.character is None:  # the first of a pair unglue_escapes made
            keys = [event]
        else:
            keys = split_escape(event) or []
        if not keys:
            await super().on_event(event)
            return
        escape, *then = keys
        # The escape's binding runs now (a field gives up the keyboard), so the key goes where it then points.
        if not await self._check_bindings(escape.key):
            await super().on_event(escape)
        for key in then:
            await super().on_event(key)
