"""Keys as the user meant them when a terminal glues them together."""

from __future__ import annotations

from textual import events
from textual.keys import _character_to_key


def split_escape(event: events.Key) -> list[events.Key] | None:
    """Escape, then the key, for an alt+key that is an escape glued to a key; None for every other key.

    tmux and SSH deliver `escape` followed at once by `s` in one read, which Textual takes for alt+s (a
    terminal's Alt is the same escape prefix). The cockpit binds no alt keys, so both mean: escape, then s.
    """
    char = event.character
    if not event.key.startswith("alt+") or not char or len(char) != 1 or not char.isprintable():
        return None
    return [events.Key("escape", "\x1b"), events.Key(char if char.isalnum() else _character_to_key(char), char)]
