"""What the run directories under a folder hold: state, progress and best accuracy, read without torch."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import logrows
from .rundir import CONTROL_DIR, LOCK_NAME, holder_pid
from .runlog import METRICS_JSONL, SUMMARY_JSON

TAIL_BYTES = 64 * 1024  # enough of the log's end to find its last step row


@dataclass(frozen=True)
class RunInfo:
    """One run directory at a glance."""

    path: Path
    state: str  # running | finished | stopped | failed | diverged | interrupted | damaged | unknown (no lock access)
    step: int
    total_steps: int | None
    epoch: int
    epochs: int | None
    best_test_accuracy: float | None
    pid: int | None
    updated: float  # modification time of the newest log file
    problem: str = ""  # why a damaged run's record cannot be read
    world_size: int = 1  # processes that trained it together (torchrun)
    restarts: int = 0  # how often torchrun's agent restarted its workers after a failure


def last_step(run_dir: Path) -> int | None:
    """The step of the last step row of a run's metrics log, reading only its end."""
    row = last_step_row(run_dir)
    return int(row["step"]) if row is not None else None


def last_step_row(run_dir: Path) -> dict | None:
    """The last step row of a run's metrics log (step, epoch, loss...), reading only its end."""
    path = Path(run_dir) / METRICS_JSONL
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - TAIL_BYTES))
            lines = fh.read().split(b"\n")[:-1]
    except OSError:
        return None
    for line in reversed(lines):
        row = logrows.decode_line(line)
        if row is not None and row["kind"] == "step":
            return row
    return None


# summary.json fields run_info reads: the types each must have, and how to say so.
SUMMARY_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "state": ((str,), "text"), "step": ((int,), "a whole number"), "total_steps": ((int,), "a whole number"),
    "epoch": ((int,), "a whole number"), "epochs": ((int,), "a whole number"),
    "best_test_accuracy": ((int, float), "a number"), "world_size": ((int,), "a whole number"),
    "restarts": ((int,), "a whole number"),
}


def read_summary(run_dir: Path) -> tuple[dict[str, Any], str]:
    """A run's summary.json and '' ({} when there is none), or {} and why it cannot be used."""
    path = Path(run_dir) / SUMMARY_JSON
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, ""
    except (OSError, UnicodeDecodeError) as exc:
        return {}, f"{SUMMARY_JSON}: cannot be read ({exc.strerror if isinstance(exc, OSError) else 'not text'})"
    except ValueError as exc:
        return {}, f"{SUMMARY_JSON}: not valid JSON ({exc})"
    if not isinstance(data, dict):
        return {}, f"{SUMMARY_JSON}: holds a {type(data).__name__}, not an object"
    for key, (types, kind) in SUMMARY_TYPES.items():
        value = data.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, types)):
            return {}, f"{SUMMARY_JSON}: {key} is {json.dumps(value)[:40]}, not {kind}"
    return data, ""


def run_info(run_dir: Path) -> RunInfo:
    """The state of one run: 'running' while a process holds its lock, 'interrupted' when one died mid-run,
    'damaged' when its summary cannot be read (the reason in `problem`)."""
    run_dir = Path(run_dir)
    summary, problem = read_summary(run_dir)
    pid = holder_pid(run_dir)
    state = "damaged" if problem else summary.get("state", "interrupted")
    if pid is not None:
        state = "running"
    elif state == "running":
        state, pid = _state_without_lock(run_dir, summary)
    row = last_step_row(run_dir)
    step, epoch = (row["step"], row.get("epoch")) if row is not None else (None, None)
    if step is None or state not in ("running", "interrupted", "damaged"):  # the summary has the final word
        step, epoch = summary.get("step", step or 0), summary.get("epoch")
    times = [p.stat().st_mtime for p in (run_dir / METRICS_JSONL, run_dir / SUMMARY_JSON) if p.exists()]
    return RunInfo(path=run_dir, state=state, step=int(step or 0), total_steps=summary.get("total_steps"),
                   epoch=int(epoch or summary.get("epoch") or 0), epochs=summary.get("epochs"),
                   best_test_accuracy=summary.get("best_test_accuracy"), pid=pid if pid and pid > 0 else None,
                   updated=max(times, default=run_dir.stat().st_mtime), problem=problem,
                   world_size=int(summary.get("world_size") or 1), restarts=int(summary.get("restarts") or 0))


def _state_without_lock(run_dir: Path, summary: dict) -> tuple[str, int | None]:
    """(state, pid) of a run whose summary says running but whose lock no process we can see holds."""
    if not _lock_denied(run_dir):
        return "interrupted", None  # its process ended without writing a final summary (killed, power loss)
    # Another user's run: its owner-only lock cannot be opened, so ask whether the process it names lives.
    pid = summary.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return "unknown", None
    return ("running", pid) if _process_exists(pid) else ("interrupted", None)


def _lock_denied(run_dir: Path) -> bool:
    """Whether the run's lock file exists but this user may not open it."""
    try:
        fd = os.open(Path(run_dir) / CONTROL_DIR / LOCK_NAME, os.O_RDONLY)
    except PermissionError:
        return True
    except OSError:
        return False
    os.close(fd)
    return False


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists and belongs to someone else
    except (OSError, OverflowError):
        return False
    return True


def is_run_dir(path: Path) -> bool:
    """Whether `path` looks like a run directory."""
    return path.is_dir() and ((path / "config.toml").is_file() or (path / METRICS_JSONL).is_file())


def list_runs(parent: Path) -> list[RunInfo]:
    """Every run directory directly under `parent`, oldest first; one that cannot be read is listed as damaged."""
    runs = []
    for path in Path(parent).iterdir():
        try:
            if is_run_dir(path):
                runs.append(run_info(path))
        except OSError as exc:  # a folder we may not read (another user's, a broken mount)
            runs.append(RunInfo(path=path, state="damaged", step=0, total_steps=None, epoch=0, epochs=None,
                                best_test_accuracy=None, pid=None, updated=0.0,
                                problem=f"cannot be read ({exc.strerror or exc})"))
    return sorted(runs, key=lambda r: r.path.name)
