"""A run's note and tags, kept in its folder as notes.json so they travel with the run."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .runlog import read_json, write_json

NOTES_JSON = "notes.json"
TAG_SPLIT = re.compile(r"[\s,]+")


@dataclass(frozen=True)
class Notes:
    """What the user wrote about a run."""

    note: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def text(self) -> str:
        """The note with its tags as '#tag', for tables and filters."""
        return " ".join([*(f"#{t}" for t in self.tags), self.note]).strip()


def parse_tags(text: str) -> tuple[str, ...]:
    """Tags typed as 'a, b c' or '#a #b', without duplicates, in order."""
    seen: dict[str, None] = {}
    for part in TAG_SPLIT.split(text):
        tag = part.strip().lstrip("#")
        if tag:
            seen.setdefault(tag, None)
    return tuple(seen)


def read_notes(run_dir: Path) -> Notes:
    """The run's notes; empty when there are none or the file is unreadable."""
    data = read_json(Path(run_dir) / NOTES_JSON)
    note = data.get("note") if isinstance(data.get("note"), str) else ""
    tags = data.get("tags") if isinstance(data.get("tags"), list) else []
    return Notes(note, tuple(t for t in tags if isinstance(t, str) and t))


def write_notes(run_dir: Path, notes: Notes) -> None:
    """Replace the run's notes atomically (a running run's folder is fine: the loop never touches this file)."""
    write_json(Path(run_dir) / NOTES_JSON, {"note": notes.note, "tags": list(notes.tags)}, durable=True)
