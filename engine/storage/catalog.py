"""The runs under a folder as table rows: settings, progress, results, notes and lineage, read without torch.

Each run is read from its small files (config.toml, summary.json, notes.json, parent.json) and the end of
its metrics.jsonl only, so a folder of long runs lists in milliseconds. A run whose files are damaged still
gets a row, with the reasons in `problems`; nothing here raises for a bad run folder.
"""

from __future__ import annotations

import math
import os
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .. import config as cfgmod
from . import logrows
from .lineage import Lineage, read_lineage
from .notes import NOTES_JSON, Notes, read_notes
from .runlog import METRICS_JSONL, SUMMARY_JSON, read_json
from .runs import is_run_dir, run_info

CONFIG_TOML = "config.toml"
CONFIG_FORMAT = 1  # the config.toml layout this version writes and reads (files carry no marker before 2)
TAIL_BYTES = 64 * 1024
# Settings every run has in its own column, or that say where files go rather than how a run trains.
FIXED_PATHS = frozenset({"data.dataset", "model.name", "output.runs_dir"})


@dataclass(frozen=True)
class RunRecord:
    """One row of the runs table."""

    path: Path
    state: str  # running | finished | stopped | failed | diverged | interrupted | "" (not a run)
    recipe: str = ""
    dataset: str = ""
    model: str = ""
    step: int = 0
    total_steps: int | None = None
    epoch: int = 0
    epochs: int | None = None
    best_accuracy: float | None = None  # best test accuracy, 0..1
    last_accuracy: float | None = None  # test accuracy at the last epoch end
    last_loss: float | None = None  # training loss of the last logged step
    lr: float | None = None  # the learning rate now: of the last logged step or live change (optim.lr is the setting)
    seconds: float | None = None  # training time (pauses excluded)
    started: float | None = None  # Unix time the run began
    updated: float = 0.0  # Unix time of its newest log write
    settings: dict[str, str] = field(default_factory=dict)  # 'section.field' -> value as a form shows it
    lineage: Lineage | None = None
    notes: Notes = field(default_factory=Notes)
    problems: tuple[str, ...] = ()  # why parts of this run could not be read
    pid: int | None = None

    @property
    def name(self) -> str:
        """The run folder's name."""
        return self.path.name

    @property
    def is_run(self) -> bool:
        """Whether the folder holds a run at all (else only `problems` says anything)."""
        return bool(self.state)

    def with_problem(self, text: str) -> RunRecord:
        """This record with one more reason (once)."""
        return self if text in self.problems else replace(self, problems=(*self.problems, text))


# ----------------------------------------------------------------------------- reading one run


def read_record(run_dir: Path) -> RunRecord:
    """Everything the table shows about one folder; a damaged file becomes a reason, never an exception."""
    run_dir = Path(run_dir)
    if not is_run_dir(run_dir):
        return RunRecord(path=run_dir, state="", updated=_mtime(run_dir),
                         problems=(f"not a run: no {CONFIG_TOML} or {METRICS_JSONL} in this folder",))
    problems: list[str] = []
    settings = read_settings(run_dir, problems)
    summary = read_json(run_dir / SUMMARY_JSON)
    if (run_dir / SUMMARY_JSON).exists() and not summary:
        problems.append(f"{SUMMARY_JSON} is damaged: state and results are read from the log")
    try:
        info = run_info(run_dir)
        state, step, epoch, pid = info.state, info.step, info.epoch, info.pid
        total, epochs, updated = info.total_steps, info.epochs, info.updated
    except (TypeError, ValueError, OSError) as exc:
        problems.append(f"{SUMMARY_JSON} holds a value of the wrong kind ({exc})")
        state, step, epoch, pid, total, epochs, updated = "interrupted", 0, 0, None, None, None, _mtime(run_dir)
    tail = read_tail(run_dir)
    if tail.cut and state != "running":
        problems.append(f"{METRICS_JSONL}: its last line was cut short ({tail.cut} bytes, a write killed "
                        "mid-line); that line is left out")
    if tail.step is not None and state in ("running", "interrupted"):
        step = max(step, tail.step)
    seconds = _number(summary.get("seconds"))
    if seconds is None or state == "running":
        seconds = tail.elapsed if tail.elapsed is not None else seconds
    # A task brings its own model and data: the recipe's, still in its config.toml, trained nothing.
    task = bool(settings.get("data.task"))
    return RunRecord(
        path=run_dir, state=state, recipe="task" if task else settings.get("recipe", ""),
        dataset="" if task else settings.get("data.dataset", ""), model="" if task else settings.get("model.name", ""),
        step=step, total_steps=_int(total), epoch=epoch, epochs=_int(epochs),
        best_accuracy=_number(summary.get("best_test_accuracy")),
        last_accuracy=_number(summary.get("test_accuracy")) if tail.accuracy is None else tail.accuracy,
        last_loss=tail.loss if tail.loss is not None else _number(summary.get("train_loss")), lr=tail.lr,
        seconds=seconds, started=_parse_time(summary.get("started_at")) or _mtime(run_dir / CONFIG_TOML),
        updated=updated, settings={k: v for k, v in settings.items() if k != "recipe"},
        lineage=read_lineage(run_dir), notes=read_notes(run_dir), problems=tuple(problems), pid=pid)


def read_settings(run_dir: Path, problems: list[str]) -> dict[str, str]:
    """config.toml as 'section.field' -> text (plus 'recipe'); what cannot be read goes to `problems`."""
    path = Path(run_dir) / CONFIG_TOML
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        problems.append(f"no {CONFIG_TOML}: its settings are unknown")
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        problems.append(f"{CONFIG_TOML} cannot be read: {exc}")
        return {}
    settings, unknown = flat_settings(data)
    version = data.get("format", CONFIG_FORMAT)
    if not isinstance(version, int) or isinstance(version, bool) or version > CONFIG_FORMAT:
        problems.append(f"{CONFIG_TOML} is format {version!r}, newer than this ptviz reads ({CONFIG_FORMAT}); "
                        "the settings it knows are shown")
    elif unknown:
        problems.append(f"{CONFIG_TOML} has settings this ptviz does not know ({', '.join(unknown[:4])}"
                        f"{', …' if len(unknown) > 4 else ''}): written by a newer version?")
    return settings


def flat_settings(data: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """A parsed config.toml as 'section.field' -> text, and the keys this version does not know."""
    known = set(cfgmod.field_paths())
    flat: dict[str, str] = {}
    unknown: list[str] = []
    if isinstance(data.get("recipe"), str):
        flat["recipe"] = data["recipe"]
    for section, part in data.items():
        if section in ("recipe", "format"):
            continue
        if not isinstance(part, dict):
            unknown.append(section)
            continue
        for name, value in part.items():
            path = f"{section}.{name}"
            if path in known:
                flat[path] = setting_text(value)
            else:
                unknown.append(path)
    return flat, unknown


def setting_text(value: Any) -> str:
    """A TOML value as a form would show it (transforms as 'Name(k=v)')."""
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return ", ".join(f"{v.get('name', '?')}(" + ", ".join(f"{k}={_scalar(p)}" for k, p in v.items()
                                                               if k != "name") + ")" for v in value)
    if isinstance(value, list):
        return ", ".join(_scalar(v) for v in value) if value else "none"
    return _scalar(value)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@dataclass(frozen=True)
class Tail:
    """What the end of a run's metrics.jsonl says."""

    step: int | None = None
    loss: float | None = None
    elapsed: float | None = None
    accuracy: float | None = None  # the last epoch row's test accuracy, when the tail holds one
    lr: float | None = None  # the rate of the last step row or "lr" row (a live change), whichever came later
    cut: int = 0  # bytes after the last newline: a line a kill cut short (or one being written)


def read_tail(run_dir: Path, size: int = TAIL_BYTES) -> Tail:
    """The last step row (and epoch row) found in the last `size` bytes of the log."""
    path = Path(run_dir) / METRICS_JSONL
    try:
        with open(path, "rb") as fh:
            end = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, end - size))
            data = fh.read()
    except OSError:
        return Tail()
    lines = data.split(b"\n")
    cut = len(lines.pop())
    step_row = epoch_row = lr_row = None
    for line in reversed(lines):  # only the rows wanted are decoded, not the hundreds between them
        if step_row is None and line.startswith(b'{"kind":"step"'):
            step_row = logrows.decode_line(line)
            lr_row = lr_row or step_row
        elif epoch_row is None and line.startswith(b'{"kind":"epoch"'):
            epoch_row = logrows.decode_line(line)
        elif lr_row is None and line.startswith(b'{"kind":"lr"'):
            lr_row = logrows.decode_line(line)
        if step_row is not None and epoch_row is not None:
            break
    return Tail(step=_int(step_row.get("step")) if step_row else None,
                loss=_number(step_row.get("loss")) if step_row else None,
                elapsed=_number(step_row.get("elapsed")) if step_row else None,
                accuracy=_number(epoch_row.get("test_accuracy")) if epoch_row else None,
                lr=_number(lr_row.get("lr")) if lr_row else None, cut=cut)


# ----------------------------------------------------------------------------- a folder of runs


def folder_entries(parent: Path) -> list[Path]:
    """The folders directly under `parent` (hidden ones left out), by name."""
    try:
        return sorted(p for p in Path(parent).iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []


def signature(run_dir: Path) -> tuple:
    """Changes whenever a file the record is read from changes (sizes and modification times)."""
    out = []
    for name in (CONFIG_TOML, SUMMARY_JSON, METRICS_JSONL, NOTES_JSON, "parent.json", "control/lock"):
        try:
            info = os.stat(Path(run_dir) / name)
            out.append((info.st_size, info.st_mtime_ns))
        except OSError:
            out.append(None)
    return tuple(out)


class Catalog:
    """The runs of one folder, re-read only where their files changed; running runs are re-read every time."""

    def __init__(self, parent: Path):
        self.parent = Path(parent)
        self.records: dict[Path, RunRecord] = {}
        self._signatures: dict[Path, tuple] = {}
        self._extra: dict[Path, tuple[str, ...]] = {}  # reasons found later, by whoever read the whole log

    def refresh(self) -> bool:
        """Re-read what changed; whether any row did."""
        changed = False
        present = folder_entries(self.parent)
        for path in set(self.records) - set(present):
            del self.records[path], self._signatures[path]
            changed = True
        for path in present:
            sig = signature(path)
            old = self.records.get(path)
            if old is not None and sig == self._signatures[path] and old.state != "running":
                continue
            record = read_record(path)
            for problem in self._extra.get(path, ()):
                record = record.with_problem(problem)
            self._signatures[path] = sig
            if record != old:
                self.records[path] = record
                changed = True
        return changed

    def set_found(self, path: Path, problems: list[str]) -> None:
        """The reasons found by whoever read the whole log (garbled lines), replacing those it found before."""
        old = self._extra.get(path, ())
        if tuple(problems) == old:
            return
        self._extra[path] = tuple(problems)
        record = self.records.get(path)
        if record is not None:
            record = replace(record, problems=tuple(p for p in record.problems if p not in old))
            for problem in problems:
                record = record.with_problem(problem)
            self.records[path] = record

    def rows(self) -> list[RunRecord]:
        """Every record, parents before their forks (see tree_order)."""
        return [r for r, _ in tree_order(list(self.records.values()))]


def tree_order(records: list[RunRecord]) -> list[tuple[RunRecord, int]]:
    """Records with their depth: each parent followed by its forks (by start time), roots by name."""
    by_path = {r.path: r for r in records}
    parents = {r.path: Path(r.lineage.parent) if r.lineage else None for r in records}
    return [(by_path[p], depth) for p, depth in tree_of(parents, key=lambda p: (by_path[p].started or 0, p.name))]


def tree_of(parents: dict[Path, Path | None], key: Callable[[Path], Any]) -> list[tuple[Path, int]]:
    """Paths with their depth, each followed by the paths whose parent it is; `key` orders siblings.

    A path whose parent is not among them is a root; so is every path of a parent.json loop.
    """
    absolute = {os.path.abspath(p): p for p in parents}
    resolved: dict[str, Path] | None = None  # by real path, made only when a parent is not found by its absolute one
    children: dict[Path, list[Path]] = {}
    roots = []
    for path, parent in parents.items():
        found = absolute.get(os.path.abspath(parent)) if parent is not None else None
        if found is None and parent is not None:
            resolved = resolved if resolved is not None else {_key(p): p for p in parents}
            found = resolved.get(_key(parent))
        if found is not None and found != path:
            children.setdefault(found, []).append(path)
        else:
            roots.append(path)
    out: list[tuple[Path, int]] = []
    seen: set[Path] = set()

    def visit(path: Path, depth: int) -> None:
        if path in seen:
            return
        seen.add(path)
        out.append((path, depth))
        for child in sorted(children.get(path, []), key=key):
            visit(child, depth + 1)

    for root in sorted(roots, key=lambda p: p.name):
        visit(root, 0)
    for path in sorted(parents, key=lambda p: p.name):  # runs only reachable through a loop
        visit(path, 0)
    return out


def differing_settings(records: list[RunRecord]) -> list[str]:
    """The setting paths whose values are not the same across the runs that have settings, in field order."""
    with_settings = [r for r in records if r.settings]
    if len(with_settings) < 2:
        return []
    out = []
    for path in cfgmod.field_paths():
        if path in FIXED_PATHS:
            continue
        values = {r.settings.get(path) for r in with_settings}
        if len(values) > 1:
            out.append(path)
    return out


def short_names(paths: list[str]) -> dict[str, str]:
    """Column titles for setting paths: the field name, or section.field where two sections share it."""
    names = [p.split(".", 1)[1] for p in paths]
    return {p: (n if names.count(n) == 1 else p) for p, n in zip(paths, names)}


def _key(path: Path) -> str:
    try:
        return str(path.resolve())
    except OSError:
        return str(path)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


def _parse_time(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return time.mktime(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None
