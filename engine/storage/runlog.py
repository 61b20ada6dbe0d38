"""A run directory's logs: metrics.jsonl, metrics.csv, TensorBoard event files and summary.json.

metrics.jsonl is the record: one row per training step plus one per other event (logrows.py), written
and flushed to the operating system as events arrive (the loop hands over points up to ten times a
second), and fsynced before every checkpoint. metrics.csv holds the same numbers in the layout of
Lightning's CSVLogger, with columns for a task's named metrics (train_mae, train_mae_epoch, val_mae,
test_mae). steps.bin and events.idx are a binary copy for readers (steplog.py, history.py).
On resume every file is truncated where the checkpoint was taken (nothing is rewritten), so every step
has exactly one row; a rollback in place (rewind) cuts them back the same way. A write that fails (a full
disk) is reported to `on_error` and written again later, never half; summary.json records how the run
ended even then.
"""

from __future__ import annotations

import errno
import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from . import logrows, steplog
from .appendfile import AppendFile
from ..config import TrainConfig
from .history import Cut, LogRecords
from ..events import (
    CheckpointSaved,
    Diverged,
    EpochEnded,
    Evaluated,
    Event,
    LayerStats,
    Paused,
    RunFailed,
    RolledBack,
    RunFinished,
    RunStarted,
    StepMetrics,
)

METRICS_JSONL = "metrics.jsonl"
METRICS_CSV = "metrics.csv"
SUMMARY_JSON = "summary.json"
TENSORBOARD_DIR = "tensorboard"
# Lightning's CSVLogger layout: one header, a row per logging call, empty cells for metrics not logged then.
CSV_COLUMNS = ("epoch", "step", "lr", "train_loss", "train_loss_epoch", "train_acc_epoch",
               "val_loss", "val_acc", "test_loss", "test_acc")
GRAD_NORM_COLUMNS = ("grad_norm",)  # with train.clip_norm
EMA_COLUMNS = ("ema_val_loss", "ema_val_acc", "ema_test_loss", "ema_test_acc")  # with train.ema_decay
KEPT_STATES = ("finished", "stopped", "diverged")  # outcomes a resume that fails before training leaves as they were


def csv_columns(metrics: tuple[str, ...] = (), train: TrainConfig | None = None) -> tuple[str, ...]:
    """The metrics.csv header: Lightning's columns, four per named metric of a task, then those of the training
    options the run uses."""
    columns = CSV_COLUMNS + tuple(f"{prefix}_{m}{suffix}" for m in metrics
                                  for prefix, suffix in (("train", ""), ("train", "_epoch"), ("val", ""), ("test", "")))
    if train is not None and train.clip_norm > 0:
        columns += GRAD_NORM_COLUMNS
    if train is not None and train.ema_decay > 0:
        columns += EMA_COLUMNS
    return columns


def csv_lines(rows: list[dict[str, Any]], columns: tuple[str, ...] = CSV_COLUMNS) -> str:
    """The metrics.csv lines of some log rows (every value is a number, so nothing needs quoting)."""
    out = []
    for values in map(csv_row, rows):
        if values is not None:
            out.append(",".join("" if values.get(c) is None else repr(values[c]) for c in columns) + "\n")
    return "".join(out)


def csv_row(row: dict[str, Any]) -> dict[str, Any] | None:
    """The metrics.csv row of a log row (None for rows that hold no metric)."""
    kind = row["kind"]
    if kind == "step":
        values = {"epoch": row["epoch"], "step": row["step"], "lr": row["lr"], "train_loss": row["loss"],
                  "grad_norm": row.get("grad_norm")}
        values.update((f"train_{k}", v) for k, v in row.items() if k not in logrows.STEP_KEYS)
        return values
    if kind == "epoch":
        values = {"epoch": row["epoch"], "step": row["step"], "lr": row["lr"], "train_loss_epoch": row["train_loss"],
                  "train_acc_epoch": row["train_accuracy"], "val_loss": row["val_loss"],
                  "val_acc": row["val_accuracy"], "test_loss": row["test_loss"], "test_acc": row["test_accuracy"],
                  "ema_val_loss": row.get("ema_val_loss"), "ema_val_acc": row.get("ema_val_accuracy"),
                  "ema_test_loss": row.get("ema_test_loss"), "ema_test_acc": row.get("ema_test_accuracy")}
        values.update((f"train_{k}_epoch", v) for k, v in (row.get("train_metrics") or {}).items())
        for split in ("val", "test"):
            values.update((f"{split}_{k}", v) for k, v in (row.get(f"{split}_metrics") or {}).items())
        return values
    if kind == "eval" and row.get("mid_epoch"):  # end-of-epoch evaluations are in the epoch row
        split = row["split"]
        values = {"epoch": row["epoch"], "step": row["step"], f"{split}_loss": row["loss"],
                  f"{split}_acc": row["accuracy"]}
        values.update((f"{split}_{k}", v) for k, v in (row.get("metrics") or {}).items())
        return values
    return None


def write_json(path: Path, data: dict[str, Any], durable: bool = False) -> None:
    """Replace a small JSON file atomically (fsynced when `durable`).

    On a full disk, where no new file fits, the file is rewritten in place: a summary fits the disk
    block it already holds, so the run's final state is still recorded.
    """
    text = json.dumps(data, indent=2, allow_nan=False, default=str) + "\n"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT) or not path.is_file():
            raise
        with open(path, "r+b") as fh:
            fh.write(text.encode("utf-8"))
            fh.truncate()
            fh.flush()
            os.fsync(fh.fileno())


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a file, or {} when it is missing or unreadable."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class TensorBoardWriter:
    """Scalars into TensorBoard event files (only when tensorboard is installed).

    Training loss goes in as the mean of each batch of points the loop hands over (at most ten a second,
    like Lightning's log_every_n_steps): a TensorBoard write costs far more than a log row, and
    metrics.jsonl already holds every step.
    """

    def __init__(self, writer: Any):
        self.writer = writer

    @classmethod
    def open(cls, folder: Path, purge_step: int | None) -> TensorBoardWriter | None:
        """A writer for `folder`; events at or past `purge_step` from earlier sessions are hidden."""
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return None
        return cls(SummaryWriter(log_dir=str(folder), purge_step=purge_step, flush_secs=10))

    def write(self, event: Event, wall: float) -> None:
        """Add the scalars of one event."""
        add = self.writer.add_scalar
        if isinstance(event, StepMetrics):
            for name, values in (("loss", event.losses), *event.metrics.items()):
                finite = [v for v in values if math.isfinite(v)]
                if finite:
                    add(f"train/{name}", sum(finite) / len(finite), event.last_step, walltime=wall)
            add("train/lr", event.lrs[-1], event.last_step, walltime=wall)
            norms = [v for v in event.grad_norms if math.isfinite(v)]
            if norms:
                add("train/grad_norm", sum(norms) / len(norms), event.last_step, walltime=wall)
        elif isinstance(event, Evaluated):
            add(f"{event.split}/loss", event.loss, event.step, walltime=wall)
            if event.accuracy is not None:
                add(f"{event.split}/accuracy", event.accuracy, event.step, walltime=wall)
            for name, value in event.metrics.items():
                add(f"{event.split}/{name}", value, event.step, walltime=wall)
        elif isinstance(event, EpochEnded):
            add("train/epoch_loss", event.train_loss, event.step, walltime=wall)
            if event.train_accuracy is not None:
                add("train/epoch_accuracy", event.train_accuracy, event.step, walltime=wall)
            for name, value in event.train_metrics.items():
                add(f"train/epoch_{name}", value, event.step, walltime=wall)
        elif isinstance(event, LayerStats):
            self._layers(event, wall)

    def _layers(self, event: LayerStats, wall: float) -> None:
        """Histograms of weights and gradients, and each layer's gradient norm, update ratio and dead share."""
        for h in event.histograms:
            self.writer.add_histogram_raw(h.tag, h.min, h.max, h.num, h.sum, h.sum_squares, list(h.bucket_limits),
                                          list(h.bucket_counts), event.step, walltime=wall)
        for name, grad, ratio in zip(event.params, event.grad_norms, event.update_ratios()):
            for tag, value in ((f"grad_norm/{name}", grad), (f"update_ratio/{name}", ratio)):
                if math.isfinite(value):
                    self.writer.add_scalar(f"layers/{tag}", value, event.step, walltime=wall)
        for name, dead in zip(event.activations, event.dead):
            if math.isfinite(dead):
                self.writer.add_scalar(f"layers/dead/{name}", dead, event.step, walltime=wall)

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.close()


class RunLog:
    """EventSink writing the run directory's logs; `resume` (a checkpoint) first cuts them back to it.

    A write that fails is handed to `on_error(exc, folder)` (the loop pauses or stops there) and tried
    again with the next event; emit() itself never raises for it, so other sinks still see every event.
    `metrics` names a task's metrics, each with its columns in metrics.csv.
    """

    def __init__(self, run_dir: Path, resume: dict[str, Any] | None = None, tensorboard: bool = True,
                 on_error: Callable[[OSError, Path], None] | None = None, metrics: tuple[str, ...] = (),
                 train: TrainConfig | None = None):
        self.run_dir = Path(run_dir)
        self.on_error = on_error
        self.columns = csv_columns(metrics, train)
        self._options = {"tensorboard": tensorboard, "on_error": on_error, "metrics": metrics,
                         "train": train}  # for rewind()
        # The step rows' extra values, kept as columns of the binary copy too.
        extras = steplog.union(GRAD_NORM_COLUMNS if train is not None and train.clip_norm > 0 else (), metrics)
        jsonl, csv_path = self.run_dir / METRICS_JSONL, self.run_dir / METRICS_CSV
        records = LogRecords(self.run_dir)
        # A resume keeps the log up to its checkpoint; otherwise every complete row (a partial last line goes).
        cut = (records.checkpoint_cut(resume.get("save_id", ""), int(resume["step"])) if resume is not None
               else records.cut_at(records.end))
        if jsonl.exists() and jsonl.stat().st_size > cut.jsonl:
            os.truncate(jsonl, cut.jsonl)
        _cut_csv(csv_path, cut.csv_lines, jsonl, self.columns)
        self.copy = _cut_copy(self.run_dir, records, cut, extras)
        self.jsonl = AppendFile(jsonl)
        self.csv = AppendFile(csv_path)
        purge = int(resume["step"]) + 1 if resume is not None else None
        self.tb = TensorBoardWriter.open(self.run_dir / TENSORBOARD_DIR, purge) if tensorboard else None
        previous = read_json(self.run_dir / SUMMARY_JSON)
        # A resume that fails before its first step changed nothing: the run keeps the state it had.
        self.kept_state = previous if resume is not None and previous.get("state") in KEPT_STATES else None
        self.summary: dict[str, Any] = {"started_at": previous.get("started_at") or _now()}
        if isinstance(previous.get("restarts"), int):  # torchrun's restarts over the run's life
            self.summary["restarts"] = previous["restarts"]
        if resume is not None:  # what the resumed run carries on from: its best result and checkpoints
            self.summary["best_test_accuracy"] = resume.get("best_test_accuracy")
            for key in ("best_checkpoint", "last_checkpoint"):
                if isinstance(previous.get(key), str) and (self.run_dir / previous[key]).is_file():
                    self.summary[key] = previous[key]

    def emit(self, event: Event) -> None:
        """Append the event's rows to every log and flush them to the operating system."""
        wall = time.time()
        rows = logrows.rows_of(event, wall)
        if not rows:
            return
        if isinstance(event, StepMetrics):
            self.kept_state = None  # the resumed run has trained: from here on its own outcome counts
        lines = logrows.encode_lines(rows)
        text = "".join(lines)
        start = self.jsonl.size + len(self.jsonl.pending)  # where these rows land once all queued is written
        self.jsonl.add(text)
        self.csv.add(csv_lines(rows, self.columns))
        # The copy follows the JSONL; a reader takes only records whose rows are in it, and parses the rest.
        if isinstance(event, StepMetrics):
            ascii_only = len(text.encode()) == len(text)
            lengths = [len(line) if ascii_only else len(line.encode()) for line in lines]
            self.copy.add_steps(steplog.step_records(event, rows, start + np.cumsum(lengths), self.copy.extras))
        else:
            record = steplog.event_record(start, start + len(text.encode()), self.copy.steps, rows[0])
            self.copy.add_events(np.array([record], steplog.EVENT_DTYPE))
        self._attempt(self.jsonl.flush, self.csv.flush, self.copy.flush)
        if self.tb is not None:
            try:
                self.tb.write(event, wall)
            except OSError:
                self.tb = None  # TensorBoard files only repeat metrics.jsonl: drop them rather than the run
        self._attempt(lambda: self._summarise(event))
        if isinstance(event, (CheckpointSaved, Paused, Diverged, RunFinished, RunFailed)):
            self._attempt(self.sync)

    def _attempt(self, *writes: Callable[[], None]) -> None:
        """Run each write; a failure goes to on_error, and the others are still tried."""
        for write in writes:
            try:
                write()
            except OSError as exc:
                if self.on_error is not None:
                    self.on_error(exc, self.run_dir)

    def rewind(self, checkpoint: dict[str, Any]) -> None:
        """Cut every log back to where `checkpoint` was taken, as a resume from it does (a rollback in place)."""
        summary = self.summary
        self.close()
        self.__init__(self.run_dir, checkpoint, **self._options)  # type: ignore[misc]
        self.summary = {**summary, **self.summary}

    def sync(self) -> None:
        """Make everything logged so far durable (called before each checkpoint is written); OSError if it cannot."""
        for log in (self.jsonl, self.csv):
            log.sync()
        self.copy.sync()

    def close(self) -> None:
        """Flush and close every log."""
        self._attempt(self.sync)
        self.jsonl.close()
        self.csv.close()
        self.copy.close()
        if self.tb is not None:
            try:
                self.tb.close()
            except OSError:
                pass

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------- summary.json

    def _summarise(self, event: Event) -> None:
        s = self.summary
        if isinstance(event, RunStarted):
            s.update(state="running", reason="", pid=os.getpid(), recipe=event.config.get("recipe"),
                     step=event.start_step, epoch=event.epoch, total_steps=event.total_steps,
                     epochs=event.epochs, steps_per_epoch=event.steps_per_epoch, world_size=event.world_size,
                     updated_at=_now())
            s.pop("failed_rank", None)
            if event.restart:  # torchrun's agent restarted the workers after a failure: count it
                s["restarts"] = s.get("restarts", 0) + 1
        elif isinstance(event, EpochEnded):
            # The averaged weights pick the best epoch when there are any (the loop's best.pt does the same).
            score = event.ema_test_accuracy if event.ema_test_accuracy is not None else event.test_accuracy
            best = max((a for a in (s.get("best_test_accuracy"), score) if a is not None), default=None)
            s.update(step=event.step, epoch=event.epoch, train_loss=event.train_loss,
                     train_accuracy=event.train_accuracy, test_loss=event.test_loss,
                     test_accuracy=event.test_accuracy, val_loss=event.val_loss, val_accuracy=event.val_accuracy,
                     best_test_accuracy=best, updated_at=_now())
            for split in ("train", "val", "test"):
                if getattr(event, f"{split}_metrics"):
                    s[f"{split}_metrics"] = getattr(event, f"{split}_metrics")
            if event.ema_test_loss is not None:
                s.update(ema_test_loss=event.ema_test_loss, ema_test_accuracy=event.ema_test_accuracy,
                         ema_val_loss=event.ema_val_loss, ema_val_accuracy=event.ema_val_accuracy)
        elif isinstance(event, CheckpointSaved):
            key = "best_checkpoint" if event.reason == "best" else "last_checkpoint"
            s[key] = os.path.relpath(event.path, self.run_dir)
        elif isinstance(event, Diverged):
            s.setdefault("diverged_at_step", event.step)
            return
        elif isinstance(event, RolledBack):
            s.pop("diverged_at_step", None)
            s.update(state="running", step=event.to_step, epoch=event.to_epoch, updated_at=_now())
        elif isinstance(event, RunFinished):
            s.update(state=event.state, reason=event.reason, step=event.step, epoch=event.epoch,
                     seconds=round(event.seconds, 3), train_loss=event.train_loss, test_loss=event.test_loss,
                     test_accuracy=event.test_accuracy, best_test_accuracy=event.best_test_accuracy,
                     ended_at=_now(), updated_at=_now())
            if event.replicas:  # several ranks: one fingerprint of the final weights per rank
                s["replicas"] = list(event.replicas)
            s.pop("pid", None)
        elif isinstance(event, RunFailed) and self.kept_state is not None:
            s.clear()
            s.update(self.kept_state, resume_failed=event.message, updated_at=_now())
            s.pop("pid", None)
        elif isinstance(event, RunFailed):
            interrupted = event.message.startswith("KeyboardInterrupt")
            s.update(state="interrupted" if interrupted else "failed", reason=event.message, step=event.step,
                     ended_at=_now(), updated_at=_now())
            if event.rank is not None:
                s.update(failed_rank=event.rank, traceback=event.traceback)
            s.pop("pid", None)
        else:
            return
        write_json(self.run_dir / SUMMARY_JSON, _clean(s), durable=isinstance(event, (RunFinished, RunFailed)))


def _cut_csv(path: Path, lines: int, jsonl: Path, columns: tuple[str, ...]) -> None:
    """Truncate metrics.csv after its header and `lines` lines; written again from the JSONL if it has fewer."""
    offset = _line_end(path, lines + 1)
    if offset is not None:
        if path.stat().st_size > offset:
            os.truncate(path, offset)
        return
    # Missing or damaged: rebuilt from the record (the slow path; a healthy run never takes it).
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(",".join(columns) + "\n")
        fh.write(csv_lines(logrows.read_rows(jsonl), columns) if lines else "")
    os.replace(tmp, path)


def _line_end(path: Path, count: int, chunk: int = 8 << 20) -> int | None:
    """The offset just past the first `count` lines of a file, or None when it has fewer."""
    if count <= 0:
        return 0
    seen = offset = 0
    try:
        with open(path, "rb") as fh:
            while data := fh.read(chunk):
                found = data.count(b"\n")
                if seen + found >= count:
                    newlines = np.flatnonzero(np.frombuffer(data, np.uint8) == 10)
                    return offset + int(newlines[count - seen - 1]) + 1
                seen += found
                offset += len(data)
    except OSError:
        pass
    return None


def _cut_copy(run_dir: Path, records: LogRecords, cut: Cut, extras: tuple[str, ...] = ()) -> steplog.StepLogWriter:
    """Open the binary copy holding exactly the rows before `cut`: its own records, then any it lacked.

    Its step records get the `extras` columns and those the log already has (a resume that stops clipping
    keeps the grad norms logged so far).
    """
    binary_steps, binary_events = len(records.binary_steps), records.binary_events
    extras = steplog.union(records.extras, extras)
    writer = steplog.StepLogWriter(run_dir, min(binary_steps, cut.steps), min(binary_events, cut.events), extras)
    if writer.steps == min(binary_steps, cut.steps):  # the files were whole: add the rows only the JSONL held
        writer.add_steps(records.tail_steps[: max(0, cut.steps - binary_steps)])
        writer.add_events(records.event_records[binary_events: cut.events])
    else:  # the copy changed under us or gains columns: both files again, every row before the cut from the JSONL
        writer.close()
        writer = steplog.StepLogWriter(run_dir, 0, 0, extras)
        rows = steplog.scan_file(run_dir / METRICS_JSONL, 0, cut.jsonl)
        writer.add_steps(rows.steps)
        writer.add_events(rows.events)
    writer.sync()
    return writer


def _clean(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: (_clean(v) if isinstance(v, dict) else None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in summary.items()}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
