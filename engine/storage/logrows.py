"""metrics.jsonl rows: one JSON object per line for every training step and every other event, and back.

A step row is `{"kind": "step", "step": 12, "loss": 0.53, "lr": 0.05, ...}`, one per optimizer step (its loss
the mean over the step's batches), with "grad_norm" when train.clip_norm is set and one key per named metric
of a task (`"mae": 0.21`); every other event is one row whose "kind" names it ("epoch", "eval",
"checkpoint", ...) and whose other keys are the event's fields. Non-finite numbers are written as null so
every line is standard JSON.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from ..events import (
    CheckpointSaved,
    Diverged,
    EpochEnded,
    Evaluated,
    Event,
    LrChanged,
    Notice,
    Paused,
    Resumed,
    RunFailed,
    RunFinished,
    RunStarted,
    StepMetrics,
    TrainableChanged,
)

KINDS: dict[type, str] = {
    RunStarted: "started", Evaluated: "eval", EpochEnded: "epoch", Paused: "paused", Resumed: "resumed",
    LrChanged: "lr", CheckpointSaved: "checkpoint", Notice: "notice", Diverged: "diverged",
    RunFinished: "finished", RunFailed: "failed", TrainableChanged: "trainable",
}
EVENT_OF_KIND = {kind: cls for cls, kind in KINDS.items()}


STEP_KEYS = ("kind", "step", "epoch", "epoch_step", "loss", "lr", "elapsed", "samples_per_s", "wall", "grad_norm")


def _finite(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return None if isinstance(value, float) and not math.isfinite(value) else value


def rows_of(event: Event, wall: float) -> list[dict[str, Any]]:
    """The log rows of one event: one per step for StepMetrics, else one; `wall` is the Unix time."""
    if isinstance(event, StepMetrics):
        last = event.last_step
        rows = [{"kind": "step", "step": step, "epoch": event.epoch, "epoch_step": event.epoch_step - (last - step),
                 "loss": _finite(loss), "lr": lr, "elapsed": round(event.elapsed, 3),
                 "samples_per_s": round(event.samples_per_s, 1), "wall": round(wall, 3)}
                for step, loss, lr in zip(event.steps, event.losses, event.lrs)]
        for row, norm in zip(rows, event.grad_norms):
            row["grad_norm"] = _finite(norm)
        for name, values in event.metrics.items():
            for row, value in zip(rows, values):
                row[name] = _finite(value)
        return rows
    kind = KINDS.get(type(event))
    if kind is None:
        return []
    fields = {f.name: _finite(getattr(event, f.name)) for f in dataclasses.fields(event)}
    return [{"kind": kind, **fields, "wall": round(wall, 3)}]


# Step rows are most of the log: formatting them directly is four times faster than json.dumps.
_STEP_LINE = ('{"kind":"step","step":%d,"epoch":%d,"epoch_step":%d,"loss":%s,"lr":%r,"elapsed":%r,'
              '"samples_per_s":%r,"wall":%r}\n')


def encode_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Each row as a newline-terminated JSON line (ASCII: json escapes anything else)."""
    return [_encode_row(r) for r in rows]


_NORM_STEP_LINE = _STEP_LINE[:-2] + ',"grad_norm":%s}\n'


def _number(value: float | None) -> str:
    return "null" if value is None else repr(value)


def encode(rows: list[dict[str, Any]]) -> str:
    """Rows as newline-terminated JSON lines."""
    return "".join(encode_lines(rows))


def _encode_row(r: dict[str, Any]) -> str:
    if r["kind"] == "step" and (len(r) == 9 or (len(r) == 10 and "grad_norm" in r)):
        values = (r["step"], r["epoch"], r["epoch_step"], _number(r["loss"]), r["lr"], r["elapsed"],
                  r["samples_per_s"], r["wall"])
        if len(r) == 9:
            return _STEP_LINE % values
        return _NORM_STEP_LINE % (*values, _number(r["grad_norm"]))
    return json.dumps(r, separators=(",", ":"), allow_nan=False) + "\n"


def decode_line(line: bytes | str) -> dict[str, Any] | None:
    """One row, or None for a line that is not a complete JSON object (a write cut short by a kill)."""
    try:
        row = json.loads(line)
    except ValueError:
        return None
    return row if isinstance(row, dict) and isinstance(row.get("kind"), str) else None


def _tuples(value: Any) -> Any:
    if not isinstance(value, list):
        return value
    if any(isinstance(v, list) for v in value):  # nested (a confusion matrix): only lists need converting
        return tuple(_tuples(v) for v in value)
    return tuple(value)


_FIELD_NAMES = {cls: frozenset(f.name for f in dataclasses.fields(cls)) for cls in EVENT_OF_KIND.values()}


def event_of(row: dict[str, Any]) -> Event | None:
    """The event a non-step row was written from (unknown kinds give None)."""
    cls = EVENT_OF_KIND.get(row.get("kind", ""))
    if cls is None:
        return None
    names = _FIELD_NAMES[cls]
    values = {k: (v if k == "config" else _tuples(v)) for k, v in row.items() if k in names}
    if cls is Diverged and values.get("value") is None:
        values["value"] = float("nan")
    try:
        return cls(**values)
    except TypeError:
        return None  # a row from a different version that lacks a required field


def events_of(rows: list[dict[str, Any]]) -> list[Event]:
    """Events from rows in order; consecutive step rows of one epoch become one StepMetrics."""
    events: list[Event] = []
    steps: list[dict[str, Any]] = []

    def flush() -> None:
        if steps:
            last = steps[-1]
            names = dict.fromkeys(k for r in steps for k in r if k not in STEP_KEYS)  # a task's named metrics
            events.append(StepMetrics(
                steps=tuple(r["step"] for r in steps),
                losses=tuple(float("nan") if r.get("loss") is None else r["loss"] for r in steps),
                lrs=tuple(r.get("lr", 0.0) for r in steps), epoch=last.get("epoch", 0),
                epoch_step=last.get("epoch_step", 0), samples_per_s=last.get("samples_per_s", 0.0),
                elapsed=last.get("elapsed", 0.0),
                metrics={n: tuple(float("nan") if r.get(n) is None else r[n] for r in steps) for n in names},
                grad_norms=tuple(float("nan") if r.get("grad_norm") is None else r["grad_norm"] for r in steps)
                if all("grad_norm" in r for r in steps) else ()))
            steps.clear()

    for row in rows:
        if row.get("kind") == "step":
            if steps and steps[-1].get("epoch") != row.get("epoch"):
                flush()
            steps.append(row)
            continue
        flush()
        event = event_of(row)
        if event is not None:
            events.append(event)
    flush()
    return events


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Every complete row of a metrics log (an unfinished last line is left out)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    rows = []
    for line in data.split(b"\n")[:-1]:  # the part after the last newline is unfinished
        row = decode_line(line)
        if row is not None:
            rows.append(row)
    return rows


def rows_up_to_checkpoint(rows: list[dict[str, Any]], save_id: str, step: int) -> list[dict[str, Any]]:
    """The rows written before a checkpoint was taken: those up to its own "checkpoint" row.

    Without that row (the process died between writing the checkpoint and logging it), the rows before
    the first one that belongs after the checkpoint are kept: a step past `step`, another row from past it,
    or the end of a run ("finished", "failed"). history.checkpoint_cut finds the same place in the files.
    """
    if save_id:
        for i in range(len(rows) - 1, -1, -1):
            if rows[i].get("kind") == "checkpoint" and rows[i].get("save_id") == save_id:
                return rows[: i + 1]
    for i, row in enumerate(rows):
        at = row.get("step")
        late = isinstance(at, (int, float)) and not isinstance(at, bool) and at > step
        if late or row.get("kind") in ("finished", "failed"):
            return rows[:i]
    return rows
