"""The Runs view's filter: every word must match a run (text anywhere, field=value, #tag)."""

from __future__ import annotations

from ptviz.engine.storage.catalog import RunRecord


def matches(record: RunRecord, text: str) -> bool:
    """Whether every word of `text` matches the run; an empty filter matches all.

    'lr=0.01' matches a setting whose field name (or full path) and value are those; '#tag' a tag; any other
    word is looked for, case-insensitively, in the name, state, recipe, data set, model, note, tags and problems.
    """
    haystack = None
    for word in text.lower().split():
        if "=" in word:
            field, _, value = word.partition("=")
            if not any((path.lower() == field or path.lower().endswith("." + field)) and _same_value(v, value)
                       for path, v in record.settings.items()):
                return False
        elif word.startswith("#") and len(word) > 1:
            if word[1:] not in (t.lower() for t in record.notes.tags):
                return False
        else:
            if haystack is None:
                haystack = " ".join([record.name, record.state or "not a run", record.recipe, record.dataset,
                                     record.model, record.notes.text, *record.problems]).lower()
            if word not in haystack:
                return False
    return True


def _same_value(shown: str, wanted: str) -> bool:
    try:
        return float(shown) == float(wanted)
    except ValueError:
        return shown.lower() == wanted
