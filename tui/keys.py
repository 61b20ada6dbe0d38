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
