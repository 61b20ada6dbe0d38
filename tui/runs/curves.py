"""One run's chart data for the overlay, read through the engine's bounded history reader.

The first poll loads the run's step series already reduced to a few hundred buckets (history.load: a pass
over the binary copy beside the log, never a Python object per row); later polls take only the rows
appended since (history.Follower), so a live run's curve grows by its new bytes and a finished run is
read once.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ptviz.engine.events import EpochEnded, RunStarted, StepMetrics
from ptviz.engine.storage import history

from .buckets import CAPACITY, BucketSeries

COLUMNS = ("loss", "lr", "samples_per_s", "elapsed")
EPOCH_KEYS = ("epoch", "step", "train_loss", "test_loss", "train_acc", "test_acc")


class RunCurves:
    """Loss, lr, samples/s and elapsed time by step, plus per-epoch results, of one run.

    poll() runs on a worker thread; `lock` guards the series against a chart reading them meanwhile.
    """

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.lock = threading.Lock()
        self.version = 0  # bumped whenever the series change
        self.problems: list[str] = []
        self._follower: history.Follower | None = None
        self._skipped = 0  # garbled lines the first load left out
        self._reset()

    def _reset(self) -> None:
        self.loss = BucketSeries()
        self.lr = BucketSeries()
        self.throughput = BucketSeries()
        self.elapsed = BucketSeries()
        self.epochs: dict[str, list[float]] = {k: [] for k in EPOCH_KEYS}
        self.steps_per_epoch = 0
        self.first_step: int | None = None

    @property
    def nbytes(self) -> int:
        """Memory held by the series."""
        return sum(s.nbytes for s in (self.loss, self.lr, self.throughput, self.elapsed))

    def poll(self) -> bool:
        """Read what the log gained since the last poll (all of it the first time); whether the curves changed."""
        events = self._follower.poll() if self._follower is not None else []
        if self._follower is None or self._follower.cut_back:  # first read, or a resume cut the log back
            snapshot = history.load(self.run_dir, buckets=CAPACITY // 2, columns=COLUMNS)
            with self.lock:
                self._reset()
                self._load(snapshot)
                self._skipped = snapshot.skipped
                self._follower = history.Follower(self.run_dir, snapshot.end)
                self._note_skipped()
                self.version += 1
            return True
        if not events:
            return False
        with self.lock:
            for event in events:
                self._add(event)
            self._note_skipped()
            self.version += 1
        return True

    def _load(self, snapshot: history.Snapshot) -> None:
        series = snapshot.series
        if snapshot.steps:
            self.first_step = int(series["loss"].x[0])
        for target, column in ((self.loss, "loss"), (self.lr, "lr"), (self.throughput, "samples_per_s"),
                               (self.elapsed, "elapsed")):
            reduced = series[column]
            target.seed(reduced.x, reduced.y, reduced.sums, reduced.counts, max(1.0, reduced.bucket / 2), snapshot.steps)
        for event in snapshot.events:
            self._add(event)

    def _add(self, event: object) -> None:
        if isinstance(event, StepMetrics):
            if self.first_step is None:
                self.first_step = event.steps[0]
            self.loss.extend(event.steps, event.losses)
            self.lr.extend(event.steps, event.lrs)
            self.throughput.extend((event.last_step,), (event.samples_per_s,))
            self.elapsed.extend((event.last_step,), (event.elapsed,))
        elif isinstance(event, RunStarted):
            self.steps_per_epoch = event.steps_per_epoch or self.steps_per_epoch
        elif isinstance(event, EpochEnded):
            e = self.epochs
            e["epoch"].append(float(event.epoch))
            e["step"].append(float(event.step))
            e["train_loss"].append(_num(event.train_loss))
            e["test_loss"].append(_num(event.test_loss))
            e["train_acc"].append(100 * _num(event.train_accuracy))
            e["test_acc"].append(100 * _num(event.test_accuracy))

    def _note_skipped(self) -> None:
        skipped = self._skipped + (self._follower.skipped if self._follower is not None else 0)
        self.problems = [f"metrics.jsonl: {skipped:,} garbled line{'s' if skipped != 1 else ''} skipped"] if skipped else []

    def epoch_array(self, key: str) -> np.ndarray:
        """One per-epoch column as an array (NaN where the run logged none)."""
        return np.asarray(self.epochs[key], dtype=np.float64)

    def time_at(self, steps: np.ndarray) -> np.ndarray:
        """Training seconds at the given steps, interpolated from the elapsed-time series."""
        x, t = self.elapsed.means()
        if not len(x):
            return np.full(len(steps), np.nan)
        return np.interp(steps, x, t)


def _num(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else float("nan")


def poll_all(curves: list[RunCurves]) -> list[bool]:
    """Poll every run's curves; first loads (a whole history each) go two at a time, numpy releasing the GIL."""
    first = [c for c in curves if not c.version]
    if len(first) < 2:
        return [c.poll() for c in curves]
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="ptviz-runs") as pool:  # ends with the read
        loaded = list(pool.map(RunCurves.poll, first))
    return loaded + [c.poll() for c in curves if c.version and c not in first]
