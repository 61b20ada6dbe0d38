"""What a user did to a run while it trained, read back from its log: lr changes, freezes, pauses, ..."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import logrows
from .runlog import METRICS_JSONL

STEP_PREFIX = b'{"kind":"step"'
CHUNK = 1 << 20


@dataclass(frozen=True)
class Intervention:
    """One live change: at which step, what, and from what to what (empty when it has no value)."""

    step: int
    what: str
    before: str = ""
    after: str = ""

    def text(self) -> str:
        """'lr 0.05 → 0.01', 'freeze fc1 (10 trainable)' or 'pause'."""
        if self.before:
            return f"{self.what} {self.before} → {self.after}"
        if self.after:
            return f"{self.what} → {self.after}" if self.what == "lr" else f"{self.what} ({self.after})"
        return self.what


def interventions(run_dir: Path) -> list[Intervention]:
    """Every intervention in the run's metrics.jsonl, in order; only non-step lines are decoded."""
    out: list[Intervention] = []
    last_step_line = b""
    lr_set_since_step: object = None  # a rate set after the last step row (several can land on one paused step)
    for line in _lines(Path(run_dir) / METRICS_JSONL):
        if line.startswith(STEP_PREFIX):
            last_step_line, lr_set_since_step = line, None
            continue
        row = logrows.decode_line(line)
        if row is None:
            continue
        kind = row["kind"]
        if kind == "lr":  # the rate set just before it, else the one the step row before it used
            before = lr_set_since_step
            if before is None and last_step_line:
                previous = logrows.decode_line(last_step_line)
                before = previous.get("lr") if previous else None
            out.append(Intervention(_int(row.get("step")), "lr", _g(before), _g(row.get("lr"))))
            lr_set_since_step = row.get("lr")
        elif kind == "trainable":
            module = row.get("module") or "whole model"
            out.append(Intervention(_int(row.get("step")), ("unfreeze " if row.get("trainable") else "freeze ") + module,
                                    "", f"{row.get('params_trainable', 0):,} trainable"))
        elif kind in ("paused", "resumed"):
            out.append(Intervention(_int(row.get("step")), "pause" if kind == "paused" else "resume"))
        elif kind == "eval" and row.get("mid_epoch"):
            out.append(Intervention(_int(row.get("step")), f"evaluate now ({row.get('split', 'test')})", "",
                                    _percent(row.get("accuracy"))))
        elif kind == "checkpoint" and row.get("reason") == "manual":
            out.append(Intervention(_int(row.get("step")), "checkpoint now", "", Path(str(row.get("path"))).name))
        elif kind == "diverged":
            out.append(Intervention(_int(row.get("step")), "loss diverged", "", str(row.get("value"))))
        elif kind == "step":
            last_step_line, lr_set_since_step = line, None  # a step row written by another formatter
    return out


def _lines(path: Path):
    """Complete lines of a file, read in chunks (the unfinished last line is left out)."""
    try:
        fh = open(path, "rb")
    except OSError:
        return
    with fh:
        rest = b""
        while chunk := fh.read(CHUNK):
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            yield from lines


def _int(value: object) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def _g(value: object) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else ""


def _percent(value: object) -> str:
    return f"{value:.2%}" if isinstance(value, (int, float)) and not isinstance(value, bool) else ""
