"""The runs table's columns: what each shows, how it sorts, and the table as CSV."""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ptviz.engine.storage.catalog import RunRecord, short_names

from .lr_column import LR_PATH, current_lr, lr_text


@dataclass(frozen=True)
class Column:
    """One column: its key, title, cell text and sort value (None sorts last either way)."""

    key: str
    title: str
    text: Callable[[RunRecord], str]
    value: Callable[[RunRecord], Any]
    numeric: bool = False


def _percent(value: float | None) -> str:
    return f"{value:.2%}" if value is not None else "-"


def _progress(done: int, total: int | None) -> str:
    return f"{done:,}/{total:,}" if total else f"{done:,}"


def duration(seconds: float | None) -> str:
    """'7.4s', '3m 05s', '2h 03m'."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def when(stamp: float | None) -> str:
    """'12-02 05:12' (month-day hour:minute)."""
    return time.strftime("%m-%d %H:%M", time.localtime(stamp)) if stamp else "-"


def state_text(r: RunRecord) -> str:
    """The state, 'not a run', with a mark when part of the run could not be read."""
    base = r.state or "not a run"
    return base + (" ⚠" if r.problems and r.state else "")


FIXED = [
    Column("name", "run", lambda r: r.name, lambda r: r.name),
    Column("state", "state", state_text, lambda r: r.state or "~"),
    Column("best", "best acc", lambda r: _percent(r.best_accuracy), lambda r: r.best_accuracy, True),
    Column("last", "last acc", lambda r: _percent(r.last_accuracy), lambda r: r.last_accuracy, True),
    Column("loss", "loss", lambda r: f"{r.last_loss:.4f}" if r.last_loss is not None else "-",
           lambda r: r.last_loss, True),
    Column("epoch", "epoch", lambda r: _progress(r.epoch, r.epochs) if r.is_run else "-",
           lambda r: r.epoch if r.is_run else None, True),
    Column("step", "steps", lambda r: _progress(r.step, r.total_steps) if r.is_run else "-",
           lambda r: r.step if r.is_run else None, True),
    Column("time", "time", lambda r: duration(r.seconds), lambda r: r.seconds, True),
    Column("when", "when", lambda r: when(r.started), lambda r: r.started),
    Column("recipe", "recipe", lambda r: r.recipe or "-", lambda r: r.recipe or None),
    Column("data", "data", lambda r: r.dataset or "-", lambda r: r.dataset or None),
    Column("model", "model", lambda r: r.model or "-", lambda r: r.model or None),
    Column("note", "note", lambda r: r.notes.text, lambda r: r.notes.text or None),
    Column("problem", "problem", lambda r: "; ".join(r.problems), lambda r: "; ".join(r.problems) or None),
]
LR_COLUMN = Column("set:" + LR_PATH, "lr", lr_text, current_lr, True)  # the rate now, not only the setting
SETTINGS_AFTER = "state"  # the differing settings come right after this column, where they are seen first


USER_FILE = re.compile(r"^.*/([^/]+\.py:[\w.]+)$")  # a --task or --model given as path/file.py:factory


def _setting_value(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return text


def _shown(text: str) -> str:
    """A setting as its cell shows it: user code named by path ('/work/repo/nets.py:build') by its file alone."""
    match = USER_FILE.match(text)
    return match.group(1) if match else text


def columns_for(setting_paths: list[str]) -> list[Column]:
    """The fixed columns with one column per differing setting after the state (lr: the rate now)."""
    titles = short_names(setting_paths)
    settings = [LR_COLUMN if p == LR_PATH else
                Column("set:" + p, titles[p], lambda r, p=p: _shown(r.settings.get(p, "-")),
                       lambda r, p=p: _setting_value(r.settings.get(p)), True) for p in setting_paths]
    at = [c.key for c in FIXED].index(SETTINGS_AFTER) + 1
    return [*FIXED[:at], *settings, *FIXED[at:]]


def sorted_records(records: list[RunRecord], column: Column, reverse: bool) -> list[RunRecord]:
    """Records by one column's value; runs without a value come last in either direction."""
    have = [r for r in records if column.value(r) is not None]
    missing = [r for r in records if column.value(r) is None]

    def key(r: RunRecord) -> tuple:
        v = column.value(r)
        return (0, v, "") if isinstance(v, (int, float)) else (1, 0, str(v))

    return sorted(have, key=key, reverse=reverse) + missing


def to_csv(records: list[RunRecord], columns: list[Column]) -> str:
    """The table as CSV: a header of column titles, then one line per run, numbers unformatted (0.9666, not 96.66%)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["path", *(c.title for c in columns)])
    for r in records:
        cells = []
        for c in columns:
            value = c.value(r) if c.numeric else None
            cells.append(value if value is not None else ("" if c.numeric else c.text(r)))
        writer.writerow([str(r.path), *cells])
    return out.getvalue()
